"""What the headset displays: `townhall xr` with an OpenGL session, read back by the runtime.

A real server on 127.0.0.1, a real `townhall xr` process (the reference headset app) under
Xvfb with Mesa's software renderer, pyopenxr's Khronos loader and the test runtime
(tests/xr_runtime) offering XR_KHR_opengl_enable. The app draws each eye into the runtime's
swapchain textures and submits a projection layer; the runtime's xrEndFrame reads both eyes
back (glGetTexImage) into the control block, and the test looks at them: the hall, the stage
and the clone are there, the eyes differ as a stereo pair should, and turning the head
turns the picture.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import xr

from townhall.plugin.xr import render
from townhall.plugin.xr.session import Headset
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings
from .waiting import eventually
from .xr_helpers import near, read_png, xvfb, yaw_quat
from .xr_runtime import GL_SRGB8_ALPHA8, Displayed, TestRuntime

HALF_FOV = 0.785398  # the test runtime's symmetric 90 degree field of view


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestRuntime]:
    rt = TestRuntime(tmp_path_factory.mktemp("xr_gl_runtime"))
    with rt:
        yield rt
    rt.close()


@pytest.fixture(autouse=True)
def fresh(runtime: TestRuntime) -> None:
    runtime.reset()


async def shown_after(runtime: TestRuntime, frame: int, timeout: float = 20.0) -> Displayed:
    """The first eye pair read back after the runtime's frame counter passed ``frame``."""
    shown: list[Displayed] = []

    def displayed() -> bool:
        d = runtime.displayed()
        if d is not None and d.frame > frame:
            shown.append(d)
        return bool(shown)

    await eventually(displayed, timeout, f"a frame after {frame} shown")
    return shown[0]


def colour_share(eye: np.ndarray) -> dict[str, float]:
    return {
        name: float(near(eye, getattr(render, name.upper())).mean())
        for name in ("sky", "floor", "stage", "seat", "suit", "skin")
    }


