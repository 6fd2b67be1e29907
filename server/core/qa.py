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
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.limits import MAX_NAME_CHARS, MAX_QUESTION_CHARS, clip
from townhall.protocol.messages import Mode, QuestionInfo, QuestionState
from townhall.server.core.board import BoardIndex
from townhall.server.core.textnorm import clean
from townhall.server.core.transitions import move
from townhall.server.store.records import QuestionSaved

MIN_QUESTION_CHARS = 3
BOARD_TOP = 50  # open questions at the top of the board, in keyframes
BOARD_RECENT = 50  # closed questions kept on the board in keyframes
MAX_QUESTIONS = 10_000  # a room's questions at most (qa.max_questions)

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
    stored: bool = True  # False while its row is not committed: on nobody's board
    # Shown to everyone once approved; before that only to moderators and its asker, so
    # text nobody has approved is never broadcast (moderated mode).
    public: bool = False
    _words: tuple[str, frozenset[str]] = field(default=("", frozenset()), repr=False, compare=False)

    def words(self) -> frozenset[str]:
        """Its content words (for near duplicates), computed once per text."""
        if self._words[0] != self.text or not self._words[1]:
            self._words = (self.text, _signature(self.text))
        return self._words[1]

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

    def _put_back(self, row: QuestionSaved) -> None:
        """Undo a change the store refused: the fields as ``row`` had them."""
        self.text, self.state, self.pinned = row.text, row.state, row.pinned
        self.rank, self.merged_into, self.answer_id = row.rank, row.merged_into, row.answer_id
        if row.state == "submitted":  # an approval undone: never approved after all
            self.public = False


_WORD = re.compile(r"\w+", re.UNICODE)
_STOP = frozenset(
    "a an the is are was were be to of in on for and or do does did we you i it our "
    "what when why how will would can could should there this that with about".split()
)


def normalise(text: str) -> str:
    """What is stored and shown: invisible characters removed (not made spaces, so the
    clone's brain sees "bonuses" where someone hid a zero-width space in it), white space
    collapsed. The same normaliser as the brain's (:mod:`.textnorm`)."""
    return clean(text)


