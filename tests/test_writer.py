"""The fan-out's one write loop: groups built once, drops under backpressure, speech replayed."""

from __future__ import annotations

from dataclasses import dataclass, field

from townhall.protocol import codec
from townhall.protocol.messages import Role, StagePacket
from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout.sendlimits import SendLimits
from townhall.server.fanout.writer import TickIn, TickWriter


@dataclass(eq=False)
class FakeClient:
    id: int
    role: Role | None = "spectator"
    cell: int = -1
    closing: bool = False
    behind_since: float = 0.0
    stage_sent: int = 0
    since_tick: int = 0
    backlog: int = 0
    written: list[bytes] = field(default_factory=list)
    closed: tuple[int, str] | None = None

    def write(self, data: bytes) -> int:
        self.written.append(data)
        return len(data)

    def buffered(self) -> int:
        return self.backlog

    def close(self, code: int, reason: str) -> None:
        self.closing, self.closed = True, (code, reason)


def packet(index: int) -> bytes:
    return codec.encode(StagePacket(1, index, index * 40_000, 40_000, "approved", [], [], b"", []))


def tick(n: int, now_us: int, stage: list[int], events: tuple[bytes, ...] = ()) -> TickIn:
    return TickIn(
        n, now_us, events, {}, None, tuple(packet(i) for i in stage), stage[0] + 1 if stage else 0,
        tuple((i + 1) * 40_000 for i in stage), (),
    )  # fmt: skip


def stage_indexes(client: FakeClient) -> list[int]:
    data = b"".join(client.written)
    out, at = [], 0
    while at < len(data):
        n = data[at + 1] & 0x7F
        head = 2 if n < 126 else 4
        if n == 126:
            n = int.from_bytes(data[at + 2 : at + 4], "big")
        message = codec.decode_server(data[at + head : at + head + n])
        if isinstance(message, StagePacket):
            out.append(message.index)
        at += head + n
    return out


def test_speech_missed_while_behind_is_replayed_if_still_to_play() -> None:
    writer = TickWriter(TickPlan(), SendLimits(1000, 10**9, 60.0))
    client = FakeClient(1)
    writer.add(client)
    writer.tick(tick(1, 0, [0]), 0.0)
    client.backlog = 5000  # over the soft limit: stage packets are skipped
    writer.tick(tick(2, 0, [1, 2]), 0.1)
    assert stage_indexes(client) == [0]
    client.backlog = 0
    writer.tick(tick(3, 90_000, [3]), 0.2)  # packet 1 played out at 80 ms; 2 has not
    assert stage_indexes(client) == [0, 2, 3]


def test_no_replay_while_anything_is_still_unsent() -> None:
    """A client hovering at the limit gets no replay: it would only stay behind by as much."""
    writer = TickWriter(TickPlan(), SendLimits(1000, 10**9, 60.0))
    client = FakeClient(1)
    writer.add(client)
    writer.tick(tick(1, 0, [0]), 0.0)
    client.backlog = 5000
    writer.tick(tick(2, 0, [1, 2]), 0.1)  # missed while behind
    client.backlog = 500  # under the soft limit, but not caught up
    writer.tick(tick(3, 0, [3]), 0.2)
    assert stage_indexes(client) == [0, 3]


def test_a_group_is_built_once_and_durable_events_still_reach_the_slow() -> None:
    writer = TickWriter(TickPlan(), SendLimits(1000, 10**9, 60.0))
    fast, slow = FakeClient(1), FakeClient(2, backlog=5000)
    writer.add(fast)
    writer.add(slow)
    event = b"\x92\x45\x01"  # any payload: the writer frames, it does not decode
    writer.tick(tick(1, 0, [0], (event,)), 0.0)
    assert fast.written[0].endswith(event) and len(fast.written) == 1
    assert slow.written == [b"\x82\x03" + event]  # the event only: the stage packet dropped
    assert writer.frames_dropped == 1


def test_a_client_behind_too_long_is_closed() -> None:
    writer = TickWriter(TickPlan(), SendLimits(1000, 10**9, 1.0))
    slow = FakeClient(1, backlog=5000)
    writer.add(slow)
    writer.tick(tick(1, 0, []), 0.0)
    writer.tick(tick(2, 0, []), 0.5)
    assert slow.closed is None
    writer.tick(tick(3, 0, []), 1.6)
    assert slow.closed is not None and slow.closed[0] == 4015
    assert writer.closes == {"SLOW_CONSUMER": 1}


def test_spectators_are_written_on_their_phase_with_everything_since() -> None:
    writer = TickWriter(
        TickPlan(tick_hz=10, crowd_hz=10, spectator_every=2), SendLimits(10**6, 10**9, 60)
    )
    even, odd = FakeClient(2), FakeClient(3)
    writer.add(even)
    writer.add(odd)
    for n, index in ((1, 0), (2, 1), (3, 2), (4, 3)):
        writer.tick(tick(n, 0, [index]), n * 0.1)
    assert stage_indexes(odd) == [0, 1, 2] and len(odd.written) == 2
    assert stage_indexes(even) == [0, 1, 2, 3] and len(even.written) == 2
