"""The desktop mirror (`townhall xr --window`) under Xvfb with Mesa's software renderer.

A real server, a real `townhall xr --window` process, a real OpenGL window: the screenshot
must show the hall (floor, stage, seats) and the clone (suit and skin colours where the
clone stands), not a blank image. It is saved to docs/screenshots/xr-mirror.png for README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from townhall.plugin.xr import render
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings

ROOT = Path(__file__).resolve().parents[1]
SHOT = ROOT / "docs" / "screenshots" / "xr-mirror.png"


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    xvfb = shutil.which("Xvfb")
    assert xvfb, "Xvfb is missing: apt-get install xvfb (.ci/run installs it)"
    # Pick a free display ourselves and wait for its socket: other X servers (other tests,
    # other users) may hold the low numbers.
    for number in range(90 + os.getpid() % 50, 400):
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        proc = subprocess.Popen(
            [xvfb, f":{number}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                break
            time.sleep(0.05)
        if proc.poll() is None and Path(f"/tmp/.X11-unix/X{number}").exists():
            break
        proc.kill()
        proc.wait(10)
    else:
        raise AssertionError("could not start Xvfb on any display")
    try:
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


def read_png(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if kind == b"IHDR":
            w, h = int.from_bytes(body[:4], "big"), int.from_bytes(body[4:8], "big")
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert (raw[:, 0] == 0).all()  # our writer uses filter 0 only
    return raw[:, 1:].reshape(h, w, 3)


def near(img: np.ndarray, color: tuple[float, float, float], tol: int = 40) -> np.ndarray:
    target = np.array(color) * 255
    shades = [target * k for k in (1.0, 0.95, 0.85, 0.75, 0.55)]
    return np.any([np.abs(img.astype(int) - s).max(axis=2) < tol / 4 for s in shades], axis=0)


async def test_desktop_mirror_shows_the_hall_and_the_clone(
    display: str, tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"}
        out = tmp_path / "mirror.png"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "townhall.server.cli", "xr", "--window",
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
