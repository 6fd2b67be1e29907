"""Keyword patterns over words: ``word``, ``prefix*`` and multi-word phrases.

Policy topics and the lexicon's concepts are written by people, often in a persona file,
so the syntax is kept tiny: each space-separated part of a keyword matches one word,
exactly, or by prefix when it ends in ``*``. Matching works on normalised words, so it is
independent of case, apostrophe style and punctuation between the words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .text import words


@dataclass(frozen=True, slots=True)
class _Part:
    text: str
    prefix: bool

    def matches(self, word: str) -> bool:
        return word.startswith(self.text) if self.prefix else word == self.text


@dataclass(frozen=True, slots=True)
class Keyword:
    """One compiled keyword: a sequence of word parts that must match consecutive words."""

    source: str
    parts: tuple[_Part, ...]

    @classmethod
    def parse(cls, source: str) -> Keyword:
        parts: list[_Part] = []
        for raw in source.split():
            prefix = raw.endswith("*")
            body = words(raw.rstrip("*"))
            if not body:
                continue
            parts.extend(_Part(w, False) for w in body[:-1])
            parts.append(_Part(body[-1], prefix))
        if not parts:
            raise ValueError(f"empty keyword {source!r}")
        return cls(source, tuple(parts))

    def find(self, seq: Sequence[str], start: int = 0) -> int:
        """Index of the first match in ``seq`` at or after ``start``, or -1."""
        n = len(self.parts)
        first = self.parts[0]
        for i in range(start, len(seq) - n + 1):
            if first.matches(seq[i]) and all(
                p.matches(seq[i + k]) for k, p in enumerate(self.parts[1:], 1)
            ):
                return i
        return -1


class KeywordSet:
    """Named groups of keywords; ``matches(words)`` says which groups occur."""

    def __init__(self, groups: Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        self._groups: dict[str, list[Keyword]] = {}
        for name, keywords in groups:
            self.add(name, keywords)

    def add(self, name: str, keywords: Iterable[str]) -> None:
        self._groups.setdefault(name, []).extend(Keyword.parse(k) for k in keywords)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._groups)

    def matches(self, seq: Sequence[str]) -> list[tuple[str, str]]:
        """``(group, keyword)`` for every group with a keyword found in ``seq``."""
        found: list[tuple[str, str]] = []
        for name, keywords in self._groups.items():
            for kw in keywords:
                if kw.find(seq) >= 0:
                    found.append((name, kw.source))
                    break
        return found

    def spans(self, seq: Sequence[str]) -> list[tuple[str, int, int]]:
        """``(group, start, end)`` for every occurrence of every keyword in ``seq``."""
        found: list[tuple[str, int, int]] = []
        for name, keywords in self._groups.items():
            for kw in keywords:
                i = kw.find(seq)
                while i >= 0:
                    found.append((name, i, i + len(kw.parts)))
                    i = kw.find(seq, i + 1)
        return found

    def first(self, seq: Sequence[str]) -> tuple[str, str] | None:
        hits = self.matches(seq)
        return hits[0] if hits else None
