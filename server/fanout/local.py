"""The room's fan-out: its own clients through the shared write loop, the rest through workers.

Per tick each client gets one write (``writer.TickWriter``): bytes framed once and built
once per group. Clients whose sockets were handed to fan-out workers (``pool``) get the
same tick, sent once per worker over the seam, and written there by the same loop.
Clients of networked edges (``bus_room``) get it through one publish on the bus.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from townhall.protocol.messages import Role
from townhall.server.core.effects import Admit, Ship
from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.sendlimits import SendLimits
from townhall.server.fanout.writer import TickIn, TickWriter
from townhall.server.gateway.session import Session
from townhall.server.ops.config import LimitSettings
from townhall.server.ops.metrics import Metrics

if TYPE_CHECKING:
    from townhall.server.fanout.bus_room import BusRoom
    from townhall.server.fanout.pool import RemoteSession, WorkerPool


class Fanout:
    """Every open connection of the room, and the per-tick write to all of them."""

    def __init__(self, plan: TickPlan, limits: LimitSettings, metrics: Metrics) -> None:
        send = SendLimits(limits.send_soft_bytes, limits.send_hard_bytes, limits.slow_close_s)
        self.writer = TickWriter(plan, send)
        self.metrics = metrics
        self.sessions: dict[int, Session] = {}  # every open connection, by id
        self.pool: WorkerPool | None = None  # fan-out workers holding some of them
        self.bus: BusRoom | None = None  # networked edges (``serve --role authority``)

    def add(self, session: Session) -> None:
        """A connection opened here (it is written once it has joined)."""
        self.sessions[session.id] = session

    def remove(self, session: Session) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        remote = _remote(session)
        if remote is not None and self.pool is not None:
            self.pool.forget(remote)
        else:
            self.writer.remove(session)

    def admit(self, admit: Admit) -> None:
        """A connection joined: its first writes, then it takes part in every tick."""
        session = self.sessions.get(admit.conn)
        if session is None:
            if self.bus is not None:
                self.bus.admit(admit)
            return
        session.slot, session.role, session.cell = admit.slot, admit.role, admit.cell
        session.joined = True
        remote = self.pool.adopt(session, admit.payloads) if self.pool is not None else None
        if remote is None:
            self.writer.add(session)
            self.writer.send(session, admit.payloads)
        else:
            self.sessions[remote.id] = remote
            self.metrics.messages_out += len(admit.payloads)
        self._collect()

    def send(self, conn: int, payloads: Sequence[bytes]) -> None:
        """Messages meant for one client, at once and in one write."""
        session = self.sessions.get(conn)
        if session is None:
            if self.bus is not None:
                self.bus.send(conn, payloads)
            return
        remote = _remote(session)
        if remote is not None:
            remote.send(payloads)
        else:
            self.writer.send(session, payloads)
            self._collect()

    def close(self, conn: int, code: int, reason: str) -> None:
        session = self.sessions.get(conn)
        if session is None and self.bus is not None:
            self.bus.close(conn, code, reason)
        if session is not None:
            session.close(code, reason)
            if _remote(session) is None:
                self.writer.remove(session)

    def broadcast(self, payload: bytes, roles: frozenset[Role] | None = None) -> None:
        """A droppable message for everyone (or some roles), written with the next tick."""
        self.writer.broadcast(payload, roles)
        if self.pool is not None:
            self.pool.broadcast(payload, roles)
        if self.bus is not None:
            self.bus.broadcast(payload, roles)

    def ship(self, ship: Ship, now: float) -> None:
        """One room tick to every client: here through the writer, elsewhere over the seam."""
        broadcasts: tuple[tuple[bytes, frozenset[Role] | None], ...] = tuple(
            (b.payload, b.roles) for b in ship.broadcasts
        )
        remote = (self.pool is not None and self.pool.workers) or self.bus is not None
        if remote:
            seam_tick = ipc.Tick(
                ship.number, ship.now_us, list(ship.events), ship.near, ship.far or b"",
                list(ship.stage), ship.stage_first, list(ship.stage_ends_us),
                [(p, sorted(r) if r else None) for p, r in broadcasts],
            )  # fmt: skip
            if self.pool is not None and self.pool.workers:
                self.pool.tick(seam_tick)
            if self.bus is not None:
                self.bus.tick(seam_tick)
        tick = TickIn(
            ship.number, ship.now_us, ship.events, ship.near, ship.far, ship.stage,
            ship.stage_first, ship.stage_ends_us, broadcasts,
        )  # fmt: skip
        self.writer.tick(tick, now)
        self._collect()

    def _collect(self) -> None:
        """Move the writer's counters to the server's metrics."""
        w, m = self.writer, self.metrics
        m.messages_out += w.messages_out
        m.bytes_out += w.bytes_out
        m.frames_dropped += w.frames_dropped
        for reason, n in w.closes.items():
            m.closes[reason] = m.closes.get(reason, 0) + n
        w.messages_out = w.bytes_out = w.frames_dropped = 0
        w.closes = {}


def _remote(session: Session) -> RemoteSession | None:
    from townhall.server.fanout.pool import RemoteSession

    return session if isinstance(session, RemoteSession) else None
