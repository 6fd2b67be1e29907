"""Fan-out: frame each broadcast once and write the same bytes to every connection.

Per tick each client gets one write: the sequenced events (durable, always sent)
followed by the crowd frames for its cell and the far crowd (droppable: skipped
while the client's send buffer is over the soft limit). A client that stays
behind too long, or whose buffer passes the hard limit, is closed with a reason;
nobody else waits for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from townhall.protocol.errors import ErrorCode
from townhall.server.core.effects import Admit, Ship
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.framing import frame_binary
from townhall.server.fanout.sendlimits import SendLimits, slow_reason
from townhall.server.gateway.session import Session
from townhall.server.ops.config import LimitSettings
from townhall.server.ops.metrics import Metrics

if TYPE_CHECKING:
    from townhall.server.fanout.pool import WorkerPool


class Fanout:
    """The set of joined sessions and the per-tick write to all of them."""

    def __init__(self, limits: LimitSettings, metrics: Metrics) -> None:
        self.limits = limits
        self.send_limits = SendLimits(
            limits.send_soft_bytes, limits.send_hard_bytes, limits.slow_close_s
        )
        self.metrics = metrics
        self.sessions: dict[int, Session] = {}  # every open connection, by id
        self.local: dict[int, Session] = {}  # the joined ones whose socket this process writes
        self.pool: WorkerPool | None = None  # fan-out workers holding the others

    def add(self, session: Session) -> None:
        """A connection opened here (it is written once it has joined)."""
        self.sessions[session.id] = session

    def remove(self, session: Session) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]
        self.local.pop(session.id, None)
        if self.pool is not None and _is_remote(session):
            self.pool.forget(session)  # type: ignore[arg-type]

    def admit(self, admit: Admit) -> None:
        """A connection joined: its first writes, then it takes part in every tick."""
        session = self.sessions.get(admit.conn)
        if session is None:
            return
        session.slot, session.role, session.cell = admit.slot, admit.role, admit.cell
        session.joined = True
        remote = self.pool.adopt(session, admit.payloads) if self.pool is not None else None
        if remote is None:
            self.local[session.id] = session
            self.send(session.id, admit.payloads)
        else:
            self.sessions[remote.id] = remote

    def close(self, conn: int, code: int, reason: str) -> None:
        session = self.sessions.get(conn)
        if session is not None:
            session.close(code, reason)
            self.local.pop(conn, None)

    def ship(self, ship: Ship, now: float) -> None:
        """One room tick: broadcasts and stage packets, then events and crowd frames."""
        for b in ship.broadcasts:
            self.broadcast(b.payload, b.roles)  # type: ignore[arg-type]
        for payload in ship.stage:
            self.broadcast(payload)
        self.tick(now, list(ship.events), ship.near, ship.far)

    def send(self, conn: int, payloads: Iterable[bytes]) -> None:
        """Frame and write messages meant for one client, at once and in one write."""
        session = self.sessions.get(conn)
        framed = [frame_binary(p) for p in payloads]
        if not framed or session is None:
            return
        written = session.write(b"".join(framed))
        if written:
            self.metrics.messages_out += len(framed)
            self.metrics.bytes_out += written

    def broadcast(self, payload: bytes, roles: frozenset[str] | None = None) -> None:
        """A droppable message to everyone (or some roles) now: framed once, same bytes to all."""
        framed = frame_binary(payload)
        if self.pool is not None:
            self.pool.broadcast(framed, roles)
        soft = self.limits.send_soft_bytes
        messages = written = dropped = 0
        for session in self.local.values():
            if session.closing or (roles is not None and session.role not in roles):
                continue
            if session.buffered() >= soft:
                dropped += 1
                continue
            written += session.write(framed)
            messages += 1
        m = self.metrics
        m.messages_out += messages
        m.bytes_out += written
        m.frames_dropped += dropped

    def tick(
        self,
        now: float,
        events: list[bytes],
        near: Mapping[int, bytes],
        far: bytes | None,
    ) -> None:
        """One round of writes: events to all, crowd frames to those keeping up."""
        if not events and not near and far is None and not (self.pool and self.pool.pending):
            return
        events_blob = b"".join(frame_binary(p) for p in events)
        near_framed = {cell: frame_binary(p) for cell, p in near.items()}
        far_framed = frame_binary(far) if far is not None else b""
        n_events = len(events)
        if self.pool is not None:
            self.pool.tick(ipc.Tick(events_blob, n_events, near_framed, far_framed))
        soft = self.limits.send_soft_bytes
        messages = written = dropped = 0
        for session in list(self.local.values()):
            if session.closing:
                continue
            backlog = session.buffered()
            parts: list[bytes] = []
            count = 0
            if n_events:
                parts.append(events_blob)
                count += n_events
            cell_frame = near_framed.get(session.cell) if session.cell >= 0 else None
            if backlog < soft:
                session.behind_since = 0.0
                if cell_frame:
                    parts.append(cell_frame)
                    count += 1
                if far_framed:
                    parts.append(far_framed)
                    count += 1
            else:
                dropped += (1 if cell_frame else 0) + (1 if far_framed else 0)
                if self.send_limits.must_close(session, backlog, now):
                    self._close_slow(session, backlog)
                    continue
            if not parts:
                continue
            data = parts[0] if len(parts) == 1 else b"".join(parts)
            written += session.write(data)
            messages += count
        m = self.metrics
        m.messages_out += messages
        m.bytes_out += written
        m.frames_dropped += dropped

    def _close_slow(self, session: Session, backlog: int) -> None:
        self.metrics.count_close(ErrorCode.SLOW_CONSUMER.name)
        session.close(ErrorCode.SLOW_CONSUMER.close_code, slow_reason(backlog))


def _is_remote(session: Session) -> bool:
    return getattr(session, "worker", None) is not None
