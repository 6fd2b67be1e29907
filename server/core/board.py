"""The question board's indexes: open questions in the clone's order, closed ones by id, and
near-duplicate candidates, each kept up to date per question instead of rebuilt per request.

With 10,000 questions a sort or a scan per Ask, per keyframe or per turn would stall the
room; here a change costs a binary search and a list insertion (a memmove in C), a lookup
of the top of the board reads its first entries, and a duplicate check compares a new
question only with those sharing one of its rarest words (prefix filtering for Jaccard: a
question y with similarity >= t to x holds at least ``ceil(t * |x|)`` of x's words, so it
holds one of any ``|x| - ceil(t * |x|) + 1`` of them; the rarest such words, by how many
open questions hold each, give the fewest candidates).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

SortKey = tuple[Any, ...]


class BoardIndex:
    """Which questions are open (in order) or closed, and who might be whose duplicate."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self._order: list[tuple[SortKey, int]] = []  # open questions, the clone's order
        self._keys: dict[int, SortKey] = {}
        self._closed: list[int] = []  # stored questions that are not open, by id
        self._closed_ids: set[int] = set()
        self._postings: dict[str, set[int]] = {}  # word -> open question ids holding it
        self.signatures: dict[int, frozenset[str]] = {}

    # ------------------------------------------------------------ updates

    def place(self, qid: int, key: SortKey | None, closed: bool, words: frozenset[str]) -> None:
        """Where question ``qid`` now belongs: open under ``key``, closed, or neither (None
        and not closed: not on the board at all, e.g. not yet stored)."""
        old = self._keys.pop(qid, None)
        if old is not None:
            del self._order[bisect_left(self._order, (old, qid))]
            self._unpost(qid)
        if qid in self._closed_ids and not closed:
            self._closed_ids.discard(qid)
            del self._closed[bisect_left(self._closed, qid)]
        if key is not None:
            self._keys[qid] = key
            insort(self._order, (key, qid))
            self._post(qid, words)
        elif closed and qid not in self._closed_ids:
            self._closed_ids.add(qid)
            insort(self._closed, qid)

    def clear(self) -> None:
        self.__init__(self.threshold)  # type: ignore[misc]

    def _post(self, qid: int, words: frozenset[str]) -> None:
        self.signatures[qid] = words
        for word in words:
            self._postings.setdefault(word, set()).add(qid)

    def _unpost(self, qid: int) -> None:
        for word in self.signatures.pop(qid, ()):
            ids = self._postings.get(word)
            if ids is not None:
                ids.discard(qid)
                if not ids:
                    del self._postings[word]

    def prefix(self, words: frozenset[str]) -> tuple[str, ...]:
        """The rarest ``n - ceil(t * n) + 1`` of ``words``: every near duplicate holds one."""
        n = len(words)
        if not n:
            return ()
        by_rarity = sorted(words, key=lambda w: (len(self._postings.get(w, ())), w))
        return tuple(by_rarity[: n - math.ceil(self.threshold * n) + 1])

    # ------------------------------------------------------------ reading

    def open_ids(self, start: int = 0, count: int | None = None) -> list[int]:
        """Open question ids in the clone's order, from ``start``."""
        stop = None if count is None else start + count
        return [qid for _, qid in self._order[start:stop]]

    def iter_open(self) -> Iterator[int]:
        return (qid for _, qid in self._order)

    @property
    def open_count(self) -> int:
        return len(self._order)

    def recent_closed(self, count: int) -> list[int]:
        return self._closed[-count:] if count else []

    def is_shown(self, qid: int) -> bool:
        return qid in self._keys or qid in self._closed_ids

    def candidates(self, words: frozenset[str]) -> list[int]:
        """Open questions that could be near duplicates of ``words``, by id."""
        found: set[int] = set()
        for word in self.prefix(words):
            found |= self._postings.get(word, set())
        return sorted(found)

    def best_match(
        self,
        words: frozenset[str],
        score: Callable[[frozenset[str], frozenset[str]], float],
        accept: Callable[[int], bool] = lambda qid: True,
    ) -> int | None:
        """The open question most similar to ``words`` at or above the threshold (the later
        one of a tie, as a scan in id order would find) among those ``accept`` lets through,
        or None."""
        best, best_score = None, self.threshold
        for qid in self.candidates(words):
            if not accept(qid):
                continue
            value = score(words, self.signatures[qid])
            if value >= best_score:
                best, best_score = qid, value
        return best

    def first_open(self, accept: Callable[[int], bool]) -> int | None:
        return next(islice((q for q in self.iter_open() if accept(q)), 1), None)
