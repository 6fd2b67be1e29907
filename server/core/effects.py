"""What the room authority asks the shell to do: typed effects, data only.

``RoomAuthority`` never touches a socket, a database or the event loop: every call
into it queues effects, and ``effects()`` hands them over in order (the
``data_to_send()`` of python-websockets' sans-I/O ``Protocol``). The shell carries
each out: writes bytes, stores records, runs the clone's turn, opens a mic.

Durable before acknowledged is ``Persist(records, then=(Send(ack),))``: the shell
stores the records, reports back with ``RoomAuthority.stored()``, and only then does
the authority release ``then``. ``Sequenced`` and ``BoardChanged`` appear only inside
``then``: the authority acts on them itself when it releases them (an event is logged
in order, a question goes on the board), so what the room shows is always stored.
``QuestionDropped``, ``VoteRestored`` and ``QuestionsRestored`` appear only inside
``failed``: a change the store refused is undone, so nobody sees or votes on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from townhall.protocol.messages import HumanLabel, ReviewDecision, Role, SequencedMessage
from townhall.server.store.records import QuestionSaved, Record, StatementVersion


@dataclass(frozen=True, slots=True)
class Send:
    """Encoded messages for one connection, written at once and in one write."""

    conn: int
    payloads: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A droppable message for everyone (``roles`` None) or some roles, with the next tick."""

    payload: bytes
    roles: frozenset[Role] | None = None


@dataclass(frozen=True, slots=True)
class Close:
    """Close one connection with a WebSocket close code and a reason; nothing more is sent."""

    conn: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Admit:
    """A connection joined: its first writes, and what an edge needs to serve it from now on.

    The shell writes ``payloads`` (Welcome, then a keyframe or the events it missed) before
    anything else, and may hand the connection to a fan-out edge."""

    conn: int
    slot: int
    role: Role
    cell: int
    payloads: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Persist:
    """Store ``records`` durably; then report ``RoomAuthority.stored(this, ok)``."""

    records: tuple[Record, ...]
    then: tuple[Effect, ...] = ()
    failed: tuple[Effect, ...] = ()


@dataclass(frozen=True, slots=True)
class Sequenced:
    """(Inside ``Persist.then``.) A sequenced event, logged and shown once stored."""

    message: SequencedMessage


@dataclass(frozen=True, slots=True)
class BoardChanged:
    """(Inside ``Persist.then``.) These questions go on the board with the next tick."""

    questions: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class QuestionDropped:
    """(Inside ``Persist.failed``.) A new question the store refused: it never existed."""

    question: int


@dataclass(frozen=True, slots=True)
class VoteRestored:
    """(Inside ``Persist.failed``.) A vote the store refused: ``voted`` as it was before."""

    question: int
    voter: str
    voted: bool


@dataclass(frozen=True, slots=True)
class QuestionsRestored:
    """(Inside ``Persist.failed``.) A moderation the store refused: the rows as they were,
    and the votes it had added (a merge) taken back."""

    rows: tuple[QuestionSaved, ...]
    votes_added: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Ship:
    """One numbered room tick's output, for every fan-out edge: payloads, never frames.

    ``events`` go to everyone in order; ``near`` to the attendees of each cell and ``far``
    to everyone (both droppable); ``stage`` are the clone's packets due within the stage
    lead, numbered from ``stage_first`` so an edge can replay what a client missed;
    ``broadcasts`` are droppable messages (a role mask of None: everyone)."""

    number: int
    now_us: int
    events: tuple[bytes, ...]
    near: dict[int, bytes]
    far: bytes | None
    stage: tuple[bytes, ...] = ()
    stage_first: int = 0
    stage_ends_us: tuple[int, ...] = ()  # when each stage packet has played out
    broadcasts: tuple[Broadcast, ...] = ()


@dataclass(frozen=True, slots=True)
class TurnQuestion:
    """What the clone answers: the question and where the asker sits (for the gaze)."""

    id: int
    text: str
    language: str
    gaze: tuple[float, float, float] | None = None


@dataclass(frozen=True, slots=True)
class StartTurn:
    """Run the clone's turn for a question; its events come back through ``turn_event``.

    ``script``: the leader's own words to speak (label ``leader``) instead of asking the brain.
    """

    answer_id: int
    question: TurnQuestion
    review: bool = False
    script: str = ""


@dataclass(frozen=True, slots=True)
class StatementsChanged:
    """Statement versions just stored: the clone answers from them from its next answer."""

    versions: tuple[StatementVersion, ...]


@dataclass(frozen=True, slots=True)
class StatementsUndone:
    """Only inside ``failed``: the store refused these versions; the book goes back to
    ``previous`` (None: the statement did not exist)."""

    versions: tuple[tuple[StatementVersion, StatementVersion | None], ...]


@dataclass(frozen=True, slots=True)
class Escalated:
    """A new inbox item: notify the persona's escalation contact (webhook, e-mail)."""

    question: int
    text: str
    reason: str
    language: str
    asker: str


@dataclass(frozen=True, slots=True)
class StopTurn:
    """Cut the turn short (a moderator's stop); late events of it are ignored."""

    answer_id: int


@dataclass(frozen=True, slots=True)
class ReviewTurn:
    """A moderator's decision on the turn's draft: speak it, speak an edit, or skip.

    ``author`` labels an edit: words a person wrote are never spoken under the clone's
    labels (``moderator`` for a moderator's text, ``leader`` for an operator's)."""

    answer_id: int
    decision: ReviewDecision
    text: str = ""
    author: HumanLabel = "moderator"


@dataclass(frozen=True, slots=True)
class StartMic:
    """Answer a granted attendee's WebRTC offer and start relaying their voice."""

    slot: int
    generation: int
    conn: int
    ref: int
    sdp: str


@dataclass(frozen=True, slots=True)
class EndMic:
    """Close a mic's peer; with ``submit``, report what was said (``mic_transcript``)."""

    slot: int
    generation: int
    reason: str
    submit: bool = True


@dataclass(frozen=True, slots=True)
class Log:
    """A line for the server log (joins, closes): the shell owns the logger."""

    event: str
    fields: dict[str, object] = field(default_factory=dict)
    level: int = logging.INFO


Effect = (
    Send
    | Broadcast
    | Close
    | Admit
    | Persist
    | Sequenced
    | BoardChanged
    | QuestionDropped
    | VoteRestored
    | QuestionsRestored
    | Ship
    | StartTurn
    | StopTurn
    | ReviewTurn
    | StartMic
    | EndMic
    | Log
    | StatementsChanged
    | StatementsUndone
    | Escalated
)
