"""The lease kept from a thread of its own, so the room's work never delays a renewal.

Building the room (the clone, the store) blocks the event loop for seconds, longer than a
short ``bus.lease_ttl_s``; a renewal waiting behind it would lose the lease every start.
So the lease lives on its own event loop in a thread with its own NATS connection. It
renews only while the room's loop shows it is alive (it beats every eighth of the TTL) or
the room is being built, so a room whose loop is stuck does not keep the lease.

"Stuck" is a loop that has not beaten for a whole TTL (``STUCK_AFTER``). A loop that
stalls for a few seconds on a starved machine is not stuck: at half the TTL, an authority
on a 2-core machine running a test suite beside it lost its lease after a 3 s stall and
stepped down, sending every client to reconnect, which costs the busy machine more. The
rule of one holder does not rest on this check (the holder's own deadline and the key's
TTL keep it); only how soon a truly stuck room gives way does.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Coroutine
from typing import Any, TypeVar

from townhall.server.fanout import bus
from townhall.server.fanout.lease import RENEW_PARTS, Holder, Lease, open_bucket
from townhall.server.ops.config import BusSettings

T = TypeVar("T")

#: The room's loop counts as stuck once it has not beaten for this many TTLs.
STUCK_AFTER = 1.0


class LeaseThread:
    """A room's lease on a thread; its methods are called from the room's loop."""

    def __init__(self, settings: BusSettings, room: str, holder: Holder) -> None:
        self.settings = settings
        self.room = room
        self.holder = holder
        self.lost = asyncio.Event()  # on the caller's loop: set when the lease is lost
        self.starting = False  # the room is being built: renew though the loop is busy
        self._beat = time.monotonic()
        self._main = asyncio.get_running_loop()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lease: Lease | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self._beats: asyncio.Task[None] | None = None
        self._keeping: Any = None

    # ------------------------------------------------------------ from the room's loop

    async def start(self) -> None:
        """Connect (a one-line BusError if NATS does not answer) and open the bucket."""
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._failed is not None:
            raise self._failed
        self._beats = self._main.create_task(self._heartbeat(), name="lease-beat")

    @property
    def lease(self) -> Lease:
        assert self._lease is not None, "not started"
        return self._lease

    def is_held(self) -> bool:
        """Whether we hold the lease now (its deadline is a float: safe to read here)."""
        return self._lease is not None and self._lease.held

    async def acquire(self) -> bool:
        return await self._call(self.lease.acquire())

    async def current(self) -> Holder | None:
        return await self._call(self.lease.current())

    def keep(self) -> None:
        """Renew from now on, until lost (then ``lost`` is set) or released."""
        self.lost.clear()
        assert self._loop is not None
        self._keeping = asyncio.run_coroutine_threadsafe(self._keep(), self._loop)

    async def release(self) -> None:
        if self._keeping is not None:
            self._keeping.cancel()
            self._keeping = None
        if self._lease is not None:
            await self._call(self.lease.release())

    async def close(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            with contextlib.suppress(RuntimeError):  # its loop ended meanwhile
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 10)

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def _heartbeat(self) -> None:
        every = self.settings.lease_ttl_s / RENEW_PARTS / 2
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(every)

    # ------------------------------------------------------------ on the lease's thread

    def _run(self) -> None:
        try:  # the same kind of loop as the room's (cli.run), so errors read the same
            import uvloop
        except ImportError:
            asyncio.run(self._serve())
        else:
            uvloop.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            nc = await bus.connect(self.settings, f"townhall-lease-{self.room}")
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            return
        try:
            kv = await open_bucket(nc, self.settings.lease_ttl_s)
            self._lease = Lease(kv, self.room, self.holder, self.settings.lease_ttl_s)
        except BaseException as exc:
            self._failed = exc
            self._ready.set()
            await nc.close()
            return
        self._ready.set()
        await self._stop.wait()
        await nc.close()

    async def _keep(self) -> None:
        lease = self.lease
        every = lease.ttl_s / RENEW_PARTS
        stuck_after = lease.ttl_s * STUCK_AFTER
        while True:
            await asyncio.sleep(max(0.0, min(every, lease.deadline - lease.clock())))
            silent = time.monotonic() - self._beat
            if silent >= stuck_after and not self.starting:  # let the lease lapse
                if not lease.held:
                    lease.lose(f"the room's event loop is stuck ({silent:.1f} s without a beat)")
                    break
                continue
            if not await lease.renew():
                break
        self._main.call_soon_threadsafe(self.lost.set)
