"""A client the room let go while its edge was silent is told to reconnect when the edge
speaks for it again (server/fanout/bus_room.py).

Under load an edge's messages can stall past ``bus.edge_timeout_s`` (seen in the failover
tests beside bench/capacity.py): the authority lets that edge's clients leave, the edge
comes back still holding them, and everything they sent was dropped as "inbound for unknown
client", with no reply, for good. The room's side of the bus runs here over the real NATS
on 127.0.0.1:4222, with its clock in the test's hands; the room itself is a recording
inbox (what the room host is told).
"""

from __future__ import annotations

import uuid

import msgspec
import nats

from townhall.server.fanout import seam as ipc
from townhall.server.fanout.bus import Subjects
from townhall.server.fanout.bus_room import BusRoom
from townhall.server.ops.metrics import Metrics

from .waiting import eventually

NATS_URL = "nats://127.0.0.1:4222"


class Inbox:
    """What the room host hears: connections coming and going, and their messages."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def connect(self, conn: int, address: str = "", guest: str = "") -> None:
        self.events.append(("connect", conn))

    def receive(self, conn: int, data: bytes | str) -> None:
        self.events.append(("receive", conn))

    def poses(self, slots: bytes, flags: bytes, records: bytes, bytes_in: int) -> None:
        pass

    def disconnect(self, conn: int) -> None:
        self.events.append(("disconnect", conn))


async def test_a_client_dropped_with_its_silent_edge_is_told_to_reconnect() -> None:
    subjects = Subjects.of(f"r{uuid.uuid4().hex[:10]}")
    now = [0.0]
    inbox = Inbox()
    nc = await nats.connect(NATS_URL)
    room = BusRoom(nc, subjects, inbox, lambda: b"", Metrics(), 2.0, clock=lambda: now[0])
    to_edge: list[ipc.Seam] = []
    decoder = msgspec.msgpack.Decoder(ipc.ToWorker)

    async def heard(msg: nats.aio.msg.Msg) -> None:
        to_edge.append(ipc.unpack_one(msg.data, decoder))

    await nc.subscribe(subjects.edge("e1"), cb=heard)
    await room.start()
    edge = await nats.connect(NATS_URL)
    try:

        async def from_edge(message: ipc.Seam) -> None:
            await edge.publish(subjects.inbound("e1"), ipc.pack(message))

        await from_edge(ipc.Connect(7, "127.0.0.1", ""))
        await from_edge(ipc.Inbound([(7, b"hello")]))
        await eventually(lambda: len(inbox.events) == 2, 10, "the client in the room")
        (_, conn), _ = inbox.events
        # The edge falls silent past bus.edge_timeout_s: its client leaves the room.
        now[0] += 5.0
        await eventually(
            lambda: ("disconnect", conn) in inbox.events, 10, "the silent edge's client gone"
        )
        # The edge is back and speaks for that client: it is told to reconnect, once.
        await from_edge(ipc.Inbound([(7, b"still here?")]))
        await from_edge(ipc.Inbound([(7, b"hello?")]))
        await eventually(
            lambda: any(isinstance(m, ipc.Close) for m in to_edge), 10, "a Close for the client"
        )
        await edge.flush()
        await nc.flush()
        closes = [m for m in to_edge if isinstance(m, ipc.Close)]
        assert [(c.sid, c.code) for c in closes] == [(7, 1012)]
        assert ("receive", conn) in inbox.events and inbox.events.count(("receive", conn)) == 1
    finally:
        await edge.close()
        await room.stop()
        await nc.close()
