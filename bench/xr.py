"""The headset renderer's cost per frame on this machine: Mesa's software OpenGL (llvmpipe)
under Xvfb, the full default hall, the clone speaking and 2,000 people in the crowd.

Two sizes per eye: the OpenXR runtime's recommended size (the project's test runtime,
tests/xr_runtime, through the Khronos loader and real swapchains: the path `townhall xr`
takes) and a Quest 2-class size (1832x1920 per eye, an offscreen framebuffer). For each, per
frame: the once-per-frame work (pose and skin the clone, place the crowd, the panels, the
screens' close-up), then each eye; CPU time is the submitting thread's time (on llvmpipe
that includes vertex processing), GPU time is a GL_TIME_ELAPSED query around the eye's
commands (llvmpipe's rasteriser threads), wall time includes glFinish. The frame budget at
72 and 90 Hz is 13.9 and 11.1 ms for everything; the result says how far off it is.

    python bench/xr.py                 # 40 frames each size
    python bench/xr.py --frames 10 --no-large

Prints progress on stderr and one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
# This file is bench/xr.py: keep its folder off the path, or `import xr` (pyopenxr) finds it.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))  # tests.xr_runtime: the OpenXR runtime this bench runs on


def log(text: str) -> None:
    print(f"[xr-bench] {text}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def display() -> Iterator[None]:
    """A private Xvfb display unless one is set (and software GL either way)."""
    os.environ["LIBGL_ALWAYS_SOFTWARE"] = "1"
    if os.environ.get("DISPLAY"):
        yield
        return
    exe = shutil.which("Xvfb")
    if exe is None:
        raise SystemExit("xr-bench: Xvfb is missing (apt-get install xvfb)")
    for number in range(150 + os.getpid() % 50, 400):
        if Path(f"/tmp/.X{number}-lock").exists() or Path(f"/tmp/.X11-unix/X{number}").exists():
            continue
        proc = subprocess.Popen(
            [exe, f":{number}", "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while proc.poll() is None and not Path(f"/tmp/.X11-unix/X{number}").exists():
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if proc.poll() is None:
            break
    else:
        raise SystemExit("xr-bench: no free X display")
    os.environ["DISPLAY"] = f":{number}"
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def crowd_frame(scene, count: int, t: float):  # type: ignore[no-untyped-def]
    """A StageFrame: the clone mid-sentence and ``count`` seated attendees (a sixth of them
    near, with head and hand poses; 5% with a hand up)."""
    from townhall.plugin.idle import idle_pose
    from townhall.plugin.playback import Attendee, AvatarPose, StageFrame
    from townhall.protocol.skeleton import VISEMES

    hips, rot, vis, expr = idle_pose(t)
    vis = np.zeros(len(VISEMES), np.float32)
    vis[10 + int(t * 12) % 5] = 1.0  # a vowel at a time
    avatar = AvatarPose(
        hips, rot, vis, expr, np.array([0.0, 1.6, 5.0], np.float32), "live", t * 1e6
    )
    rng = np.random.default_rng(7)
    attendees = {}
    for slot in range(count):
        flags = 1 if slot % 20 == 0 else 0
        if slot % 6 == 0:
            pos = np.array(
                [[0, 1.2, 0], [-0.2, 0.7, -0.3], [0.2, 1.8 if flags else 0.7, -0.3]], np.float32
            )
            pos[0, 0] += 0.05 * math.sin(t + slot)
            yaw = 0.3 * math.sin(0.7 * t + slot)
            rot = np.tile(
                np.array([0, math.sin(yaw / 2), 0, math.cos(yaw / 2)], np.float32), (3, 1)
            )
            attendees[slot] = Attendee(slot, flags | 6, pos, rot, 0.0, 0.0, 0.0)
        else:
            attendees[slot] = Attendee(
                slot,
                flags,
                None,
                None,
                float(rng.uniform(-30, 30)),
                float(rng.uniform(-10, 5)),
                1.9 if flags else 0.0,
            )
    return StageFrame(
        t * 1e6,
        avatar,
        attendees,
        [],
        "We are focusing on three things this year:",
        "approved",
        "I'm an AI clone of Dana Reyes.",
        "What is our strategy?",
    )


class Timer:
    """GL_TIME_ELAPSED queries."""

    def __init__(self) -> None:
        from OpenGL import GL

        self.GL = GL
        self.query = int(np.asarray(GL.glGenQueries(1)).reshape(-1)[0])

    def __enter__(self) -> Timer:
        self.GL.glBeginQuery(self.GL.GL_TIME_ELAPSED, self.query)
        return self

    def __exit__(self, *exc: object) -> None:
        self.GL.glEndQuery(self.GL.GL_TIME_ELAPSED)

    def ms(self) -> float:
        value = ctypes.c_uint64(0)
        self.GL.glGetQueryObjectui64v(self.query, self.GL.GL_QUERY_RESULT, ctypes.byref(value))
        return value.value / 1e6


def measure(
    renderer,
    scene,
    frames: int,
    eyes: list[tuple[object, np.ndarray, np.ndarray, tuple[int, int]]],
    crowd: int,
) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Render ``frames`` frames; ``eyes``: (bind the target, view, projection, size)."""
    from OpenGL import GL

    renderer.seats_of = {slot: slot for slot in range(crowd)}
    timers = [Timer() for _ in eyes]
    prep_cpu, prep_wall, eye_cpu, eye_gpu, eye_wall, frame_wall, tris = [], [], [], [], [], [], []
    for i in range(frames + 3):
        frame = crowd_frame(scene, crowd, 1.0 + i / 72)
        GL.glFinish()
        f0 = time.perf_counter()
        c0 = time.thread_time()
        renderer.prepare(frame)
        c1 = time.thread_time()
        GL.glFinish()
        w1 = time.perf_counter()
        per_eye = []
        for timer, (bind, view, proj, size) in zip(timers, eyes, strict=True):
            bind()  # type: ignore[operator]
            GL.glViewport(0, 0, *size)
            e0, t0 = time.perf_counter(), time.thread_time()
            with timer:
                n = renderer.draw(frame, view, proj)
            t1 = time.thread_time()
            GL.glFinish()
            per_eye.append(((t1 - t0) * 1e3, timer.ms(), (time.perf_counter() - e0) * 1e3, n))
        done = time.perf_counter()
        if i < 3:
            continue  # warm-up: shader compiles, first uploads
        prep_cpu.append((c1 - c0) * 1e3)
        prep_wall.append((w1 - f0) * 1e3)
        for cpu, gpu, wall, n in per_eye:
            eye_cpu.append(cpu)
            eye_gpu.append(gpu)
            eye_wall.append(wall)
            tris.append(n)
        frame_wall.append((done - f0) * 1e3)
    med = lambda xs: round(float(np.median(xs)), 2)  # noqa: E731
    p95 = lambda xs: round(float(np.percentile(xs, 95)), 2)  # noqa: E731
    frame_ms = med(frame_wall)
    return {
        "frame_prepare_cpu_ms": med(prep_cpu),
        "frame_prepare_wall_ms": med(prep_wall),
        "eye_cpu_ms": med(eye_cpu),
        "eye_gpu_ms": med(eye_gpu),
        "eye_wall_ms": med(eye_wall),
        "frame_wall_ms": frame_ms,
        "frame_wall_p95_ms": p95(frame_wall),
        "triangles_per_eye": int(np.median(tris)),
        "fps": round(1000 / frame_ms, 1),
        "budget_72hz_ms": round(1000 / 72, 2),
        "budget_90hz_ms": round(1000 / 90, 2),
        "over_budget_72hz": round(frame_ms / (1000 / 72), 1),
        "over_budget_90hz": round(frame_ms / (1000 / 90), 1),
    }


