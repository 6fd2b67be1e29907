"""A networked edge's transport: its own WebSocket clients, its room over the bus.

The edge logic is the one ``Edge`` a fan-out worker runs too (``edge.py``); this module is
what differs. The edge accepts clients itself (python-websockets' server): ``handle``
tells the room each one connected and passes on what it sends (poses limited and batched
by the ``Uplink``, the rest as it came). ``BusLink`` is the edge's ``RoomLink`` over NATS:
its messages go to the room's inbound subject for this edge, and the room's come from its
tick stream and subjects (``edge_rooms.py``), decoded and checked like client input: one
that does not decode is logged and dropped. The room's Stop sheds the clients with 1012:
they reconnect, and find the room's next authority.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import msgspec
from nats.aio.msg import Msg
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from townhall.server.core.ratelimit import PoseLimiter
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.edge import Edge, EdgeLimits
from townhall.server.fanout.uplink import RoomWriter
from townhall.server.gateway import guests
from townhall.server.gateway.session import Session

log = logging.getLogger("townhall.bus.edge")


@dataclass(eq=False)
class EdgeSession(Session):
    """A client connected to this edge; ``poses`` applies the room's pose rate once joined."""

    poses: PoseLimiter = field(default_factory=lambda: PoseLimiter(20.0, time.monotonic()))


NetEdge = Edge[EdgeSession]


class BusLink:
    """The room of a networked edge, over NATS."""

    def __init__(self, room: RoomWriter) -> None:
        self.room = room
        self._decoder: msgspec.msgpack.Decoder[ipc.Seam] = msgspec.msgpack.Decoder(ipc.ToWorker)

    def write(self, data: bytes) -> None:
        self.room.write(data)

    def handed_over(self, edge: NetEdge, adopt: ipc.Adopt) -> EdgeSession | None:
        return None  # this edge accepted its clients itself: none come with an Adopt

    def stop(self, edge: NetEdge) -> None:
        edge.shed(1012, "server restarting")

    def receiver(self, edge: NetEdge) -> Callable[[Msg], Awaitable[None]]:
        """The NATS callback feeding ``edge``: decoded and checked, else logged and dropped."""

        async def on_bus(msg: Msg) -> None:
            try:
                message = ipc.unpack_one(msg.data, self._decoder)
            except ValueError as exc:
                edge.dropped += 1
                log.warning(
                    "bus message dropped", extra={"subject": msg.subject, "reason": str(exc)}
                )
                return
            edge.on_room(message)

        return on_bus


def net_edge(
    limits: EdgeLimits, room: RoomWriter, term_timeout_s: float
) -> tuple[NetEdge, Callable[[Msg], Awaitable[None]]]:
    """A networked edge writing to ``room``, and the NATS callback that feeds it."""
    link = BusLink(room)
    edge: NetEdge = Edge(limits, link, term_timeout_s)
    return edge, link.receiver(edge)


async def handle(
    edge: NetEdge, connection: ServerConnection, address: str, first: bytes | str | None = None
) -> None:
    """One client, from handshake to close: its frames go to the room. ``first``: the
    message the edge already read to learn the client's room (its Join)."""
    session = EdgeSession(connection, connection.transport)
    request = connection.request
    cookies = guests.cookie_values(request.headers) if request is not None else []
    edge.connect(session, address, ",".join(cookies))
    uplink = edge.uplink
    if first is not None:
        if isinstance(first, str):
            uplink.forward(session.id, first)
        else:
            uplink.message(session, first)
    try:
        async for data in connection:
            if session.closing:
                continue  # keep draining so the client's close frame is read
            if isinstance(data, str):
                uplink.forward(session.id, data)
            else:
                uplink.message(session, data)
    except ConnectionClosed:
        pass
    finally:
        edge.gone(session)
        if session.close_task is not None:
            await session.close_task
