"""The edge: one room's clients on this process, and what it does with each message from the room.

The room decides; the edge writes. One class for both kinds of edge: a fan-out worker of
``server.workers = N`` (its room on the other end of a Unix-socket seam, ``worker.py``) and
a networked edge (``serve --role edge``, its rooms over NATS, ``netedge.py``). What differs
is only the ``RoomLink``: how packed seam messages reach the room, where a client handed
over with its Adopt comes from, and what the room's Stop means for this process.

The edge holds its clients, writes every room tick to them through the shared
``TickWriter`` (the same loop the room process uses for its own clients), passes
per-client sends and closes through, tells the room when a client is gone, and sends its
clients' messages to the room through the ``Uplink`` (poses limited and batched).

Tick numbers run on by one; a gap makes the edge ask the room for a keyframe, which its
clients get with the next tick, so nothing is lost silently. Ticks carry the authority's
lease term (``lease.py``; always 0 on the seam). A higher term is a new authority that
took the room over from the store: it knows none of this edge's clients, so the edge
closes them with 1012 and they rejoin (and get the new authority's keyframe); its tick
numbers start afresh. A lower term is a deposed authority's late tick: dropped, unless
the current one has been silent for ``term_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from townhall.protocol.messages import ROLES, Role
from townhall.server.core.ratelimit import PoseLimiter
from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.sendlimits import SendLimits
from townhall.server.fanout.uplink import Uplink
from townhall.server.fanout.writer import TickIn, TickWriter

log = logging.getLogger("townhall.edge")

RESTART_TICKS = 100  # a tick this far behind the last one: the room started afresh


@dataclass(frozen=True)
class EdgeLimits:
    """What the room tells an edge at start: its plan, send limits and frame limit."""

    plan: TickPlan
    send: SendLimits
    max_message_bytes: int
    pose_hz: float
    socket_send_buffer: int = 0
    ping_interval_s: float = 20.0

    @classmethod
    def from_json(cls, limits: dict[str, Any]) -> EdgeLimits:
        return cls(
            TickPlan(
                int(limits.get("tick_hz", 20)),
                int(limits.get("crowd_hz", 10)),
                max(1, int(limits.get("spectator_every", 1))),
            ),
            SendLimits(
                int(limits["send_soft_bytes"]),
                int(limits["send_hard_bytes"]),
                float(limits["slow_close_s"]),
            ),
            int(limits["max_message_bytes"]),
            float(limits.get("pose_hz", 20)),
            int(limits.get("socket_send_buffer", 0)),
            float(limits.get("ping_interval_s", 20.0)),
        )


def tick_in(tick: ipc.Tick) -> TickIn:
    """A seam tick as the write loop takes it (role names checked, frozen)."""
    broadcasts = tuple(
        (payload, frozenset(role_of(r) for r in roles) if roles else None)
        for payload, roles in tick.broadcasts
    )
    return TickIn(
        tick.number,
        tick.now_us,
        tuple(tick.events),
        tick.near,
        tick.far or None,
        tuple(tick.stage),
        tick.stage_first,
        tuple(tick.stage_ends_us),
        broadcasts,
    )


def role_of(name: str) -> Role:
    for role in ROLES:
        if role == name:
            return role
    return "spectator"


class Held(Protocol):
    """A client an edge holds: what the writer, the uplink and the room's orders need."""

    id: int
    slot: int
    role: Role | None
    cell: int
    joined: bool
    closing: bool
    behind_since: float
    stage_sent: int
    since_tick: int
    poses: PoseLimiter

    def write(self, data: bytes) -> int: ...
    def buffered(self) -> int: ...
    def close(self, code: int, reason: str) -> None: ...
    def abort(self) -> None: ...


C = TypeVar("C", bound=Held)


class RoomLink(Protocol[C]):
    """How an edge reaches its room: the Unix-socket seam of a worker, or NATS subjects."""

    def write(self, data: bytes) -> None:
        """A packed seam message to the room."""

    def handed_over(self, edge: Edge[C], adopt: ipc.Adopt) -> C | None:
        """The client whose socket came with this Adopt (a worker's), or None: a networked
        edge accepted its clients itself, and holds them from their Connect."""

    def stop(self, edge: Edge[C]) -> None:
        """The room stops: what that means for this process's clients and itself."""


