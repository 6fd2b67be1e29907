"""The one text normaliser: what the Q&A queue stores and what the clone's brain reads.

Two steps, so the board shows what people wrote while the brain sees through tricks:

- :func:`clean` (stored and shown): NFC, invisible and format characters *removed*
  (zero-width spaces, soft hyphens, word joiners, bidi controls: "bo\\u200bnuses" stays
  one word, "bonuses"), other control characters and runs of white space made one space.
- :func:`fold` (what the brain matches and classifies): :func:`clean`, then NFKC and
  case folding, look-alike letters of Latin, Cyrillic and Greek folded into the script
  most of the word is written in ("lаyоffs" with Cyrillic а and о is "layoffs"), common
  leetspeak undone inside words ("l4y0ffs", "s@lary", "зв1льнення"), and letters spelt
  out one by one joined ("l.a.y.o.f.f.s", "B-O-N-U-S").

Pure functions on strings: the sans-I/O core and the clone both import this module.
"""

from __future__ import annotations

import re
import unicodedata

# Invisible characters that are not format (Cf) characters but show nothing.
_INVISIBLE_EXTRA = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0")


def _invisible(ch: str) -> bool:
    return unicodedata.category(ch) == "Cf" or ch in _INVISIBLE_EXTRA


def _visible(text: str) -> str:
    """NFC, invisible and format characters removed, other controls made spaces."""
    text = unicodedata.normalize("NFC", text)
    return "".join(
        " " if unicodedata.category(ch)[0] == "C" else ch for ch in text if not _invisible(ch)
    )


def clean(text: str) -> str:
    """NFC; invisible and format characters removed; controls and white space one space."""
    return " ".join(_visible(text).split())


# Look-alikes, lower case (after case folding), by the script they are folded into.
_TO_LATIN = str.maketrans(
    {
        **dict(zip("аеорсхуікмтнвѕјԁɡ", "aeopcxyikmthbsjdg", strict=True)),
        **dict(zip("οαεικνρτυχβζημ", "oaeikvptuxbznm", strict=True)),
    }
)
_TO_CYRILLIC = str.maketrans(
    {
        **dict(zip("aeopcxyikmthb", "аеорсхуікмтнв", strict=True)),
        **dict(zip("οαεικρτχ", "оаеікртх", strict=True)),
        **dict(zip("0316", "озіб", strict=True)),
        "@": "а",
    }
)
_LEET_LATIN = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_WORD = re.compile(r"[\w@$]+")
_SPELT = re.compile(r"(?<![\w])(?:[^\W\d_][ .\-_*·]){2,}[^\W\d_](?![\w])")


def _script(ch: str) -> str:
    if "a" <= ch <= "z":
        return "latin"
    if "\u0400" <= ch <= "\u04ff":
        return "cyrillic"
    if "\u0370" <= ch <= "\u03ff":
        return "greek"
    return ""


def _fold_word(word: str) -> str:
    counts = {"latin": 0, "cyrillic": 0, "greek": 0}
    digits = 0
    for ch in word:
        if ch.isdigit() or ch in "@$":
            digits += 1
        elif s := _script(ch):
            counts[s] += 1
    letters = sum(counts.values())
    if letters == 0:
        return word
    mixed = sum(1 for n in counts.values() if n) > 1
    leet = digits > 0 and letters >= 2
    if not mixed and not leet:
        return word
    if counts["cyrillic"] > counts["latin"] + counts["greek"]:
        return word.translate(_TO_CYRILLIC) if (mixed or leet) else word
    folded = word.translate(_TO_LATIN) if mixed else word
    return folded.translate(_LEET_LATIN) if leet else folded


def _join_spelt(match: re.Match[str]) -> str:
    return re.sub(r"[ .\-_*·]", "", match.group(0))


def fold(text: str) -> str:
    """:func:`clean`, NFKC, case-folded, look-alikes and leetspeak undone (for matching)."""
    text = unicodedata.normalize("NFKC", _visible(text)).casefold()
    if any(unicodedata.combining(c) for c in text):
        # Stress accents and stray marks; after NFKC, й and ї are single letters.
        text = "".join(c for c in text if not unicodedata.combining(c))
    # Letters spelt out with one separator are joined before white space is collapsed,
    # so the wider gaps of "w i l l   t h e r e" still part the words.
    text = " ".join(_SPELT.sub(_join_spelt, text).split())
    return _WORD.sub(lambda m: _fold_word(m.group(0)), text)
