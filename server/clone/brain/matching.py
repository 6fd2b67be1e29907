"""Keyword patterns over words: ``word``, ``prefix*``, phrases and ``a + b`` conjunctions.

Policy topics and the lexicon's concepts are written by people, often in a persona file,
so the syntax is kept tiny: each space-separated part of a keyword matches one word,
exactly, or by prefix when it ends in ``*``; a lone ``*`` matches any one word; parts
joined by `` + `` must all occur somewhere in the text, in any order
(``clos* + office*``). Matching works on normalised words, so it is independent of case,
apostrophe style and punctuation between the words.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from townhall.server.clone.brain.text import words


@dataclass(frozen=True, slots=True)
class _Part:
    text: str  # empty: any word
    prefix: bool

    def matches(self, word: str) -> bool:
        return word.startswith(self.text) if self.prefix else word == self.text


def _phrase(source: str) -> tuple[_Part, ...]:
    parts: list[_Part] = []
    for raw in source.split():
        if raw == "*":
            parts.append(_Part("", True))
            continue
        prefix = raw.endswith("*")
        body = words(raw.rstrip("*"))
        if not body:
            continue
        parts.extend(_Part(w, False) for w in body[:-1])
        parts.append(_Part(body[-1], prefix))
    return tuple(parts)


def _find(parts: tuple[_Part, ...], seq: Sequence[str], start: int) -> int:
    n = len(parts)
    first = parts[0]
    for i in range(start, len(seq) - n + 1):
        if first.matches(seq[i]) and all(p.matches(seq[i + k]) for k, p in enumerate(parts[1:], 1)):
            return i
    return -1


@dataclass(frozen=True, slots=True)
class Keyword:
    """One compiled keyword: phrases (consecutive word parts) that must all occur."""

    source: str
    phrases: tuple[tuple[_Part, ...], ...]

    @classmethod
    def parse(cls, source: str) -> Keyword:
        phrases = tuple(p for p in (_phrase(c) for c in source.split(" + ")) if p)
        if not phrases or any(all(not part.text for part in p) for p in phrases):
            raise ValueError(f"keyword {source!r} has nothing to match")
        return cls(source, phrases)

    @property
    def length(self) -> int:
        """Words covered by the first phrase (what :meth:`find` positions refer to)."""
        return len(self.phrases[0])

    def matches_at(self, seq: Sequence[str], i: int) -> bool:
        """Whether the first phrase matches at ``i`` (and any other phrases anywhere)."""
        first = self.phrases[0]
        if i + len(first) > len(seq) or not all(p.matches(seq[i + k]) for k, p in enumerate(first)):
            return False
        return all(_find(p, seq, 0) >= 0 for p in self.phrases[1:])

    def find(self, seq: Sequence[str], start: int = 0) -> int:
        """Index of the first phrase's first match at or after ``start``, or -1.

        For a conjunction the other phrases may be anywhere in ``seq``.
        """
        if any(_find(p, seq, 0) < 0 for p in self.phrases[1:]):
            return -1
        return _find(self.phrases[0], seq, start)


class KeywordSet:
    """Named groups of keywords; ``matches(words)`` says which groups occur.

    Keywords are indexed by their first word (exact, or by prefix) so a text is scanned
    once, not once per keyword: the policy and the lexicon run on every question.
    """

    def __init__(self, groups: Iterable[tuple[str, Iterable[str]]] = ()) -> None:
        self._groups: dict[str, list[Keyword]] = {}
        self._exact: dict[str, list[tuple[str, Keyword]]] = {}
        self._prefix: dict[str, list[tuple[str, Keyword]]] = {}
        self._any_first: list[tuple[str, Keyword]] = []
        self._longest_prefix = 0
        for name, keywords in groups:
            self.add(name, keywords)

    def add(self, name: str, keywords: Iterable[str]) -> None:
        group = self._groups.setdefault(name, [])
        for source in keywords:
            kw = Keyword.parse(source)
            group.append(kw)
            first = kw.phrases[0][0]
            if not first.text:
                self._any_first.append((name, kw))
            elif first.prefix:
                self._prefix.setdefault(first.text, []).append((name, kw))
                self._longest_prefix = max(self._longest_prefix, len(first.text))
            else:
                self._exact.setdefault(first.text, []).append((name, kw))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._groups)

    def _occurrences(self, seq: Sequence[str]) -> Iterator[tuple[str, Keyword, int]]:
        for i, word in enumerate(seq):
            candidates = list(self._exact.get(word, ()))
            for n in range(1, min(len(word), self._longest_prefix) + 1):
                candidates.extend(self._prefix.get(word[:n], ()))
            candidates.extend(self._any_first)
            for name, kw in candidates:
                if kw.matches_at(seq, i):
                    yield name, kw, i

    def matches(self, seq: Sequence[str]) -> list[tuple[str, str]]:
        """``(group, keyword)`` for every group with a keyword in ``seq``, in group order."""
        found: dict[str, str] = {}
        for name, kw, _ in self._occurrences(seq):
            found.setdefault(name, kw.source)
        return [(name, found[name]) for name in self._groups if name in found]

    def spans(self, seq: Sequence[str]) -> list[tuple[str, int, int]]:
        """``(group, start, end)`` for every occurrence of every keyword in ``seq``."""
        return [(name, i, i + kw.length) for name, kw, i in self._occurrences(seq)]

    def first(self, seq: Sequence[str]) -> tuple[str, str] | None:
        """The first group (in the order groups were added) with a keyword in ``seq``."""
        hits = self.matches(seq)
        return hits[0] if hits else None


def parse_table(table: str) -> dict[str, tuple[str, ...]]:
    """``name: kw, kw`` lines (indented lines continue; a name may repeat) to a dict."""
    concepts: dict[str, list[str]] = {}
    name = ""
    for line in table.splitlines():
        if not line.strip():
            continue
        if line[0].isspace():
            if not name:
                raise ValueError(f"continuation line without a concept: {line.strip()!r}")
            rest = line
        else:
            name, sep, rest = line.partition(":")
            name = name.strip()
            if not sep or not name:
                raise ValueError(f"expected 'name: keywords', got {line!r}")
        concepts.setdefault(name, []).extend(k.strip() for k in rest.split(",") if k.strip())
    return {n: tuple(dict.fromkeys(kws)) for n, kws in concepts.items()}
