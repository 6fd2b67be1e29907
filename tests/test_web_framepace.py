"""How /watch spaces its frames (server/web/src/watch/framepace.js), against a scripted GPU.

Node runs the page's own module with a fake WebGL context whose fences pass when a scripted
cost has elapsed (server/web/test/framepace_check.mjs); the page test in test_web_watch.py
measures the real thing on SwiftShader.
"""

from __future__ import annotations

import functools
import itertools
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

WEB = Path(__file__).parent.parent / "server" / "web"
NODE = shutil.which("node")
POLL_MS = 16  # the check's animation-frame interval


@functools.cache
def report() -> dict[str, Any]:
    assert NODE is not None, "node is not installed"
    proc = subprocess.run(
        [NODE, "test/framepace_check.mjs"], cwd=WEB, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def gaps(frames: list[dict[str, float]]) -> list[float]:
    return [b["start"] - a["start"] for a, b in itertools.pairwise(frames)]


def test_steady_frames_keep_the_gpu_at_most_half_busy() -> None:
    run = report()["steady"]
    busy = sum(f["cost"] for f in run["frames"][4:-1]) / (
        run["frames"][-1]["start"] - run["frames"][4]["start"]
    )
    assert busy <= 0.5
    # A fence is seen to pass at the next animation frame, so a cost reads up to one late.
    assert 300 <= run["costMs"] <= 300 + POLL_MS
    # ... and not much less: spaced about twice the cost apart, not further.
    assert max(gaps(run["frames"])[4:]) <= 2 * 300 + POLL_MS


def test_a_compile_or_upload_frame_does_not_hold_the_next_frames_back() -> None:
    frames = report()["spikes"]["frames"]
    for before, after in itertools.pairwise(frames):
        # Each frame waits for the one before to finish, then at most twice the usual cost.
        assert after["start"] - before["start"] <= before["cost"] + 2 * 200 + 3 * POLL_MS, (
            before,
            after,
        )
    assert 200 <= report()["spikes"]["costMs"] <= 200 + POLL_MS


def test_a_fence_that_never_passes_slows_the_view_but_never_stops_it() -> None:
    run = report()["neverSignals"]
    assert len(run["frames"]) == 6
    assert all(g >= 4000 for g in gaps(run["frames"]))
    assert run["frames"][-1]["start"] < 6 * 2 * 4000 + 6 * POLL_MS


def test_without_fences_the_render_call_is_the_cost() -> None:
    run = report()["noFences"]
    assert run["costMs"] == 100
    assert all(g >= 200 for g in gaps(run["frames"])[4:])


def test_cheap_frames_keep_the_minimum_spacing() -> None:
    run = report()["cheap"]
    assert all(100 <= g <= 100 + POLL_MS for g in gaps(run["frames"]))
