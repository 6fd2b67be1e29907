"""Shared by the OpenGL tests of the headset plugin: an Xvfb display, PNG reading, colours."""

from __future__ import annotations

import contextlib
import math
import os
import select
import shutil
import subprocess
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """A private X display (``:N``) for Mesa's software GL; stopped on exit.

    Xvfb picks a free display itself and, once it accepts connections, writes its number
    to ``-displayfd``: the test waits on that line, not on a clock (other X servers, of
    other tests or users, may hold the low numbers).
    """
    exe = shutil.which("Xvfb")
    assert exe, "Xvfb is missing: apt-get install xvfb (.ci/run installs it)"
    read_end, write_end = os.pipe()
    proc = subprocess.Popen(
        [exe, "-displayfd", str(write_end), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        pass_fds=(write_end,),
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as ready:
            readable, _, _ = select.select([ready], [], [], 60)  # a hung Xvfb fails, not hangs
            number = ready.readline().strip() if readable else ""  # "" at EOF: Xvfb exited
        assert number.isdigit(), f"Xvfb did not start (exit status {proc.poll()})"
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
    """Pixels showing ``color`` under one of the renderer's face shades."""
    target = np.array(color) * 255
    shades = [target * k for k in (1.0, 0.95, 0.85, 0.75, 0.55)]
    rgb = img[..., :3].astype(int)
    return np.any([np.abs(rgb - s).max(axis=2) < tol / 4 for s in shades], axis=0)


def yaw_quat(deg: float) -> tuple[float, float, float, float]:
    """A turn of ``deg`` degrees about +Y as (x, y, z, w)."""
    h = math.radians(deg) / 2
    return (0.0, math.sin(h), 0.0, math.cos(h))
