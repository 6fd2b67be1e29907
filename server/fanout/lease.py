"""The room's authority lease in NATS KV: at most one active authority per room.

Each room has one key in the bucket ``townhall_leases``. The bucket's TTL
(``bus.lease_ttl_s``) ages a key out when nobody renews it; taking the lease is a
``create`` (the server refuses it while the key exists) and renewing it is an ``update``
checked against the holder's last revision, so two processes never both hold it. The
holder also keeps a deadline of its own, counted from *before* each renewal was sent and
shorter than the TTL: past it, it stops acting as the room, before the key can age out
and another process take it. The revision a holder took the lease with is its **term**;
ticks carry it, so edges notice a new authority and drop a deposed one's late ticks.

What a key holds is read back from the bus, so it is checked like client input.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import StorageType
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from townhall.server.fanout.bus import BusError, Subjects

log = logging.getLogger("townhall.bus.lease")

BUCKET = "townhall_leases"
RENEW_PARTS = 4  # renew every quarter of the TTL
SAFE_PART = 0.75  # the holder gives up three quarters of the TTL after its last renewal
MAX_TEXT = 256


@dataclass(frozen=True)
class Holder:
    """Who holds a room's lease: a process id of its own, where it serves, since when."""

    id: str
    url: str
    since: float  # unix seconds

    def encode(self) -> bytes:
        return json.dumps({"id": self.id, "url": self.url, "since": self.since}).encode()

    @classmethod
    def decode(cls, data: bytes) -> Holder | None:
        """The holder a key names, or None for anything else (it came over the bus)."""
        try:
            obj = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            return None
        if not isinstance(obj, dict):
            return None
        ident, url, since = obj.get("id"), obj.get("url"), obj.get("since")
        if not isinstance(ident, str) or not isinstance(url, str):
            return None
        if not isinstance(since, int | float) or isinstance(since, bool):
            return None
        return cls(ident[:MAX_TEXT], url[:MAX_TEXT], float(since))


async def open_bucket(nc: NatsClient, ttl_s: float) -> KeyValue:
    """The lease bucket, created with our TTL if it is missing; a BusError if its TTL differs
    (authorities that disagree on it could not both keep the rule of one holder)."""
    js = nc.jetstream()
    try:
        try:
            kv = await js.key_value(BUCKET)
        except BucketNotFoundError:
            await js.create_key_value(bucket=BUCKET, ttl=ttl_s, history=1, storage=StorageType.FILE)
            kv = await js.key_value(BUCKET)
        info = await js.stream_info(f"KV_{BUCKET}")
    except NatsError as exc:
        raise BusError(
            f"NATS has no usable JetStream for the lease (nats-server -js): {exc}"
        ) from exc
    max_age = float(info.config.max_age or 0.0)
    if abs(max_age - ttl_s) > 0.001:
        raise BusError(
            f"the NATS KV bucket {BUCKET} has a TTL of {max_age:g} s, not bus.lease_ttl_s = "
            f"{ttl_s:g}: every authority must use the same (or delete the bucket)"
        )
    return kv


async def holder_of(nc: NatsClient, room: str) -> Holder | None:
    """Who holds ``room``'s lease now, for an edge deciding whether the room runs (None:
    nobody, no bucket yet, or the bus did not answer). Reads only: creates nothing."""
    key = Subjects.of(room).room  # checked: letters, digits, - and _
    try:
        kv = await nc.jetstream().key_value(BUCKET)
        entry = await kv.get(key)
    except (BucketNotFoundError, KeyNotFoundError, NatsError, TimeoutError):
        return None
    return Holder.decode(entry.value or b"")


class Lease:
    """One room's lease as this process sees it: take it, keep it, give it back."""

    def __init__(
        self,
        kv: KeyValue,
        room: str,
        holder: Holder,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kv = kv
        self.key = Subjects.of(room).room  # checked: letters, digits, - and _
        self.holder = holder
        self.ttl_s = ttl_s
        self.clock = clock
        self.term = 0  # the revision the lease was taken with; 0 while not held
        self.revision = 0  # the latest revision we wrote
        self.deadline = 0.0  # on our clock: past it, we no longer hold the lease
        self.lost = asyncio.Event()

    @property
    def held(self) -> bool:
        return self.term != 0 and self.clock() < self.deadline

    def is_held(self) -> bool:
        """``held`` as a callable: the authority's bus checks it on every message."""
        return self.held

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it (a standby calls this until it is True)."""
        sent = self.clock()
        try:
            revision = await self.kv.create(self.key, self.holder.encode())
        except KeyWrongLastSequenceError:
            return False
        except (NatsError, TimeoutError) as exc:
            log.warning("lease: bus error", extra={"error": str(exc) or type(exc).__name__})
            return False
        self.term = self.revision = revision
        self.deadline = sent + self.ttl_s * SAFE_PART
        self.lost.clear()
        log.info("lease taken", extra={"room": self.key, "term": revision})
        return True

    async def renew(self) -> bool:
        """Renew; False once the lease is lost (another revision, or our deadline passed)."""
        if not self.held:  # a renewal that lands now could not cover the time we had none
            self.lose("no renewal in time")
            return False
        sent = self.clock()
        try:
            revision = await asyncio.wait_for(
                self.kv.update(self.key, self.holder.encode(), last=self.revision),
                max(0.05, self.deadline - sent),
            )
        except KeyWrongLastSequenceError:
            if await self._still_ours():
                return self.held
            self.lose("the key changed under us")
            return False
        except (NatsError, TimeoutError) as exc:
            if not self.held:
                self.lose(f"no renewal in time ({str(exc) or type(exc).__name__})")
                return False
            log.warning("lease: renewal failed", extra={"error": str(exc) or type(exc).__name__})
            return True
        self.revision = revision
        self.deadline = sent + self.ttl_s * SAFE_PART
        return True

    async def _still_ours(self) -> bool:
        """A renewal whose reply was lost still moved the revision: take it if the key is ours."""
        try:
            entry = await self.kv.get(self.key)
        except (KeyNotFoundError, NatsError, TimeoutError):
            return False
        seen = Holder.decode(entry.value or b"")
        if seen is None or seen.id != self.holder.id or entry.revision is None:
            return False
        self.revision = entry.revision
        return True

    def lose(self, reason: str) -> None:
        log.error("lease lost: stepping down", extra={"room": self.key, "reason": reason})
        self.term = self.revision = 0
        self.lost.set()

    async def keep(self) -> None:
        """Renew until the lease is lost (then ``lost`` is set and this returns)."""
        every = self.ttl_s / RENEW_PARTS
        while True:
            await asyncio.sleep(max(0.0, min(every, self.deadline - self.clock())))
            if not await self.renew():
                return

    async def current(self) -> Holder | None:
        """Who holds the lease now (None: nobody, or a key we cannot read)."""
        try:
            entry = await self.kv.get(self.key)
        except (KeyNotFoundError, NatsError, TimeoutError):
            return None
        return Holder.decode(entry.value or b"")

    async def release(self) -> None:
        """Give the lease back at a clean stop, so a standby takes over at once."""
        if not self.term:
            return
        revision, self.term, self.revision = self.revision, 0, 0
        try:
            await self.kv.delete(self.key, last=revision)
        except (NatsError, TimeoutError) as exc:  # it ages out by itself
            log.warning("lease: release failed", extra={"error": str(exc) or type(exc).__name__})
