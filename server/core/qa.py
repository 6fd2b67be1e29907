"""The Q&A queue: questions, votes, moderation and what the clone answers next.

Pure logic. Every change is returned as a list of changed question ids so the
shell can persist them (before acknowledging) and broadcast them. States:

    submitted -> approved -> answering -> answered
         \\-> rejected      \\-> escalated (the clone handed it to the human leader)

A room runs ``auto`` (every question is approved on submit; the top-voted one is
next) or ``moderated`` (a moderator approves; pinned first, then the moderator's
order, then votes).
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

State = Literal["submitted", "approved", "answering", "answered", "rejected", "escalated"]
Mode = Literal["auto", "moderated"]
OPEN_STATES: frozenset[str] = frozenset({"submitted", "approved"})
MAX_QUESTION_CHARS = 500
MIN_QUESTION_CHARS = 3


class QaError(ValueError):
    """A Q&A request that cannot be done; ``code`` names the ErrorCode to send."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass
class Question:
    """One question on the board."""

    id: int
    text: str
    language: str
    asker_id: str
    asker_name: str
    asker_slot: int
    created: float
    state: State = "submitted"
    voters: set[str] = field(default_factory=set)
    pinned: bool = False
    rank: int = 0  # moderator's order; lower comes first; 0 = not placed
    merged_into: int = 0
    answer_id: int = 0

    @property
    def votes(self) -> int:
        return len(self.voters)


_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an the is are was were be to of in on for and or do does did we you i it our "
    "what when why how will would can could should there this that with about".split()
)


def normalise(text: str) -> str:
    """Collapse whitespace and control characters; what is stored and shown."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return " ".join(text.split())


def _signature(text: str) -> frozenset[str]:
    words = [w.lower() for w in _WORD.findall(text)]
    return frozenset(w for w in words if w not in _STOP) or frozenset(words)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of content words: 1.0 for the same question reworded trivially."""
    sa, sb = _signature(a), _signature(b)
    if not sa or not sb:
        return 0.0
    return len(sa & sb) / len(sa | sb)


