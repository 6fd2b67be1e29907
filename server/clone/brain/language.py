"""Offline language identification, good enough to route a question to en or uk.

Only two answers matter for the persona's material (English, Ukrainian); the rest only
need to be recognised as *not* those, so the clone can say honestly that it cannot
answer in that language. Script decides first; within Cyrillic, letters only Ukrainian
has (і ї є ґ) or only Russian has (ы э ъ ё) decide, then common function words; within
Latin, function words of a few languages. Anything undecidable falls back to a default.
"""

from __future__ import annotations

import unicodedata
from collections import Counter

from townhall.server.clone.brain.text import words

_UK_LETTERS = set("іїєґ")
_RU_LETTERS = set("ыэъё")

_UK_WORDS = frozenset(
    "що як це чи та ми ви він вона вони буде будемо коли де для про який яка які яке наш "
    "наша наші ваш ваша є також тому якщо або щоб дуже ще вже чому скільки".split()
)
_RU_WORDS = frozenset(
    "что как это мы вы он она они будет будем когда где для про какой какая какие наш наша "
    "ваш ваша есть также поэтому если или чтобы очень ещё уже почему сколько".split()
)
_LATIN_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        "the and is are what when how why who will we our you your do does of to in for "
        "with on this that it be can have about".split()
    ),
    "de": frozenset(
        "der die das und ist sind was wann wie warum wer wir unser sie ihr nicht mit "
        "für auf ein eine ich es werden".split()
    ),
    "fr": frozenset(
        "le la les et est sont que quand comment pourquoi qui nous notre vous votre pas "
        "avec pour sur un une je il des du".split()
    ),
    "es": frozenset(
        "el la los las y es son que cuándo cómo por qué quién nosotros nuestro usted "
        "con para un una yo del se".split()
    ),
    "it": frozenset(
        "il lo la gli le e è sono che quando come perché chi noi nostro voi con per un "
        "una io del non".split()
    ),
    "pl": frozenset(
        "i jest są co kiedy jak dlaczego kto my nasz wy nie z na dla to się czy".split()
    ),
}
_LATIN_HINTS = {
    c: lang
    for lang, letters in {
        "de": "ßäöü",
        "es": "ñ¿¡",
        "pl": "łąęśżź",
        "fr": "çèêù",
        "it": "ìò",
    }.items()
    for c in letters
}
_SCRIPTS = {
    "HAN": "zh",
    "CJK": "zh",
    "HIRAGANA": "ja",
    "KATAKANA": "ja",
    "HANGUL": "ko",
    "ARABIC": "ar",
    "HEBREW": "he",
    "GREEK": "el",
    "DEVANAGARI": "hi",
    "THAI": "th",
    "GEORGIAN": "ka",
    "ARMENIAN": "hy",
}


def detect_language(text: str, default: str = "en") -> str:
    """An ISO 639-1 code for ``text``: ``en``, ``uk``, ``ru``, another code, or ``default``."""
    scripts: Counter[str] = Counter()
    for word in words(text):
        letter = next((c for c in word if c.isalpha()), "")
        if letter:
            name = unicodedata.name(letter, "")
            scripts[name.split(" ", 1)[0] if name else "UNKNOWN"] += 1
    if not scripts:
        return default
    # Counted by words, ties to Cyrillic: Ukrainian questions borrow English terms
    # ("Що з remote work?") far more often than the other way round.
    script = max(scripts, key=lambda s: (scripts[s], s == "CYRILLIC"))
    if script == "CYRILLIC":
        return _cyrillic(text)
    if script == "LATIN":
        return _latin(text)
    return _SCRIPTS.get(script, "und")


def _cyrillic(text: str) -> str:
    lower = text.casefold()
    uk = sum(1 for c in lower if c in _UK_LETTERS)
    ru = sum(1 for c in lower if c in _RU_LETTERS)
    if uk or ru:
        return "uk" if uk >= ru else "ru"
    seq = words(text)
    uk_words = sum(1 for w in seq if w in _UK_WORDS)
    ru_words = sum(1 for w in seq if w in _RU_WORDS)
    if ru_words > uk_words:
        return "ru"
    # Undecided Cyrillic: Ukrainian is the Cyrillic language personas can have material in.
    return "uk"


def _latin(text: str) -> str:
    seq = words(text)
    scores = {lang: sum(1 for w in seq if w in vocab) for lang, vocab in _LATIN_WORDS.items()}
    for ch in text.casefold():
        hint = _LATIN_HINTS.get(ch)
        if hint:
            scores[hint] += 1
    best = max(scores, key=lambda lang: scores[lang])
    if best != "en" and scores[best] >= 2 and scores[best] > scores["en"]:
        return best
    # Latin script with no other language's signal: English, the persona's likely language.
    return "en"
