"""The rooms one edge serves: a link per room, started by its first client, dropped when idle.

An edge serves clients of any room of the deployment: a client's room is the one its
token names (``room_of``: read, not verified; the room's authority verifies the token).
The first client of a room starts that room's link: an ``Edge`` (``netedge.py``) fed by
the room's tick stream, crowd, live and edge subjects, and a hello to the room's
authority. A room whose lease nobody holds, or whose authority sends no tick within
``bus.edge_timeout_s``, is refused (``RoomUnavailable``) and leaves nothing behind; so is
one more room than ``bus.edge_max_rooms``. A room id is checked as a NATS subject token
(``Subjects.of``) before the bus is asked anything, so a made-up room cannot name
arbitrary subjects. A room with no client for ``bus.edge_idle_s`` is unsubscribed; the
edge's own ``server.room`` is linked at start, whether its authority runs yet or not, and
stays (as before rooms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import jwt
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.js.api import DeliverPolicy
from nats.js.client import JetStreamContext
from websockets.asyncio.server import ServerConnection

from townhall.protocol import codec
from townhall.protocol.errors import ProtocolError
from townhall.protocol.messages import Join
from townhall.server.fanout import bus, lease
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.edge import EdgeLimits
from townhall.server.fanout.netedge import NetEdge, net_edge

log = logging.getLogger("townhall.bus.edge")


class RoomUnavailable(Exception):
    """This edge cannot serve the room now; the message says why (sent as the reason)."""


def room_of(first: bytes | str, default: str) -> str:
    """The room a connection's first message asks for: its Join token's ``room`` claim.

    Anything else (no Join, an empty token, a token that does not read, no string room)
    goes to ``default``, whose authority answers it as any room would (NOT_JOINED,
    AUTH_INVALID, WRONG_ROOM...). A room id that cannot name subjects goes there too:
    its authority answers WRONG_ROOM, and this edge subscribes to nothing for it.
    """
    if not isinstance(first, bytes):
        return default
    try:  # any size the listener let in (a Join of the longest token and resume is ~8 KiB)
        join = codec.decode_client(first, max_bytes=len(first))
    except ProtocolError:
        return default
    if not isinstance(join, Join) or not join.token:
        return default
    try:
        claims = jwt.decode(join.token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return default
    room = claims.get("room") if isinstance(claims, dict) else None
    if not isinstance(room, str):
        return default
    try:
        return bus.Subjects.of(room).room
    except bus.BusError:
        return default


@dataclass(eq=False)
class RoomLink:
    """One room as this edge serves it: its NetEdge and the subscriptions feeding it."""

    subjects: bus.Subjects
    edge: NetEdge
    on_bus: Callable[[Msg], Awaitable[None]]  # feeds ``edge`` from the room's subjects
    pinned: bool  # the edge's server.room: linked at start, never dropped when idle
    subs: list[Subscription] = field(default_factory=list)
    ticks: JetStreamContext.PushSubscription | None = None
    idle_since: float | None = None

    def silent(self, now: float, timeout_s: float) -> bool:
        """Fed once, and no tick since for ``timeout_s`` (its authority is gone). Ticks
        received but not yet read mean this edge is behind, not that the room is silent."""
        if not self.edge.last_tick or now - self.edge.last_tick_at <= timeout_s:
            return False
        return self.ticks is None or self.ticks.pending_msgs == 0


class EdgeRooms:
    """Every room this edge links, on one NATS connection."""

    def __init__(
        self,
        nc: NatsClient,
        publisher: bus.Publisher,
        edge_id: str,
        limits: EdgeLimits,
        address_of: Callable[[ServerConnection], str],
        *,
        replay_s: float,
        timeout_s: float,
        max_rooms: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.nc = nc
        self.publisher = publisher
        self.edge_id = edge_id
        self.limits = limits
        self.address_of = address_of
        self.replay_s = replay_s
        self.timeout_s = timeout_s
        self.max_rooms = max_rooms
        self.idle_s = idle_s
        self.clock = clock
        self.links: dict[str, RoomLink] = {}
        self._starting: dict[str, asyncio.Task[RoomLink]] = {}
        self.url = ""  # this edge's public WebSocket URL, announced to every room's authority
        self.refused = 0  # clients refused ROOM_UNAVAILABLE
        self.dropped_rooms = 0  # links dropped for being idle

    # ------------------------------------------------------------ linking

    async def pin(self, room: str) -> RoomLink:
        """The edge's own room: linked now, fed whenever its authority runs, kept."""
        link = await self._link(bus.Subjects.of(room), pinned=True)
        self.links[room] = link
        return link

    async def get(self, room: str) -> RoomLink:
        """The room's link, started if this is its first client; RoomUnavailable if not."""
        link = self.links.get(room)
        if link is not None:
            if link.silent(self.clock(), self.timeout_s):
                raise RoomUnavailable(f"room {room!r} is unreachable from this edge; try again")
            return link
        task = self._starting.get(room)
        if task is None:
            if len(self.links) + len(self._starting) >= self.max_rooms:
                raise RoomUnavailable(
                    f"this edge serves as many rooms as it may ({self.max_rooms}); try another"
                )
            task = asyncio.get_running_loop().create_task(self._start(room), name=f"link-{room}")
            self._starting[room] = task
            task.add_done_callback(lambda _: self._starting.pop(room, None))
        return await asyncio.shield(task)

    async def _start(self, room: str) -> RoomLink:
        try:
            subjects = bus.Subjects.of(room)
        except bus.BusError as exc:
            raise RoomUnavailable(str(exc)) from None
        if await lease.holder_of(self.nc, room) is None:
            raise RoomUnavailable(f"no authority serves room {room!r} now")
        try:
            link = await self._link(subjects, pinned=False)
        except (NatsError, TimeoutError, bus.BusError) as exc:
            log.warning("edge: cannot link a room", extra={"room": room, "error": str(exc)})
            raise RoomUnavailable(f"room {room!r} cannot be reached from this edge") from None
        try:
            await asyncio.wait_for(link.edge.fed.wait(), self.timeout_s)
        except TimeoutError:
            await self._unlink(link)
            raise RoomUnavailable(
                f"room {room!r} sent nothing in {self.timeout_s:g} s; try again"
            ) from None
        except BaseException:
            await self._unlink(link)
            raise
        self.links[room] = link
        log.info("edge: room linked", extra={"edge": self.edge_id, "room": room})
        return link

    async def _link(self, subjects: bus.Subjects, pinned: bool) -> RoomLink:
        room = bus.SubjectWriter(self.publisher, subjects.inbound(self.edge_id))
        edge, on_bus = net_edge(self.limits, room, self.timeout_s)
        edge.url = self.url
        link = RoomLink(subjects, edge, on_bus, pinned)
        try:
            await bus.ensure_stream(self.nc, subjects, self.replay_s)
            for subject in (subjects.edge(self.edge_id), subjects.crowd, subjects.live):
                link.subs.append(await self.nc.subscribe(subject, cb=on_bus))
            await self._subscribe_ticks(link)
        except BaseException:
            await self._unlink(link)
            raise
        edge.to_room(edge.stats())  # hello: the room knows this edge from now on
        return link

    async def _subscribe_ticks(self, link: RoomLink) -> None:
        link.ticks = await self.nc.jetstream().subscribe(
            link.subjects.ticks,
            cb=link.on_bus,
            ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW,
        )

    async def _unlink(self, link: RoomLink) -> None:
        """Unsubscribe from everything of the room (its clients, if any, are shed first)."""
        if self.links.get(link.subjects.room) is link:
            del self.links[link.subjects.room]
        link.edge.shed(ipc.RECONNECT, "this edge no longer serves the room; reconnect")
        for sub in [*link.subs, *([link.ticks] if link.ticks is not None else [])]:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        link.subs, link.ticks = [], None

    async def resubscribe(self) -> None:
        """After a reconnect: each room's stream and consumer again (a restarted NATS lost
        both, they lived in its memory). Ticks missed meanwhile are a gap: a keyframe repairs it."""
        for link in list(self.links.values()):
            if link.ticks is not None:
                with contextlib.suppress(Exception):
                    await link.ticks.unsubscribe()
            await bus.ensure_stream(self.nc, link.subjects, self.replay_s)
            await self._subscribe_ticks(link)
        log.info("edge: tick streams subscribed again", extra={"edge": self.edge_id})

    def announce(self, url: str) -> None:
        """This edge's URL, from now on in every room's Stats (and so its Welcomes)."""
        self.url = url
        for link in self.links.values():
            link.edge.url = url
            link.edge.to_room(link.edge.stats())

    # ------------------------------------------------------------ once a second

    async def every_second(self, stalled: bool = False) -> None:
        """Each room's counters (the edge's sign of life to it); shed the clients of a silent
        room; drop a room idle for ``bus.edge_idle_s``. ``stalled``: this process's own loop
        has just been held up (a crowd of handshakes, a busy machine): ticks may be waiting
        unread, so no room is judged silent this time."""
        now = self.clock()
        for room, link in list(self.links.items()):
            edge = link.edge
            edge.to_room(edge.stats())
            if edge.clients and not stalled and link.silent(now, self.timeout_s):
                log.error("no ticks from the room: shedding clients", extra={"room": room})
                edge.shed(ipc.RECONNECT, "the room is unreachable from this edge; reconnect")
            if edge.clients or link.pinned:
                link.idle_since = None
            elif link.idle_since is None:
                link.idle_since = now
            elif now - link.idle_since >= self.idle_s:
                log.info("edge: idle room dropped", extra={"edge": self.edge_id, "room": room})
                self.dropped_rooms += 1
                await self._unlink(link)

    def shed(self, code: int, reason: str) -> None:
        for link in self.links.values():
            link.edge.shed(code, reason)

    async def close(self) -> None:
        for task in list(self._starting.values()):
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)
        for link in list(self.links.values()):
            await self._unlink(link)

    def health(self) -> dict[str, dict[str, object]]:
        """Per room, what /healthz shows."""
        return {room: link_health(link) for room, link in self.links.items()}


def link_health(link: RoomLink) -> dict[str, object]:
    edge = link.edge
    return {
        "connections": len(edge.clients),
        "last_tick": edge.last_tick,
        "term": edge.term,
        "authority_changes": edge.authority_changes,
        "tick_gaps": edge.gaps,
        "bus_dropped": edge.dropped,
    }
