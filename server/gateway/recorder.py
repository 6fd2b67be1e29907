"""The recorder: the shell that writes what the room ships to the event's recording.

The room host hands it each tick's Ship (sequenced events and stage packets, the very
bytes every edge writes) and each live mic packet; it appends them to the recording file
(``store.recording``) and flushes every ``flush_s``. A disk that fails stops the recording
with one error in the log; the room never notices.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from townhall.server.core.effects import Ship
from townhall.server.store.recording import (
    EVENT,
    KEYFRAME,
    LIVE,
    STAGE,
    RecordingWriter,
    path_of,
)

log = logging.getLogger("townhall.recording")


def new_id(folder: Path, room: str, wall: float) -> str:
    """``<room>-<UTC time>``, with a counter if a recording of that second exists."""
    stamp = datetime.fromtimestamp(wall, UTC).strftime("%Y%m%dT%H%M%SZ")
    base = f"{room}-{stamp}"
    candidate, n = base, 1
    while path_of(folder, candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


class StageRecorder:
    """Appends the room's output to one recording; ``tick()`` flushes on schedule."""

    def __init__(
        self,
        folder: Path,
        room: str,
        keyframe: bytes,
        now_us: int,
        flush_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        wall = time.time()
        self.id = new_id(folder, room, wall)
        self.flush_s = flush_s
        self.clock = clock
        meta = {"room": room, "started": wall, "start_us": now_us, "format": 1}
        self._writer = RecordingWriter(folder, self.id, meta)
        self._writer.write(KEYFRAME, now_us, keyframe)
        self._last_flush = clock()
        self.path = self._writer.path
        log.info("recording", extra={"id": self.id, "path": str(self.path)})

    def ship(self, ship: Ship) -> None:
        try:
            for payload in ship.events:
                self._writer.write(EVENT, ship.now_us, payload)
            for payload in ship.stage:
                self._writer.write(STAGE, ship.now_us, payload)
        except OSError as exc:
            self._fail(exc)
            return
        self.tick()

    def live(self, now_us: int, payload: bytes) -> None:
        try:
            self._writer.write(LIVE, now_us, payload)
        except OSError as exc:
            self._fail(exc)

    def tick(self) -> None:
        now = self.clock()
        if now - self._last_flush < self.flush_s:
            return
        self._last_flush = now
        try:
            self._writer.flush()
        except OSError as exc:
            self._fail(exc)

    def close(self) -> None:
        try:
            self._writer.close()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: OSError) -> None:
        log.error("recording stopped", extra={"id": self.id, "error": str(exc)})
        with contextlib.suppress(OSError):
            self._writer.close()
