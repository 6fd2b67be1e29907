"""The message catalog: every message is a typed struct with a stable numeric type code.

On the wire each WebSocket binary message carries exactly one protocol message,
a msgpack array whose first element is the type code and whose other elements are
the fields in the order declared here. Codes 1-63 travel client to server,
64-127 server to client. Trailing fields that have defaults may be omitted.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from .limits import (
    BOARD_PAGE_MAX,
    MAX_ANSWER_CHARS,
    MAX_CLIENT_INFO_CHARS,
    MAX_EDGES,
    MAX_LANGUAGE_CHARS,
    MAX_MIC_REASON_CHARS,
    MAX_NAME_CHARS,
    MAX_QUESTION_CHARS,
    MAX_REASON_CHARS,
    MAX_SDP_CHARS,
    MAX_SOURCE_CHARS,
    MAX_STATEMENT_CHARS,
    MAX_STATEMENT_ID_CHARS,
    MAX_TAGS,
    MAX_TOKEN_CHARS,
    MAX_URL_CHARS,
    MAX_USER_ID_CHARS,
    MAX_WORD_CHARS,
    POSE_BYTES,
)

U8 = Annotated[int, msgspec.Meta(ge=0, le=255)]
U16 = Annotated[int, msgspec.Meta(ge=0, le=65535)]
U32 = Annotated[int, msgspec.Meta(ge=0, le=2**32 - 1)]
U64 = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # fits int64 in every language
I64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Seat = Annotated[int, msgspec.Meta(ge=-1, le=65535)]
Version = Annotated[int, msgspec.Meta(ge=1, le=255)]
Token = Annotated[str, msgspec.Meta(max_length=MAX_TOKEN_CHARS)]
Name = Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)]
UserId = Annotated[str, msgspec.Meta(max_length=MAX_USER_ID_CHARS)]
Reason = Annotated[str, msgspec.Meta(max_length=MAX_REASON_CHARS)]
ClientInfo = Annotated[str, msgspec.Meta(max_length=MAX_CLIENT_INFO_CHARS)]
PoseBytes = Annotated[bytes, msgspec.Meta(min_length=POSE_BYTES, max_length=POSE_BYTES)]
Role = Literal["attendee", "spectator", "moderator", "operator"]
Mode = Literal["auto", "moderated"]
QuestionText = Annotated[str, msgspec.Meta(max_length=MAX_QUESTION_CHARS)]
AnswerText = Annotated[str, msgspec.Meta(max_length=MAX_ANSWER_CHARS)]
Lang = Annotated[str, msgspec.Meta(max_length=MAX_LANGUAGE_CHARS)]
Word = Annotated[str, msgspec.Meta(max_length=MAX_WORD_CHARS)]
Source = Annotated[str, msgspec.Meta(max_length=MAX_SOURCE_CHARS)]
QuestionState = Literal["submitted", "approved", "answering", "answered", "rejected", "escalated"]
#: Whose words the clone speaks: the leader's approved statements (``approved``), a model's
#: from cited statements (``generated``), a decline (``escalated``), text an operator wrote
#: (``leader``: the leader's own words) or a moderator wrote or edited (``moderator``).
Label = Literal["approved", "generated", "escalated", "leader", "moderator"]
PacketLabel = Literal["approved", "generated", "escalated", "leader", "moderator", "live"]
HumanLabel = Literal["leader", "moderator"]  # words a person wrote, spoken by the clone
Sdp = Annotated[str, msgspec.Meta(max_length=MAX_SDP_CHARS)]
MicAction = Literal["grant", "revoke", "ask"]
MicState = Literal["queued", "granted", "connecting", "live", "ended"]
ModerateAction = Literal["approve", "reject", "edit", "merge", "move", "pin", "unpin"]
ReviewDecision = Literal["speak", "edit", "skip"]
ControlAction = Literal["mode", "review", "stop", "next", "event", "schedule"]
# The event's lifecycle (SPEC §5.3): doors open (the lobby), live, on hold, ended.
Phase = Literal["doors", "live", "hold", "ended"]
PhaseEvent = Literal["open", "start", "hold", "resume", "end"]
PeopleAction = Literal["mute", "unmute", "kick", "ban"]
Outcome = Literal["done", "stopped", "skipped", "failed"]
StatementId = Annotated[str, msgspec.Meta(max_length=MAX_STATEMENT_ID_CHARS)]
StatementText = Annotated[str, msgspec.Meta(max_length=MAX_STATEMENT_CHARS)]
Tags = Annotated[list[Annotated[str, msgspec.Meta(max_length=MAX_WORD_CHARS)]],
                 msgspec.Meta(max_length=MAX_TAGS)]  # fmt: skip
EdgeUrls = Annotated[list[Annotated[str, msgspec.Meta(max_length=MAX_URL_CHARS)]],
                     msgspec.Meta(max_length=MAX_EDGES)]  # fmt: skip
DateText = Annotated[str, msgspec.Meta(max_length=10)]  # YYYY-MM-DD or ""
StudioWhat = Literal["inbox", "answers", "statements", "history", "audit"]
InboxAction = Literal["publish", "post", "asker", "decline"]
InboxState = Literal["open", "publish", "post", "asker", "decline"]
AnswerAction = Literal["endorse", "correct", "retract"]

ROLES: tuple[Role, ...] = ("attendee", "spectator", "moderator", "operator")
STAFF: frozenset[Role] = frozenset({"moderator", "operator"})  # run the room


class Message(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Base of every message; subclasses set a unique integer ``tag``."""

    TYPE: ClassVar[int]
    NAME: ClassVar[str]


