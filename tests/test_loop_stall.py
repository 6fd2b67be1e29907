"""A room whose event loop was blocked says so in its log, with how long (``app.py``).

The metrics keep only the worst tick lag of the run; an operator reading the log after a
client complaint, or a test reading a failed deployment's log, needs the moment too.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from townhall.server.app import STALL_WARN_S, TownhallServer

from .conftest import make_settings
from .waiting import eventually


async def test_a_blocked_room_loop_is_logged_with_its_length(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="townhall.server")
    async with TownhallServer(make_settings(tmp_path)) as srv:

        def stalls() -> list[float]:
            return [
                float(r.__dict__["stalled_s"])
                for r in caplog.records
                if r.getMessage() == "the room's event loop stalled"
            ]

        await eventually(lambda: srv.metrics.ticks >= 2, 10, "the room ticking")
        before = len(stalls())  # a starved machine may have stalled it already
        blocked = STALL_WARN_S * 1.5
        time.sleep(blocked)  # the stimulus: a blocking call on the room's loop
        await eventually(lambda: len(stalls()) > before, 10, "the stall logged")
        # As long as the loop was blocked, less at most one tick's period of slack.
        assert max(stalls()[before:]) >= blocked - 0.1
