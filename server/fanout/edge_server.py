"""``townhall serve --role edge``: a WebSocket endpoint fed by the rooms over NATS.

Connects to the bus, links its own room (``server.room``: the room's tick stream as a
JetStream ordered consumer, which replays whatever it missed, its crowd and live subjects
and this edge's own subject), then listens for clients. A client's first message (its
Join) names its room by its token; the first client of another room links that room too
(``edge_rooms.py``), one listener and one NATS connection for all. A room this edge cannot
serve (no authority, silent, one room too many) gets ``ROOM_UNAVAILABLE``, fatal: an Error,
then close code 4032 with the reason. Once a second the edge sends each room its counters,
which are also how the room knows it is alive; if no tick has come for
``bus.edge_timeout_s`` while it holds clients of a room, it sheds them with close code 1012
(try again) rather than serve a frozen room; cut off from the bus it answers the WebSocket
handshake with HTTP 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from http import HTTPStatus

from nats.aio.client import Client as NatsClient
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Error, Join
from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout import bus
from townhall.server.fanout.edge import EdgeLimits
from townhall.server.fanout.edge_rooms import EdgeRooms, RoomUnavailable, room_of
from townhall.server.fanout.netedge import NetEdge, handle
from townhall.server.fanout.sendlimits import SendLimits
from townhall.server.gateway.addresses import ClientAddresses
from townhall.server.gateway.admission import Admission
from townhall.server.gateway.http import WS_PATH, json_response, text_response
from townhall.server.ops.config import Settings
from townhall.server.ops.errors import listen_error
from townhall.server.ops.metrics import Metrics

log = logging.getLogger("townhall.bus.edge")

HARD_FRAME_FACTOR = 8  # as the room's own endpoint (app.py)
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]", "*"})
__all__ = ["EdgeServer", "edge_limits"]
PRESENCE_EVERY_S = 1.0
STALL_S = 0.5  # a chores round woken this much late: the edge's own loop was held up


def edge_limits(settings: Settings) -> EdgeLimits:
    r, lim = settings.room, settings.limits
    return EdgeLimits(
        TickPlan(r.tick_hz, r.crowd_hz, r.spectator_every),
        SendLimits(lim.send_soft_bytes, lim.send_hard_bytes, lim.slow_close_s),
        lim.max_frame_bytes * HARD_FRAME_FACTOR,
        float(r.pose_hz),
        lim.socket_send_buffer,
    )


class EdgeServer:
    """One edge process: the bus link, an Edge per room it serves, the WebSocket server."""

    def __init__(self, settings: Settings, edge_id: str = "") -> None:
        self.settings = settings
        self.id = edge_id or uuid.uuid4().hex[:12]
        self.subjects = bus.Subjects.of(settings.server.room)  # the default room
        self.metrics = Metrics()
        s = settings.server
        self.admission = Admission(
            s.allowed_origins,
            s.public_url,
            s.max_connections,
            self.metrics,
            addresses=ClientAddresses(s.trusted_proxies, s.client_address_header),
            connects_per_address_per_min=settings.limits.connects_per_address_per_min,
        )
        self.nc: NatsClient | None = None
        self.publisher: bus.Publisher | None = None
        self.rooms: EdgeRooms | None = None
        self._server: Server | None = None
        self._chores: asyncio.Task[None] | None = None
        self.port = s.port

    @property
    def edge(self) -> NetEdge | None:
        """The edge of the default room (``server.room``)."""
        if self.rooms is None:
            return None
        link = self.rooms.links.get(self.subjects.room)
        return link.edge if link is not None else None

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        log.info("edge serving", extra={"edge": self.id, "url": self.ws_url})

    async def _start(self) -> None:
        s = self.settings
        self.nc = nc = await bus.connect(s.bus, f"townhall-edge-{self.id}", [self._resubscribe])
        self.publisher = bus.Publisher(nc)
        address_of = self.admission.address_of
        self.rooms = rooms = EdgeRooms(
            nc,
            self.publisher,
            self.id,
            edge_limits(s),
            lambda c: address_of.get(c, ""),
            replay_s=s.bus.replay_s,
            timeout_s=s.bus.edge_timeout_s,
            max_rooms=s.bus.edge_max_rooms,
            idle_s=s.bus.edge_idle_s,
        )
        await rooms.pin(self.subjects.room)
        try:
            self._server = await serve(
                self._handle,
                s.server.host,
                s.server.port,
                process_request=self._process_request,
                max_size=s.limits.max_frame_bytes * HARD_FRAME_FACTOR,
                compression=None,
                max_queue=64,
                backlog=4096,
            )
        except OSError as exc:
            raise listen_error(s.server.host, s.server.port, exc) from exc
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        url = self.announced_url()
        if not url:
            log.warning(
                "this edge announces no URL (server.host is a wildcard and server.public_url "
                "is empty): clients of a dying edge will not be sent here",
                extra={"edge": self.id},
            )
        rooms.announce(url)  # the rooms list this edge's URL in Welcomes from now on
        self._chores = asyncio.get_running_loop().create_task(self._every_second())

    async def _resubscribe(self) -> None:
        if self.rooms is not None:
            await self.rooms.resubscribe()

    async def _every_second(self) -> None:
        """Counters to each room (the edge's sign of life), silent rooms' clients shed, idle
        rooms dropped; and this edge's URL to every authority (``bus.presence``)."""
        rooms, publisher = self.rooms, self.publisher
        assert rooms is not None and publisher is not None
        loop = asyncio.get_running_loop()
        while True:
            asleep = loop.time()
            await asyncio.sleep(PRESENCE_EVERY_S)
            # Woken much later than asked: the loop itself was held up, and what the bus
            # sent meanwhile may not be read yet. Judge the rooms' silence next time.
            stalled = loop.time() - asleep > PRESENCE_EVERY_S + STALL_S
            try:
                await rooms.every_second(stalled)
            except Exception:  # a bug here must not end the edge's chores
                log.exception("edge: once-a-second chores failed")
            if rooms.url:
                publisher.publish(
                    bus.presence(self.settings.bus.deployment, self.id),
                    bus.presence_message(rooms.url),
                )

    # ------------------------------------------------------------ clients

    async def _handle(self, connection: ServerConnection) -> None:
        """A client: its first message (the Join) says its room; that room's edge takes it."""
        rooms = self.rooms
        assert rooms is not None
        try:
            first = await asyncio.wait_for(connection.recv(), self.settings.limits.join_timeout_s)
        except TimeoutError:
            await self._refuse(connection, ErrorCode.JOIN_TIMEOUT, "no Join in time")
            return
        except ConnectionClosed:
            return
        room = room_of(first, self.subjects.room)
        try:
            link = await rooms.get(room)
        except RoomUnavailable as exc:
            rooms.refused += 1
            log.info("edge: room refused", extra={"room": room, "reason": str(exc)})
            await self._refuse(connection, ErrorCode.ROOM_UNAVAILABLE, str(exc))
            return
        await handle(link.edge, connection, rooms.address_of(connection), first)

    async def _refuse(self, connection: ServerConnection, code: ErrorCode, reason: str) -> None:
        """A fatal Error, then the close that carries it (SPEC §2, step 4)."""
        error = Error(int(code), reason[:512], Join.TYPE, True, 0)
        with contextlib.suppress(ConnectionClosed):
            await connection.send(codec.encode(error))
            await connection.close(code.close_code, reason[:120])

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        refused = self.admission.check(connection, request)
        if refused is not None:
            return refused
        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            return self._unless_cut_off()
        if path == "/healthz":
            return json_response(self._health())
        return text_response("An edge serves the rooms' WebSocket only.\n", HTTPStatus.NOT_FOUND)

    def _health(self) -> dict[str, object]:
        """The default room's figures as before rooms, and every room's under ``rooms``."""
        edge, rooms = self.edge, self.rooms
        return {
            "status": "ok",
            "role": "edge",
            "edge": self.id,
            "room": self.subjects.room,
            "connections": sum(len(lk.edge.clients) for lk in rooms.links.values()) if rooms else 0,
            "last_tick": edge.last_tick if edge else 0,
            "term": edge.term if edge else 0,
            "authority_changes": edge.authority_changes if edge else 0,
            "tick_gaps": edge.gaps if edge else 0,
            "bus_dropped": edge.dropped if edge else 0,
            "rooms": rooms.health() if rooms else {},
            "rooms_refused": rooms.refused if rooms else 0,
            "rooms_dropped": rooms.dropped_rooms if rooms else 0,
        }

    def _unless_cut_off(self) -> Response | None:
        """HTTP 503 with Retry-After while this edge is cut off from the bus: a client tries
        again, or another edge, rather than wait for a Welcome. (A room that is silent while
        the bus answers is refused after the Join, by room: ROOM_UNAVAILABLE.)"""
        if self.nc is None or self.nc.is_connected:
            return None
        refused = text_response(
            "this edge cannot reach the rooms; try again\n", HTTPStatus.SERVICE_UNAVAILABLE
        )
        refused.headers["Retry-After"] = "1"
        return refused

    async def stop(self) -> None:
        if self._chores is not None:
            self._chores.cancel()
            await asyncio.gather(self._chores, return_exceptions=True)
        if self._server is not None:
            if self.rooms is not None:
                self.rooms.shed(1001, "server stopping")
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self.rooms is not None:
            await self.rooms.close()
        if self.publisher is not None:
            await self.publisher.close()
        if self.nc is not None and not self.nc.is_closed:
            await self.nc.close()

    def announced_url(self) -> str:
        """The URL clients are told to reach this edge at (Welcome's ``edges``).

        ``server.public_url`` if set (a load balancer or a public name), else HOST:PORT when
        HOST names one address; a wildcard (0.0.0.0, ::) names none a client could use.
        """
        s = self.settings.server
        if not s.public_url and s.host in WILDCARDS:
            return ""
        return self.ws_url

    @property
    def ws_url(self) -> str:
        base = self.settings.server.public_url or f"http://{self.settings.server.host}:{self.port}"
        return base.rstrip("/").replace("http", "ws", 1) + WS_PATH
