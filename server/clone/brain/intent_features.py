"""The intent model's features without scikit-learn: n-grams, lemmas and sublinear TF-IDF.

The classifier is trained with scikit-learn's ``TfidfVectorizer`` (``char_wb`` 2 to 5 and
``word`` 1 to 2, lowercased, no stop words, and the words' lemmas); a question is scored
with these functions, which cut text into the same n-grams (a test holds them to
scikit-learn's own analysers on every example), so a server that loads a cached model never
imports scikit-learn (about 1.5 s of CPU at every start).

Lemmas come from simplemma's dictionaries (English for Latin words; Ukrainian, else
Russian, for Cyrillic ones), looked up only at training (:func:`dictionary_lemmas`): they
take several seconds to load. What scoring needs of them is small and goes into the cached
model (:func:`lemma_table`): every word form whose lemma the model knows. A form the
dictionaries lack stands for itself.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)
_WHITE_SPACES = re.compile(r"\s\s+")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_WORD = re.compile(r"\w\w+")


def char_wb_ngrams(text: str, low: int = CHAR_NGRAMS[0], high: int = CHAR_NGRAMS[1]) -> list[str]:
    """Character n-grams within words, each word padded with a space on both sides."""
    grams: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text.lower()).split():
        w = f" {word} "
        for n in range(low, high + 1):
            offset = 0
            grams.append(w[:n])
            while offset + n < len(w):
                offset += 1
                grams.append(w[offset : offset + n])
            if offset == 0:  # a word shorter than n counts once
                break
    return grams


def word_ngrams(text: str, low: int = WORD_NGRAMS[0], high: int = WORD_NGRAMS[1]) -> list[str]:
    """Words of two or more letters and their runs of ``low`` to ``high`` words."""
    tokens = _TOKEN.findall(text.lower())
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


#: The dictionaries lemmas are looked up in: English for a word in Latin letters, the first
#: of Ukrainian and Russian that knows a word in Cyrillic ones.
LEMMA_LANGUAGES = {"latin": ("en",), "cyrillic": ("uk", "ru")}
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")


def _script(word: str) -> str:
    return "cyrillic" if _CYRILLIC.search(word) else "latin"


def lemma_words(text: str, lemmas: Mapping[str, str]) -> list[str]:
    """The lemma of each word of two letters or more (``lemmas``: form to lemma; a form it
    lacks stands for itself, one it maps to ``""`` is dropped)."""
    found = (lemmas.get(t, t) for t in _TOKEN.findall(text.lower()))
    return [lemma for lemma in found if lemma]


def lemma_analyser(lemmas: Mapping[str, str]) -> Callable[[str], list[str]]:
    """:func:`lemma_words` over this table (what a vectoriser or a vocabulary calls)."""
    return partial(lemma_words, lemmas=lemmas)


def lemma_dictionaries() -> dict[str, Mapping[str, str]]:
    """simplemma's dictionaries of :data:`LEMMA_LANGUAGES` (training only: seconds to load)."""
    from simplemma.strategies.dictionaries import DefaultDictionaryFactory

    factory = DefaultDictionaryFactory()
    languages = {lang for langs in LEMMA_LANGUAGES.values() for lang in langs}
    return {lang: factory.get_dictionary(lang) for lang in sorted(languages)}


def _lookup(word: str, dictionaries: Mapping[str, Mapping[str, str]]) -> str:
    for lang in LEMMA_LANGUAGES[_script(word)]:
        lemma = dictionaries[lang].get(word)
        if lemma is not None:
            return lemma.lower()
    return word


def dictionary_lemmas(
    words: Iterable[str], dictionaries: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, str]:
    """Form to lemma for these (lower-case) words, from simplemma's dictionaries (training
    only: they take seconds to load)."""
    dictionaries = dictionaries if dictionaries is not None else lemma_dictionaries()
    return {w: _lookup(w, dictionaries) for w in set(words)}


def lemma_table(
    known: Iterable[str], dictionaries: Mapping[str, Mapping[str, str]] | None = None
) -> dict[str, str]:
    """What scoring needs of the dictionaries: every lower-case form whose lemma (as
    :func:`dictionary_lemmas` finds it) is ``known``; and ``""`` for a form that is itself
    a known term but whose lemma is not (it must not count as itself)."""
    dictionaries = dictionaries if dictionaries is not None else lemma_dictionaries()
    known = set(known)
    table: dict[str, str] = {}
    for script, languages in LEMMA_LANGUAGES.items():
        for rank, lang in enumerate(languages):
            earlier = [dictionaries[e] for e in languages[:rank]]
            for form, lemma in dictionaries[lang].items():
                lemma = lemma.lower()
                if lemma not in known and form not in known:
                    continue  # most forms: nothing the model knows
                if form in table or form != form.lower() or not _WORD.fullmatch(form):
                    continue
                if _script(form) != script or any(d.get(form) is not None for d in earlier):
                    continue  # an earlier language's lemma wins (and was seen there)
                table[form] = lemma if lemma in known else ""
    return {form: lemma for form, lemma in table.items() if lemma != form}


def table_text(table: Mapping[str, str]) -> str:
    """A lemma table as one string, ``form<TAB>lemma`` a line (compact in a cache file)."""
    return "\n".join(f"{form}\t{lemma}" for form, lemma in sorted(table.items()))


def parse_table(text: str) -> dict[str, str]:
    """The table :func:`table_text` wrote."""
    table: dict[str, str] = {}
    for line in text.split("\n"):
        if line:
            form, _, lemma = line.partition("\t")
            table[form] = lemma
    return table


ANALYSERS: dict[str, Callable[[str], list[str]]] = {
    "chars": char_wb_ngrams,
    "words": word_ngrams,
}


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """One fitted TF-IDF vectoriser, reduced to what scoring a question needs."""

    analyse: Callable[[str], list[str]]
    index: dict[str, int]
    idf: np.ndarray
    offset: int

    def features(self, text: str) -> dict[int, float]:
        """Sublinear TF-IDF, L2-normalised, by global column (as the vectoriser does)."""
        counts = Counter(t for t in self.analyse(text) if t in self.index)
        weights = {
            self.offset + self.index[t]: (1.0 + math.log(n)) * float(self.idf[self.index[t]])
            for t, n in counts.items()
        }
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {i: w / norm for i, w in weights.items()}

    def terms(self) -> list[str]:
        """The vocabulary's terms in column order (what a cache stores)."""
        ordered = [""] * len(self.index)
        for term, column in self.index.items():
            ordered[column] = term
        return ordered
