"""The Q&A queue: questions, votes, moderation and what the clone answers next.

Pure logic. Every change is returned as a list of changed question ids so the
room can persist them (before acknowledging) and show them. A question moves only
along ``TRANSITIONS`` (a move not in it raises IllegalTransition):

    submitted -> approved -> answering -> answered
         \\-> rejected      \\-> escalated (the clone handed it to the human leader)
                            \\-> rejected (a moderator skipped the draft)

A room runs ``auto`` (every question is approved on submit; the top-voted one is
next) or ``moderated`` (a moderator approves; pinned first, then the moderator's
order, then votes).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.limits import MAX_NAME_CHARS, MAX_QUESTION_CHARS, clip
from townhall.protocol.messages import Mode, QuestionInfo, QuestionState
from townhall.server.core.transitions import move
from townhall.server.store.records import QuestionSaved

MIN_QUESTION_CHARS = 3
BOARD_RECENT = 50  # closed questions kept on the board in keyframes

QuestionEvent = Literal[
    "approve", "reject", "merge", "take", "answer", "escalate", "skip", "requeue"
]

TRANSITIONS: dict[QuestionState, dict[QuestionEvent, QuestionState]] = {
    "submitted": {"approve": "approved", "reject": "rejected", "merge": "rejected"},
    "approved": {
        "approve": "approved",
        "reject": "rejected",
        "merge": "rejected",
        "take": "answering",
    },
    "answering": {
        "answer": "answered",
        "escalate": "escalated",
        "skip": "rejected",
        "requeue": "approved",  # cut short by a restart: asked again
    },
    "answered": {},
    "rejected": {},
    "escalated": {},
}
OPEN_STATES: frozenset[QuestionState] = frozenset({"submitted", "approved"})


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
    state: QuestionState = "submitted"
    voters: set[str] = field(default_factory=set)
    pinned: bool = False
    rank: int = 0  # moderator's order; lower comes first; 0 = not placed
    merged_into: int = 0
    answer_id: int = 0
    # Shown to everyone once approved; before that only to moderators and its asker, so
    # text nobody has approved is never broadcast (moderated mode).
    public: bool = False

    @property
    def votes(self) -> int:
        return len(self.voters)

    def info(self) -> QuestionInfo:
        """The question as the board shows it."""
        return QuestionInfo(
            self.id,
            self.text,
            self.language,
            self.state,
            self.votes,
            self.asker_slot,
            clip(self.asker_name, MAX_NAME_CHARS),
            self.pinned,
            self.rank,
            self.merged_into,
            self.answer_id,
        )

    def record(self) -> QuestionSaved:
        """The question's row for the store."""
        return QuestionSaved(
            self.id, self.text, self.language, self.state, self.asker_id, self.asker_name,
            self.asker_slot, self.created, self.pinned, self.rank, self.merged_into,
            self.answer_id,
        )  # fmt: skip

    def move(self, event: QuestionEvent) -> None:
        self.state = move(TRANSITIONS, f"question {self.id}", self.state, event)
        if self.state == "approved":
            self.public = True

    def shown_to(self, user_id: str) -> bool:
        """Whether someone who is not staff may see this question."""
        return self.public or user_id == self.asker_id


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


