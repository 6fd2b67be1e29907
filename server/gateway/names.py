"""Display names others see: cleaned of invisible tricks, and marked when they imitate staff.

A token's ``name`` is shown to the whole room (participant lists, the board, the clone's
answer to the asker). Two abuses are handled here:

- **Invisible characters.** Bidirectional overrides and isolates reorder what follows them
  (a name can make the next column read backwards); control and other format characters
  are invisible or break layouts. They are removed; runs of spaces become one; the result
  is cut to the protocol's name limit. A name with nothing visible left is refused.
- **Imitating staff.** An attendee or spectator named "Moderator", "CEO", "Адмін" or after
  the leader whose clone is on stage could pass their words off as official. Such names
  are kept (people may be called that) but marked: the role is appended, for example
  ``"CEO (attendee)"``, so every client shows it without a protocol change.

Imitation is judged on a *skeleton* of the name: NFKC (full-width and mathematical
letters become plain ones), case folded, invisible and combining marks dropped,
look-alike characters mapped to the Latin ones they imitate using the Unicode
confusables data (confusable-homoglyphs), digits read as the letters they resemble and
separators removed, so "M0dеr.ator" (with a Cyrillic е) reads "moderator". Staff words
are listed in English, Ukrainian and Russian; the persona's name is also compared after
Cyrillic transliteration, so "Дана Рейес" imitates "Dana Reyes".
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from confusable_homoglyphs import confusables

from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.limits import MAX_NAME_CHARS
from townhall.server.core.identity import Identity

# Reorder text: embeddings, overrides, isolates, and the marks that act like them.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
# Joiners are kept: emoji sequences and some scripts need them.
KEEP_FORMAT = frozenset("\u200c\u200d")
# Letters and symbols that render as nothing (fillers, the blank braille pattern).
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")
MAX_MARKS = 2  # combining marks kept on one letter; more only smear over the next lines

STAFF_ROLES = frozenset({"moderator", "operator"})

# Words that claim an office, whole-word matched when short, else anywhere in the name.
STAFF_WORDS = (
    # English
    "moderator", "moderators", "mod", "mods", "admin", "administrator", "sysadmin",
    "ceo", "cfo", "cto", "coo", "chief executive", "president", "founder",
    "host", "organizer", "organiser", "staff", "operator", "official", "townhall team",
    # Ukrainian
    "модератор", "адмін", "адміністратор", "генеральний директор", "гендиректор",
    "ведучий", "ведуча", "організатор", "оператор", "офіційний", "президент", "засновник",
    # Russian
    "админ", "администратор", "генеральный директор", "ведущий", "ведущая",
    "организатор", "официальный", "основатель",
)  # fmt: skip
WHOLE_WORD_BELOW = 6  # skeleton letters: shorter staff words must be a whole word

# Ukrainian and Russian letters in Latin (for the persona's name written in Cyrillic).
_CYRILLIC_LETTERS = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюяыэъё"
_LATIN_SPELLING = (
    "a b v h g d e ye zh z y i yi y k l m n o p r s t u f kh ts ch sh shch  yu ya y e  yo"
)
_CYRILLIC = dict(zip(_CYRILLIC_LETTERS, _LATIN_SPELLING.split(" "), strict=True))


class InvisibleName(ValueError):
    """A display name that has nothing visible left after cleaning."""


def clean_display_name(name: str, limit: int = MAX_NAME_CHARS) -> str:
    """``name`` without bidi controls, control or format characters; spaces collapsed."""
    out: list[str] = []
    marks = 0
    for ch in unicodedata.normalize("NFD", name):  # marks counted apart from their letter
        category = unicodedata.category(ch)
        if ch in BIDI_CONTROLS or ch in INVISIBLE:
            continue
        if category[0] == "M":
            marks += 1
            if marks <= MAX_MARKS:
                out.append(ch)
            continue
        marks = 0
        if category in ("Zs", "Zl", "Zp") or ch in "\t\n\r\v\f\x1c\x1d\x1e\x85":
            out.append(" ")
        elif category in ("Cc", "Cs", "Co", "Cn") or (category == "Cf" and ch not in KEEP_FORMAT):
            continue
        else:
            out.append(ch)
    cleaned = unicodedata.normalize("NFC", re.sub(r" {2,}", " ", "".join(out))).strip()
    if not any(unicodedata.category(c)[0] in "LNS" for c in cleaned):
        raise InvisibleName("the name has no visible characters")
    return cleaned[:limit].rstrip()


@lru_cache(maxsize=4096)
def _visual(ch: str) -> str:
    """The ASCII letters or digits ``ch`` looks like, per the Unicode confusables data."""
    if ch.isascii():
        return ch
    for entry in confusables.confusables_data.get(ch, ()):
        glyph = str(entry["c"]).strip("\u200e")
        if glyph.isascii() and glyph.isalnum():
            return glyph.lower()
    return ch


# Digits and symbols read as letters; i and l (and 1, |, !) are one letter here.
_READ_AS = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "!": "l", "3": "e",
                          "4": "a", "@": "a", "5": "s", "$": "s", "7": "t", "8": "b"})  # fmt: skip


def _letters(text: str, transliterate: bool) -> list[str]:
    """Words of ``text`` reduced to comparable letters (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(
        c for c in unicodedata.normalize("NFKD", text) if unicodedata.category(c)[0] != "M"
    )
    chars: list[str] = []
    for ch in text:
        if unicodedata.category(ch) == "Cf":
            continue
        if transliterate and ch in _CYRILLIC:
            chars.append(_CYRILLIC[ch])
        else:
            chars.append(_visual(ch).lower())
    skeleton = "".join(chars).translate(_READ_AS).replace("rn", "m").replace("vv", "w")
    words = [w for w in re.split(r"[^\w]|_", skeleton) if w]
    # "C.E.O" or "A d m i n": letters spelt out one by one make one word.
    merged: list[str] = []
    spelling = False
    for word in words:
        if len(word) == 1 and spelling:
            merged[-1] += word
        else:
            merged.append(word)
        spelling = len(word) == 1
    return merged


def _near(text: str, term: str) -> bool:
    """``term`` appears in ``text`` with at most one letter added, dropped or changed."""
    if term in text:
        return True
    n = len(term)
    if n < 8:
        return False
    for size in (n - 1, n, n + 1):
        for start in range(0, len(text) - size + 1):
            if _distance_at_most_one(text[start : start + size], term):
                return True
    return False


def _distance_at_most_one(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


class StaffLookalikes:
    """Tells whether a name imitates staff: the office words and the persona's names."""

    def __init__(self, persona_names: Iterable[str] = ()) -> None:
        self.terms: list[tuple[str, bool]] = []  # (skeleton, whole word only)
        for word in STAFF_WORDS:
            self._add(word, transliterate=False)
        self.persona: list[str] = []
        for name in persona_names:
            if name.strip():
                for transliterate in (False, True):
                    joined = "".join(_letters(name, transliterate))
                    if len(joined) >= 4 and joined not in self.persona:
                        self.persona.append(joined)

    def _add(self, word: str, transliterate: bool) -> None:
        joined = "".join(_letters(word, transliterate))
        self.terms.append((joined, len(joined) < WHOLE_WORD_BELOW))

    def imitates(self, name: str) -> bool:
        for transliterate in (False, True):
            words = _letters(name, transliterate)
            joined = "".join(words)
            for term, whole in self.terms:
                if (term in words) if whole else _near(joined, term):
                    return True
            if any(_near(joined, p) for p in self.persona):
                return True
        return False

    def display_name(self, name: str, role: str) -> str:
        """The name to show: cleaned, and with the role appended if it imitates staff."""
        cleaned = clean_display_name(name)
        if role in STAFF_ROLES or not self.imitates(cleaned):
            return cleaned
        suffix = f" ({role})"
        return cleaned[: MAX_NAME_CHARS - len(suffix)].rstrip() + suffix


def persona_names(directory: str | Path | None) -> list[str]:
    """The leader's name and title from the persona, the staff names an attendee may not use."""
    from townhall.server.clone.persona import PersonaError, load_persona, sample_persona_path

    try:
        persona = load_persona(directory or sample_persona_path())
    except (PersonaError, OSError):
        return []  # the clone reports a broken persona itself
    return [persona.name, persona.title]


def shown_identity(identity: Identity, lookalikes: StaffLookalikes) -> Identity:
    """The identity with the name others will see; BAD_TOKEN if nothing visible is left."""
    try:
        name = lookalikes.display_name(identity.name, identity.role)
    except InvisibleName as exc:
        raise ProtocolError(ErrorCode.BAD_TOKEN, f"token name: {exc}") from None
    return identity if name == identity.name else replace(identity, name=name)
