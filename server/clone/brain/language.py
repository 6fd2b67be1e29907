"""Offline language identification: which language a question is in.

Script decides first (Han, Arabic, Greek, ...); within Latin and Cyrillic script a real
identifier decides: py3langid (langid.py's naive Bayes over byte n-grams, its model
inside the 5 MB wheel, under 0.1 ms a question). Compared on the 302 short questions of
``tests/data/judgment`` (en/uk/ru/de/fr/pl/es): py3langid over all its languages was
wrong on 9, lingua-language-detector (a 96 MB wheel, 8 s to load its models, 1 ms a
question) on 5, the keyword heuristics this replaced on 13 (ordinary English saying "I",
"my" or "to" taken for Polish; Russian for Ukrainian), and py3langid as used here
(restricted to the script's languages, the default language kept unless clearly beaten)
on 1 ("Нас покупают?", two words, taken for Ukrainian).

Within Cyrillic, letters only Ukrainian has (і ї є ґ) or only Russian has (ы э ъ ё),
then short function words only one of them has ("хто"/"кто"), settle it; otherwise the
model picks between Ukrainian and Russian only (a lone Bulgarian or Macedonian question
at a town hall is far less likely than a short Ukrainian one the model mistakes for
them). Latin script is told among the languages listed in :data:`LATIN`. Text is folded
first (:func:`~townhall.server.core.textnorm.fold`) so look-alike letters and leetspeak
do not pull a question into another language.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from functools import lru_cache

from py3langid.langid import MODEL_FILE, LanguageIdentifier

from townhall.server.clone.brain.text import words
from townhall.server.core.textnorm import fold

_UK_LETTERS = set("іїєґ")
_RU_LETTERS = set("ыэъё")
# Short function words only one of the two languages has ("хто"/"кто", "чи"/"ли").
_UK_WORDS = frozenset(
    "хто що чи як це ми ви він вона вони буде будемо коли або щоб дуже ще вже чому "
    "скільки який яка які яке тебе тобі мене мені де також тому якщо".split()
)
_RU_WORDS = frozenset(
    "кто что ли как это мы вы он она они будет будем когда или чтобы очень ещё уже почему "
    "сколько какой какая какие какое тебя тебе меня мне где тоже поэтому если".split()
)
_SHARED_WORDS = _UK_WORDS & _RU_WORDS
#: Latin-script languages told apart (the most spoken in Europe and the Americas).
LATIN = (
    "en", "de", "fr", "es", "it", "pt", "pl", "nl", "cs", "sk", "ro", "hu", "sv", "da",
    "no", "fi", "tr", "hr", "sl", "lt", "lv", "et", "sq", "id",
)  # fmt: skip
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


#: The default language wins unless another is this many times as likely.
PREFER_DEFAULT = 4.0


@lru_cache(maxsize=2)
def _identifier(languages: tuple[str, ...]) -> LanguageIdentifier:
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


def warm() -> None:
    """Load the identifiers now (lzma-packed models: about a second of CPU, more on a busy
    machine). Left to the first question, that load ran on the room's event loop and froze
    every client's view for as long (seen: 1.1 to 1.6 s)."""
    _identifier(LATIN)
    _identifier(("uk", "ru"))


def detect_language(text: str, default: str = "en") -> str:
    """An ISO 639-1 code for ``text``: ``en``, ``uk``, ``ru``, another code, or ``default``."""
    folded = fold(text)
    scripts: Counter[str] = Counter()
    for word in words(folded):
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
        return _cyrillic(folded)
    if script == "LATIN":
        return _latin(folded, default)
    return _SCRIPTS.get(script, "und")


def _latin(text: str, default: str) -> str:
    """The likeliest Latin-script language, but the default one unless clearly beaten.

    Short English questions share most of their letter n-grams with other languages
    ("Can I paste customer data into an AI chatbot?" scores Italian 0.59, English 0.18);
    declining an English question in English is the costlier mistake.
    """
    ranked = _identifier(LATIN).rank(text)
    top, p_top = ranked[0]
    p_default = next((p for lang, p in ranked if lang == default), 0.0)
    if top != default and p_default * PREFER_DEFAULT >= p_top:
        return default
    return str(top)


def _cyrillic(text: str) -> str:
    uk = sum(1 for c in text if c in _UK_LETTERS)
    ru = sum(1 for c in text if c in _RU_LETTERS)
    if uk != ru:
        return "uk" if uk > ru else "ru"
    seq = words(text)
    uk_words = sum(1 for w in seq if w in _UK_WORDS and w not in _SHARED_WORDS)
    ru_words = sum(1 for w in seq if w in _RU_WORDS and w not in _SHARED_WORDS)
    if uk_words != ru_words:
        return "uk" if uk_words > ru_words else "ru"
    return str(_identifier(("uk", "ru")).classify(text)[0])
