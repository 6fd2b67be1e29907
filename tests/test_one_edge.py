"""One edge, two room links: a fan-out worker and a networked edge run the same ``Edge``.

The same room messages go to a real worker process (over its Unix-socket seam, the client
socket passed by descriptor) and to a networked edge (over the shared NATS, its client a
real WebSocket): each client must get the same frames, byte for byte, for the same ticks,
and each room must hear the same from its edge: the client's message, the keyframe request
at a tick gap, and the client gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
import nats
from nats.aio.msg import Msg
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from townhall.protocol.messages import Pose
from townhall.server.fanout import bus
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.edge import Edge, EdgeLimits
from townhall.server.fanout.edge_rooms import EdgeRooms
from townhall.server.fanout.netedge import NetEdge, handle

from .waiting import eventually

NATS_URL = "nats://127.0.0.1:4222"
LIMITS: dict[str, object] = {
    "max_message_bytes": 65536,
    "send_soft_bytes": 1 << 20,
    "send_hard_bytes": 4 << 20,
    "slow_close_s": 30.0,
    "pose_hz": 20.0,
    "tick_hz": 20,
    "crowd_hz": 10,
    "spectator_every": 1,
}
ASK = b"\x01\x7fwhat a client sends"  # not a pose: forwarded as it came
WAIT_S = 30.0


@dataclass
class Side:
    """One kind of edge as the test drives it: the room's end and the client's end."""

    to_room: list[ipc.Seam] = field(default_factory=list)  # what the edge told the room
    frames: list[bytes] = field(default_factory=list)  # binary payloads the client got
    sid: int = 0
    send: Callable[[ipc.Seam], Awaitable[None]] | None = None  # room → edge
    client_send: Callable[[bytes], Awaitable[None]] | None = None
    client_close: Callable[[], Awaitable[None]] | None = None

    def told(self, kind: type[ipc.Seam]) -> list[ipc.Seam]:
        return [m for m in self.to_room if isinstance(m, kind)]


def server_frames(buffer: bytearray) -> list[tuple[int, bytes]]:
    """Whole server frames (unmasked) taken off the front of ``buffer``."""
    frames = []
    while len(buffer) >= 2:
        n, at = buffer[1] & 0x7F, 2
        if n == 126:
            if len(buffer) < 4:
                break
            n, at = struct.unpack_from("!H", buffer, 2)[0], 4
        elif n == 127:
            if len(buffer) < 10:
                break
            n, at = struct.unpack_from("!Q", buffer, 2)[0], 10
        if len(buffer) < at + n:
            break
        frames.append((buffer[0] & 0x0F, bytes(buffer[at : at + n])))
        del buffer[: at + n]
    return frames


def client_frame(payload: bytes) -> bytes:
    """A masked binary frame (mask 0: the payload as it is), as a client must send."""
    assert len(payload) < 126
    return bytes([0x82, 0x80 | len(payload)]) + b"\0\0\0\0" + payload


@contextlib.asynccontextmanager
async def worker_side() -> AsyncIterator[Side]:
    """A real fan-out worker process; the test is its room, and its client's far end."""
    loop = asyncio.get_running_loop()
    data_room, data_worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fds_room, fds_worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "townhall.server.fanout.worker",
        "--data-fd", str(data_worker.fileno()), "--fd-channel", str(fds_worker.fileno()),
        "--limits", json.dumps(LIMITS),
        pass_fds=(data_worker.fileno(), fds_worker.fileno()),
    )  # fmt: skip
    data_worker.close()
    fds_worker.close()
    data_room.setblocking(False)
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    side = Side(sid=42)

    async def read_room() -> None:
        unpacker = ipc.Unpacker(ipc.ToRoom)
        while data := await loop.sock_recv(data_room, 65536):
            side.to_room.extend(unpacker.feed(data))

    async def read_client() -> None:
        buffer = bytearray()
        while data := await loop.sock_recv(theirs, 65536):
            buffer += data
            side.frames.extend(p for op, p in server_frames(buffer) if op == 0x2)

    async def send(message: ipc.Seam) -> None:
        if isinstance(message, ipc.Adopt):  # the socket first, as the pool hands it over
            ipc.send_fd(fds_room, ours.fileno())
            ours.close()
        await loop.sock_sendall(data_room, ipc.pack(message))

    async def client_send(payload: bytes) -> None:
        await loop.sock_sendall(theirs, client_frame(payload))

    async def client_close() -> None:
        theirs.shutdown(socket.SHUT_RDWR)

    side.send, side.client_send, side.client_close = send, client_send, client_close
    tasks = [loop.create_task(read_room()), loop.create_task(read_client())]
    try:
        yield side
    finally:
        with contextlib.suppress(OSError):
            await loop.sock_sendall(data_room, ipc.pack(ipc.Stop()))
        try:
            await asyncio.wait_for(process.wait(), WAIT_S)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sock in (data_room, fds_room, theirs):
                sock.close()


