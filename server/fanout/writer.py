"""The one write loop of the fan-out: per tick, one write per client, bytes built once per group.

Used alike by the room process for the clients it holds and by every fan-out worker, fed
the room's numbered ticks (``Ship`` / ``seam.Tick``): payloads come in, each is framed
once (``framing``), and the bytes a tick writes are built once per (role, cell) and
shared by everyone in the group, so the per-client cost is one buffer write.

What a client gets: droppable broadcasts, the clone's stage packets, the sequenced
events, and (attendees) the crowd frames of its cell and the far crowd. A client over
the soft send limit gets only the events (durable); one that stays there too long, or
passes the hard limit, is closed (``sendlimits``). Stage packets it missed meanwhile are
replayed from the ring once it keeps up again, as long as they are still to be played.
Spectators are written on every ``spectator_every``-th tick (their turn spread by
connection id), with everything gathered since their previous write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Role
from townhall.server.core.stage import StageRing
from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout.framing import frame_binary
from townhall.server.fanout.sendlimits import SendLimits, slow_reason

SLOW_CLOSE_CODE = ErrorCode.SLOW_CONSUMER.close_code


class Client(Protocol):
    """A connection the writer writes: a local session or a worker's client."""

    id: int
    role: Role | None
    cell: int
    closing: bool
    behind_since: float
    stage_sent: int  # number of the last stage packet it was written
    since_tick: int  # the tick before which it has everything (for spectators)

    def write(self, data: bytes) -> int: ...
    def buffered(self) -> int: ...
    def close(self, code: int, reason: str) -> None: ...


@dataclass(frozen=True, slots=True)
class TickIn:
    """One room tick as an edge receives it (payloads, not frames)."""

    number: int
    now_us: int
    events: tuple[bytes, ...]
    near: Mapping[int, bytes]
    far: bytes | None
    stage: tuple[bytes, ...]
    stage_first: int
    stage_ends_us: tuple[int, ...]  # when each stage packet has played out
    broadcasts: tuple[tuple[bytes, frozenset[Role] | None], ...]


@dataclass(slots=True)
class _Gathered:
    """What one tick holds for spectators, kept until every spectator phase has had it."""

    number: int
    data: bytes
    count: int
    events: bytes
    n_events: int
    stage_first: int
    stage_last: int