# ---------------------------------------------------------------- client to server


class Join(Message, tag=1):
    """First message on a connection: authenticate, negotiate the version, maybe resume."""

    min_version: Version
    max_version: Version
    token: Token
    resume: Token = ""
    last_seq: U64 = 0
    client: ClientInfo = ""


class Ping(Message, tag=2):
    """Clock-sync probe; the server answers with Pong at once."""

    client_time_us: I64


class Pose(Message, tag=3):
    """The wearer's head and hands relative to the seat (see the pose record)."""

    client_time_us: I64
    pose: PoseBytes
    flags: U8 = 0


class Hand(Message, tag=4):
    """Raise or lower the attendee's hand."""

    raised: bool


class Leave(Message, tag=5):
    """Leave the room for good (no resume)."""


class KeyframeRequest(Message, tag=6):
    """Ask for a fresh Keyframe, e.g. after a gap in sequence numbers."""


class Ask(Message, tag=7):
    """Submit a text question; answered by Ack (once stored) or Error with ``request = ref``."""

    ref: U32
    text: QuestionText
    language: Lang = ""


class Vote(Message, tag=8):
    """Vote for a question (``up = false`` withdraws the vote); one vote per person."""

    ref: U32
    question: U32
    up: bool = True


class Moderate(Message, tag=9):
    """A moderator's action on a question; ``target`` is the merge target or the new position."""

    ref: U32
    action: ModerateAction
    question: U32
    text: QuestionText = ""
    target: U32 = 0


class Review(Message, tag=10):
    """A moderator's decision on the clone's draft: speak it, speak an edit, or skip."""

    ref: U32
    answer: U32
    decision: ReviewDecision
    text: AnswerText = ""


class People(Message, tag=12):
    """A moderator's action on a participant: mute (no questions, no hand), kick, ban."""

    ref: U32
    action: PeopleAction
    slot: U16


class Mic(Message, tag=13):
    """A moderator hands the mic to an attendee (``grant``), takes it back (``revoke``),
    or types the spoken question of ``slot`` into the queue (``ask``, with ``text``)."""

    ref: U32
    action: MicAction
    slot: U16
    text: QuestionText = ""


class MicOffer(Message, tag=14):
    """The granted attendee accepts: a WebRTC offer (audio, candidates inline, no trickle)."""

    ref: U32
    sdp: Sdp


class MicRelease(Message, tag=15):
    """The attendee is done speaking, or declines the grant."""

    ref: U32


