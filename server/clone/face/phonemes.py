"""eSpeak NG phoneme mnemonics (English and Ukrainian) to viseme targets.

A target is a mix of the 15 OVR visemes (`protocol.skeleton.VISEMES`); what a
mix leaves below 1 is `sil` (a relaxed, closed mouth). Diphthongs have several
targets that share the phoneme's time in equal parts. The table is written in
a small spec language so it reads like a phonetics chart:

    "aa"            one viseme, full weight
    "E*0.5+ih*0.2"  a mix (the remaining 0.3 is sil)
    "aa>ih"         a glide: aa for the first half, ih for the second

Mnemonics not in the table still get a sensible shape from their letters
(vowel-like letters open the mouth, anything else is a consonant), so new
eSpeak voices or versions never break the face; `is_known` tells the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from townhall.protocol.skeleton import VISEME_INDEX, VISEMES

__all__ = [
    "STRESS_MARKS",
    "PhonemeClass",
    "PhonemeShape",
    "is_known",
    "known_phonemes",
    "parse_mnemonic",
    "shape_of",
]

F64 = npt.NDArray[np.float64]

# eSpeak writes stress before the vowel: ' primary, , secondary, % and = unstressed.
STRESS_MARKS: Final = "'\",%="


class PhonemeClass(Enum):
    PAUSE = "pause"
    VOWEL = "vowel"
    CONSONANT = "consonant"
    # h and the glottal stop have no lip shape of their own: the mouth is
    # already forming the next vowel.
    TRANSPARENT = "transparent"


class Stop(Enum):
    """Where eSpeak NG puts a stop's closure relative to the phoneme's time span.

    Measured on its audio: a voiceless stop's span starts at the release (the
    ~45 ms of closure silence is at the end of the previous phoneme); a voiced
    stop's span holds the closure and ends with the release.
    """

    VOICELESS = "voiceless"
    VOICED = "voiced"


@dataclass(frozen=True, slots=True)
class PhonemeShape:
    """How a phoneme looks: its class and one or more viseme targets, each (15,), summing to 1."""

    kind: PhonemeClass
    targets: tuple[F64, ...]
    stop: Stop | None = None

    @property
    def main_viseme(self) -> str:
        """The strongest viseme of the first target (what the phoneme mostly looks like)."""
        return VISEMES[int(np.argmax(self.targets[0]))]


# ---------------------------------------------------------------- the table

# Pauses: "_" short, "_:" long, "_!" and "_|" breaks, "||" end of clause.
_PAUSES: Final = ("", "_", "_:", "_::", "_!", "_|", "||", "_^_", "_X1", "_;_", "1")

_TRANSPARENT: Final = ("h", "?", "h#", "h\\")

_VOICELESS_STOPS: Final = frozenset(
    {"p", "p-", "ph", "t", "t[", "t-", "t2", "t;", "t^", "k", "k#", "k-", "kh", "c", "c2", "q"}
    | {"tS", "tS;", "tS#", "ts", "ts;"}
)
_VOICED_STOPS: Final = frozenset(
    {"b", "d", "d[", "d#", "d2", "d;", "d^", "g", "g#", "J", "dZ", "dZ;", "dZ#", "dz", "dz;"}
)

_CONSONANTS: Final[dict[str, str]] = {
    # lips together
    "p": "PP", "b": "PP", "m": "PP", "p-": "PP", "ph": "PP", "m-": "PP",
    # lower lip on upper teeth; B is Ukrainian в before a vowel, a labial glide
    "f": "FF", "v": "FF", "v#": "FF", "B": "FF*0.7+ou*0.3", "F": "FF",
    # tongue between the teeth
    "T": "TH", "D": "TH",
    # tongue tip on the ridge; "t[" "d[" dental (Ukrainian), "*" and "t#" flaps
    "t": "DD", "d": "DD", "t#": "DD", "t2": "DD", "d#": "DD", "t[": "DD", "d[": "DD",
    "t-": "DD", "*": "DD", "d2": "DD", "t;": "DD", "d;": "DD", "t^": "DD", "d^": "DD",
    # back of the tongue
    "k": "kk", "g": "kk", "k#": "kk", "k-": "kk", "kh": "kk", "c": "kk", "c2": "kk",
    "J": "kk", "q": "kk", "x": "kk", "X": "kk", "Q": "kk", "Q^": "kk", 'Q"': "kk",
    "C": "kk", "N": "kk", "N-": "kk", "g#": "kk", "x#": "kk",
    # lips pushed forward: sh, zh, ch, j
    "S": "CH", "Z": "CH", "tS": "CH", "dZ": "CH", "tS;": "CH", "dZ;": "CH",
    "S;": "CH", "Z;": "CH", "s.": "CH", "z.": "CH", "s;": "CH", "z;": "CH", "J^": "CH",
    "tS#": "CH", "dZ#": "CH",
    # teeth together: s z and the affricates that end in them
    "s": "SS", "z": "SS", "s2": "SS", "z#": "SS", "z/2": "SS", "ts": "SS", "dz": "SS",
    "#X1": "SS", "l#": "SS", "s^": "SS", "z^": "SS", "ts;": "SS", "dz;": "SS",
    # n and l
    "n": "nn", "l": "nn", "n^": "nn", "n.": "nn", "n-": "nn", "l^": "nn", "l/": "nn",
    "l/2": "nn", "l/3": "nn", "l.": "nn", "L": "nn", "L/": "nn", "l-": "nn", "n;": "nn",
    "l;": "nn", "@L": "nn*0.6+E*0.3",
    # r sounds: lips slightly rounded
    "r": "RR", "r-": "RR", "r/": "RR", "R": "RR", "R2": "RR", "R3": "RR", 'r"': "RR",
    "r.": "RR", "**": "RR", "r;": "RR", "R^": "RR",
    # glides take the shape of the vowel they lead into
    "w": "ou", "w#": "ou", "j": "ih*0.8", ";": "ih*0.5",
}  # fmt: skip

_VOWELS: Final[dict[str, str]] = {
    # open
    "a": "aa", "aa": "aa", "a#": "aa", "a2": "aa", "a#2": "aa", "A": "aa", "A:": "aa",
    "A#": "aa", "A~": "aa", "&": "aa*0.7+E*0.3", "V": "aa*0.75+E*0.1",
    # mid front
    "E": "E", "E#": "E", "E2": "E", "e": "E", "e:": "E", "e#": "E",
    # reduced (schwa): a small, relaxed opening
    "@": "E*0.45+ih*0.15", "@2": "E*0.45+ih*0.15", "@5": "E*0.45+ih*0.15",
    "@-": "E*0.4+ih*0.1", "@#": "E*0.45+ih*0.15", "a/": "aa*0.5+E*0.2",
    # r-coloured: nurse, letter
    "3": "E*0.4+RR*0.4", "3:": "E*0.45+RR*0.5", "3-": "E*0.4+RR*0.4",
    # close front
    "I": "ih", "I#": "ih", "I2": "ih", "I2#": "ih", "i": "ih", "i:": "ih", "i.": "ih",
    "i[": "ih", "y": "ou*0.6+ih*0.4", "y:": "ou*0.6+ih*0.4", "Y": "ou*0.5+E*0.4",
    # back rounded
    "0": "oh", "0#": "oh", "02": "oh", "O": "oh", "O2": "oh", "O:": "oh", "O~": "oh",
    "o": "oh", "o:": "oh", "o-": "oh", "W": "oh*0.6+E*0.3",
    # close back rounded
    "U": "ou", "u": "ou", "u:": "ou", "u2": "ou", "u.": "ou",
    # diphthongs and r-diphthongs
    "aI": "aa>ih", "aU": "aa>ou", "eI": "E>ih", "oU": "oh>ou", "oU#": "oh>ou", "OI": "oh>ih",
    "oI": "oh>ih", "eU": "E>ou", "EI": "E>ih", "uI": "ou>ih", "iU": "ih>ou",
    "e@": "E>E*0.5+ih*0.15", "i@": "ih>E*0.5+ih*0.1", "i@3": "ih>E*0.4+RR*0.4",
    "U@": "ou>E*0.5+ih*0.1", "A@": "aa>RR", "O@": "oh>RR", "o@": "oh>RR",
    "aI@": "aa>ih>E*0.5", "aI3": "aa>ih>RR", "aU@": "aa>ou>E*0.5", "IR": "ih>RR",
    "VR": "aa*0.75>RR",
}  # fmt: skip


def _parse_part(spec: str) -> F64:
    out = np.zeros(len(VISEMES))
    for term in spec.split("+"):
        name, _, weight = term.partition("*")
        out[VISEME_INDEX[name]] += float(weight) if weight else 1.0
    rest = 1.0 - out.sum()
    if rest < -1e-9:
        raise ValueError(f"viseme mix {spec!r} sums to more than 1")
    out[VISEME_INDEX["sil"]] += max(rest, 0.0)
    out.flags.writeable = False  # shared through the cache
    return out


def _parse(spec: str, kind: PhonemeClass, mnemonic: str = "") -> PhonemeShape:
    stop = (
        Stop.VOICELESS
        if mnemonic in _VOICELESS_STOPS
        else Stop.VOICED
        if mnemonic in _VOICED_STOPS
        else None
    )
    return PhonemeShape(kind, tuple(_parse_part(part) for part in spec.split(">")), stop)


_SIL: Final = _parse("sil", PhonemeClass.PAUSE)
_TABLE: Final[dict[str, PhonemeShape]] = {
    **{p: _SIL for p in _PAUSES},
    **{p: PhonemeShape(PhonemeClass.TRANSPARENT, _SIL.targets) for p in _TRANSPARENT},
    **{p: _parse(s, PhonemeClass.CONSONANT, p) for p, s in _CONSONANTS.items()},
    **{p: _parse(s, PhonemeClass.VOWEL) for p, s in _VOWELS.items()},
}

# Fallbacks by first letter, for mnemonics the table does not know.
_VOWEL_LETTERS: Final = {
    **dict.fromkeys("aA&", "aa"),
    **dict.fromkeys("eE@3", "E"),
    **dict.fromkeys("iIyY", "ih"),
    **dict.fromkeys("oO0W", "oh"),
    **dict.fromkeys("uUV", "ou"),
}
_CONSONANT_LETTERS: Final = {
    **dict.fromkeys("pbmB", "PP"),
    **dict.fromkeys("fv", "FF"),
    **dict.fromkeys("TD", "TH"),
    **dict.fromkeys("kgxXqQcCNJG", "kk"),
    **dict.fromkeys("SZ", "CH"),
    **dict.fromkeys("sz", "SS"),
    **dict.fromkeys("nlL", "nn"),
    **dict.fromkeys("rR", "RR"),
}
# Suffixes eSpeak adds to a base phoneme: length, palatalisation, variants.
_MODIFIERS: Final = ":;^#.[]-/\"`~0123456789'"


def parse_mnemonic(phoneme: str) -> tuple[str, bool]:
    """Strip eSpeak stress marks: the bare mnemonic, and whether it carried primary stress."""
    p = phoneme.strip()
    stressed = False
    while p and p[0] in STRESS_MARKS:
        stressed = stressed or p[0] == "'"
        p = p[1:]
    return p, stressed


def known_phonemes() -> frozenset[str]:
    """Every mnemonic the table names itself."""
    return frozenset(_TABLE)


def is_known(phoneme: str) -> bool:
    """Whether the table names this mnemonic itself (stress marks aside), not by fallback."""
    return parse_mnemonic(phoneme)[0] in _TABLE


@lru_cache(maxsize=4096)
def shape_of(phoneme: str) -> PhonemeShape:
    """The viseme shape of an eSpeak mnemonic; never raises, whatever the string."""
    bare = parse_mnemonic(phoneme)[0]
    if bare in _TABLE:
        return _TABLE[bare]
    trimmed = bare.rstrip(_MODIFIERS)
    if trimmed in _TABLE:
        return _TABLE[trimmed]
    if not trimmed or trimmed[0] in "_|":
        return _SIL
    first = trimmed[0]
    if first in _VOWEL_LETTERS:
        return _parse(_VOWEL_LETTERS[first], PhonemeClass.VOWEL)
    return _parse(_CONSONANT_LETTERS.get(first, "DD"), PhonemeClass.CONSONANT)
