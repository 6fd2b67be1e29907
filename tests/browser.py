"""A real browser for page tests: Debian's chromium driven by Playwright, headless, local only.

Nothing downloads a browser: Playwright launches /usr/bin/chromium (installed by .ci/run).
The flags keep Chromium off the network (no background services) and let pages play
audio and render WebGL in software without a screen.
"""

from __future__ import annotations

import asyncio
import fcntl
import shutil
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).parent / "artifacts"
FLAGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


class SharedChromium:
    """One Chromium per test process, launched by Playwright in a thread of its own.

    Launching Chromium (and shutting it down) costs about two seconds a test on a busy
    machine. Playwright's objects belong to the event loop that made them, and each test
    has a loop of its own, so the browser is launched once, from a thread with its own
    loop, with the same flags plus a DevTools port on 127.0.0.1; each test connects to it
    over CDP and works in contexts of its own, which closing the connection discards.
    """

    def __init__(self) -> None:
        self.endpoint = ""
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="chromium", daemon=True)

    def start(self) -> SharedChromium:
        self._thread.start()
        self._ready.wait(120)
        if self._error is not None:
            raise self._error
        assert self.endpoint, "Chromium did not start within 120 s"
        return self

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            port = _free_port()
            async with async_playwright() as pw:
                b = await pw.chromium.launch(
                    executable_path=CHROMIUM,
                    args=[
                        *FLAGS,
                        f"--remote-debugging-port={port}",
                        "--remote-debugging-address=127.0.0.1",
                    ],
                    headless=True,
                )
                self.endpoint = f"http://127.0.0.1:{port}"
                self._ready.set()
                await self._stop.wait()
                await b.close()
        except BaseException as exc:  # said in the test that waits for it
            self._error = exc
            self._ready.set()

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def shared_chromium() -> Iterator[SharedChromium]:
    chromium = SharedChromium().start()
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
async def browser(shared_chromium: SharedChromium) -> AsyncIterator[Browser]:
    """The shared Chromium, as this test's own connection: the contexts and pages the test
    opens are closed with it, and nothing of one test's pages is left for the next."""
    async with async_playwright() as pw:
        b = await pw.chromium.connect_over_cdp(shared_chromium.endpoint)
        try:
            yield b
        finally:
            await b.close()


def artifact(name: str) -> Path:
    """Where a test saves a screenshot (tests/artifacts/, kept out of git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name


WEB = Path(__file__).parent.parent / "server" / "web"
SHARED_SOURCES = ("src/protocol", "src/static", "build.mjs", "package.json")


def _newest(paths: list[Path]) -> float:
    files = [f for p in paths if p.exists() for f in ([p] if p.is_file() else p.rglob("*"))]
    return max((f.stat().st_mtime for f in files if f.is_file()), default=0.0)


def _stale(page: str, built: tuple[str, ...]) -> bool:
    outputs = [WEB / p for p in built]
    sources = [WEB / "src" / page, *(WEB / s for s in SHARED_SOURCES)]
    return not all(p.exists() for p in outputs) or min(
        p.stat().st_mtime for p in outputs
    ) < _newest(sources)


def ensure_built(page: str, built: tuple[str, ...]) -> None:
    """Build the pages with npm when ``built`` files are missing or older than the sources.

    One test process builds at a time (a lock file beside dist/): two builds at once empty
    each other's dist/ ("ENOTEMPTY"), and the second finds the first's fresh pages."""
    if not _stale(page, built):
        return
    with (WEB / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _stale(page, built):
            return
        proc = subprocess.run(
            ["npm", "run", "build", "--silent"],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, f"npm run build failed:\n{proc.stdout}\n{proc.stderr}"