@dataclass
class QaQueue:
    """Questions by id, votes, ordering and moderation; returns ids it changed."""

    mode: Mode = "auto"
    review: bool = False
    merge_threshold: float = 0.75
    questions: dict[int, Question] = field(default_factory=dict)
    next_id: int = 1

    # ------------------------------------------------------------ submitting and voting

    def submit(
        self,
        text: str,
        *,
        asker_id: str,
        asker_name: str,
        asker_slot: int = -1,
        language: str = "",
        now: float | None = None,
    ) -> tuple[Question, bool]:
        """Add a question, or merge it into a near duplicate; returns (question, merged)."""
        text = normalise(text)
        if len(text) < MIN_QUESTION_CHARS:
            raise QaError(
                "BAD_MESSAGE", f"a question needs at least {MIN_QUESTION_CHARS} characters"
            )
        if len(text) > MAX_QUESTION_CHARS:
            raise QaError(
                "BAD_MESSAGE", f"a question may have at most {MAX_QUESTION_CHARS} characters"
            )
        twin = self.find_duplicate(text)
        if twin is not None:
            twin.voters.add(asker_id)
            return twin, True
        question = Question(
            self.next_id,
            text,
            language,
            asker_id,
            asker_name,
            asker_slot,
            time.time() if now is None else now,
        )
        question.voters.add(asker_id)
        if self.mode == "auto":
            question.state = "approved"
        self.questions[question.id] = question
        self.next_id += 1
        return question, False

    def find_duplicate(self, text: str) -> Question | None:
        best, best_score = None, self.merge_threshold
        for q in self.questions.values():
            if q.state in OPEN_STATES and not q.merged_into:
                score = similarity(text, q.text)
                if score >= best_score:
                    best, best_score = q, score
        return best

    def vote(self, question_id: int, voter: str, up: bool = True) -> Question:
        q = self._get(question_id)
        if q.merged_into:
            q = self._get(q.merged_into)
        if q.state not in OPEN_STATES:
            raise QaError("NOT_ALLOWED", f"question {q.id} is {q.state}; votes are closed")
        if up:
            q.voters.add(voter)
        else:
            q.voters.discard(voter)
        return q

    # ------------------------------------------------------------ moderation

    def approve(self, question_id: int) -> list[int]:
        q = self._open(question_id)
        q.state = "approved"
        return [q.id]

    def reject(self, question_id: int) -> list[int]:
        q = self._open(question_id)
        q.state = "rejected"
        return [q.id]

    def edit(self, question_id: int, text: str) -> list[int]:
        q = self._open(question_id)
        text = normalise(text)
        if not MIN_QUESTION_CHARS <= len(text) <= MAX_QUESTION_CHARS:
            raise QaError(
                "BAD_MESSAGE",
                f"edited text must be {MIN_QUESTION_CHARS}..{MAX_QUESTION_CHARS} characters",
            )
        q.text = text
        return [q.id]

    def merge(self, question_id: int, into: int) -> list[int]:
        """Fold a question into another: its voters count for the other."""
        if question_id == into:
            raise QaError("BAD_MESSAGE", "cannot merge a question into itself")
        src, dst = self._open(question_id), self._open(into)
        dst.voters |= src.voters
        src.merged_into = dst.id
        src.state = "rejected"
        return [src.id, dst.id]

    def pin(self, question_id: int, pinned: bool = True) -> list[int]:
        q = self._open(question_id)
        q.pinned = pinned
        return [q.id]

    def move(self, question_id: int, position: int) -> list[int]:
        """Put a question at ``position`` (1-based) of the moderator's order."""
        q = self._open(question_id)
        ordered = [x for x in self.ordered() if x.id != q.id]
        position = max(1, min(position, len(ordered) + 1))
        ordered.insert(position - 1, q)
        changed = []
        for rank, item in enumerate(ordered, 1):
            if item.rank != rank:
                item.rank = rank
                changed.append(item.id)
        return changed

    # ------------------------------------------------------------ answering

    def ordered(self) -> list[Question]:
        """Open questions in the order the clone would take them."""
        candidates = [
            q for q in self.questions.values() if q.state in OPEN_STATES and not q.merged_into
        ]
        return sorted(candidates, key=self._sort_key)

    def _sort_key(self, q: Question) -> tuple[int, int, int, float]:
        placed = q.rank if q.rank else 1 << 30
        if self.mode == "auto":
            return (0 if q.pinned else 1, -q.votes, placed, q.created)
        return (0 if q.pinned else 1, placed, -q.votes, q.created)

    def next_question(self) -> Question | None:
        """The approved question to answer next, if any."""
        for q in self.ordered():
            if q.state == "approved":
                return q
        return None

    def set_state(self, question_id: int, state: State, answer_id: int = 0) -> list[int]:
        q = self._get(question_id)
        q.state = state
        if answer_id:
            q.answer_id = answer_id
        return [q.id]

    def set_mode(self, mode: Mode) -> list[int]:
        """Switching to auto approves what is waiting, so nothing is stranded."""
        self.mode = mode
        changed = []
        if mode == "auto":
            for q in self.questions.values():
                if q.state == "submitted" and not q.merged_into:
                    q.state = "approved"
                    changed.append(q.id)
        return changed

    def restore(self, questions: Iterable[Question]) -> None:
        """Load persisted questions (after a restart); an answer cut short is asked again."""
        for q in questions:
            if q.state == "answering":
                q.state = "approved"
            self.questions[q.id] = q
            self.next_id = max(self.next_id, q.id + 1)

    # ------------------------------------------------------------ internals

    def _get(self, question_id: int) -> Question:
        q = self.questions.get(question_id)
        if q is None:
            raise QaError("BAD_MESSAGE", f"no question {question_id}")
        return q

    def _open(self, question_id: int) -> Question:
        q = self._get(question_id)
        if q.state not in OPEN_STATES or q.merged_into:
            raise QaError("NOT_ALLOWED", f"question {question_id} is {q.state}")
        return q
