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
    MAX_CLIENT_INFO_CHARS,
    MAX_NAME_CHARS,
    MAX_REASON_CHARS,
    MAX_TOKEN_CHARS,
    MAX_USER_ID_CHARS,
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

ROLES: tuple[str, ...] = ("attendee", "spectator", "moderator", "operator")


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


class Error(Message, tag=65):
    """A request was rejected; ``ref`` is the offending message's type code (0 if unknown)."""

    code: U16
    reason: Reason
    ref: U8 = 0
    fatal: bool = False


class Pong(Message, tag=66):
    """Answer to Ping with the server's receive and send times on the media clock."""

    client_time_us: I64
    server_recv_us: I64
    server_send_us: I64


class Keyframe(Message, tag=67):
    """The whole room state: everyone present and the coarse pose of every attendee."""

    seq: U64
    server_time_us: I64
    participants: list[Participant]
    coarse: bytes


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


CLIENT_MESSAGES: tuple[type[Message], ...] = (Join, Ping, Pose, Hand, Leave, KeyframeRequest)
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
)

# Sequenced messages: part of the room's event log, replayable after a resume.
SEQUENCED: tuple[type[Message], ...] = (Joined, Left, HandChanged)


def _register() -> None:
    for cls in CLIENT_MESSAGES + SERVER_MESSAGES:
        tag = cls.__struct_config__.tag
        assert isinstance(tag, int)
        cls.TYPE = tag
        cls.NAME = cls.__name__


_register()

BY_TYPE: dict[int, type[Message]] = {c.TYPE: c for c in CLIENT_MESSAGES + SERVER_MESSAGES}