def _checked(text: str) -> str:
    text = normalise(text)
    if not MIN_QUESTION_CHARS <= len(text) <= MAX_QUESTION_CHARS:
        raise Refused(
            ErrorCode.BAD_MESSAGE,
            f"a question needs {MIN_QUESTION_CHARS}..{MAX_QUESTION_CHARS} characters",
        )
    return text


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
        now: float,
        asker_slot: int = -1,
        language: str = "",
    ) -> tuple[Question, bool]:
        """Add a question, or merge it into a near duplicate; returns (question, merged)."""
        text = _checked(text)
        twin = self.find_duplicate(text, asker_id)
        if twin is not None:
            twin.voters.add(asker_id)
            return twin, True
        question = Question(self.next_id, text, language, asker_id, asker_name, asker_slot, now)
        question.voters.add(asker_id)
        if self.mode == "auto":
            question.move("approve")
        self.questions[question.id] = question
        self.next_id += 1
        return question, False

    def find_duplicate(self, text: str, asker_id: str = "") -> Question | None:
        """An open question nearly the same, among those the asker can see."""
        best, best_score = None, self.merge_threshold
        for q in self.questions.values():
            if q.state in OPEN_STATES and not q.merged_into and q.shown_to(asker_id):
                score = similarity(text, q.text)
                if score >= best_score:
                    best, best_score = q, score
        return best

    def vote(self, question_id: int, voter: str, up: bool = True) -> Question:
        q = self.get(question_id)
        if q.merged_into:
            q = self.get(q.merged_into)
        if q.state not in OPEN_STATES:
            raise Refused(ErrorCode.NOT_ALLOWED, f"question {q.id} is {q.state}; votes are closed")
        if not q.shown_to(voter):
            raise Refused(ErrorCode.NOT_ALLOWED, f"question {q.id} is waiting for approval")
        if up:
            q.voters.add(voter)
        else:
            q.voters.discard(voter)
        return q

    # ------------------------------------------------------------ moderation

    def approve(self, question_id: int) -> list[int]:
        q = self._open(question_id)
        q.move("approve")
        return [q.id]

    def reject(self, question_id: int) -> list[int]:
        q = self._open(question_id)
        q.move("reject")
        return [q.id]

    def edit(self, question_id: int, text: str) -> list[int]:
        q = self._open(question_id)
        q.text = _checked(text)
        return [q.id]

    def merge(self, question_id: int, into: int) -> list[int]:
        """Fold a question into another: its voters count for the other."""
        if question_id == into:
            raise Refused(ErrorCode.BAD_MESSAGE, "cannot merge a question into itself")
        src, dst = self._open(question_id), self._open(into)
        src.move("merge")
        dst.voters |= src.voters
        src.merged_into = dst.id
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

    def take(self, question_id: int, answer_id: int) -> Question:
        """The clone starts answering."""
        q = self.get(question_id)
        q.move("take")
        q.answer_id = answer_id
        return q

    def settle(self, question_id: int, event: QuestionEvent) -> Question:
        """An answer ended: answered, escalated, or skipped by a moderator."""
        q = self.get(question_id)
        q.move(event)
        return q

    def set_mode(self, mode: Mode) -> list[int]:
        """Switching to auto approves what is waiting, so nothing is stranded."""
        self.mode = mode
        changed = []
        if mode == "auto":
            for q in self.questions.values():
                if q.state == "submitted" and not q.merged_into:
                    q.move("approve")
                    changed.append(q.id)
        return changed

    def restore(self, questions: Iterable[Question]) -> None:
        """Load persisted questions (after a restart); an answer cut short is asked again."""
        for q in questions:
            # Approved at some point: still open, taken, or skipped after it was taken.
            q.public = q.state in ("approved", "answering", "answered", "escalated") or bool(
                q.state == "rejected" and q.answer_id and not q.merged_into
            )
            if q.state == "answering":
                q.move("requeue")
            self.questions[q.id] = q
            self.next_id = max(self.next_id, q.id + 1)

    def board(self) -> list[QuestionInfo]:
        """Everyone's board: approved open questions in order, then the most recent closed ones."""
        open_ = [q for q in self.ordered() if q.public]
        open_ids = {q.id for q in open_}
        closed = [q for q in self.questions.values() if q.public and q.id not in open_ids]
        closed = sorted(closed, key=lambda q: q.id)[-BOARD_RECENT:]
        return [q.info() for q in open_ + closed]

    def hidden(self, user_id: str | None = None) -> list[Question]:
        """Questions never approved, open or lately closed: all (``None``, staff) or an asker's."""
        mine = [
            q
            for q in self.questions.values()
            if not q.public and (user_id is None or q.asker_id == user_id)
        ]
        closed = [q for q in mine if q.state not in OPEN_STATES or q.merged_into]
        recent = {q.id for q in sorted(closed, key=lambda q: q.id)[-BOARD_RECENT:]}
        return [q for q in mine if q.id in recent or (q.state in OPEN_STATES and not q.merged_into)]

    # ------------------------------------------------------------ internals

    def get(self, question_id: int) -> Question:
        q = self.questions.get(question_id)
        if q is None:
            raise Refused(ErrorCode.BAD_MESSAGE, f"no question {question_id}")
        return q

    def _open(self, question_id: int) -> Question:
        q = self.get(question_id)
        if q.state not in OPEN_STATES or q.merged_into:
            raise Refused(ErrorCode.NOT_ALLOWED, f"question {question_id} is {q.state}")
        return q
