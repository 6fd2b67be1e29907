"""The authority lease in NATS KV (``server/fanout/lease.py``) against a real nats-server.

Each test runs a nats-server of its own: the lease bucket's TTL is the test's choice and
must not meet another test's on the shared server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NatsClient

from townhall.server.fanout.bus import BusError
from townhall.server.fanout.lease import Holder, Lease, open_bucket

from .natsserver import NATS_SERVER, NatsServer, nats_server
from .waiting import eventually

pytestmark = pytest.mark.skipif(not Path(NATS_SERVER).exists(), reason="needs nats-server")

TTL_S = 2.0


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with nats_server(tmp_path) as s:
        yield s


@pytest.fixture
async def nc(server: NatsServer) -> AsyncIterator[NatsClient]:
    client = await nats.connect(server.url)
    yield client
    await client.close()


async def lease_for(
    nc: NatsClient, name: str, clock: Callable[[], float] = time.monotonic
) -> Lease:
    kv = await open_bucket(nc, TTL_S)
    return Lease(kv, "hall-1", Holder(name, f"http://{name}", time.time()), TTL_S, clock)


async def test_one_holder_at_a_time_and_the_standby_takes_over_when_renewals_stop(
    nc: NatsClient,
) -> None:
    a, b = await lease_for(nc, "a"), await lease_for(nc, "b")
    assert await a.acquire() and a.held and a.term > 0
    assert not await b.acquire(), "a second holder while the first renews"
    assert (await b.current()) == a.holder
    keeper = asyncio.create_task(a.keep())
    try:
        # Through several renewals (a quarter of the TTL each) the key stays a's.
        renewed = a.revision
        await eventually(lambda: a.revision >= renewed + 3, 10, "three renewals")
        assert not await b.acquire()
    finally:
        keeper.cancel()
    # a stops renewing (as if killed): b gets the key once it has aged out, not before.
    stopped = time.monotonic()
    await eventually(b.acquire, TTL_S + 5, "b to get the key", poll=0.05)
    waited = time.monotonic() - stopped
    assert TTL_S * 0.5 < waited < TTL_S + 2, waited
    assert b.term > a.term, "a later holder has a higher term (edges follow it)"
    # a's own deadline ran out before the key aged out: it holds nothing any more, and a
    # late renewal cannot bring it back.
    assert not a.held
    assert not await a.renew() and a.lost.is_set()
    assert (await a.current()) == b.holder


async def test_release_lets_the_standby_in_at_once(nc: NatsClient) -> None:
    a, b = await lease_for(nc, "a"), await lease_for(nc, "b")
    assert await a.acquire()
    await a.release()
    assert not a.held
    assert await b.acquire(), "released: no need to wait for the TTL"
    assert b.term > a.revision


async def test_a_key_changed_under_the_holder_loses_the_lease(nc: NatsClient) -> None:
    a = await lease_for(nc, "a")
    assert await a.acquire()
    kv = await open_bucket(nc, TTL_S)
    await kv.put("hall-1", Holder("intruder", "", 0).encode())  # e.g. an operator's `nats kv put`
    assert not await a.renew()
    assert a.lost.is_set() and not a.held


async def test_a_renewal_whose_reply_was_lost_keeps_the_lease(nc: NatsClient) -> None:
    a = await lease_for(nc, "a")
    assert await a.acquire()
    # The update landed but we never saw its revision: the key still names us.
    await a.kv.update("hall-1", a.holder.encode(), last=a.revision)
    assert await a.renew() and a.held and not a.lost.is_set()


async def test_past_its_own_deadline_the_holder_steps_down_without_asking(
    nc: NatsClient,
) -> None:
    now = [1000.0]
    a = await lease_for(nc, "a", clock=lambda: now[0])
    assert await a.acquire()
    now[0] += TTL_S * 0.75  # no renewal for three quarters of the TTL
    assert not a.held
    assert not await a.renew() and a.lost.is_set()


async def test_authorities_must_agree_on_the_ttl(nc: NatsClient) -> None:
    await open_bucket(nc, TTL_S)
    with pytest.raises(BusError, match=r"has a TTL of 2 s, not bus.lease_ttl_s = 7"):
        await open_bucket(nc, 7.0)


def test_a_key_that_names_no_holder_is_none() -> None:
    for data in (b"", b"\xff", b"[]", b'{"id": 1, "url": "", "since": 0}', b'{"id": "x"}',
                 b'{"id": "x", "url": "u", "since": true}'):  # fmt: skip
        assert Holder.decode(data) is None, data
    held = Holder.decode(b'{"id": "' + b"x" * 1000 + b'", "url": "u", "since": 5}')
    assert held is not None and len(held.id) == 256 and held.since == 5.0