class Edge(Generic[C]):
    """One room's clients on this process, written from that room's messages."""

    def __init__(self, limits: EdgeLimits, link: RoomLink[C], term_timeout_s: float = 5.0) -> None:
        self.limits = limits
        self.link = link
        self.url = ""  # a networked edge's public WebSocket URL, announced in its Stats
        self.writer = TickWriter(limits.plan, limits.send)
        self.uplink = Uplink(time.monotonic)
        self.uplink.room = link
        self.clients: dict[int, C] = {}
        self.last_tick = 0
        self.last_tick_at = time.monotonic()
        self.crowd: ipc.Crowd | None = None
        self.gaps = 0  # tick gaps that needed a keyframe
        self.term = 0  # the lease term of the authority whose ticks we write
        self.term_timeout_s = term_timeout_s
        self.authority_changes = 0  # new terms seen after the first
        self.dropped = 0  # room messages refused
        self.tick_max_s = 0.0
        self.fed = asyncio.Event()  # set by the first tick: the room's authority is there

    def to_room(self, message: ipc.Seam) -> None:
        self.link.write(ipc.pack(message))

    # ------------------------------------------------------------ from the room

    def on_room(self, message: ipc.Seam) -> None:
        """One message from the room; one that fails is counted and logged, never fatal."""
        try:
            self._on_room(message)
        except Exception:  # a bug or a message we cannot use must not end the edge
            self.dropped += 1
            log.exception("room message failed", extra={"kind": type(message).__name__})

    def _on_room(self, message: ipc.Seam) -> None:
        if isinstance(message, ipc.Tick):
            started = time.perf_counter()
            self.tick(message)
            self.tick_max_s = max(self.tick_max_s, time.perf_counter() - started)
        elif isinstance(message, ipc.Crowd):
            if self.crowd is None or message.number > self.crowd.number:
                self.crowd = message  # latest wins; written with the next tick
        elif isinstance(message, ipc.Broadcast):
            roles = frozenset(role_of(r) for r in message.roles) if message.roles else None
            self.writer.broadcast(message.payload, roles)
        elif isinstance(message, ipc.Send):
            client = self.clients.get(message.sid)
            if client is not None:
                self.writer.send(client, message.payloads)
        elif isinstance(message, ipc.Adopt):
            self.adopt(message)
        elif isinstance(message, ipc.Close):
            self.close(message)
        elif isinstance(message, ipc.Stop):
            self.link.stop(self)

    def adopt(self, adopt: ipc.Adopt) -> None:
        """The room let a client in: its first writes, then every tick."""
        client = self.clients.get(adopt.sid)
        if client is None:
            client = self.link.handed_over(self, adopt)
        if client is None or client.closing:
            return
        client.slot, client.role, client.cell = adopt.slot, role_of(adopt.role), adopt.cell
        client.joined = True
        client.poses = PoseLimiter(self.limits.pose_hz, time.monotonic())
        self.clients[client.id] = client
        self.writer.add(client)
        self.writer.send(client, adopt.initial)

    def close(self, close: ipc.Close) -> None:
        client = self.clients.get(close.sid)
        if client is None:
            return
        self.writer.remove(client)
        if close.code == ipc.ABORT:
            client.closing = True
            client.abort()
        else:
            client.close(close.code, close.reason)

    def tick(self, tick: ipc.Tick) -> None:
        if tick.term != self.term and not self._new_term(tick.term):
            return
        last = self.last_tick
        if last and tick.number <= last:
            if tick.number > last - RESTART_TICKS:
                return  # already written (a replay overlapping what we had)
            self.gaps += 1
            log.warning("tick numbers restarted", extra={"tick": tick.number, "last": last})
            self.to_room(ipc.NeedKeyframe(0))
        elif last and tick.number != last + 1:
            self.gaps += 1
            gap = {"after": last, "got": tick.number}
            log.warning("tick gap: asking for a keyframe", extra=gap)
            self.to_room(ipc.NeedKeyframe(last))
        crowd = self.crowd
        if crowd is not None and crowd.number <= tick.number:
            tick = msgspec.structs.replace(tick, near=crowd.near, far=crowd.far)
            self.crowd = None
        self.last_tick = tick.number
        self.last_tick_at = time.monotonic()
        self.fed.set()
        self.writer.tick(tick_in(tick), self.last_tick_at)

    def _new_term(self, term: int) -> bool:
        """A tick of another term: follow a new authority (True) or drop a deposed one's."""
        current_alive = time.monotonic() - self.last_tick_at < self.term_timeout_s
        if self.term and term < self.term and current_alive:
            self.dropped += 1
            log.warning("tick of a deposed authority dropped", extra={"term": term})
            return False
        had, self.term = self.term, term
        self.last_tick = 0  # a new authority numbers its ticks afresh
        self.crowd = None
        if had:
            self.authority_changes += 1
            log.warning(
                "a new authority for the room: its clients rejoin",
                extra={"term": term, "was": had, "clients": len(self.clients)},
            )
            self.shed(1012, "the room moved to a new authority; reconnect")
        return True

    # ------------------------------------------------------------ clients

    def connect(self, client: C, address: str, guest: str = "") -> None:
        """A client that reached this edge itself (a networked edge): the room hears of it,
        with its guest cookie's values as they came (``guest``, comma-separated: the room
        verifies them, an edge holds no key)."""
        self.clients[client.id] = client
        self.to_room(ipc.Connect(client.id, address, guest))

    def gone(self, client: C) -> None:
        """A client's connection ended: the room sees its last messages, then that it left."""
        if self.clients.pop(client.id, None) is None:
            return
        self.writer.remove(client)
        self.uplink.flush()
        self.to_room(ipc.Gone(client.id))

    def shed(self, code: int, reason: str) -> None:
        """Close every client (they reconnect, to another edge if there is one)."""
        for client in list(self.clients.values()):
            self.writer.remove(client)
            client.close(code, reason)

    def stats(self) -> ipc.Stats:
        """Counters since the previous call (also the edge's sign of life to the room)."""
        w = self.writer
        stats = ipc.Stats(
            w.messages_out, w.bytes_out, w.frames_dropped, w.closes, self.uplink.errors,
            self.tick_max_s, url=self.url,
        )  # fmt: skip
        w.messages_out = w.bytes_out = w.frames_dropped = 0
        w.closes = {}
        self.uplink.errors = {}
        self.tick_max_s = 0.0
        return stats
