"""What a room's authority and a media node say to each other over NATS.

With ``rtc.media = "bus"`` the live mics' WebRTC peers run on a media node
(``serve --role media``), not in the authority. The authority still judges who holds the
mic; it asks a node to open a peer (``MediaOpen``, NATS request/reply: the node answers
``MediaAnswer`` or ``MediaRefused``) and to close it (``MediaClose``). The node reports
on the room's ``media.events`` subject: the peer's connection state, what was said, and
once a second which mics it holds (``MediaBeat``: a node that falls silent has died).
The voice itself goes out on the room's ``live`` subject as seam Broadcasts of stage
packets, like any live broadcast, so every edge and the authority's own clients get it.

Every message is msgpack, tagged, with its limits in the types: one that does not decode
within them is dropped and logged, like bad client input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from townhall.protocol.limits import MAX_QUESTION_CHARS, MAX_SDP_CHARS
from townhall.server.fanout.bus import BusError, Subjects

QUEUE = "townhall-media"  # one queue group: each MediaOpen goes to one node
MAX_REASON = 400
MAX_TRANSCRIPT = 8 * MAX_QUESTION_CHARS  # a mic's phrases together; the room clips it
MAX_BEAT_MICS = 64

Slot = Annotated[int, msgspec.Meta(ge=0, le=65_535)]
Generation = Annotated[int, msgspec.Meta(ge=0, le=2**53)]
NodeId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Sdp = Annotated[str, msgspec.Meta(max_length=MAX_SDP_CHARS)]
Reason = Annotated[str, msgspec.Meta(max_length=MAX_REASON)]
PeerState = Literal["new", "connecting", "connected", "disconnected", "failed", "closed"]


class MediaMessage(msgspec.Struct, array_like=True, tag=True, forbid_unknown_fields=True):
    """Base of every message between an authority and a media node."""


class MediaOpen(MediaMessage, tag=1):
    """Authority -> a node (request): answer this attendee's offer and relay the voice."""

    slot: Slot
    generation: Generation
    sdp: Sdp
    media_us: Annotated[int, msgspec.Meta(ge=0)]  # the room's media clock when sent


class MediaAnswer(MediaMessage, tag=2):
    """Node -> authority (reply): the peer's answer; the node holds the mic from now on."""

    node: NodeId
    sdp: Sdp


class MediaRefused(MediaMessage, tag=3):
    """Node -> authority (reply): the offer cannot be used (the attendee gets BAD_SDP)."""

    node: NodeId
    reason: Reason


class MediaClose(MediaMessage, tag=4):
    """Authority -> every node: close this mic's peer (the one holding it acts)."""

    slot: Slot
    generation: Generation
    submit: bool  # report what was said (MediaTranscript)


class MediaState(MediaMessage, tag=5):
    """Node -> authority: the peer's connection state changed."""

    node: NodeId
    slot: Slot
    generation: Generation
    state: PeerState


class MediaTranscript(MediaMessage, tag=6):
    """Node -> authority: what was said at a closed mic (speech-to-text)."""

    node: NodeId
    slot: Slot
    generation: Generation
    text: Annotated[str, msgspec.Meta(max_length=MAX_TRANSCRIPT)]


class MediaBeat(MediaMessage, tag=7):
    """Node -> authority, once a second: alive, holding these (slot, generation) mics."""

    node: NodeId
    mics: Annotated[list[tuple[Slot, Generation]], msgspec.Meta(max_length=MAX_BEAT_MICS)]


ToNode = MediaOpen | MediaClose
Reply = MediaAnswer | MediaRefused
FromNode = MediaState | MediaTranscript | MediaBeat

_encoder = msgspec.msgpack.Encoder()


def encode(message: MediaMessage) -> bytes:
    return _encoder.encode(message)


def decoder(kind: object) -> msgspec.msgpack.Decoder[MediaMessage]:
    """A decoder for one direction (``ToNode``, ``Reply`` or ``FromNode``)."""
    return msgspec.msgpack.Decoder(kind)


def decode(data: bytes, dec: msgspec.msgpack.Decoder[MediaMessage]) -> MediaMessage:
    """One message, or ValueError with the reason (it is then dropped and logged)."""
    try:
        return dec.decode(data)
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise ValueError(str(exc)[:300]) from exc


@dataclass(frozen=True)
class MediaSubjects:
    """The media subjects of one room (``townhall.<room>.media.…``)."""

    room: str

    @classmethod
    def of(cls, room: str) -> MediaSubjects:
        return cls(Subjects.of(room).room)  # the same room id check as the rest of the bus

    @property
    def open(self) -> str:
        return f"townhall.{self.room}.media.open"

    @property
    def close(self) -> str:
        return f"townhall.{self.room}.media.close"

    @property
    def events(self) -> str:
        return f"townhall.{self.room}.media.events"

    @property
    def live(self) -> str:
        return Subjects(self.room).live


def room_of(subject: str) -> str:
    """The room a ``townhall.<room>.media.…`` subject names ('' if it is not one)."""
    parts = subject.split(".")
    if len(parts) != 4 or parts[0] != "townhall" or parts[2] != "media":
        return ""
    try:
        return Subjects.of(parts[1]).room
    except BusError:
        return ""