class TickWriter:
    """Holds the clients of one edge and writes each room tick to them."""

    def __init__(self, plan: TickPlan, limits: SendLimits, ring_size: int = 256) -> None:
        self.plan = plan
        self.limits = limits
        self.ring = StageRing(ring_size)
        self.every_tick: dict[int, Client] = {}
        self.by_phase: list[dict[int, Client]] = [{} for _ in range(plan.spectator_every)]
        self.phase_written = [0] * plan.spectator_every
        self.gathered: list[_Gathered] = []
        self.pending: list[tuple[bytes, frozenset[Role] | None]] = []  # framed broadcasts
        self.tick_no = 0
        self.now_us = 0
        self.messages_out = self.bytes_out = self.frames_dropped = 0
        self.closes: dict[str, int] = {}

    # ------------------------------------------------------------ clients

    def add(self, client: Client) -> None:
        """A client joins the writes; it already has what was shipped until now."""
        client.stage_sent = self.ring.next_number - 1
        client.since_tick = self.tick_no
        self._group(client)[client.id] = client

    def remove(self, client: Client) -> None:
        self._group(client).pop(client.id, None)

    def _group(self, client: Client) -> dict[int, Client]:
        if client.role == "spectator" and self.plan.spectator_every > 1:
            return self.by_phase[self.plan.spectator_phase(client.id)]
        return self.every_tick

    def __len__(self) -> int:
        return len(self.every_tick) + sum(len(p) for p in self.by_phase)

    def clients(self) -> Iterable[Client]:
        yield from self.every_tick.values()
        for phase in self.by_phase:
            yield from phase.values()

    # ------------------------------------------------------------ writes

    def broadcast(self, payload: bytes, roles: frozenset[Role] | None = None) -> None:
        """A droppable message, written with the next tick."""
        self.pending.append((frame_binary(payload), roles))

    def send(self, client: Client, payloads: Iterable[bytes]) -> None:
        """Messages for one client, now, in one write (they are never dropped)."""
        framed = [frame_binary(p) for p in payloads]
        if framed and not client.closing:
            self.bytes_out += client.write(b"".join(framed))
            self.messages_out += len(framed)

    def tick(self, tick: TickIn, now: float) -> None:
        """One write per due client: broadcasts, stage, events, then crowd frames."""
        self.tick_no = tick.number
        self.now_us = tick.now_us
        broadcasts, self.pending = self.pending, []
        broadcasts += [(frame_binary(p), roles) for p, roles in tick.broadcasts]
        stage = b"".join(frame_binary(p) for p in tick.stage)
        ends = tick.stage_ends_us
        self.ring.extend(
            tick.stage_first, [(0, e, p) for e, p in zip(ends, tick.stage, strict=True)]
        )
        if not tick.stage:
            self.ring.next_number = max(self.ring.next_number, tick.stage_first)
        stage_last = tick.stage_first + len(tick.stage) - 1 if tick.stage else 0
        events = b"".join(frame_binary(p) for p in tick.events)
        n_events = len(tick.events)
        near = {cell: frame_binary(p) for cell, p in tick.near.items()}
        far = frame_binary(tick.far) if tick.far is not None else b""
        parts = _Parts(broadcasts, stage, len(tick.stage), events, n_events, near, far)
        every = self.plan.spectator_every
        phase = tick.number % every
        if every > 1:
            data, count = parts.group("spectator", -1)
            self.gathered.append(
                _Gathered(tick.number, data, count, events, n_events, tick.stage_first, stage_last)
            )
        due: list[Client] = list(self.every_tick.values())
        if every > 1:
            due += self.by_phase[phase].values()
        since: dict[int, _Gathered] = {}
        for client in due:
            if client.closing:
                continue
            if every > 1 and client.role == "spectator":
                after = max(client.since_tick, self.phase_written[phase])
                batch = since.get(after)
                if batch is None:
                    batch = since[after] = self._since(after)
                self._write(client, now, batch.data, batch.count, batch.events, batch.n_events,
                            batch.stage_first, batch.stage_last, parts)  # fmt: skip
            else:
                data, count = parts.group(client.role or "spectator", client.cell)
                self._write(client, now, data, count, events, n_events, tick.stage_first,
                            stage_last, parts)  # fmt: skip
        if every > 1:
            self.phase_written[phase] = tick.number
            oldest = min(self.phase_written)
            while self.gathered and self.gathered[0].number <= oldest:
                self.gathered.pop(0)

    def _write(
        self,
        client: Client,
        now: float,
        data: bytes,
        count: int,
        events: bytes,
        n_events: int,
        stage_first: int,
        stage_last: int,
        parts: _Parts,
    ) -> None:
        backlog = client.buffered()
        if backlog < self.limits.soft:
            client.behind_since = 0.0
            if stage_last and client.stage_sent < stage_first - 1 and not backlog:
                # It missed packets while behind and has caught up completely (nothing left
                # unsent): those still to play. A client hovering at the limit gets no replay;
                # it would only stay behind by as much.
                missed = self.ring.after(client.stage_sent, self.now_us, before=stage_first)
                if missed:
                    data = b"".join(frame_binary(p) for p in missed) + data
                    count += len(missed)
            if stage_last:
                client.stage_sent = stage_last
        else:
            self.frames_dropped += max(0, count - n_events)
            if self.limits.must_close(client, backlog, now):
                self.closes["SLOW_CONSUMER"] = self.closes.get("SLOW_CONSUMER", 0) + 1
                client.close(SLOW_CLOSE_CODE, slow_reason(backlog))
                return
            data, count = events, n_events
        if data:
            self.bytes_out += client.write(data)
            self.messages_out += count

    def _since(self, after: int) -> _Gathered:
        """What spectators get at their write: every tick gathered since ``after``."""
        ticks = [t for t in self.gathered if t.number > after]
        stage = [t for t in ticks if t.stage_last]
        return _Gathered(
            ticks[-1].number if ticks else after,
            b"".join(t.data for t in ticks),
            sum(t.count for t in ticks),
            b"".join(t.events for t in ticks),
            sum(t.n_events for t in ticks),
            stage[0].stage_first if stage else 0,
            stage[-1].stage_last if stage else 0,
        )


@dataclass(slots=True)
class _Parts:
    """One tick's framed pieces, and the bytes of each (role, cell) group built once."""

    broadcasts: list[tuple[bytes, frozenset[Role] | None]]
    stage: bytes
    n_stage: int
    events: bytes
    n_events: int
    near: dict[int, bytes]
    far: bytes
    _groups: dict[tuple[str, int], tuple[bytes, int]] = field(default_factory=dict)

    def group(self, role: str, cell: int) -> tuple[bytes, int]:
        key = (role, cell)
        built = self._groups.get(key)
        if built is None:
            pieces = [f for f, roles in self.broadcasts if roles is None or role in roles]
            count = len(pieces) + self.n_stage + self.n_events
            if self.stage:
                pieces.append(self.stage)
            if self.events:
                pieces.append(self.events)
            cell_frame = self.near.get(cell) if cell >= 0 else None
            if cell_frame:
                pieces.append(cell_frame)
                count += 1
            if self.far:
                pieces.append(self.far)
                count += 1
            built = self._groups[key] = (b"".join(pieces), count)
        return built
