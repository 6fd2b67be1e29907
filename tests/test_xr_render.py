"""What the headset displays: `townhall xr` with an OpenGL session, read back by the runtime.

A real server on 127.0.0.1 with the clone, a real `townhall xr` process (the reference
headset app) under Xvfb with Mesa's software renderer, pyopenxr's Khronos loader and the
test runtime (tests/xr_runtime) offering XR_KHR_opengl_enable. The app draws each eye into
the runtime's swapchain textures; the runtime's xrEndFrame reads both eyes back into the
control block, and the test moves the wearer's head and hands and looks where a person
would: at the clone standing at rest (arms down, not a T-pose), at its face while it
speaks (the mouth opens and shuts), at the stage panel (Tesseract reads the disclosure,
the label and the spoken words), at the question board on the left hand (a trigger pull
with the right controller pointed at a question votes for it). The voice comes from the
stage: turned away to the right, the left ear hears more.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import re
import shutil
import subprocess
import sys
import time
import wave
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xr

from townhall.plugin.idle import idle_pose
from townhall.plugin.xr import panels, render
from townhall.plugin.xr.model import VrmModel, load_vrm
from townhall.plugin.xr.session import Headset
from townhall.protocol.messages import (
    Ack,
    Ask,
    Control,
    Moderate,
    QuestionChanged,
    StagePacket,
    StageStart,
)
from townhall.server.app import TownhallServer
from townhall.server.clone.avatar.build import MOUTH_RGB

from .browser import artifact
from .conftest import TokenMaker
from .test_clone_stage import Viewer, ask_and_approve, clone_settings
from .waiting import eventually
from .xr_helpers import display_fixture, fresh_runtime, runtime_fixture, yaw_quat  # noqa: F401 (fixtures)
from .xr_runtime import BUTTON_RIGHT_SELECT, GL_SRGB8_ALPHA8, Displayed, TestRuntime

HALF_FOV = 0.785398  # the test runtime's symmetric 90 degree field of view
MOUTH = np.array(MOUTH_RGB) * 255


async def shown_after(runtime: TestRuntime, frame: int, timeout: float = 90.0) -> Displayed:
    """The first eye pair read back after the runtime's frame counter passed ``frame``."""
    shown: list[Displayed] = []

    def displayed() -> bool:
        d = runtime.displayed()
        if d is not None and d.frame > frame:
            shown.append(d)
        return bool(shown)

    await eventually(displayed, timeout, f"a frame after {frame} shown")
    return shown[0]


async def next_shown(runtime: TestRuntime) -> Displayed:
    """A picture drawn after now (two frames on, so it saw the latest head pose)."""
    return await shown_after(runtime, runtime.observed().frames + 2)


def save(name: str, eye: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(eye[..., :3])).save(artifact(name))


# ---------------------------------------------------------------- looking at things


def quat_from_matrix(m: np.ndarray) -> tuple[float, float, float, float]:
    w = math.sqrt(max(0.0, 1 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + m[0, 0] - m[1, 1] - m[2, 2])) / 2, m[2, 1] - m[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - m[0, 0] + m[1, 1] - m[2, 2])) / 2, m[0, 2] - m[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - m[0, 0] - m[1, 1] + m[2, 2])) / 2, m[1, 0] - m[0, 1])
    return (x, y, z, w)


def looking(seat: np.ndarray, eye: np.ndarray, target: np.ndarray) -> tuple[float, ...]:
    """A head pose in the seat frame (the runtime's STAGE space) at world ``eye``, its -Z
    toward world ``target``."""
    inv = np.linalg.inv(seat)
    e = (inv @ [*eye, 1])[:3]
    t = (inv @ [*target, 1])[:3]
    f = (t - e) / np.linalg.norm(t - e)
    x = np.cross(f, [0, 1, 0])
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    m = np.stack([x, y, -f], axis=1)
    return (*e, *quat_from_matrix(m))


def project(
    shown: Displayed, seat: np.ndarray, world: np.ndarray, eye: int = 0
) -> tuple[float, float]:
    """Pixel (x, y) of a world point in an eye image, from the layer's own pose and fov."""
    pose = shown.poses[eye]
    view = np.linalg.inv(seat @ render.pose_matrix(pose))
    p = view @ [*world, 1]
    left, right, up, down = shown.fovs[eye]
    x = (p[0] / -p[2] - math.tan(left)) / (math.tan(right) - math.tan(left))
    y = (math.tan(up) - p[1] / -p[2]) / (math.tan(up) - math.tan(down))
    h, w = shown.eyes.shape[1:3]
    return x * w, y * h


