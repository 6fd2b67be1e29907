"""The headset app comes back by itself when its connection drops: real processes (an
authority and two edges on the NATS at 127.0.0.1:4222), the real OpenXR loop against the
headless test runtime. ``kill -9`` of the headset's edge: it shows "reconnecting", moves to
the other edge, resumes its seat and goes on sending poses the room sees, within 5 s.
A kick is not a drop: the app ends and does not come back."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xr

from townhall.plugin.client import RoomClient
from townhall.plugin.xr.app import HeadsetClient, stays_down
from townhall.plugin.xr.panels import StageText
from townhall.protocol import quant
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import CrowdNear, Message, People
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings
from .natsserver import NATS_SERVER
from .test_bus_edges import health, until
from .test_edge_moves import MOVE_LIMIT_S, deployed, edge_urls
from .waiting import eventually
from .xr_helpers import fresh_runtime, runtime_fixture, yaw_quat  # noqa: F401 (fixtures)
from .xr_runtime import TestRuntime

S = xr.SessionState


def last_yaw(seen: list[Message], slot: int) -> float | None:
    """The head yaw of ``slot`` in the newest near-crowd frame that has it."""
    for m in reversed(seen):
        if isinstance(m, CrowdNear):
            crowd = quant.decode_crowd(m.records)
            hit = np.flatnonzero(crowd.slots == slot)
            if hit.size:
                yaw, _ = quant.head_yaw_pitch(crowd.rot[hit[0]][0:1].astype(np.float64))
                return float(yaw[0])
    return None


def watch_notices(headset: HeadsetClient) -> list[Any]:
    """Every notice the headset puts over its stage panel, in order."""
    shown: list[Any] = []
    show = headset._show

    def recording(notice: Any) -> None:
        shown.append(notice)
        show(notice)

    headset._show = recording  # type: ignore[method-assign]
    return shown


@pytest.mark.skipif(not Path(NATS_SERVER).exists(), reason="needs nats-server")
@pytest.mark.xdist_group("failover")  # several processes: not beside another such test
async def test_kill_9_of_its_edge_the_headset_is_back_in_its_seat_within_5_s(
    runtime: TestRuntime, tmp_path: Path, token: TokenMaker
) -> None:
    runtime.pose("head", (0.0, 1.2, 0.0, *yaw_quat(20)))
    async with deployed(tmp_path, clone=False) as d:
        edge_a, edge_b = d.edges
        urls = {edge_a.url, edge_b.url}
        await until(lambda: health(d.http), lambda h: edge_urls(h) == urls, "both edges")
        seen: list[Message] = []
        watcher = RoomClient(
            edge_b.url, token("wat", room=d.room), on_message=seen.append, timeout_s=30
        )
        await watcher.connect()
        headset = HeadsetClient(edge_a.url, token("hmd", room=d.room, name="Hema"))
        notices = watch_notices(headset)
        task = asyncio.create_task(headset.run())
        try:
            await eventually(lambda: headset.frames > 10, 30, "the headset's frame loop")
            before = headset.client.welcome
            assert before is not None and set(before.edges) == urls
            slot, seat = before.slot, before.seat
            await eventually(lambda: last_yaw(seen, slot) is not None, 30, "its pose seen")

            edge_a.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            await edge_a.process.wait()
            await eventually(lambda: headset.reconnects == 1, 30, "the headset back in the room")
            took = time.monotonic() - killed
            assert took < MOVE_LIMIT_S, f"back after {took:.1f} s"

            after = headset.client.welcome
            assert after is not None and after.resumed
            assert headset.client.url == edge_b.url and headset.client.moves == 1
            assert (after.slot, after.seat) == (slot, seat)
            assert not task.done() and headset.ended == ""
            # The panel said so meanwhile, and shows the stage again now.
            said = [n for n in notices if isinstance(n, StageText)]
            assert said and "Reconnecting" in said[0].disclosure, notices
            assert notices[-1] is None and headset.notice is None
            # The wearer turns: the room (through the other edge) sees the new pose.
            runtime.pose("head", (0.0, 1.2, 0.0, *yaw_quat(-40)))
            await eventually(
                lambda: abs((last_yaw(seen, slot) or 0.0) + 40) < 0.5, 30, "the pose after"
            )
            runtime.request_exit()
            status = await asyncio.wait_for(task, 15)
            assert status.state == S.EXITING
        finally:
            if not task.done():
                headset.stop()
                await asyncio.gather(task, return_exceptions=True)
            await watcher.close()


async def test_a_kicked_headset_does_not_come_back(
    runtime: TestRuntime, tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        moderator = RoomClient(srv.ws_url, token("mod", "moderator"))
        await moderator.connect()
        headset = HeadsetClient(srv.ws_url, token("hmd", name="Hema"))
        task = asyncio.create_task(headset.run())
        try:
            await eventually(lambda: headset.frames > 10, 30, "the headset's frame loop")
            welcome = headset.client.welcome
            assert welcome is not None
            await moderator.send(People(1, "kick", welcome.slot))
            await asyncio.wait_for(task, 30)  # the loop ends by itself
            assert headset.client.close_code == 4000 + ErrorCode.KICKED
            assert "4022" in headset.ended and headset.reconnects == 0
        finally:
            if not task.done():
                headset.stop()
                await asyncio.gather(task, return_exceptions=True)
            await moderator.close()


def test_which_closes_are_drops() -> None:
    for code in (None, 1000, 1001, 1006, 1011, 1012, 1013):
        assert not stays_down(code), code
    assert not stays_down(4000 + ErrorCode.SERVER_SHUTDOWN)
    assert not stays_down(4000 + ErrorCode.SLOW_CONSUMER)
    assert not stays_down(4099)  # a code this client does not know: try again
    for error in (ErrorCode.KICKED, ErrorCode.BANNED, ErrorCode.REPLACED, ErrorCode.AUTH_EXPIRED):
        assert stays_down(4000 + error), error
