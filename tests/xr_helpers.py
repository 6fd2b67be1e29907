"""Shared by the tests of the headset plugin: an Xvfb display, the OpenXR test runtime,
PNG reading, colours.

The fixtures (``display``, ``runtime`` and the autouse ``fresh_runtime``) are imported by
the modules that use them (as ``display_fixture``, ``runtime_fixture``: the names pytest
knows them by stay free for the tests' parameters), so each module gets its own display
and runtime, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import os
import select
import shutil
import subprocess
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from .waiting import POLL_S, eventually
from .xr_runtime import Displayed, TestRuntime


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


@pytest.fixture(scope="module", name="display")
def display_fixture() -> Iterator[str]:
    """One X display for the module's drawing tests."""
    with xvfb() as name:
        yield name


@pytest.fixture(scope="module", name="runtime")
def runtime_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestRuntime]:
    """The OpenXR test runtime, built once for the module."""
    rt = TestRuntime(tmp_path_factory.mktemp("xr_runtime"))
    with rt:
        yield rt
    rt.close()


@pytest.fixture(autouse=True)
def fresh_runtime(runtime: TestRuntime) -> None:
    """Each test starts from a runtime with no poses, buttons or pictures of the last."""
    runtime.reset()


class FrameLog:
    """The pictures the headset showed, kept as they come and read when the reader can.

    Tesseract takes seconds a picture on a busy machine, and a recording does not wait for
    it: the replay app ends with the recording. So the pictures are kept while the app runs
    (the left eye, at most ``keep``, spread over the whole run: thinned by half whenever
    full) and :meth:`first` reads them, the newest first while the app runs (to stop it
    early), then, once it has ended, every one left in the order shown.
    """

    def __init__(self, runtime: TestRuntime, keep: int = 48) -> None:
        self.runtime = runtime
        self.keep = keep
        self.shown: list[Displayed] = []
        self._step = 1
        self._task: asyncio.Task[None] | None = None

    def start(self) -> FrameLog:
        self._task = asyncio.create_task(self._collect())
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _collect(self) -> None:
        while True:
            d = self.runtime.displayed()
            last = self.shown[-1].frame if self.shown else -1
            if d is not None and (d.frame >= last + self._step or d.frame < last):
                self.shown.append(dataclasses.replace(d, eyes=d.eyes[:1].copy()))
                if len(self.shown) > self.keep:
                    self.shown = self.shown[::2]
                    self._step *= 2
            await asyncio.sleep(POLL_S)  # the pace of polling, not a wait for something

    async def first(
        self, reads: Callable[[Displayed], bool], running: Callable[[], bool]
    ) -> Displayed | None:
        """The first picture ``reads`` accepts (run in a thread: the server's loop goes on),
        or None when the app has ended and none of its pictures did."""
        tried: set[int] = set()

        def untried() -> list[Displayed]:
            return [d for d in self.shown if d.frame not in tried]

        while True:
            left = untried()
            if not left:
                if not running():
                    return None
                await eventually(lambda: not running() or untried(), 90, "a new picture")
                continue
            d = left[-1] if running() else left[0]
            tried.add(d.frame)
            if await asyncio.to_thread(reads, d):
                return d


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
