"""The desktop mirror (`townhall xr --window`) under Xvfb with Mesa's software renderer.

A real server, a real `townhall xr --window` process, a real OpenGL window: the screenshot
must show the hall (floor, stage, seats) and the clone (suit and skin colours where the
clone stands), not a blank image. It is saved to docs/screenshots/xr-mirror.png for README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from townhall.plugin.xr import render
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings
from .xr_helpers import near, read_png, xvfb

ROOT = Path(__file__).resolve().parents[1]
SHOT = ROOT / "docs" / "screenshots" / "xr-mirror.png"


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    with xvfb() as name:
        yield name


async def test_desktop_mirror_shows_the_hall_and_the_clone(
    display: str, tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"}
        out = tmp_path / "mirror.png"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "townhall.server.ops.cli", "xr", "--window",
            "--url", srv.ws_url, "--token", token("mirror", role="spectator", name="Mira"),
            "--frames", "20", "--screenshot", str(out), "--width", "960", "--height", "540",
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, (display, os.listdir("/tmp/.X11-unix"), stderr.decode()[-800:])
        assert b"frames 20" in stdout
    img = read_png(out)
    assert img.shape == (540, 960, 3)
    h, w, _ = img.shape
    sky = near(img, render.SKY)
    floor = near(img, render.FLOOR)
    stage = near(img, render.STAGE)
    seats = near(img, render.SEAT)
    suit = near(img, render.SUIT)
    skin = near(img, render.SKIN)
    for name, mask, least in (
        ("sky", sky, 0.05), ("floor", floor, 0.01), ("stage", stage, 0.01),
        ("seats", seats, 0.001), ("suit", suit, 0.0005), ("skin", skin, 0.0001),
    ):  # fmt: skip
        assert mask.mean() >= least, (name, mask.mean())
    # The clone stands in the middle of the picture, above the stage.
    ys, xs = np.nonzero(suit)
    assert abs(xs.mean() - w / 2) < w * 0.1, xs.mean()
    assert ys.mean() < h * 0.8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 8  # not a blank image
    SHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, SHOT)