def _signature(text: str) -> frozenset[str]:
    words = [w.lower() for w in _WORD.findall(text)]
    return frozenset(w for w in words if w not in _STOP) or frozenset(words)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of content words: 1.0 for the same question reworded trivially."""
    return jaccard(_signature(a), _signature(b))


def jaccard(sa: frozenset[str], sb: frozenset[str]) -> float:
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
    max_questions: int = MAX_QUESTIONS

    def __post_init__(self) -> None:
        self.index = BoardIndex(self.merge_threshold)  # the whole queue (the staff's view)
        self.public = BoardIndex(self.merge_threshold)  # everyone's board: approved ones
        self.pending = BoardIndex(self.merge_threshold)  # never approved: staff and asker
        self._hidden_of: dict[str, set[int]] = {}  # asker -> their questions not approved
        self.touch(*self.questions.values())

    def touch(self, *questions: Question) -> None:
        """Re-place changed questions in the board's indexes (every change goes through here)."""
        none: frozenset[str] = frozenset()
        for q in questions:
            shown = q.stored and self.questions.get(q.id) is q
            open_ = shown and q.state in OPEN_STATES and not q.merged_into
            key = (*self._sort_key(q), q.id) if open_ else None
            closed = shown and not open_
            self.index.place(q.id, key, closed, q.words() if open_ else none)
            public, hidden = shown and q.public, shown and not q.public
            self.public.place(q.id, key if public else None, closed and public, none)
            self.pending.place(q.id, key if hidden else None, closed and hidden, none)
            mine = self._hidden_of.get(q.asker_id)
            if hidden:
                self._hidden_of.setdefault(q.asker_id, set()).add(q.id)
            elif mine is not None:
                mine.discard(q.id)
                if not mine:
                    del self._hidden_of[q.asker_id]

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
        pending: bool = False,
    ) -> tuple[Question, bool]:
        """Add a question, or merge it into a near duplicate; returns (question, merged).

        A ``pending`` new question waits for ``stored()`` before anyone sees it, votes on it
        or moderates it (the room stores first); ``drop()`` if the store refuses it."""
        text = _checked(text)
        twin = self.find_duplicate(text, asker_id)
        if twin is not None:
            twin.voters.add(asker_id)
            self.touch(twin)
            return twin, True
        if len(self.questions) >= self.max_questions:
            raise Refused(
                ErrorCode.BOARD_FULL,
                f"this room takes at most {self.max_questions} questions, and has them all; "
                "vote for one on the board instead",
            )
        # The id is taken for good: a question the store refuses is dropped, never renumbered.
        question = Question(self.next_id, text, language, asker_id, asker_name, asker_slot, now)
        question.stored = not pending
        question.voters.add(asker_id)
        if self.mode == "auto":
            question.move("approve")
        self.questions[question.id] = question
        self.next_id += 1
        self.touch(question)
        return question, False

    def find_duplicate(self, text: str, asker_id: str = "") -> Question | None:
        """The open question this text nearly repeats (Jaccard of content words), among
        those the asker can see (approved ones and their own), if any."""
        words = _signature(text)
        if not words:
            return None
        best = self.index.best_match(
            words, jaccard, lambda qid: self.questions[qid].shown_to(asker_id)
        )
        return self.questions[best] if best is not None else None

    def has_voted(self, question_id: int, voter: str) -> bool:
        q = self.questions.get(question_id)
        if q is not None and q.merged_into:
            q = self.questions.get(q.merged_into)
        return q is not None and voter in q.voters

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
        self.touch(q)
        return q

    # ------------------------------------------------------------ moderation

    def approve(self, question_id: int) -> list[int]:
        q = self._open(question_id)
        q.move("approve")
        self.touch(q)
        return [q.id]

    def reject(self, question_id: int) -> list[int]:
        q = self._open(question_id)
        q.move("reject")
        self.touch(q)
        return [q.id]

    def edit(self, question_id: int, text: str) -> list[int]:
        q = self._open(question_id)
        q.text = _checked(text)
        self.touch(q)
        return [q.id]

    def merge(self, question_id: int, into: int) -> list[int]:
        """Fold a question into another: its voters count for the other."""
        if question_id == into:
            raise Refused(ErrorCode.BAD_MESSAGE, "cannot merge a question into itself")
        src, dst = self._open(question_id), self._open(into)
        src.move("merge")
        dst.voters |= src.voters
        src.merged_into = dst.id
        self.touch(src, dst)
        return [src.id, dst.id]

    def pin(self, question_id: int, pinned: bool = True) -> list[int]:
        q = self._open(question_id)
        q.pinned = pinned
        self.touch(q)
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
                self.touch(item)
        return changed

    # ------------------------------------------------------------ answering

    def ordered(self) -> list[Question]:
        """Open questions in the order the clone would take them."""
        candidates = [
            q
            for q in self.questions.values()
            if q.stored and q.state in OPEN_STATES and not q.merged_into
        ]
        return sorted(candidates, key=self._sort_key)

    def _sort_key(self, q: Question) -> tuple[int, int, int, float]:
        placed = q.rank if q.rank else 1 << 30
        if self.mode == "auto":
            return (0 if q.pinned else 1, -q.votes, placed, q.created)
        return (0 if q.pinned else 1, placed, -q.votes, q.created)

    def next_question(self) -> Question | None:
        """The approved question to answer next, if any (from the index: no sort)."""
        qid = self.index.first_open(lambda i: self.questions[i].state == "approved")
        return self.questions[qid] if qid is not None else None

    def take(self, question_id: int, answer_id: int) -> Question:
        """The clone starts answering."""
        q = self.get(question_id)
        q.move("take")
        q.answer_id = answer_id
        self.touch(q)
        return q

    def settle(self, question_id: int, event: QuestionEvent) -> Question:
        """An answer ended: answered, escalated, or skipped by a moderator."""
        q = self.get(question_id)
        q.move(event)
        self.touch(q)
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
        for index in (self.index, self.public, self.pending):
            index.clear()  # the order's keys depend on the mode
        self.touch(*self.questions.values())
        return changed

    def restore(self, questions: Iterable[Question], last_id: int = 0) -> None:
        """Load persisted questions (after a restart); new ids continue after ``last_id``
        (the highest id any stored row mentions) so no id is ever given twice. A question
        still ``answering`` was cut short: see ``close_interrupted``."""
        self.next_id = max(self.next_id, last_id + 1)
        for q in questions:
            q.stored = True
            # Approved at some point: still open, taken, or skipped after it was taken.
            q.public = q.state in ("approved", "answering", "answered", "escalated") or bool(
                q.state == "rejected" and q.answer_id and not q.merged_into
            )
            self.questions[q.id] = q
            self.next_id = max(self.next_id, q.id + 1)
            self.touch(q)

    def close_interrupted(self, escalate: bool = False) -> list[Question]:
        """Questions left ``answering`` by a crash: asked again (or escalated); returns them."""
        cut = [q for q in self.questions.values() if q.state == "answering"]
        for q in cut:
            q.move("escalate" if escalate else "requeue")
        self.touch(*cut)
        return cut

    def stored(self, question_ids: Iterable[int]) -> None:
        """These questions' rows are committed: they may be shown, voted on, moderated."""
        for qid in question_ids:
            q = self.questions.get(qid)
            if q is not None:
                q.stored = True
                self.touch(q)

    def drop(self, question_id: int) -> None:
        """A new question the store refused: gone, and its id is not given again."""
        q = self.questions.get(question_id)
        if q is not None and not q.stored:
            del self.questions[question_id]
            self.touch(q)

    def set_voted(self, question_id: int, voter: str, voted: bool) -> None:
        """Put a vote back as it was (the store refused the change)."""
        q = self.questions.get(question_id)
        if q is not None:
            if voted:
                q.voters.add(voter)
            else:
                q.voters.discard(voter)
            self.touch(q)

    def put_back(self, row: QuestionSaved) -> None:
        """Undo a change the store refused: the question's fields as ``row`` had them."""
        q = self.questions.get(row.id)
        if q is not None:
            q._put_back(row)
            self.touch(q)

    def board(
        self, top: int = BOARD_TOP, recent: int = BOARD_RECENT, also: Iterable[int] = ()
    ) -> list[QuestionInfo]:
        """Everyone's top of the board: the first ``top`` approved open questions in order,
        then the ``recent`` most recent closed ones that were public (and ``also``, e.g. the
        one being answered); a bounded size however many questions there are."""
        ids = self.public.open_ids(0, top) + self.public.recent_closed(recent)
        ids += [i for i in also if self.public.is_shown(i) and i not in ids]
        return [self.questions[i].info() for i in ids]

    def page(self, offset: int, count: int, staff: bool = False) -> list[QuestionInfo]:
        """Open questions ``offset`` .. ``offset + count`` in the board's order: everyone's
        board, or for the ``staff`` the whole queue (questions waiting for approval too)."""
        index = self.index if staff else self.public
        return [self.questions[i].info() for i in index.open_ids(offset, count)]

    def open_count(self, staff: bool = False) -> int:
        return (self.index if staff else self.public).open_count

    def shown(self, question_ids: Iterable[int], staff: bool = False) -> list[QuestionInfo]:
        """These questions as the board shows them (those on everyone's board, or on the
        staff's), by id."""
        index = self.index if staff else self.public
        found = (self.questions.get(i) for i in sorted(set(question_ids)))
        return [q.info() for q in found if q is not None and index.is_shown(q.id)]

    def hidden(self, user_id: str | None = None) -> list[QuestionInfo]:
        """Questions not approved (never broadcast): for the staff (``None``) the first
        ``BOARD_TOP`` waiting and the recently closed ones; for an asker all of theirs
        still open and their recently closed ones."""
        if user_id is None:
            ids = self.pending.open_ids(0, BOARD_TOP) + self.pending.recent_closed(BOARD_RECENT)
            mine = [self.questions[i] for i in ids]
        else:
            mine = [self.questions[i] for i in sorted(self._hidden_of.get(user_id, ()))]
        closed = [q for q in mine if q.state not in OPEN_STATES or q.merged_into]
        recent = {q.id for q in closed[-BOARD_RECENT:]}
        return [
            q.info()
            for q in mine
            if q.id in recent or (q.state in OPEN_STATES and not q.merged_into)
        ]

    # ------------------------------------------------------------ internals

    def get(self, question_id: int) -> Question:
        """A question on the board: one not yet stored is not there for anyone."""
        q = self.questions.get(question_id)
        if q is None or not q.stored:
            raise Refused(ErrorCode.BAD_MESSAGE, f"no question {question_id}")
        return q

    def _open(self, question_id: int) -> Question:
        q = self.get(question_id)
        if q.state not in OPEN_STATES or q.merged_into:
            raise Refused(ErrorCode.NOT_ALLOWED, f"question {question_id} is {q.state}")
        return q
