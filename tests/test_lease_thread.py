"""The lease kept from its own thread (``server/fanout/lease_thread.py``), real nats-server.

The room's loop is stalled here the way a starved machine or a bug stalls it: blocked, until
the lease's thread has done what the test waits for (renewed, or given the lease up). A
stall shorter than the TTL keeps the lease (the room must not step down because the
machine is busy); a loop silent for longer lets it lapse, so a standby can take over.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import nats
import pytest

from townhall.server.fanout.lease import Holder, Lease, open_bucket
from townhall.server.fanout.lease_thread import STUCK_AFTER, LeaseThread
from townhall.server.ops.config import BusSettings

from .natsserver import NATS_SERVER, NatsServer, nats_server
from .waiting import eventually

pytestmark = pytest.mark.skipif(not Path(NATS_SERVER).exists(), reason="needs nats-server")


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with nats_server(tmp_path) as s:  # a bucket TTL of each test's own
        yield s


def block_loop_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Block the calling event loop (no beat reaches the lease's thread) until
    ``condition`` holds, as the lease's thread makes it; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    changed = threading.Event()
    while not condition():
        assert time.monotonic() < deadline, f"timed out with the loop blocked, waiting for {what}"
        changed.wait(0.01)  # the pace of looking, not a wait for something


async def kept_lease(server: NatsServer, ttl_s: float) -> LeaseThread:
    """A lease taken and kept from its thread, as an authority holds it."""
    settings = BusSettings(url=server.url, lease_ttl_s=ttl_s)
    lease = LeaseThread(settings, "hall-1", Holder("a", "http://127.0.0.1:1", time.time()))
    await lease.start()
    assert await lease.acquire()
    lease.keep()
    return lease


async def test_a_room_loop_stalled_for_less_than_the_ttl_keeps_the_lease(
    server: NatsServer,
) -> None:
    ttl = 6.0
    lease = await kept_lease(server, ttl)
    try:
        before = lease.lease.revision
        # Three renewals (a quarter of the TTL apart) with the loop blocked: a stall of
        # three quarters of the TTL and more, longer than the half where a busy machine's
        # authority used to step down, shorter than STUCK_AFTER TTLs.
        block_loop_until(
            lambda: lease.lease.revision >= before + 3, ttl * 2, "renewals through the stall"
        )
        after = lease.lease.revision
        await eventually(
            lambda: lease.lease.revision > after or lease.lost.is_set(),
            ttl * 2,
            "a renewal after the stall",
        )
        assert not lease.lost.is_set(), "the room stepped down after a short stall"
        assert lease.is_held()
    finally:
        await lease.release()
        await lease.close()


async def test_a_room_loop_stuck_for_longer_lets_the_lease_lapse_for_a_standby(
    server: NatsServer,
) -> None:
    ttl = 1.0
    lease = await kept_lease(server, ttl)
    try:
        # Stuck: no beat for STUCK_AFTER TTLs, until the lease's thread gives the lease up.
        block_loop_until(lambda: not lease.lease.held, ttl * STUCK_AFTER + 10, "the lease lost")
        await eventually(lease.lost.is_set, 10, "the room told the lease is lost")
        assert not lease.is_held()
        # Nobody renews the key any more: a standby gets it once it ages out.
        nc = await nats.connect(server.url)
        try:
            b = Holder("b", "http://127.0.0.1:2", time.time())
            standby = Lease(await open_bucket(nc, ttl), "hall-1", b, ttl)
            await eventually(standby.acquire, ttl + 5, "the standby to take the lease", poll=0.05)
            assert standby.term > 0
        finally:
            await nc.close()
    finally:
        await lease.close()