async def test_headset_shows_the_hall_the_crowd_and_the_clone_in_stereo(
    display: str, runtime: TestRuntime, tmp_path: Path, token: TokenMaker
) -> None:
    env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"}
    async with TownhallServer(make_settings(tmp_path)) as srv:
        shot = tmp_path / "left.png"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "townhall.server.ops.cli", "xr",
            "--url", srv.ws_url, "--token", token("hmd", name="Hema"),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            first = await shown_after(runtime, 3)
            seen = runtime.observed()
            assert seen.gl_session and not seen.headless, seen
            assert seen.swapchains == 2 and seen.swapchain_format == GL_SRGB8_ALPHA8, seen
            assert seen.layer_error == 0 and seen.layer_frames >= 3, seen

            # The layer: both eyes, the runtime's size, fov and eye poses (64 mm apart).
            assert first.image_size == (640, 480)
            assert first.eyes.shape == (2, 240, 320, 4)
            for fov in first.fovs:
                assert np.allclose(fov, (-HALF_FOV, HALF_FOV, HALF_FOV, -HALF_FOV), atol=1e-5)
            (lx, ly, lz, *_), (rx, ry, rz, *_) = first.poses
            assert abs((rx - lx) - 0.064) < 1e-4 and abs(ly - 1.2) < 1e-4 and ly == ry
            assert abs(lz) < 1e-6 and abs(rz) < 1e-6

            # Each eye shows the hall: sky, floor, the stage, seats, and the clone on stage.
            for eye in first.eyes:
                assert len(np.unique(eye.reshape(-1, 4), axis=0)) > 8  # not a blank image
                share = colour_share(eye)
                least = {"sky": 0.02, "floor": 0.02, "stage": 0.01, "seat": 0.001,
                         "suit": 0.0005, "skin": 0.0001}  # fmt: skip
                for name, share_least in least.items():
                    assert share[name] >= share_least, (name, share)

            # A stereo pair: nearly the same picture, the clone shifted between the eyes
            # (further right in the left eye, as for any object in front of both).
            left, right = first.eyes.astype(int)
            differ = (np.abs(left - right).max(axis=2) > 24).mean()
            assert 0.001 < differ < 0.25, differ
            lx_suit = np.nonzero(near(first.eyes[0], render.SUIT))[1].mean()
            rx_suit = np.nonzero(near(first.eyes[1], render.SUIT))[1].mean()
            assert 0.3 < lx_suit - rx_suit < 12, (lx_suit, rx_suit)

            # Turning the head left (yaw +25 degrees about +Y) moves the clone right in
            # the picture, by about what the 90 degree lens says.
            runtime.pose("head", (0.0, 1.2, 0.0, *yaw_quat(25)))
            turned = await shown_after(runtime, runtime.observed().frames + 1)
            t_suit = np.nonzero(near(turned.eyes[0], render.SUIT))[1]
            assert t_suit.size, colour_share(turned.eyes[0])
            w = turned.eyes.shape[2]
            before = math.atan((lx_suit + 0.5 - w / 2) / (w / 2))
            expect = w / 2 * (1 + math.tan(before + math.radians(25))) - 0.5
            assert abs(t_suit.mean() - expect) < 6, (t_suit.mean(), expect, lx_suit)
            assert abs(turned.poses[0][4] - yaw_quat(25)[1]) < 1e-4  # the layer's pose too

            # Turned round to face the back of the hall: no clone, (nearly) no stage, and
            # the rows of seats behind.
            runtime.pose("head", (0.0, 1.2, 0.0, *yaw_quat(180)))
            back = await shown_after(runtime, runtime.observed().frames + 1)
            share, ahead = colour_share(back.eyes[0]), colour_share(first.eyes[0])
            assert share["suit"] == 0 and share["stage"] < ahead["stage"] / 5, (share, ahead)
            assert share["seat"] > 5 * ahead["seat"] and share["floor"] > 0.02, (share, ahead)
            runtime.pose("head", (0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0))
            again = await shown_after(runtime, runtime.observed().frames + 1)
            assert colour_share(again.eyes[0])["suit"] >= 0.0005

            # Lost head tracking: the app submits no layer rather than a wrong picture.
            runtime.tracked(0b1110)
            lost_at = runtime.observed().frames
            await eventually(lambda: runtime.observed().frames > lost_at + 5)  # it took effect
            stalled = runtime.observed()
            await eventually(lambda: runtime.observed().frames > stalled.frames + 10)
            later = runtime.observed()
            assert later.frames > stalled.frames and later.layer_frames == stalled.layer_frames
            runtime.tracked(0xF)
            await shown_after(runtime, runtime.observed().frames + 1)

            runtime.request_exit()
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 20)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()[-1500:]
        assert stdout.startswith(b"frames "), stdout
        seen = runtime.observed()
        assert not seen.instance_alive and seen.swapchains == 0 and seen.layer_error == 0

        # --frames/--screenshot: the left eye as the app drew it, the same hall.
        runtime.reset()  # withdraw the exit request
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "townhall.server.ops.cli", "xr", "--frames", "5",
            "--screenshot", str(shot), "--url", srv.ws_url, "--token", token("hmd2", name="Ida"),
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 0, stderr.decode()[-1500:]
        assert b"frames 5" in stdout
    img = read_png(shot)
    assert img.shape == (480, 640, 3)
    assert colour_share(img)["suit"] >= 0.0005 and colour_share(img)["stage"] >= 0.01


def offered() -> set[str]:
    return {e.extension_name.decode() for e in xr.enumerate_instance_extension_properties()}


def test_without_opengl_the_headset_runs_headless(runtime: TestRuntime) -> None:
    runtime.offer_gl(False)
    assert "XR_KHR_opengl_enable" not in offered()
    with Headset(headless=None) as headset:
        assert headset.headless and headset.graphics is None
        assert "XR_MND_headless" in headset.extensions
        seen = runtime.observed()
        assert seen.headless and not seen.gl_session and seen.swapchains == 0
        for _ in range(20):
            if headset.poll().running:
                break
        t = headset.wait_frame().predicted_display_time
        assert headset.render(t, lambda *a: None) == []
        headset.end_frame()
    runtime.offer_gl(True)
    assert "XR_KHR_opengl_enable" in offered()
