"""``townhall serve --role edge``: a WebSocket endpoint fed by the room over NATS.

Connects to the bus, subscribes to the room's tick stream (a JetStream ordered consumer:
the client library replays from the stream whatever it missed), its crowd and live
subjects and this edge's own subject, then listens for clients. Once a second it sends
the room its counters, which are also how the room knows it is alive; if no tick has
come for ``bus.edge_timeout_s`` while it holds clients, it sheds them with close code
1012 (try again) rather than serve a frozen room.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from http import HTTPStatus

from nats.aio.client import Client as NatsClient
from nats.js.api import DeliverPolicy
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout import bus
from townhall.server.fanout.edge import EdgeLimits
from townhall.server.fanout.netedge import NetEdge
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
SHED_CODE = 1012  # "service restart": clients reconnect, to another edge if there is one


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
    """One edge process: the bus link, the NetEdge, the WebSocket server."""

    def __init__(self, settings: Settings, edge_id: str = "") -> None:
        self.settings = settings
        self.id = edge_id or uuid.uuid4().hex[:12]
        self.subjects = bus.Subjects.of(settings.server.room)
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
        self.edge: NetEdge | None = None
        self._server: Server | None = None
        self._chores: asyncio.Task[None] | None = None
        self.port = s.port

    async def start(self) -> None:
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        log.info("edge serving", extra={"edge": self.id, "url": self.ws_url})

    async def _start(self) -> None:
        s = self.settings
        self.nc = nc = await bus.connect(s.bus, f"townhall-edge-{self.id}")
        await bus.ensure_stream(nc, self.subjects, s.bus.replay_s)
        self.publisher = bus.Publisher(nc)
        room = bus.SubjectWriter(self.publisher, self.subjects.inbound(self.id))
        address_of = self.admission.address_of
        self.edge = edge = NetEdge(self.id, edge_limits(s), room, lambda c: address_of.get(c, ""))
        for subject in (self.subjects.edge(self.id), self.subjects.crowd, self.subjects.live):
            await nc.subscribe(subject, cb=edge.on_bus)
        await nc.jetstream().subscribe(
            self.subjects.ticks,
            cb=edge.on_bus,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )
        edge.to_room(edge.stats())  # hello: the room knows this edge from now on
        try:
            self._server = await serve(
                edge.handle,
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
        edge.url = self.announced_url()
        if not edge.url:
            log.warning(
                "this edge announces no URL (server.host is a wildcard and server.public_url "
                "is empty): clients of a dying edge will not be sent here",
                extra={"edge": self.id},
            )
        edge.to_room(edge.stats())  # the room lists this edge's URL in Welcomes from now on
        self._chores = asyncio.get_running_loop().create_task(self._every_second())

    async def _every_second(self) -> None:
        """Counters to the room (the edge's sign of life); shed clients of a silent room."""
        edge = self.edge
        assert edge is not None
        timeout = self.settings.bus.edge_timeout_s
        while True:
            await asyncio.sleep(1.0)
            edge.to_room(edge.stats())
            if edge.sessions and time.monotonic() - edge.last_tick_at > timeout:
                log.error("no ticks from the room: shedding clients", extra={"edge": self.id})
                edge.shed(SHED_CODE, "the room is unreachable from this edge; reconnect")

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        refused = self.admission.check(connection, request)
        if refused is not None:
            return refused
        path = request.path.split("?", 1)[0]
        if path == WS_PATH:
            return None
        if path == "/healthz":
            edge = self.edge
            return json_response(
                {
                    "status": "ok",
                    "role": "edge",
                    "edge": self.id,
                    "room": self.subjects.room,
                    "connections": len(edge.sessions) if edge else 0,
                    "last_tick": edge.last_tick if edge else 0,
                    "tick_gaps": edge.gaps if edge else 0,
                    "bus_dropped": edge.dropped if edge else 0,
                }
            )
        return text_response("An edge serves the room's WebSocket only.\n", HTTPStatus.NOT_FOUND)

    async def stop(self) -> None:
        if self._chores is not None:
            self._chores.cancel()
            await asyncio.gather(self._chores, return_exceptions=True)
        if self._server is not None:
            if self.edge is not None:
                self.edge.shed(1001, "server stopping")
            self._server.close(close_connections=True)
            await self._server.wait_closed()
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
