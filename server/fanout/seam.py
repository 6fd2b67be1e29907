"""The room/fan-out seam: what the room authority and a fan-out worker say to each other.

The room process owns every decision (who is in, what the queue holds, what the
clone says); a fan-out worker owns client sockets and writes bytes. Everything
crossing the seam is one of the messages below, msgpack-encoded and
length-prefixed on a byte stream, so the same seam can later run over Redis or
TCP between machines. Client sockets themselves cross once, at adoption, as file
descriptors on a separate Unix datagram socket (SCM_RIGHTS).
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import msgspec

ROLE_BITS = {"attendee": 1, "spectator": 2, "moderator": 4, "operator": 8}
ALL_ROLES = 0


def role_mask(roles: frozenset[str] | None) -> int:
    """Bitmask of roles (0 means everyone)."""
    if roles is None:
        return ALL_ROLES
    mask = 0
    for role in roles:
        mask |= ROLE_BITS[role]
    return mask


class Seam(msgspec.Struct, array_like=True, tag=True):
    """Base of every message on the seam."""


# ------------------------------------------------------------------ room -> worker


class Adopt(Seam, tag=1):
    """Take over a joined client's socket (its fd arrives on the fd channel just before)."""

    sid: int
    slot: int
    role: int  # one ROLE_BITS value
    cell: int
    initial: bytes  # framed bytes to write before anything else (Welcome, keyframe)


class Tick(Seam, tag=2):
    """One room tick: sequenced events to everyone, crowd frames to those keeping up."""

    events: bytes  # framed, in order
    n_events: int
    near: dict[int, bytes]  # cell -> framed CrowdNear
    far: bytes  # framed CrowdFar or b""


class Broadcast(Seam, tag=3):
    """A droppable framed message for everyone (or some roles), written with the next tick."""

    framed: bytes
    roles: int


class Send(Seam, tag=4):
    """Framed bytes for one client, written at once."""

    sid: int
    data: bytes
    count: int


ABORT = 0  # a Close with this code drops the connection without a close frame


class Close(Seam, tag=5):
    """Close one client with a WebSocket close code and reason (ABORT: just drop it)."""

    sid: int
    code: int
    reason: str


class Stop(Seam, tag=6):
    """The server is stopping: close every client and exit."""


# ------------------------------------------------------------------ worker -> room


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


ToWorker = Adopt | Tick | Broadcast | Send | Close | Stop
ToRoom = Inbound | PoseBatch | Gone | Stats

_HEADER = struct.Struct("<I")
_encoder = msgspec.msgpack.Encoder()


def pack(message: Seam) -> bytes:
    """One length-prefixed seam message."""
    body = _encoder.encode(message)
    return _HEADER.pack(len(body)) + body


class Unpacker:
    """Splits a byte stream into seam messages (sans-I/O: feed bytes, get messages)."""

    def __init__(self, kind: type[ToWorker] | type[ToRoom]) -> None:
        self._decoder: msgspec.msgpack.Decoder[Seam] = msgspec.msgpack.Decoder(kind)  # type: ignore[arg-type]
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
