"""What the room writes down: one record type per fact, no SQL.

The room authority says what happened (a question saved, a vote cast, an answer given);
a store module maps each record to its own storage (``store.sqlite``, ``store.postgres``)
behind the one interface ``store.base.RoomStore``, so callers never build queries. Records
are values: built once, written once, compared in tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from townhall.protocol.messages import Label, Outcome, QuestionState

# What became of an answer: how it ended on stage, or ``interrupted`` (the server stopped
# mid-answer and found it so on start).
RecordedOutcome = Outcome | Literal["interrupted"]


@dataclass(frozen=True, slots=True)
class QuestionSaved:
    """A question's whole row, latest wins."""

    id: int
    text: str
    language: str
    state: QuestionState
    asker_id: str
    asker_name: str
    asker_slot: int
    created: float
    pinned: bool
    rank: int
    merged_into: int
    answer_id: int


@dataclass(frozen=True, slots=True)
class VoteCast:
    question_id: int
    voter: str


@dataclass(frozen=True, slots=True)
class VoteWithdrawn:
    question_id: int
    voter: str


@dataclass(frozen=True, slots=True)
class ActionRecorded:
    """A moderator's or the room's action, for the audit trail."""

    time: float
    actor_id: str
    actor_role: str
    action: str  # e.g. "approve", "people:ban", "control:mode", "review:edit", "mic:grant"
    question_id: int  # 0: not about a question
    detail: str
    actor_name: str = ""  # the display name the actor had, for the transcript


@dataclass(frozen=True, slots=True)
class AnswerRecorded:
    """What the clone said for a question, under which label, from which sources."""

    answer_id: int
    question_id: int
    text: str
    label: Label
    sources: tuple[str, ...]
    language: str
    started: float
    ended: float
    outcome: RecordedOutcome


@dataclass(frozen=True, slots=True)
class EscalationRecorded:
    """A question handed to the human leader: why, and what the clone had said before."""

    time: float
    question_id: int
    question: str
    reason: str
    language: str
    detail: str = ""
    said: str = ""


@dataclass(frozen=True, slots=True)
class SettingSaved:
    """A room setting (Q&A mode, review) that survives a restart."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class UserBanned:
    """A user refused from this room from now on, across restarts."""

    user_id: str


@dataclass(frozen=True, slots=True)
class Attended:
    """One connection's stay in the room, for the attendance report: written when it joins
    (``left`` 0) and again, whole, when it ends."""

    session: str  # unique per connection and server run
    user_id: str
    name: str
    role: str
    client: str  # the Join's free-form client name and version
    joined: float  # wall clock
    left: float = 0.0


@dataclass(frozen=True, slots=True)
class PlaceHeld:
    """A member's slot and seat while they are in the room (their resume window included),
    so an authority that takes over holds them for their owners (core/room.py). ``holder``
    is a keyed hash of the user id (core/resume.py), never the id; ``slot`` -1: freed.
    Not a record to acknowledge on: written as it happens, read only at a takeover."""

    holder: str
    slot: int
    seat: int


@dataclass(frozen=True, slots=True)
class UserMuted:
    """A user muted (or unmuted) in this room: it holds when they leave, rejoin or restart."""

    user_id: str
    muted: bool


@dataclass(frozen=True, slots=True)
class StatementVersion:
    """One version of an approved statement: what it says, who approved it, when.

    Versions are never overwritten: an edit is the next version, retiring one is a version
    with ``retired`` set. ``review_by`` (YYYY-MM-DD or ""): after it the clone no longer
    uses the statement until a newer version is approved. ``supersedes``: the statement
    (or answer, ``answer:N``) this one corrects.
    """

    persona: str
    id: str
    version: int
    topic: str
    text: str
    language: str
    date: str  # YYYY-MM-DD: when the leader said it
    tags: tuple[str, ...]
    author: str
    approved: float  # wall clock, seconds
    review_by: str = ""
    translations: tuple[str, ...] = ()
    supersedes: str = ""
    retired: bool = False


@dataclass(frozen=True, slots=True)
class AnswerMedia:
    """What an answer sounded and looked like, as sent: its StagePacket payloads in order
    (Opus, animation, caption words on the media clock), kept for replay in /studio."""

    answer_id: int
    packets: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class InboxResolved:
    """The leader's answer to an escalated question: published, posted, sent, declined."""

    time: float
    question_id: int
    action: str  # publish, post, asker, decline
    text: str
    actor_id: str
    answer_id: int = 0  # the leader's answer (publish/post/asker), 0 for decline


Record = (
    QuestionSaved
    | VoteCast
    | VoteWithdrawn
    | ActionRecorded
    | AnswerRecorded
    | EscalationRecorded
    | SettingSaved
    | UserBanned
    | Attended
    | UserMuted
    | StatementVersion
    | InboxResolved
    | AnswerMedia
    | PlaceHeld
)