class BoardRequest(Message, tag=16):
    """Ask for open questions ``offset`` .. ``offset + count`` of the board, in its order
    (the Keyframe carries only the top of it); answered by Board with ``ref``."""

    ref: U32
    offset: U32 = 0
    count: Annotated[int, msgspec.Meta(ge=1, le=BOARD_PAGE_MAX)] = BOARD_PAGE_MAX


class StudioList(Message, tag=17):
    """/studio: ask for the inbox, the clone's answers, statements (``query`` filters), one
    statement's ``history`` (``query`` is its id) or the audit; answered by StudioItems."""

    ref: U32
    what: StudioWhat
    query: Annotated[str, msgspec.Meta(max_length=MAX_NAME_CHARS)] = ""


class StatementSave(Message, tag=18):
    """/studio: add (``version = 0``), edit or retire a statement. ``version`` is the one the
    edit was based on: if it is no longer the newest, Error CONFLICT with the current text
    (and a StudioItems with it). Ack ``id`` is the new version. ``statement = ""`` adds one
    with a fresh id."""

    ref: U32
    statement: StatementId
    version: U32
    topic: Annotated[str, msgspec.Meta(max_length=48)]
    text: StatementText
    language: Lang
    tags: Tags = []
    review_by: DateText = ""
    translations: Annotated[list[StatementId], msgspec.Meta(max_length=8)] = []
    retire: bool = False


class InboxAnswer(Message, tag=19):
    """/studio: the leader's answer to an escalated question: ``publish`` (spoken on stage
    under the label ``leader``), ``post`` (a written follow-up on the board and in the
    transcript), ``asker`` (to the asker only, on their next connect if gone) or ``decline``
    (``text`` is the reason). Ack ``id`` is the leader's answer id (0 for decline)."""

    ref: U32
    question: U32
    action: InboxAction
    text: AnswerText


class AnswerReview(Message, tag=20):
    """/studio: on an answer (the clone's or the leader's): ``endorse`` it as an approved
    statement, ``correct`` it (``text`` becomes a statement that supersedes its sources),
    or ``retract`` it. ``notice``: a correction or retraction notice to the room, the asker
    and the transcript. Ack ``id`` is the answer."""

    ref: U32
    answer: U32
    action: AnswerAction
    text: StatementText = ""
    topic: Annotated[str, msgspec.Meta(max_length=48)] = "leader"
    notice: bool = False


class Control(Message, tag=11):
    """Room controls: ``mode`` auto|moderated, ``review`` on|off, ``stop`` the clone, ``next``,
    ``event`` open|start|hold|resume|end (the lifecycle), ``schedule`` the start time (unix
    seconds; "" or "0" clears it)."""

    ref: U32
    action: ControlAction
    value: Annotated[str, msgspec.Meta(max_length=16)] = ""


# ---------------------------------------------------------------- server to client