def eye_views(scene, seat: int) -> list[tuple[np.ndarray, np.ndarray]]:  # type: ignore[no-untyped-def]
    """Both eyes of a wearer in ``seat`` looking at the clone (64 mm apart, 90 degree fov)."""
    from townhall.plugin.xr import render

    views = []
    for dx in (-0.032, 0.032):
        views.append(render.seat_view(scene, seat, (dx, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0)))
    return views


def run_runtime_size(
    frames: int, crowd: int, tmp: Path
) -> tuple[dict[str, float], tuple[int, int]]:
    """The runtime's recommended size, through OpenXR swapchains (the test runtime)."""
    import xr
    from OpenGL import GL

    from tests.xr_runtime import TestRuntime
    from townhall.plugin.xr import render
    from townhall.plugin.xr.session import Headset
    from townhall.plugin.xr.stagemodel import default_model
    from townhall.scenes.loader import default_scene_path, load_scene

    scene = load_scene(default_scene_path())
    runtime = TestRuntime(tmp)
    with runtime, Headset(headless=False) as headset:
        g = headset.graphics
        for _ in range(50):
            if headset.poll().running:
                break
        sc = g.swapchains
        size = (sc[0].width, sc[0].height)
        log(f"runtime {headset.runtime_name}: {len(sc)} swapchains of {size[0]}x{size[1]}")
        renderer = render.HallRenderer(scene, default_model())
        seat = len(scene.seats) // 2
        proj = render.frustum(
            type(
                "F",
                (),
                dict(
                    angle_left=-0.785398,
                    angle_right=0.785398,
                    angle_up=0.785398,
                    angle_down=-0.785398,
                ),
            )()
        )
        images = []

        def binder(k: int):  # type: ignore[no-untyped-def]
            def bind() -> None:
                index = xr.acquire_swapchain_image(sc[k].handle, xr.SwapchainImageAcquireInfo())
                xr.wait_swapchain_image(
                    sc[k].handle, xr.SwapchainImageWaitInfo(xr.INFINITE_DURATION)
                )
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, g.framebuffer)
                GL.glFramebufferTexture2D(
                    GL.GL_FRAMEBUFFER,
                    GL.GL_COLOR_ATTACHMENT0,
                    GL.GL_TEXTURE_2D,
                    sc[k].textures[index],
                    0,
                )
                GL.glFramebufferRenderbuffer(
                    GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, sc[k].depth
                )
                images.append(k)

            return bind

        eyes = [(binder(k), v, proj, size) for k, v in enumerate(eye_views(scene, seat))]
        # Release each image after its eye (the runtime wants acquire/wait/release pairs).
        orig = [e[0] for e in eyes]

        def wrap(k: int):  # type: ignore[no-untyped-def]
            def bind() -> None:
                if images and images[-1] != k:
                    pass
                for j in range(len(sc)):
                    if j in images:
                        xr.release_swapchain_image(sc[j].handle, xr.SwapchainImageReleaseInfo())
                        images.remove(j)
                orig[k]()

            return bind

        eyes = [(wrap(k), v, p, s) for k, (_, v, p, s) in enumerate(eyes)]
        result = measure(renderer, scene, frames, eyes, crowd)
        for j in list(images):
            xr.release_swapchain_image(sc[j].handle, xr.SwapchainImageReleaseInfo())
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
    runtime.close()
    return result, size


