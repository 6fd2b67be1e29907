"""The headset plugin's real OpenXR calls, through the Khronos loader, against the headless
test runtime (tests/xr_runtime), with a real server on 127.0.0.1.

The runtime is compiled from C for each test session and found by the loader through
XR_RUNTIME_JSON; the test moves the "headset" and asks for session states through the
runtime's control block.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

import numpy as np
import xr

from townhall.plugin.client import RoomClient
from townhall.plugin.xr.app import HeadsetClient
from townhall.plugin.xr.session import Headset
from townhall.protocol import quant
from townhall.protocol.messages import CrowdNear, HandChanged, Message
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings
from .waiting import eventually
from .xr_helpers import fresh_runtime, runtime_fixture, yaw_quat  # noqa: F401 (fixtures)
from .xr_runtime import BUTTON_RIGHT_A, TestRuntime

S = xr.SessionState


def pump(headset: Headset, until: S, frames: int = 60) -> None:
    """Run the frame loop until the session reaches ``until``."""
    for _ in range(frames):
        st = headset.poll()
        if st.state == until:
            return
        if st.running:
            fs = headset.wait_frame()
            headset.end_frame()
            assert fs.predicted_display_time > 0
    raise AssertionError(f"never reached {until.name}: {[s.name for s in st.history]}")


def test_session_states_spaces_views_and_actions(runtime: TestRuntime) -> None:
    runtime.target_state(S.FOCUSED)
    runtime.pose("head", (0.1, 1.25, 0.05, *yaw_quat(30)))
    runtime.pose("right", (0.25, 1.7, -0.2, 0.0, 0.0, 0.0, 1.0))
    runtime.pose("gaze", (0.1, 1.25, 0.05, *yaw_quat(45)))
    with Headset(headless=True) as headset:
        assert headset.runtime_name == "Townhall test runtime"
        assert "XR_EXT_eye_gaze_interaction" in headset.extensions
        assert headset.world_space_type == xr.ReferenceSpaceType.STAGE
        assert runtime.observed().headless and runtime.observed().instance_alive
        pump(headset, S.FOCUSED)
        assert headset.status.history[:5] == [S.IDLE, S.READY, S.SYNCHRONIZED, S.VISIBLE, S.FOCUSED]
        assert runtime.observed().session_running

        t = headset.wait_frame().predicted_display_time
        s = headset.sample(t)
        headset.end_frame()
        assert s.head is not None and np.allclose(s.head[:3], (0.1, 1.25, 0.05), atol=1e-5)
        assert np.allclose(np.abs(np.dot(s.head[3:], yaw_quat(30))), 1.0, atol=1e-5)
        assert s.right is not None and np.allclose(s.right[:3], (0.25, 1.7, -0.2), atol=1e-5)
        assert s.left is not None and not s.raise_pressed
        # 15 degrees left of the head's forward: a part of lookLeft
        assert 0.4 < s.expressions[9] < 0.6 and s.expressions[10] == 0
        views = headset.views(t)
        assert len(views) == 2
        assert abs((views[1][0][0] - views[0][0][0]) - 0.064 * math.cos(math.radians(30))) < 1e-4

        runtime.buttons(BUTTON_RIGHT_A)
        assert headset.sample(headset.wait_frame().predicted_display_time).raise_pressed
        headset.end_frame()
        runtime.buttons(0)
        runtime.tracked(0b1011)  # right hand lost
        s = headset.sample(headset.wait_frame().predicted_display_time)
        headset.end_frame()
        assert s.right is None and s.left is not None
        assert s.flags == int(quant.PoseFlag.LEFT_TRACKED)
        runtime.tracked(0xF)

        # Focus goes (a system menu) and comes back; input is only read when focused.
        runtime.target_state(S.VISIBLE)
        pump(headset, S.VISIBLE)
        s = headset.sample(headset.wait_frame().predicted_display_time)
        headset.end_frame()
        assert s.head is not None and s.right is None
        runtime.target_state(S.FOCUSED)
        pump(headset, S.FOCUSED)

        runtime.request_exit()
        pump(headset, S.EXITING)
        assert headset.status.exit and not headset.status.running
        assert headset.status.history[-4:] == [S.SYNCHRONIZED, S.STOPPING, S.IDLE, S.EXITING]
        assert not runtime.observed().session_running
    assert not runtime.observed().instance_alive
    assert runtime.observed().frames >= 5 and runtime.observed().syncs >= 3


async def test_a_pose_with_no_rotation_is_untracked_for_that_frame_not_a_crash(
    runtime: TestRuntime, tmp_path: Path, token: TokenMaker
) -> None:
    """A runtime that reports a head orientation of zero length (or not finite) as valid:
    the app once stopped in the pose encoder ("zero-length or overflowing quaternion").
    That frame the head counts as not tracked; the app runs on and sends poses again once
    the orientation is sound."""
    runtime.pose("head", (0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 0.0))
    runtime.pose("right", (0.2, 0.7, -0.3, float("nan"), 0.0, 0.0, 1.0))
    async with TownhallServer(make_settings(tmp_path)) as srv:
        headset = HeadsetClient(srv.ws_url, token("hmd", name="Hema"))
        task = asyncio.create_task(headset.run())
        await eventually(lambda: headset.frames > 20 or task.done(), timeout=30)
        assert not task.done(), task.result()
        assert headset.poses_sent == 0
        sample = headset.last_sample
        assert sample is not None and sample.head is None and sample.right is None
        runtime.pose("head", (0.0, 1.2, 0.0, *(2 * v for v in yaw_quat(20))))  # not unit: made so
        runtime.pose("right", (0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0))
        await eventually(lambda: headset.poses_sent > 0 or task.done(), timeout=30)
        assert not task.done(), task.result()
        head = headset.last_sample.head if headset.last_sample else None
        assert head is not None and abs(float(np.linalg.norm(head[3:])) - 1.0) < 1e-9
        runtime.request_exit()
        status = await asyncio.wait_for(task, 30)
        assert status.state == S.EXITING


def test_loss_pending_ends_the_loop(runtime: TestRuntime) -> None:
    runtime.target_state(S.FOCUSED)
    with Headset(headless=True) as headset:
        pump(headset, S.FOCUSED)
        runtime.lose()
        pump(headset, S.LOSS_PENDING)
        assert headset.status.lost and headset.status.exit


async def test_headset_poses_reach_the_server_and_other_clients(
    runtime: TestRuntime, tmp_path: Path, token: TokenMaker
) -> None:
    runtime.pose("head", (0.0, 1.2, 0.0, *yaw_quat(20)))
    runtime.pose("right", (0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0))
    async with TownhallServer(make_settings(tmp_path)) as srv:
        seen: list[Message] = []
        watcher = RoomClient(srv.ws_url, token("watcher", name="Wat"), on_message=seen.append)
        await watcher.connect()
        headset = HeadsetClient(srv.ws_url, token("hmd", name="Hema"))
        task = asyncio.create_task(headset.run())
        await eventually(lambda: headset.frames > 10, timeout=10)
        slot = headset.client.welcome.slot if headset.client.welcome else -1

        def near_pose() -> tuple[np.ndarray, np.ndarray] | None:
            for m in reversed(seen):
                if isinstance(m, CrowdNear):
                    crowd = quant.decode_crowd(m.records)
                    hit = np.flatnonzero(crowd.slots == slot)
                    if hit.size:
                        return crowd.pos[hit[0]], crowd.rot[hit[0]]
            return None

        def head_turned(deg: float) -> bool:
            got = near_pose()
            if got is None:
                return False
            yaw, _ = quant.head_yaw_pitch(got[1][0:1].astype(np.float64))
            return abs(yaw[0] - deg) < 0.5

        await eventually(lambda: head_turned(20), timeout=10)
        # The wearer turns and lifts the right hand: the other client sees it.
        runtime.pose("head", (0.0, 1.2, 0.0, *yaw_quat(-35)))
        runtime.pose("right", (0.25, 1.8, -0.1, 0.0, 0.0, 0.0, 1.0))
        await eventually(lambda: head_turned(-35), timeout=10)
        got = near_pose()
        assert got is not None and abs(got[0][2, 1] - 1.8) < 0.001

        # The raise-hand button raises the hand in the room.
        runtime.buttons(BUTTON_RIGHT_A)
        await eventually(
            lambda: any(isinstance(m, HandChanged) and m.slot == slot and m.raised for m in seen),
            timeout=10,
        )
        runtime.buttons(0)
        assert headset.hand_changes == [True]

        # Poses go up at the room's rate, not the headset's 90 Hz.
        pose_hz = headset.client.welcome.pose_hz if headset.client.welcome else 0
        before, frames, t0 = headset.poses_sent, headset.frames, time.monotonic()
        await eventually(lambda: headset.poses_sent >= before + pose_hz, 10)  # a second's worth
        rate = (headset.poses_sent - before) / (time.monotonic() - t0)
        assert rate <= 1.1 * pose_hz, (rate, pose_hz)  # never more (a slow machine sends fewer)
        assert headset.frames - frames > 2 * (headset.poses_sent - before)  # 90 Hz frames

        runtime.request_exit()
        status = await asyncio.wait_for(task, 10)
        assert status.state == S.EXITING and not status.lost
        assert not any(e.code for e in watcher.errors)
        await watcher.close()
