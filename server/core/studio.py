"""What /studio works on, as the room keeps it: statements, the inbox, the clone's answers,
the leader's turns waiting for the stage, follow-ups waiting for their askers, the audit.

Pure state; the handlers (``core.handlers.studio``) change it and the shell stores it.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field

from townhall.protocol.limits import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, MAX_SOURCES, clip, first
from townhall.protocol.messages import AnswerInfo, AuditEntry, StatementInfo
from townhall.server.core.inbox import Inbox
from townhall.server.core.statements import StatementBook
from townhall.server.store.records import ActionRecorded, AnswerRecorded, StatementVersion

AUDIT_KEPT = 2000  # actions /studio can show without reading the store


@dataclass(frozen=True, slots=True)
class LeaderTurn:
    """The leader's words waiting to be spoken on stage."""

    answer_id: int
    question: int
    text: str
    language: str


@dataclass
class Studio:
    book: StatementBook = field(default_factory=lambda: StatementBook("", ("en",), ()))
    history: dict[str, list[StatementVersion]] = field(default_factory=dict)
    inbox: Inbox = field(default_factory=Inbox)
    answers: dict[int, AnswerInfo] = field(default_factory=dict)
    leader_turns: deque[LeaderTurn] = field(default_factory=deque)
    # user id -> (question, FollowUp payload) to hand over on their next join
    waiting: dict[str, list[tuple[int, bytes]]] = field(default_factory=dict)
    audit: deque[AuditEntry] = field(default_factory=lambda: deque(maxlen=AUDIT_KEPT))

    def load_statements(
        self, persona: str, languages: tuple[str, ...], versions: list[StatementVersion]
    ) -> None:
        """Every stored version, any order: the book gets the newest of each."""
        self.history.clear()
        for v in sorted(versions, key=lambda v: (v.id, v.version)):
            self.history.setdefault(v.id, []).append(v)
        self.book = StatementBook(persona, languages, (h[-1] for h in self.history.values()))

    def saved(self, version: StatementVersion) -> None:
        self.history.setdefault(version.id, []).append(version)

    def undo(self, versions: tuple[tuple[StatementVersion, StatementVersion | None], ...]) -> None:
        """The store refused these versions: the book and the history as before them."""
        for version, previous in reversed(versions):
            self.book.undo(version, previous)
            history = self.history.get(version.id, [])
            if version in history:
                history.remove(version)
            if not history:
                self.history.pop(version.id, None)

    def record_answer(self, a: AnswerRecorded, question_text: str, review: str = "") -> None:
        old = self.answers.get(a.answer_id)
        self.answers[a.answer_id] = AnswerInfo(
            a.answer_id, a.question_id, clip(question_text, MAX_QUESTION_CHARS),
            clip(a.text, MAX_ANSWER_CHARS), a.label, first(a.sources, MAX_SOURCES), a.language,
            a.started, a.outcome, review or (old.review if old else ""),
        )  # fmt: skip

    def audited(self, a: ActionRecorded) -> None:
        role = (
            a.actor_role if a.actor_role in ("attendee", "spectator", "moderator") else "operator"
        )
        self.audit.append(
            AuditEntry(a.time, a.actor_name or a.actor_id, role, a.action, a.question_id, a.detail)  # type: ignore[arg-type]
        )


def info(v: StatementVersion, now_wall: float, book: StatementBook | None = None) -> StatementInfo:
    """A version as /studio shows it; with ``book``, translations are linked both ways (a
    uk statement naming its en original shows up on the en one too)."""
    today = dt.datetime.fromtimestamp(now_wall, dt.UTC).date().isoformat()
    linked = list(v.translations)
    if book is not None:
        linked += sorted(
            o.id for o in book.current.values() if v.id in o.translations and o.id not in linked
        )
    return StatementInfo(
        v.id, v.version, v.topic, v.text, v.language, v.date, list(v.tags), v.author,
        v.approved, v.review_by, linked[:8], v.supersedes, v.retired,
        bool(v.review_by) and v.review_by < today,
    )  # fmt: skip


def today(now_wall: float) -> str:
    return dt.datetime.fromtimestamp(now_wall, dt.UTC).date().isoformat()
