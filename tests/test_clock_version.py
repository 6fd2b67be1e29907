"""Clock sync estimates and version negotiation."""

from __future__ import annotations

import random

import pytest

from townhall.protocol import ClockSync, negotiate
from townhall.protocol.errors import ErrorCode, ProtocolError


def test_symmetric_delay_gives_exact_offset() -> None:
    clock = ClockSync()
    # local 1000; server clock is local + 5000; 300 us each way, 50 us in the server.
    s = clock.add(1000, 1000 + 300 + 5000, 1000 + 350 + 5000, 1000 + 650)
    assert s.offset_us == 5000
    assert s.rtt_us == 600
    assert clock.to_server(2000) == 7000
    assert clock.to_local(7000) == 2000


def test_best_rtt_sample_wins_under_jitter() -> None:
    rng = random.Random(3)
    clock = ClockSync(window=32)
    true_offset = -123_456
    t = 0
    for _ in range(32):
        up, down = rng.uniform(100, 20_000), rng.uniform(100, 20_000)
        t0 = t
        t1 = t0 + up + true_offset
        t2 = t1 + 20
        t3 = t0 + up + 20 + down
        clock.add(int(t0), int(t1), int(t2), int(t3))
        t += 50_000
    # Error of an NTP estimate is at most half the asymmetry of the best sample.
    assert abs(clock.offset_us - true_offset) <= clock.rtt_us / 2 + 1


def test_unsynced_clock_says_so() -> None:
    with pytest.raises(LookupError):
        _ = ClockSync().offset_us


def test_negotiate_picks_highest_common() -> None:
    assert negotiate(1, 5) == 1
    assert negotiate(1, 1) == 1


@pytest.mark.parametrize(
    ("lo", "hi", "code"), [(2, 3, ErrorCode.VERSION_UNSUPPORTED), (3, 1, ErrorCode.BAD_MESSAGE)]
)
def test_negotiate_rejects(lo: int, hi: int, code: ErrorCode) -> None:
    with pytest.raises(ProtocolError) as info:
        negotiate(lo, hi)
    assert info.value.code is code
