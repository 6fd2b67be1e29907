"""The store's writer thread: group commit, and a loud, safe stop if it ever breaks.

One thread takes whatever writes are queued and commits them as one transaction, so
thousands of votes a second cost a few fsyncs; each write's future resolves only after its
rows are committed (the server acknowledges on it). A database error fails that batch and
the thread goes on. Any other exception is a fault in the writer itself: it must not leave
later writes waiting forever, so the writer stops, fails every pending and later write with
``StoreStopped``, logs once, and says so in ``failure`` (which /healthz reports).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from townhall.server.store.base import StoreError, StoreStopped, settle

Op = tuple[str, Sequence[Any]]
Commit = Callable[[Sequence[Sequence[Op]]], None]
Item = tuple[Sequence[Op], "asyncio.Future[None]"]

log = logging.getLogger("townhall.store")


class GroupWriter:
    """Commits queued writes on its own thread; ``commit`` raises StoreError when the
    database refuses a batch."""

    def __init__(self, commit: Commit, name: str = "store-writer") -> None:
        self.commit = commit
        self.commits = 0  # transactions committed so far
        self.failure: str | None = None  # why the writer stopped (None: it runs)
        self._queue: queue.SimpleQueue[Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def write(self, ops: Sequence[Op]) -> asyncio.Future[None]:
        """Queue ``ops`` for the next group commit; the future resolves when they are durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((ops, future))
        if self.failure is not None:  # stopped, maybe after its last look at the queue
            self._fail_queued()
        return future

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)

    def _run(self) -> None:
        batch: list[Item] = []
        try:
            while (taken := self._next_batch()) is not None:
                batch = taken
                error: StoreError | None = None
                try:
                    self.commit([ops for ops, _ in batch])
                    self.commits += 1
                except StoreError as exc:  # the database refused: this batch fails, go on
                    error = exc
                self._settle(batch, error)
        except BaseException as exc:  # a fault of the writer: stop, and say so
            self._stop(exc, batch)
            if not isinstance(exc, Exception):
                raise

    def _next_batch(self) -> list[Item] | None:
        item = self._queue.get()
        if item is None:
            return None
        batch = [item]
        while True:  # take everything already waiting: one transaction for all
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                return batch
            if more is None:
                self._queue.put(None)
                return batch
            batch.append(more)

    def _stop(self, exc: BaseException, batch: list[Item]) -> None:
        self.failure = f"the store's writer stopped: {type(exc).__name__}: {exc}"
        log.critical(
            "store writer stopped; every write fails from now on",
            exc_info=exc,
            extra={"error": self.failure},
        )
        self._settle(batch, StoreStopped(self.failure))
        self._fail_queued()

    def _fail_queued(self) -> None:
        """Fail every write still queued (the writer has stopped)."""
        error = StoreStopped(self.failure or "the store's writer stopped")
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not None:
                self._settle([item], error)

    @staticmethod
    def _settle(batch: list[Item], error: Exception | None) -> None:
        for _, future in batch:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                future.get_loop().call_soon_threadsafe(settle, future, error)