def skin_like(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return (r > 70) & (r > g + 12) & (g > b) & (r - b > 35)


def mouth_pixels(img: np.ndarray) -> int:
    """Pixels showing the inside of the mouth (unlit: its exact colour, give or take one)."""
    return int((np.abs(img[..., :3].astype(int) - MOUTH).max(axis=2) <= 2).sum())


def ocr(
    img: np.ndarray,
    name: str,
    psm: tuple[str, ...] = ("6", "11"),
    scale: int = 2,
    enough: Callable[[str], bool] | None = None,
) -> str:
    """Tesseract's reading of an image, upscaled twice, as it is and inverted (light text on
    dark and dark text on a coloured chip read best in opposite polarities).

    ``enough``: a test of the reading that more text can only keep true (words found in
    it): once the readings so far pass it, the remaining modes and polarity are not run
    (each run costs CPU-seconds; the caller asserts on the same reading either way).
    Tesseract runs on one thread (OMP_THREAD_LIMIT=1): its OpenMP workers spin while they
    wait, four times the CPU for the same reading of a picture this small.

    Blocking (seconds a run on a busy machine): a test with the server in its own event loop
    calls it in a thread, or the server stops answering meanwhile, and past 20 s the
    headset's keepalive ping times out and closes its connection."""
    from PIL import Image, ImageOps

    exe = shutil.which("tesseract")
    assert exe, "tesseract is missing: apt-get install tesseract-ocr (.ci/run installs it)"
    im = Image.fromarray(np.ascontiguousarray(img[..., :3])).convert("L")
    im = im.resize((im.width * scale, im.height * scale), Image.Resampling.LANCZOS)
    paths = []
    for k, variant in enumerate((im, ImageOps.invert(im))):
        paths.append(artifact(name.replace(".png", f"-{k}.png")))
        variant.save(paths[-1])
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    out: list[str] = []
    for path in paths:
        for mode in psm:  # 6: a block of text; 11: sparse text; 7: one line
            proc = subprocess.run(
                [exe, str(path), "-", "--psm", mode],
                capture_output=True, text=True, check=False, env=env,
            )  # fmt: skip
            out.append(proc.stdout)
            if enough is not None and enough("\n".join(out)):
                return "\n".join(out)
    return "\n".join(out)


def words(text: str) -> list[str]:
    # Tesseract reads a sans-serif "AI" as "Al" (capital I and small l look alike there).
    return [("ai" if w == "al" else w) for w in re.findall(r"[a-z']+", text.lower())]


# ---------------------------------------------------------------- the test


def seat_of(viewer: Viewer, name: str) -> int:
    return next(p.seat for p in viewer.client.state.participants.values() if p.name == name)


def clone_model(srv: TownhallServer) -> VrmModel:
    assert srv.avatar is not None
    return load_vrm(srv.avatar.data)


@pytest.mark.timeout(600)  # software GL on a busy machine: minutes, not the default 180 s
async def test_the_headset_shows_the_clone_the_panels_and_the_board(
    display: str, runtime: TestRuntime, tmp_path: Path, token: TokenMaker
) -> None:
    env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"}
    wav = tmp_path / "voice.wav"
    # The doors are open but the event has not started: the board takes questions, approved
    # ones reach every board, and the clone waits (its first answer comes once it is live).
    settings = clone_settings(tmp_path)
    settings = replace(settings, room=replace(settings.room, phase="doors"))
    async with TownhallServer(settings) as srv:
        moderator = Viewer(srv.ws_url, token("mod", role="moderator", name="Mo"))
        asker = Viewer(srv.ws_url, token("ask", role="attendee", name="Ada"))
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        for v in (moderator, asker, spectator):
            await v.connect()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "townhall.server.ops.cli",
            "xr",
            "--audio-wav",
            str(wav),
            "--url",
            srv.ws_url,
            "--token",
            token("hmd", name="Hema"),
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await _while_running(proc, _look_around(runtime, srv, moderator, asker, spectator))
            runtime.request_exit()
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()[-2000:]
        assert stdout.startswith(b"frames "), stdout
        seen = runtime.observed()
        assert not seen.instance_alive and seen.swapchains == 0 and seen.layer_error == 0
        for v in (moderator, asker, spectator):
            await v.client.close()
    # The voice: stereo; in half-second windows with speech, about even while the wearer
    # faced the stage, the left ear far louder while they were turned to the right.
    with wave.open(str(wav)) as w:
        assert w.getnchannels() == 2 and w.getframerate() == 48000
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).reshape(-1, 2).astype(float)
    win = 24000
    n = len(pcm) // win
    rms = np.sqrt((pcm[: n * win].reshape(n, win, 2) ** 2).mean(axis=1))
    voiced = rms.max(axis=1) > 300
    assert voiced.sum() >= 10, "no voice in the headset"
    ratio = rms[voiced, 0] / np.maximum(rms[voiced, 1], 1.0)
    assert (np.abs(ratio - 1) < 0.15).sum() >= 3, ratio  # facing the clone
    assert (ratio > 3).sum() >= 2, ratio  # the clone on the left


