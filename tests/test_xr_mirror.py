"""The desktop mirror (`townhall xr --window`) under Xvfb with Mesa's software renderer.

A real server, a real `townhall xr --window` process, a real OpenGL window: the screenshot
must show the clone standing on the stage (its face and hands where the model's bones
project, arms down), the screens beside the stage with its close-up, and the stage panel
with the AI disclosure. It is saved to tests/artifacts/xr-mirror.png (`make screenshots`
copies it to docs/screenshots/ for README).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from townhall.plugin.idle import idle_pose
from townhall.plugin.xr import render
from townhall.plugin.xr.model import load_vrm
from townhall.scenes.loader import default_scene_path, load_scene
from townhall.server.app import TownhallServer

from .browser import artifact
from .conftest import TokenMaker, make_settings
from .xr_helpers import display_fixture, read_png  # noqa: F401 (the fixture)


async def test_desktop_mirror_shows_the_hall_and_the_clone(
    display: str, tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        assert srv.avatar is not None
        model_bytes = srv.avatar.data
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
    assert len(np.unique(img.reshape(-1, 3)[::5], axis=0)) > 200  # a picture, not a fill
    # Where the clone's face and hands are (the mirror's camera, the model's idle pose).
    model = load_vrm(model_bytes)
    scene = load_scene(default_scene_path())
    eye, target = render.front_row_camera(scene)
    vp = render.perspective(scene.spectator_camera.fov_deg, w / h) @ render.look_at(eye, target)
    root = np.eye(4)
    root[:3, :3] = render.yaw_matrix(scene.stage.clone_mark.yaw_deg + 180.0)
    root[:3, 3] = scene.stage.clone_mark.position
    hips, rot, _, _ = idle_pose(0.0)
    posed = model.posed_world(hips, rot, None)
    skin = skin_like(img)

    def skin_near(bone: str, up: float, radius: float) -> float:
        p = vp @ (root @ [*(model.bone_position(posed, bone) + np.array([0, up, 0])), 1.0])
        u, v = (p[0] / p[3] + 1) / 2 * w, (1 - p[1] / p[3]) / 2 * h
        yy, xx = np.mgrid[:h, :w]
        return float(skin[(xx - u) ** 2 + (yy - v) ** 2 < radius**2].mean())

    assert skin_near("head", 0.09, 6) > 0.3, "no face where the clone's head is"
    assert skin_near("leftHand", -0.05, 4) > 0.1 and skin_near("rightHand", -0.05, 4) > 0.1
    # The screens beside the stage show the close-up: a lit face in the top corners.
    for half in (skin[: h // 2, : w // 3], skin[: h // 2, -w // 3 :]):
        assert half.mean() > 0.002, "a screen without the close-up"
    shutil.copyfile(out, artifact("xr-mirror.png"))


def skin_like(img: np.ndarray) -> np.ndarray:
    r, g, b = (img[..., k].astype(int) for k in range(3))
    return (r > 70) & (r > g + 12) & (g > b) & (r - b > 35)
