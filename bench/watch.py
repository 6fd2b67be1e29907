"""/watch's frame rate in software WebGL with the clone's VRM loaded.

Starts a server in this process (the embedded clone answering the sample questions one after
another, so the clone speaks throughout), opens /watch in Debian's Chromium through
Playwright with SwiftShader (software WebGL, as on a machine without a GPU) and counts the
frames the page draws over a window. The page holds a software renderer to at most 15
frames a second, and spaces frames at least twice a frame's cost apart (it leaves the
cores to the audio); ``frame_cost_ms`` is a frame's cost as the page measures it (a WebGL2
fence: from its first command until the GPU process has done it), and ``gpu_process_busy``
the CPU cores Chromium's GPU process (SwiftShader, which spreads a frame over every core)
used over the window: about half the machine's cores when the pacing works.

It also measures what the /watch test leaves to a bench, since a busy machine moves it: the
share of 20 ms audio frames that came too late to play (``audio_late_pct``, target < 5%) and
how far the mouth is from the voice (``lip_sync_lag_ms``, target within 60 ms, with
``lip_sync_score`` the correlation of loudness and mouth opening), after five audio packets
were dropped on purpose (a gap must not shift the rest of the voice).

    python bench/watch.py --seconds 20

Prints progress on stderr and one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def log(text: str) -> None:
    print(f"[watch-bench] {text}", file=sys.stderr, flush=True)


def gpu_process_cpu_s() -> float:
    """CPU seconds so far of the GPU process of the Chromium this process launched."""
    total = 0.0
    for proc in psutil.Process().children(recursive=True):
        try:
            if "--type=gpu-process" in proc.cmdline():
                times = proc.cpu_times()
                total += times.user + times.system
        except psutil.Error:
            continue
    return total


def lag_ms(probe: dict[str, list[list[float]]]) -> tuple[float, float]:
    """Best lag (ms, positive: the mouth is late) and correlation between what is heard
    (output RMS by the time it is heard) and the mouth the page shows, on a 10 ms grid."""
    audio = np.asarray(probe["audio"], dtype=np.float64)
    mouth = np.asarray(probe["mouth"], dtype=np.float64)
    t0 = max(audio[0, 0], mouth[0, 0])
    t1 = min(audio[-1, 0], mouth[-1, 0])
    grid = np.arange(t0, t1, 10.0)
    # Loudness per 10 ms: the largest quantum RMS in each bin (quanta are 2.7 ms).
    bins = np.clip(((audio[:, 0] - t0) // 10).astype(int), 0, len(grid) - 1)
    env = np.zeros(len(grid))
    np.maximum.at(env, bins, audio[:, 1])
    m = np.interp(grid, mouth[:, 0], mouth[:, 1])
    a = (env - env.mean()) / (env.std() or 1)
    b = (m - m.mean()) / (m.std() or 1)
    n = len(grid)
    lags = range(-20, 21)
    scores = [
        float(np.mean(a[max(0, -k) : n - max(0, k)] * b[max(0, k) : n - max(0, -k)])) for k in lags
    ]
    i = int(np.argmax(scores))
    return list(lags)[i] * 10.0, scores[i]


async def run(
    seconds: float, width: int, height: int, closeup: bool, avatar: str = ""
) -> dict[str, object]:
    from playwright.async_api import async_playwright

    from tests.conftest import SECRET, make_settings
    from townhall.plugin.client import RoomClient
    from townhall.protocol.messages import Ask
    from townhall.server.app import TownhallServer
    from townhall.server.clone.persona import sample_persona_path
    from townhall.server.gateway.tokens import issue_token

    questions = [
        q
        for q in (sample_persona_path() / "questions.txt").read_text().splitlines()
        if q and not q.startswith("#")
    ][:8]
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(
            Path(tmp), clone={"enabled": True, "pause_s": 0.3}, qa={"mode": "auto"}
        )
        async with TownhallServer(settings) as srv:
            mint = lambda user, role: issue_token(  # noqa: E731
                SECRET, user_id=user, name=user, role=role, room="main", ttl_s=3600
            )
            asker = RoomClient(srv.ws_url, mint("asker", "attendee"))
            await asker.connect()
            for i, q in enumerate(questions):
                await asker.send(Ask(i + 1, q))
            async with async_playwright() as p:
                browser = await p.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=[
                        "--use-gl=angle",
                        "--use-angle=swiftshader",
                        "--enable-unsafe-swiftshader",
                        "--autoplay-policy=no-user-gesture-required",
                    ],
                )
                page = await browser.new_page(viewport={"width": width, "height": height})
                extra = f"&avatar={avatar}" if avatar else ""
                await page.goto(f"{srv.url}/watch?token={mint('viewer', 'spectator')}{extra}")
                # Functions, not bare expressions: the page's CSP forbids eval.
                await page.wait_for_function(
                    "() => window.townhallDebug && townhallDebug.framesRendered > 5",
                    timeout=60_000,
                )
                kind = await page.evaluate("townhallDebug.avatarKind")
                log(f"avatar: {kind}; waiting for the clone to speak")
                await page.wait_for_function(
                    "() => townhallDebug.mouthOpen() > 0.1", timeout=60_000
                )
                if not closeup:
                    await page.evaluate("townhallDebug.setCloseup(false)")
                await page.evaluate("townhallDebug.startSyncProbe()")
                await page.evaluate("townhallDebug.loseAudioPackets(5)")
                audio0 = await page.evaluate("townhallDebug.audioStats")
                f0 = await page.evaluate("townhallDebug.framesRendered")
                gpu0 = gpu_process_cpu_s()
                t0 = time.monotonic()
                costs = []
                while time.monotonic() - t0 < seconds:
                    await asyncio.sleep(0.5)
                    costs.append(await page.evaluate("townhallDebug.renderCostMs"))
                f1 = await page.evaluate("townhallDebug.framesRendered")
                elapsed = time.monotonic() - t0
                gpu_busy = (gpu_process_cpu_s() - gpu0) / elapsed
                probe = await page.evaluate("townhallDebug.stopSyncProbe()")
                audio1 = await page.evaluate("townhallDebug.audioStats")
                await browser.close()
            await asker.close()
    render_ms = statistics.median(costs)
    lag, score = lag_ms(probe)
    frames = max(1, audio1["frames"] - audio0["frames"])
    late = audio1["late"] + audio1["skippedLate"] - audio0["late"] - audio0["skippedLate"]
    return {
        "avatar": kind,
        "viewport": f"{width}x{height}",
        "webgl": "SwiftShader (software)",
        "fps": round((f1 - f0) / elapsed, 1),
        "frame_cost_ms": round(render_ms, 1),
        "gpu_process_busy": round(gpu_busy, 2),
        "closeup_inset": closeup,
        "software_cap_fps": 15,
        "seconds": round(elapsed, 1),
        "audio_frames": frames,
        "audio_late_pct": round(100 * late / frames, 2),
        "audio_errors": audio1["errors"],
        "lip_sync_lag_ms": lag,
        "lip_sync_score": round(score, 2),
        "targets": {"audio_late_pct": 5, "lip_sync_abs_lag_ms": 60, "lip_sync_score": 0.3},
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window (default 20)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=760)
    ap.add_argument("--no-closeup", action="store_true", help="hide the close-up inset")
    ap.add_argument(
        "--avatar",
        default="",
        help="?avatar= for the page (e.g. a missing file: the procedural stand-in, for comparison)",
    )
    args = ap.parse_args()
    result = asyncio.run(
        run(args.seconds, args.width, args.height, not args.no_closeup, args.avatar)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