def run_offscreen(frames: int, crowd: int, size: tuple[int, int]) -> dict[str, float]:
    """A headset-class eye size in an offscreen framebuffer (same renderer)."""
    import glfw
    from OpenGL import GL

    from townhall.plugin.xr import render
    from townhall.plugin.xr.gl import RenderTarget
    from townhall.plugin.xr.graphics import core_profile_hints
    from townhall.plugin.xr.stagemodel import default_model
    from townhall.scenes.loader import default_scene_path, load_scene

    if not glfw.init():
        raise SystemExit("xr-bench: GLFW could not start")
    glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
    core_profile_hints(glfw)
    window = glfw.create_window(64, 64, "xr-bench", None, None)
    glfw.make_context_current(window)
    try:
        scene = load_scene(default_scene_path())
        renderer = render.HallRenderer(scene, default_model())
        targets = [RenderTarget(*size) for _ in range(2)]
        seat = len(scene.seats) // 2
        proj = render.perspective(104, size[0] / size[1])
        eyes = []
        for t, v in zip(targets, eye_views(scene, seat), strict=True):
            eyes.append((lambda t=t: GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, t.fbo), v, proj, size))
        return measure(renderer, scene, frames, eyes, crowd)
    finally:
        glfw.destroy_window(window)
        glfw.terminate()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--frames", type=int, default=40, help="measured frames per size (default 40)")
    ap.add_argument("--crowd", type=int, default=2000, help="attendees in the hall (default 2000)")
    ap.add_argument("--no-large", action="store_true", help="skip the 1832x1920 per eye run")
    args = ap.parse_args()
    from OpenGL import GL

    out: dict[str, object] = {"crowd": args.crowd, "frames": args.frames, "renderer": ""}
    with display(), tempfile.TemporaryDirectory() as tmp:
        small, size = run_runtime_size(args.frames, args.crowd, Path(tmp))
        out["renderer"] = "llvmpipe (Mesa software OpenGL 3.3 core)"
        out["runtime_eye_size"] = f"{size[0]}x{size[1]}"
        out["runtime_size"] = small
        log(f"runtime size: {json.dumps(small)}")
        if not args.no_large:
            large = run_offscreen(max(5, args.frames // 4), args.crowd, (1832, 1920))
            out["quest2_eye_size"] = "1832x1920"
            out["quest2_size"] = large
            log(f"quest 2 size: {json.dumps(large)}")
    del GL
    out["load_average"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
