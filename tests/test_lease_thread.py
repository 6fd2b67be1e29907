"""The lease kept from its own thread (``server/fanout/lease_thread.py``), real nats-server.

The room's loop is stalled here the way a starved machine or a bug stalls it: by blocking
it (``time.sleep`` on the loop). A stall shorter than the TTL keeps the lease (the room
must not step down because the machine is busy); a loop silent for longer lets it lapse,
so a standby can take over.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
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


async def kept_lease(server: NatsServer, ttl_s: float) -> LeaseThread:
    """A lease taken and kept from its thread, as an authority holds it."""
    settings = BusSettings(url=server.url, lease_ttl_s=ttl_s)
    lease = LeaseThread(settings, "hall-1", Holder("a", "http://a", time.time()))
    await lease.start()
    assert await lease.acquire()
    lease.keep()
    return lease


async def test_a_room_loop_stalled_for_less_than_the_ttl_keeps_the_lease(
    server: NatsServer,
) -> None:
    ttl = 4.0
    lease = await kept_lease(server, ttl)
    try:
        before = lease.lease.revision
        # Longer than half the TTL (where a busy machine's authority used to step down),
        # shorter than STUCK_AFTER TTLs.
        time.sleep(ttl * 0.875)
        assert STUCK_AFTER * ttl > ttl * 0.875
        await eventually(
            lambda: lease.lease.revision >= before + 5 or lease.lost.is_set(),
            ttl * 3,
            "renewals through the stall and after it",
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
        time.sleep(ttl * STUCK_AFTER + ttl * 2)  # stuck: no beat for a TTL and more
        await eventually(lease.lost.is_set, 10, "the lease given up")
        assert not lease.is_held()
        # Nobody renews the key any more: a standby gets it once it ages out.
        nc = await nats.connect(server.url)
        try:
            standby = Lease(
                await open_bucket(nc, ttl), "hall-1", Holder("b", "http://b", time.time()), ttl
            )
            await eventually(standby.acquire, ttl + 5, "the standby to take the lease", poll=0.05)
            assert standby.term > 0
        finally:
            await nc.close()
    finally:
        await lease.close()
