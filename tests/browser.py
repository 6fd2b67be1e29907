"""A real browser for page tests: Debian's chromium driven by Playwright, headless, local only.

Nothing downloads a browser: Playwright launches /usr/bin/chromium (installed by .ci/run).
The flags keep Chromium off the network (no background services) and let pages play
audio and render WebGL in software without a screen.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator
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


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
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


def ensure_built(page: str, built: tuple[str, ...]) -> None:
    """Build the pages with npm when ``built`` files are missing or older than the sources."""
    outputs = [WEB / p for p in built]
    sources = [WEB / "src" / page, *(WEB / s for s in SHARED_SOURCES)]
    if all(p.exists() for p in outputs) and min(p.stat().st_mtime for p in outputs) >= _newest(
        sources
    ):
        return
    proc = subprocess.run(
        ["npm", "run", "build", "--silent"], cwd=WEB, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"npm run build failed:\n{proc.stdout}\n{proc.stderr}"