async def _while_running(proc: asyncio.subprocess.Process, steps: Awaitable[None]) -> None:
    """Run ``steps``; if the app exits first, fail at once with what it said (else a wait
    for its next frame would time out, saying nothing of why)."""
    looking_around = asyncio.ensure_future(steps)
    exited = asyncio.ensure_future(proc.wait())
    await asyncio.wait({looking_around, exited}, return_when=asyncio.FIRST_COMPLETED)
    if not looking_around.done():
        looking_around.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await looking_around
        assert proc.stderr is not None
        said = (await proc.stderr.read()).decode(errors="replace")[-2000:]
        raise AssertionError(f"townhall xr exited ({proc.returncode}) mid-test:\n{said}")
    exited.cancel()
    await looking_around


async def _look_around(
    runtime: TestRuntime, srv: TownhallServer, moderator: Viewer, asker: Viewer, spectator: Viewer
) -> None:
    first = await shown_after(runtime, 3, timeout=60)
    seen = runtime.observed()
    assert seen.gl_session and not seen.headless, seen
    assert seen.swapchains == 2 and seen.swapchain_format == GL_SRGB8_ALPHA8, seen
    assert seen.layer_error == 0 and seen.layer_frames >= 3, seen
    # The layer: both eyes, the runtime's size, fov and eye poses (64 mm apart).
    assert first.image_size == (640, 480) and first.eyes.shape == (2, 480, 640, 4)
    for fov in first.fovs:
        assert np.allclose(fov, (-HALF_FOV, HALF_FOV, HALF_FOV, -HALF_FOV), atol=1e-5)
    (lx, ly, _lz, *_), (rx, ry, *_) = first.poses
    assert abs((rx - lx) - 0.064) < 1e-4 and abs(ly - 1.2) < 1e-4 and ly == ry
    for eye in first.eyes:
        assert len(np.unique(eye.reshape(-1, 4)[::7], axis=0)) > 50  # a picture, not a fill
    left, right = first.eyes.astype(int)
    differ = (np.abs(left - right).max(axis=2) > 24).mean()
    assert 0.001 < differ < 0.3, differ  # a stereo pair: nearly the same picture
    save("xr-seat-left.png", first.eyes[0])

    await eventually(
        lambda: any(p.name == "Hema" for p in moderator.client.state.participants.values()), 10
    )
    scene = srv.scene
    seat = render.seat_matrix(scene, seat_of(moderator, "Hema")).astype(np.float64)
    model = clone_model(srv)
    root = np.eye(4)
    root[:3, :3] = render.yaw_matrix(scene.stage.clone_mark.yaw_deg + 180.0)
    root[:3, 3] = scene.stage.clone_mark.position
    facing = root[:3, 2]  # the clone's +Z: toward the audience

    def world(p: np.ndarray) -> np.ndarray:
        return (root @ [*p, 1.0])[:3]

    # --- at rest, before any answer: standing with the arms down, never a T-pose.
    hips, rot, _, _ = idle_pose(0.0)
    posed = model.posed_world(hips, rot, None)
    chest = world(model.bone_position(posed, "upperChest"))
    runtime.pose("head", looking(seat, chest + facing * 3.0, chest))
    rest = await next_shown(runtime)
    save("xr-clone-rest.png", rest.eyes[0])
    skin = skin_like(rest.eyes[0])
    yy, xx = np.mgrid[: skin.shape[0], : skin.shape[1]]

    def skin_near(p: np.ndarray, radius: float = 14) -> int:
        u, v = project(rest, seat, p)
        return int(skin[(xx - u) ** 2 + (yy - v) ** 2 < radius**2].sum())

    for hand in ("leftHand", "rightHand"):
        down = world(model.bone_position(posed, hand))
        t_pose = world(model.bone_world_rest(hand)[:3, 3])
        assert skin_near(down) > 15, (hand, "no hand where an arm hangs")
        assert skin_near(t_pose) == 0, (hand, "a hand out to the side: a T-pose")
    head = world(model.bone_position(posed, "head")) + np.array([0, 0.08, 0])
    assert skin_near(head, 20) > 40, "no face"

    # --- the board on the left hand lists the asker's question; the right controller's
    # ray pointed at its vote button and a trigger pull votes for it.
    ack = await asker.request(lambda ref: Ask(ref, "Will we open an office in Lisbon?"))
    qid = ack.id  # type: ignore[union-attr]
    # Moderated: the audience's boards (the headset's too) hold a question once approved.
    approval = await moderator.request(lambda ref: Moderate(ref, "approve", qid))
    assert isinstance(approval, Ack), approval
    left_grip = (-0.2, 0.9, -0.35, 0.0, 0.0, 0.0, 1.0)
    runtime.pose("left", left_grip)
    board = seat @ panels.board_pose(left_grip)
    probe = panels.Board([panels.BoardItem(qid, "", 1, False)])
    x0, y0, x1, y1 = panels.board_buttons(probe)[f"vote:{qid}"]
    target = panels.board_point(board, ((x0 + x1) / 2, (y0 + y1) / 2))
    hand_at = (seat @ [0.25, 0.8, -0.25, 1.0])[:3]
    aim = looking(seat, hand_at, target)
    runtime.pose("right", aim)
    runtime.pose("head", looking(seat, board[:3, 3] + board[:3, 2] * 0.38, board[:3, 3]))
    # A few frames on, so the panel has drawn the question the headset was sent.
    shown = await shown_after(runtime, runtime.observed().frames + 8)
    save("xr-board.png", shown.eyes[0])
    board_read = lambda t: "questions" in t.lower() and "lisbon" in t.lower()  # noqa: E731
    text = await asyncio.to_thread(ocr, shown.eyes[0], "xr-board-ocr.png", enough=board_read)
    assert board_read(text), text
    runtime.buttons(BUTTON_RIGHT_SELECT)
    await next_shown(runtime)
    runtime.buttons(0)

    def votes() -> int:
        rows = [m.question for m in moderator.of(QuestionChanged) if m.question.id == qid]
        return rows[-1].votes if rows else 0

    await eventually(lambda: votes() == 2, timeout=10)
    runtime.pose("left", (-0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0))
    runtime.pose("right", (0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0))

    # --- the clone answers: its mouth opens and shuts with the words.
    mouth = world(model.bone_position(posed, "head")) + root[:3, :3] @ np.array([0, 0.03, 0.09])
    runtime.pose("head", looking(seat, mouth + facing * 0.3, mouth))
    at_rest = await next_shown(runtime)
    save("xr-mouth-rest.png", at_rest.eyes[0])
    closed = mouth_pixels(at_rest.eyes[0])
    # The moderator sets the Lisbon question aside and starts the event: the clone answers.
    for control in (
        lambda ref: Moderate(ref, "reject", qid),
        lambda ref: Control(ref, "event", "start"),
    ):
        done = await moderator.request(control)
        assert isinstance(done, Ack), done
    # Three questions back to back: speech long enough to read the panel, turn away and
    # look at the face while the clone is still talking.
    approved = await ask_and_approve(asker, moderator, "What is our strategy for the next year?")
    await ask_and_approve(asker, moderator, "What is on the product roadmap this year?")
    await ask_and_approve(spectator, moderator, "How are we using AI tools in our daily work?")
    await eventually(lambda: any(s.question == approved for s in moderator.of(StageStart)), 30)

    stage = next(s for s in moderator.of(StageStart) if s.question == approved)

    def spoken() -> list[str]:
        return [
            c.text
            for m in moderator.of(StagePacket)
            if m.answer == stage.answer
            for c in m.captions
        ]

    # The first answer opens with the spoken AI disclosure (its first caption words): a
    # line's worth of the answer's own words after it, so the panel shows those.
    opening = len(stage.disclosure.split())
    await eventually(lambda: len(spoken()) >= opening + 12, timeout=30)
    assert words(" ".join(spoken()[:opening])) == words(stage.disclosure), spoken()
    # --- the stage panel: the disclosure, the label and the words being said.
    pm = np.eye(4)
    pm[:] = render.HallRenderer.stage_panel_pose(scene)
    centre = pm[:3, 3]
    runtime.pose("head", looking(seat, centre + np.array([0, 0.7, 3.2]), centre))
    shown = await next_shown(runtime)
    # Closer to its left end, the disclosure and the answer's label: taken now and read
    # below, while this answer is still on the panel (Tesseract is slow on a busy machine,
    # and the next answer, with its own label, follows this one).
    pw, ph = render.HallRenderer.stage_panel_size(scene)
    spot = (pm @ [-pw / 4, ph / 4, 0, 1])[:3]
    runtime.pose("head", looking(seat, spot + np.array([0, 0.25, 1.5]), spot))
    close = (await next_shown(runtime)).eyes[0]

    def said_now() -> set[str]:  # the answer's words so far, past the spoken disclosure
        said = set(words(" ".join(spoken()[opening:])))
        return said - set(words(stage.question_text)) - set(words(stage.disclosure))

    seen_text = await asyncio.to_thread(
        ocr, shown.eyes[0], "xr-stage-panel-ocr.png",
        enough=lambda t: len(set(words(t)) & said_now()) >= 4,
    )  # fmt: skip
    save("xr-stage-panel.png", shown.eyes[0])
    read = set(words(seen_text))
    captions = " ".join(spoken()[opening:])
    said = said_now()
    assert len(read & said) >= 4, ("the spoken words are not on the panel", seen_text, captions)
    # The panel's left and right edges are where their projections say (the eye poses are
    # applied right): its dark ground inside each edge, the lit deck's face outside it.
    img = shown.eyes[0][..., :3].astype(int)
    ground = np.abs(img - [12, 14, 20]).max(axis=2) < 10  # the panel's own dark ground
    for height in (-ph / 3, ph / 3):
        for side in (-1, 1):
            u, v = project(shown, seat, (pm @ [side * pw / 2, height, 0, 1])[:3])
            row = round(v)
            inside = ground[row - 1 : row + 2, int(u - side * 6)].mean()
            outside = ground[row - 1 : row + 2, int(u + side * 6)].mean()
            assert inside == 1.0 and outside == 0.0, (side, height, u, v, inside, outside)

    # The close picture: the disclosure and the answer's label.
    save("xr-stage-panel-close.png", close)
    near = {"ai", "clone", "dana", "reyes"}
    close_text = await asyncio.to_thread(
        ocr, close, "xr-stage-panel-close-ocr.png", enough=lambda t: near <= set(words(t))
    )
    near_words = set(words(close_text))
    assert near <= near_words, close_text
    # The label is a coloured chip: read it where its colour is (OCR reads dark words on
    # a light chip poorly inside a mostly dark picture).
    name, colour = panels.label_text(stage.label)
    chip = np.abs(close[..., :3].astype(int) - colour).max(axis=2) < 24
    ys, xs = np.nonzero(chip)
    assert len(xs) > 200, "no label chip on the panel"
    crop = close[max(0, ys.min() - 4) : ys.max() + 5, max(0, xs.min() - 4) : xs.max() + 5]
    chip_text = await asyncio.to_thread(
        ocr, crop, "xr-label-ocr.png", ("7",), 3, lambda t: set(words(name)) <= set(words(t))
    )
    assert set(words(name)) <= set(words(chip_text)), (name, chip_text)
    # --- turned away to the right (the stage on the left), for the voice's side.
    runtime.pose("head", (0.0, 1.2, 0.0, *yaw_quat(-90)))
    await next_shown(runtime)
    turned_at = media_heard(moderator)
    await eventually(
        lambda: media_heard(moderator) - turned_at >= 2_500_000, 20, "2.5 s of speech turned away"
    )

    # --- the clone answers: its mouth opens and shuts with the words.
    runtime.pose("head", looking(seat, mouth + facing * 0.3, mouth))
    counts: list[int] = []
    # Up to 20 s of frames: on a busy machine frames are few and far between, and a frame
    # shown between two words is what this needs (12 s once caught none).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        shown = await next_shown(runtime)
        counts.append(mouth_pixels(shown.eyes[0]))
        if counts[-1] == max(counts):
            save("xr-mouth-open.png", shown.eyes[0])
        if max(counts) > 50 and min(counts) < max(counts) / 2 and len(counts) >= 4:
            break
    assert closed < 10, closed
    assert max(counts) > 50, counts
    assert min(counts) < max(counts) / 2, ("the mouth never shuts between sounds", counts)

    # Lost head tracking: no layer rather than a wrong picture.
    runtime.tracked(0b1110)
    mark = runtime.observed().frames
    await eventually(lambda: runtime.observed().frames >= mark + 2, what="frames without tracking")
    stalled = runtime.observed()
    await eventually(lambda: runtime.observed().frames >= stalled.frames + 5, what="more frames")
    later = runtime.observed()
    assert later.frames > stalled.frames and later.layer_frames == stalled.layer_frames
    runtime.tracked(0xF)
    await next_shown(runtime)


def media_heard(viewer: Viewer) -> int:
    """The media time (µs) the room's speech has reached, by the stage packets ``viewer`` got."""
    packets = viewer.of(StagePacket)
    return max((p.media_time_us + p.duration_us for p in packets), default=0)


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
