"""The room/fan-out seam: what the room authority and a fan-out worker say to each other.

The room process owns every decision (who is in, what the queue holds, what the
clone says); a fan-out edge owns client sockets and writes bytes. Everything
crossing the seam is one of the messages below, msgpack-encoded and
length-prefixed on a byte stream: payloads and numbered ticks, never WebSocket
frames, so the same seam runs over NATS between machines (``bus``: one message per
NATS message, the same length prefix). Client sockets
themselves cross once, at adoption, as file descriptors on a separate Unix
socket (SCM_RIGHTS); that part is what a networked edge will not need.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import msgspec


class Seam(msgspec.Struct, array_like=True, tag=True):
    """Base of every message on the seam."""


# ------------------------------------------------------------------ room -> edge


class Adopt(Seam, tag=1):
    """Take over a joined client's socket (its fd arrives on the fd channel just before)."""

    sid: int
    slot: int
    role: str
    cell: int
    initial: list[bytes]  # payloads to write before anything else (Welcome, keyframe)


class Tick(Seam, tag=2):
    """One numbered room tick (``core.effects.Ship``): payloads, each framed by the edge."""

    number: int
    now_us: int
    events: list[bytes]  # sequenced, in order, for everyone
    near: dict[int, bytes]  # cell -> CrowdNear
    far: bytes  # CrowdFar, or b""
    stage: list[bytes]  # the clone's packets due within the stage lead
    stage_first: int  # the number of stage[0]; numbers run on across answers
    stage_ends_us: list[int]  # when each stage packet has played out
    broadcasts: list[tuple[bytes, list[str] | None]]  # droppable; roles or None for all
    term: int = 0  # over the bus: the authority's lease term (a new one: a new authority)


class Broadcast(Seam, tag=3):
    """A droppable message for everyone (or some roles), written with the next tick."""

    payload: bytes
    roles: list[str] | None


class Send(Seam, tag=4):
    """Messages for one client, written at once."""

    sid: int
    payloads: list[bytes]


ABORT = 0  # a Close with this code drops the connection without a close frame
RECONNECT = 1012  # "service restart": the client reconnects (and resumes), to any live edge


class Close(Seam, tag=5):
    """Close one client with a WebSocket close code and reason (ABORT: just drop it)."""

    sid: int
    code: int
    reason: str


class Stop(Seam, tag=6):
    """The server is stopping: close every client and exit."""


class Crowd(Seam, tag=7):
    """A tick's crowd frames on their own (over the bus: latest-wins, no replay)."""

    number: int  # the tick they belong to
    near: dict[int, bytes]
    far: bytes


# ------------------------------------------------------------------ edge -> room


class Inbound(Seam, tag=16):
    """Client messages in arrival order: (sid, payload); a str payload was a text frame."""

    items: list[tuple[int, Any]]  # Any: msgpack bin decodes to bytes, str to str


class PoseBatch(Seam, tag=19):
    """Validated poses since the last batch: the room writes them into the crowd at once."""

    slots: bytes  # little-endian uint16 per pose
    flags: bytes  # one byte per pose (the client's flags)
    poses: bytes  # 30-byte pose records
    bytes_in: int  # their size on the wire, for the metrics


class Gone(Seam, tag=17):
    """A client's connection ended (closed by either side)."""

    sid: int


class Stats(Seam, tag=18):
    """Counters since the previous Stats (sent about once a second)."""

    messages_out: int
    bytes_out: int
    frames_dropped: int
    closes: dict[str, int]
    errors: dict[str, int]
    tick_max_s: float = 0.0  # the longest tick write loop in the period
    url: str = ""  # a networked edge's public WebSocket URL (Welcome lists them); "": none


class Connect(Seam, tag=20):
    """A client opened a WebSocket at a networked edge (the edge did the handshake)."""

    sid: int
    address: str
    guest: str


class NeedKeyframe(Seam, tag=21):
    """The edge missed ticks it cannot replay: its clients need the room's state afresh."""

    after: int  # the last tick it wrote


ToWorker = Adopt | Tick | Broadcast | Send | Close | Stop | Crowd
ToRoom = Inbound | PoseBatch | Gone | Stats | Connect | NeedKeyframe

_HEADER = struct.Struct("<I")
_encoder = msgspec.msgpack.Encoder()


def pack(message: Seam) -> bytes:
    """One length-prefixed seam message."""
    body = _encoder.encode(message)
    return _HEADER.pack(len(body)) + body


def unpack_one(data: bytes, decoder: msgspec.msgpack.Decoder[Any]) -> Seam:
    """Exactly one length-prefixed message (a bus message carries one); else ValueError."""
    if len(data) < 4 or _HEADER.unpack_from(data)[0] != len(data) - 4:
        raise ValueError("not one length-prefixed seam message")
    try:
        message = decoder.decode(memoryview(data)[4:])
    except (msgspec.MsgspecError, RecursionError) as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(message, Seam):
        raise ValueError("not a seam message")
    return message


class Unpacker:
    """Splits a byte stream into seam messages (sans-I/O: feed bytes, get messages)."""

    def __init__(self, kind: Any) -> None:
        """``kind``: the union of messages this end takes (``ToWorker`` or ``ToRoom``)."""
        self._decoder: msgspec.msgpack.Decoder[Seam] = msgspec.msgpack.Decoder(kind)
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Seam]:
        buf = self._buffer
        buf += data
        out: list[Seam] = []
        at = 0
        end = len(buf)
        with memoryview(buf) as view:
            while end - at >= 4:
                (n,) = _HEADER.unpack_from(buf, at)
                if end - at - 4 < n:
                    break
                out.append(self._decoder.decode(view[at + 4 : at + 4 + n]))
                at += 4 + n
        if at:
            del buf[:at]
        return out


def send_fd(channel: socket.socket, fd: int) -> None:
    """Pass a file descriptor over a Unix socket (the receiver gets its own copy)."""
    socket.send_fds(channel, [b"F"], [fd])


def recv_fd(channel: socket.socket) -> int:
    """Receive one file descriptor sent with ``send_fd``."""
    _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    if not fds:
        raise ConnectionError("fd channel closed")
    return fds[0]