@contextlib.asynccontextmanager
async def networked_side() -> AsyncIterator[tuple[Side, NetEdge]]:
    """A networked edge on the shared NATS (a room of its own); the test is that room."""
    room, edge_id = f"one{uuid.uuid4().hex[:10]}", uuid.uuid4().hex[:12]
    subjects = bus.Subjects.of(room)
    nc = await nats.connect(NATS_URL)
    publisher = bus.Publisher(nc)
    rooms = EdgeRooms(
        nc, publisher, edge_id, EdgeLimits.from_json(LIMITS), lambda c: "",
        replay_s=30.0, timeout_s=WAIT_S, max_rooms=2, idle_s=600.0,
    )  # fmt: skip
    side = Side()
    decoder: msgspec.msgpack.Decoder[ipc.Seam] = msgspec.msgpack.Decoder(ipc.ToRoom)

    async def from_edge(msg: Msg) -> None:
        side.to_room.append(ipc.unpack_one(msg.data, decoder))

    inbound = await nc.subscribe(subjects.inbound(edge_id), cb=from_edge)
    link = await rooms.pin(room)
    server = await serve(lambda c: handle(link.edge, c, "", None), "127.0.0.1", 0, compression=None)
    port = next(iter(server.sockets)).getsockname()[1]
    client = await connect(f"ws://127.0.0.1:{port}", compression=None)

    async def read_client() -> None:
        async for data in client:
            if isinstance(data, bytes):
                side.frames.append(data)

    async def send(message: ipc.Seam) -> None:
        subject = subjects.ticks if isinstance(message, ipc.Tick) else subjects.edge(edge_id)
        await nc.publish(subject, ipc.pack(message))
        await nc.flush()

    async def client_send(payload: bytes) -> None:
        await client.send(payload)

    async def client_close() -> None:
        await client.close()

    side.send, side.client_send, side.client_close = send, client_send, client_close
    reader = asyncio.get_running_loop().create_task(read_client())
    try:
        await eventually(lambda: side.told(ipc.Connect), WAIT_S, "the edge's Connect")
        side.sid = side.told(ipc.Connect)[0].sid  # type: ignore[attr-defined]
        yield side, link.edge
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)
        await client.close()
        server.close()
        await server.wait_closed()
        await rooms.close()
        await inbound.unsubscribe()
        await publisher.close()
        await nc.close()


def tick(number: int, events: list[bytes], broadcasts: tuple[bytes, ...] = ()) -> ipc.Tick:
    return ipc.Tick(
        number,
        number * 50_000,
        events,
        {3: b"near crowd of cell 3"},
        b"far crowd",
        [],
        0,
        [],
        [(b, None) for b in broadcasts],
    )


async def drive(side: Side) -> None:
    """The same room conversation, each step waiting for what it makes the client get."""
    assert side.send is not None and side.client_send is not None
    assert side.client_close is not None
    await side.send(ipc.Adopt(side.sid, 7, "attendee", 3, [b"welcome", b"keyframe"]))
    await eventually(lambda: len(side.frames) >= 2, WAIT_S, "the Adopt's first messages")
    steps: list[tuple[ipc.Seam, int]] = [
        (tick(1, [b"event 1"], [b"a broadcast"]), 1),
        (ipc.Send(side.sid, [b"only for you"]), 1),
        (tick(2, [b"event 2", b"event 3"]), 2),
        (tick(4, [b"event 5"]), 1),  # tick 3 never came: a gap
    ]
    for message, frames in steps:
        want = len(side.frames) + frames
        await side.send(message)
        await eventually(lambda n=want: len(side.frames) >= n, WAIT_S, repr(message))
    await eventually(lambda: side.told(ipc.NeedKeyframe), WAIT_S, "a keyframe asked for")
    await side.client_send(ASK)
    await eventually(lambda: side.told(ipc.Inbound), WAIT_S, "the client's message")
    await side.client_close()
    await eventually(lambda: side.told(ipc.Gone), WAIT_S, "the client gone")


def room_heard(side: Side) -> list[object]:
    """What the room heard, client ids aside (each transport numbers its own)."""
    heard: list[object] = []
    for m in side.to_room:
        if isinstance(m, ipc.NeedKeyframe):
            heard.append(("NeedKeyframe", m.after))
        elif isinstance(m, ipc.Inbound):
            heard.extend(("Inbound", sid == side.sid, p) for sid, p in m.items)
        elif isinstance(m, ipc.Gone):
            heard.append(("Gone", m.sid == side.sid))
    return heard


async def test_a_worker_and_a_networked_edge_write_the_same_frames_for_the_same_ticks() -> None:
    assert ASK[1] != Pose.TYPE
    async with worker_side() as worker, networked_side() as (networked, edge):
        await asyncio.gather(drive(worker), drive(networked))
        assert type(edge) is Edge  # the networked edge is the one class a worker runs
    assert worker.frames[:2] == [b"welcome", b"keyframe"]
    assert b"event 1" in worker.frames and b"far crowd" in worker.frames
    assert worker.frames == networked.frames  # byte for byte, every frame, same order
    expected = [("NeedKeyframe", 2), ("Inbound", True, ASK), ("Gone", True)]
    assert room_heard(worker) == room_heard(networked) == expected