class Participant(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One person in the room as others see them (a nested array, not a message)."""

    slot: U16
    user_id: UserId
    name: Name
    role: Role
    seat: Seat
    flags: U8 = 0


class Welcome(Message, tag=64):
    """Join accepted: who you are, where you sit, and how to resume."""

    version: Version
    room: str
    slot: U16
    user_id: UserId
    name: Name
    role: Role
    seat: Seat
    resume: Token
    server_time_us: I64
    seq: U64
    pose_hz: U8
    resumed: bool = False
    # The room's live edges (ws:// or wss:// URLs): where to reconnect if this one dies.
    edges: EdgeUrls = []


class Error(Message, tag=65):
    """A message was rejected: ``about`` is its type code (0 if unknown), ``ref`` its request id."""

    code: U16
    reason: Reason
    about: U8 = 0
    fatal: bool = False
    ref: U32 = 0  # the ``ref`` of the request (Ask, Vote, Moderate, ...) it answers; 0: none


class Pong(Message, tag=66):
    """Answer to Ping with the server's receive and send times on the media clock."""

    client_time_us: I64
    server_recv_us: I64
    server_send_us: I64


class QuestionInfo(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A question as the board shows it (a nested array)."""

    id: U32
    text: QuestionText
    language: Lang
    state: QuestionState
    votes: U32
    asker_slot: Seat
    asker_name: Name
    pinned: bool
    rank: U32
    merged_into: U32
    answer: U32


class StageStart(Message, tag=75):
    """The clone starts answering (sequenced); everything a viewer needs to label it."""

    seq: U64
    answer: U32
    question: U32
    question_text: QuestionText
    label: Label
    sources: list[Source]
    language: Lang
    disclosure: Reason
    asker_slot: Seat
    media_start_us: I64


class Keyframe(Message, tag=67):
    """The whole room state: people, the coarse crowd, the question board and the stage."""

    seq: U64
    server_time_us: I64
    participants: list[Participant]
    coarse: bytes
    questions: list[QuestionInfo] = []
    stage: StageStart | None = None
    mode: Mode = "auto"
    review: bool = False
    phase: Phase = "live"
    starts_at: U64 = 0


class Joined(Message, tag=68):
    """Someone joined (sequenced, replayed on resume)."""

    seq: U64
    participant: Participant


class Left(Message, tag=69):
    """Someone left or their resume window ran out (sequenced)."""

    seq: U64
    slot: U16


class HandChanged(Message, tag=70):
    """An attendee raised or lowered a hand (sequenced)."""

    seq: U64
    slot: U16
    raised: bool


class CrowdNear(Message, tag=71):
    """Full poses of the attendees near you (droppable, latest wins)."""

    server_time_us: I64
    records: bytes


class CrowdFar(Message, tag=72):
    """Coarse poses for a rotating slice of the whole crowd (droppable)."""

    server_time_us: I64
    records: bytes


class Ack(Message, tag=73):
    """A request is done and stored; ``id`` is the question it made or joined (``merged``)."""

    ref: U32
    id: U32 = 0
    merged: bool = False


class QuestionChanged(Message, tag=74):
    """A question was added or changed (sequenced): the whole row, latest wins."""

    seq: U64
    question: QuestionInfo


class StageEnd(Message, tag=76):
    """The clone finished, was stopped or skipped (sequenced), with the full text for the record."""

    seq: U64
    answer: U32
    outcome: Outcome
    text: AnswerText
    label: Label
    sources: list[Source]


class Caption(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One word with its time on the media clock."""

    start_us: I64
    duration_us: U32
    text: Word


class StagePacket(Message, tag=77):
    """40 ms of the clone on the media clock: Opus audio, animation frames, caption words."""

    answer: U32
    index: U32
    media_time_us: I64
    duration_us: U32
    label: PacketLabel
    opus: list[bytes]
    anim_times_us: list[U32]
    anim: bytes
    captions: list[Caption]
    speaker_slot: Seat = -1  # -1: the clone; else the attendee whose live voice this is


class Draft(Message, tag=78):
    """To moderators in review mode: the clone's answer before it is spoken."""

    answer: U32
    question: U32
    question_text: QuestionText
    text: AnswerText
    label: Label
    sources: list[Source]
    language: Lang


class ParticipantChanged(Message, tag=80):
    """A participant's flags changed, e.g. muted (sequenced): the whole record, latest wins."""

    seq: U64
    participant: Participant


class EventState(Message, tag=90):
    """The event's phase or its scheduled start changed (sequenced); ``starts_at`` is unix
    seconds, 0 when none is set."""

    seq: U64
    phase: Phase
    starts_at: U64 = 0


class RoomMode(Message, tag=79):
    """The room's Q&A mode or review setting changed (sequenced)."""

    seq: U64
    mode: Mode
    review: bool


class MicChanged(Message, tag=81):
    """A live mic's state changed (sequenced): queued (behind the answer), granted, connecting,
    live or ended (with why)."""

    seq: U64
    slot: U16
    state: MicState
    reason: Annotated[str, msgspec.Meta(max_length=MAX_MIC_REASON_CHARS)] = ""
    ends_us: I64 = 0


class Board(Message, tag=83):
    """Questions of the board beyond the Keyframe: a page asked for with BoardRequest
    (``ref``), or, right after the Keyframe (``ref = 0``), the joiner's own questions (asked
    or voted for) that the Keyframe's top of the board does not hold. ``open`` is how many
    open questions the board has in all."""

    ref: U32
    offset: U32
    open: U32
    questions: list[QuestionInfo]


class MicAnswer(Message, tag=82):
    """The server's WebRTC answer to MicOffer (to the speaker only; ``ref`` is the offer's)."""

    ref: U32
    sdp: Sdp


class InboxItem(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """An escalated question in the leader's inbox (a nested array). ``group``: the first
    question of its group of similar ones (itself if none)."""

    question: U32
    text: QuestionText
    reason: Reason
    detail: Reason
    asker_id: UserId
    asker_name: Name
    language: Lang
    time: float
    said: AnswerText
    group: U32
    state: InboxState = "open"
    answer_text: AnswerText = ""
    answer: U32 = 0


class StatementInfo(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """One version of a statement (a nested array); ``expired``: past review-by."""

    id: StatementId
    version: U32
    topic: str
    text: StatementText
    language: Lang
    date: DateText
    tags: list[str]
    author: UserId
    approved: float
    review_by: DateText
    translations: list[StatementId]
    supersedes: str
    retired: bool
    expired: bool


class AnswerInfo(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """An answer as /studio lists it (a nested array)."""

    answer: U32
    question: U32
    question_text: QuestionText
    text: AnswerText
    label: Label
    sources: list[Source]
    language: Lang
    time: float
    outcome: str
    review: str = ""  # endorsed, corrected, retracted, or ""


class AuditEntry(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Who did what when (a nested array)."""

    time: float
    who: Name
    role: Role
    action: str
    question: U32
    detail: str


class StudioItems(Message, tag=84):
    """/studio: the answer to StudioList (``ref``), or with ``ref = 0`` a live change (a new
    or resolved inbox item, a saved statement) to every operator and moderator."""

    ref: U32
    what: StudioWhat
    inbox: list[InboxItem] = []
    statements: list[StatementInfo] = []
    answers: list[AnswerInfo] = []
    audit: list[AuditEntry] = []


class FollowUp(Message, tag=85):
    """The leader's written words about a question (sequenced for ``post``; to the asker
    alone for ``asker``): a follow-up answer, or a correction or retraction notice."""

    seq: U64
    question: U32
    kind: Literal["answer", "correction", "retraction"]
    text: AnswerText
    label: Label
    question_text: QuestionText = ""


CLIENT_MESSAGES: tuple[type[Message], ...] = (
    Join,
    Ping,
    Pose,
    Hand,
    Leave,
    KeyframeRequest,
    Ask,
    Vote,
    Moderate,
    Review,
    Control,
    People,
    Mic,
    MicOffer,
    MicRelease,
    BoardRequest,
    StudioList,
    StatementSave,
    InboxAnswer,
    AnswerReview,
)
SERVER_MESSAGES: tuple[type[Message], ...] = (
    Welcome,
    Error,
    Pong,
    Keyframe,
    Joined,
    Left,
    HandChanged,
    CrowdNear,
    CrowdFar,
    Ack,
    QuestionChanged,
    StageStart,
    StageEnd,
    StagePacket,
    Draft,
    RoomMode,
    ParticipantChanged,
    MicChanged,
    MicAnswer,
    Board,
    EventState,
    StudioItems,
    FollowUp,
)

# Sequenced messages: part of the room's event log, replayable after a resume.
SequencedMessage = (
    Joined
    | Left
    | HandChanged
    | QuestionChanged
    | StageStart
    | StageEnd
    | RoomMode
    | ParticipantChanged
    | MicChanged
    | EventState
    | FollowUp
)
SEQUENCED: tuple[type[Message], ...] = (
    Joined,
    Left,
    HandChanged,
    QuestionChanged,
    StageStart,
    StageEnd,
    RoomMode,
    ParticipantChanged,
    MicChanged,
    EventState,
    FollowUp,
)


def _register() -> None:
    for cls in CLIENT_MESSAGES + SERVER_MESSAGES:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, int)
        cls.TYPE = tag
        cls.NAME = cls.__name__


_register()

BY_TYPE: dict[int, type[Message]] = {c.TYPE: c for c in CLIENT_MESSAGES + SERVER_MESSAGES}
