"""What an edge's clients send, on its way to the room: batched, poses checked and limited.

Most of what attendees send is poses, thousands a second. The edge applies the room's
pose rule (``PoseLimiter``), checks the records and gathers them for a few milliseconds
into one ``PoseBatch`` the room writes into the crowd in one array operation. A pose the
room would refuse gets its BAD_MESSAGE here, to that client only, and the others' poses
still land. Every other message goes to the room as it came, in order, in batches.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Callable
from typing import Protocol

import msgspec

from townhall.protocol import codec, quant
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Error, Pose, Role
from townhall.server.core.ratelimit import PoseLimiter
from townhall.server.fanout import seam as ipc


class EdgeClient(Protocol):
    """What the uplink needs of a client: an adopted socket, or a networked edge's session."""

    id: int
    slot: int
    role: Role | None
    poses: PoseLimiter

    def write(self, data: bytes) -> int: ...


class RoomWriter(Protocol):
    """Where packed seam messages go: the room's byte stream, or a bus subject."""

    def write(self, data: bytes) -> None: ...


FLUSH_AFTER_S = 0.005  # what clients send gathers this long before going to the room
_decode_pose = msgspec.msgpack.Decoder(Pose).decode
_RATE_NOTICE = codec.encode(
    Error(int(ErrorCode.RATE_LIMITED), PoseLimiter.NOTICE, Pose.TYPE, False, 0)
)


class Uplink:
    """Gathers one edge's inbound traffic and writes it to the room in batches."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.room: RoomWriter | None = None
        self.inbound: list[tuple[int, bytes | str]] = []
        self.errors: dict[str, int] = {}
        self._slots = array("H")
        self._flags = bytearray()
        self._records = bytearray()
        self._from: list[EdgeClient] = []
        self._bytes_in = 0
        self._scheduled = False

    def message(self, client: EdgeClient, payload: bytes) -> None:
        """A whole binary message from a client."""
        if client.role == "attendee" and len(payload) > 2 and payload[1] == Pose.TYPE:
            self.pose(client, payload)
        else:
            self.forward(client.id, payload)

    def forward(self, sid: int, payload: bytes | str) -> None:
        self.inbound.append((sid, payload))
        self._schedule()

    def pose(self, client: EdgeClient, payload: bytes) -> None:
        """An attendee's pose: limited, then batched, so the room does one array write."""
        try:
            pose = _decode_pose(payload)
        except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
            self.forward(client.id, payload)  # the room answers that client with the reason
            return
        verdict = client.poses.admit(self.now())
        if verdict != PoseLimiter.OK:
            if verdict == PoseLimiter.DROP_AND_NOTIFY:
                self._count("RATE_LIMITED")
                client.write(_framed(_RATE_NOTICE))
            return
        self._slots.append(client.slot)
        self._flags.append(pose.flags)
        self._records += pose.pose
        self._from.append(client)
        self._bytes_in += len(payload)
        self._schedule()

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)

    def _pose_batch(self) -> ipc.PoseBatch | None:
        if not self._from:
            return None
        slots, flags, records = self._slots, self._flags, bytes(self._records)
        try:
            quant.check_poses(records)  # one check for the whole batch: the common case
        except quant.QuantizationError:
            slots, flags, records = self._without_bad_poses()
        batch = ipc.PoseBatch(slots.tobytes(), bytes(flags), records, self._bytes_in)
        self._slots, self._flags, self._records, self._from = (
            array("H"),
            bytearray(),
            bytearray(),
            [],
        )
        self._bytes_in = 0
        return batch if slots else None

    def _without_bad_poses(self) -> tuple[array[int], bytearray, bytes]:
        """Check one by one: the bad ones get BAD_MESSAGE, the good ones still land."""
        size = quant.POSE_DTYPE.itemsize
        slots, flags, records = array("H"), bytearray(), bytearray()
        for i, client in enumerate(self._from):
            record = bytes(self._records[i * size : (i + 1) * size])
            try:
                quant.check_poses(record)
            except quant.QuantizationError as exc:
                self._count("BAD_MESSAGE")
                error = Error(int(ErrorCode.BAD_MESSAGE), str(exc), Pose.TYPE, False, 0)
                client.write(_framed(codec.encode(error)))
                continue
            slots.append(self._slots[i])
            flags.append(self._flags[i])
            records += record
        return slots, flags, bytes(records)

    def flush(self) -> None:
        self._scheduled = False
        if self.room is None:
            return
        batch = self._pose_batch()
        if batch is not None:
            self.room.write(ipc.pack(batch))
        if self.inbound:
            items, self.inbound = self.inbound, []
            self.room.write(ipc.pack(ipc.Inbound(items)))

    def _count(self, code: str) -> None:
        self.errors[code] = self.errors.get(code, 0) + 1


def _framed(payload: bytes) -> bytes:
    from townhall.server.fanout.framing import frame_binary

    return frame_binary(payload)
