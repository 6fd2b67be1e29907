"""A networked edge: its own WebSocket clients, written from the room's ticks on the bus.

The edge accepts clients itself (python-websockets' server), tells the room each one
connected, forwards what they send (poses limited and batched by the ``Uplink``, the
rest as it came) and writes them everything: the ticks every edge receives from the
room's stream, through the same ``TickWriter`` the room and the local workers use, and
the replies the room addresses to one client. Tick numbers run on by one; a gap the
stream could not fill makes the edge ask the room for a keyframe, which its clients get
with the next tick, so nothing is lost silently. A bus message that does not decode is
logged and dropped.

Ticks carry the authority's lease term (``lease.py``). A higher term is a new authority
that took the room over from the store: it knows none of this edge's clients, so the
edge closes them with 1012 and they rejoin (and get the new authority's keyframe); its
tick numbers start afresh. A lower term is a deposed authority's late tick: dropped,
unless the current one has been silent for ``term_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import msgspec
from nats.aio.msg import Msg
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from townhall.server.core.ratelimit import PoseLimiter
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.edge import EdgeLimits, role_of, tick_in
from townhall.server.fanout.uplink import RoomWriter, Uplink
from townhall.server.fanout.writer import TickWriter
from townhall.server.gateway.session import Session

log = logging.getLogger("townhall.bus.edge")

RESTART_TICKS = 100  # a tick this far behind the last one: the room started afresh


@dataclass(eq=False)
class EdgeSession(Session):
    """A client connected to this edge; ``poses`` applies the room's pose rate once joined."""

    poses: PoseLimiter = field(default_factory=lambda: PoseLimiter(20.0, time.monotonic()))


class NetEdge:
    """This edge's clients, and what it does with each message from the room."""

    def __init__(
        self,
        edge_id: str,
        limits: EdgeLimits,
        room: RoomWriter,
        address_of: Callable[[ServerConnection], str] = lambda c: "",
        term_timeout_s: float = 5.0,
    ) -> None:
        self.id = edge_id
        self.url = ""  # the public WebSocket URL this edge announces in its Stats
        self.limits = limits
        self.room = room
        self.address_of = address_of
        self.writer = TickWriter(limits.plan, limits.send)
        self.uplink = Uplink(time.monotonic)
        self.uplink.room = room
        self.sessions: dict[int, EdgeSession] = {}
        self.last_tick = 0
        self.last_tick_at = time.monotonic()
        self.crowd: ipc.Crowd | None = None
        self.gaps = 0  # tick gaps that needed a keyframe
        self.term = 0  # the lease term of the authority whose ticks we write
        self.term_timeout_s = term_timeout_s
        self.authority_changes = 0  # new terms seen after the first
        self.dropped = 0  # bus messages refused
        self.fed = asyncio.Event()  # set by the first tick: the room's authority is there
        self._decoder: msgspec.msgpack.Decoder[ipc.Seam] = msgspec.msgpack.Decoder(ipc.ToWorker)

    def to_room(self, message: ipc.Seam) -> None:
        self.room.write(ipc.pack(message))

    # ------------------------------------------------------------ clients

    async def handle(self, connection: ServerConnection, first: bytes | str | None = None) -> None:
        """One client, from handshake to close: its frames go to the room. ``first``: the
        message the edge already read to learn the client's room (its Join)."""
        session = EdgeSession(connection, connection.transport)
        self.sessions[session.id] = session
        self.to_room(ipc.Connect(session.id, self.address_of(connection), ""))
        if first is not None:
            if isinstance(first, str):
                self.uplink.forward(session.id, first)
            else:
                self.uplink.message(session, first)
        try:
            async for data in connection:
                if session.closing:
                    continue  # keep draining so the client's close frame is read
                if isinstance(data, str):
                    self.uplink.forward(session.id, data)
                else:
                    self.uplink.message(session, data)
        except ConnectionClosed:
            pass
        finally:
            self.sessions.pop(session.id, None)
            self.writer.remove(session)
            self.uplink.flush()  # its last messages reach the room before it hears it left
            self.to_room(ipc.Gone(session.id))
            if session.close_task is not None:
                await session.close_task

    def shed(self, code: int, reason: str) -> None:
        """Close every client (they reconnect elsewhere)."""
        for session in list(self.sessions.values()):
            session.close(code, reason)
            self.writer.remove(session)

    # ------------------------------------------------------------ from the room

    async def on_bus(self, msg: Msg) -> None:
        """A NATS message from the room: decoded and checked, else logged and dropped."""
        try:
            message = ipc.unpack_one(msg.data, self._decoder)
        except ValueError as exc:
            self.dropped += 1
            log.warning("bus message dropped", extra={"subject": msg.subject, "reason": str(exc)})
            return
        try:
            self.on_room(message)
        except Exception:  # a bug or a message we cannot use must not end the edge
            self.dropped += 1
            log.exception("bus message failed", extra={"subject": msg.subject})

    def on_room(self, message: ipc.Seam) -> None:
        if isinstance(message, ipc.Tick):
            self.tick(message)
        elif isinstance(message, ipc.Crowd):
            if self.crowd is None or message.number > self.crowd.number:
                self.crowd = message  # latest wins; written with the next tick
        elif isinstance(message, ipc.Broadcast):
            roles = frozenset(role_of(r) for r in message.roles) if message.roles else None
            self.writer.broadcast(message.payload, roles)
        elif isinstance(message, ipc.Send):
            session = self.sessions.get(message.sid)
            if session is not None:
                self.writer.send(session, message.payloads)
        elif isinstance(message, ipc.Adopt):
            self.adopt(message)
        elif isinstance(message, ipc.Close):
            session = self.sessions.get(message.sid)
            if session is None:
                return
            self.writer.remove(session)
            if message.code == ipc.ABORT:
                session.closing = True
                session.abort()
            else:
                session.close(message.code, message.reason)
        elif isinstance(message, ipc.Stop):
            self.shed(1012, "server restarting")

    def adopt(self, adopt: ipc.Adopt) -> None:
        """The room let a client in: its first writes, then every tick."""
        session = self.sessions.get(adopt.sid)
        if session is None or session.closing:
            return
        session.slot, session.role, session.cell = adopt.slot, role_of(adopt.role), adopt.cell
        session.joined = True
        session.poses = PoseLimiter(self.limits.pose_hz, time.monotonic())
        self.writer.add(session)
        self.writer.send(session, adopt.initial)

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
                extra={"term": term, "was": had, "clients": len(self.sessions)},
            )
            self.shed(1012, "the room moved to a new authority; reconnect")
        return True

    def stats(self) -> ipc.Stats:
        """Counters since the previous call (also the edge's sign of life to the room)."""
        w = self.writer
        errors = self.uplink.errors
        stats = ipc.Stats(
            w.messages_out, w.bytes_out, w.frames_dropped, w.closes, errors, url=self.url
        )
        w.messages_out = w.bytes_out = w.frames_dropped = 0
        w.closes = {}
        self.uplink.errors = {}
        return stats
