"""The intent model's features without scikit-learn: n-grams and sublinear TF-IDF.

The classifier is trained with scikit-learn's ``TfidfVectorizer`` (``char_wb`` 2 to 5 and
``word`` 1 to 2, lowercased, no stop words); a question is scored with these functions,
which cut text into the same n-grams (a test holds them to scikit-learn's own analysers on
every example), so a server that loads a cached model never imports scikit-learn (about
1.5 s of CPU at every start).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CHAR_NGRAMS = (2, 5)
WORD_NGRAMS = (1, 2)
_WHITE_SPACES = re.compile(r"\s\s+")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


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
