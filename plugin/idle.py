"""What the clone does when no animation frames play: it stands at rest, breathes, shifts its
weight from leg to leg every several seconds, sways a little and blinks. The same motion as
the browser viewer's server/web/src/watch/idle.js, so the headset never shows a T-pose
(before the first packet, between answers). Pure and deterministic in time."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from townhall.protocol.skeleton import BONE_INDEX, EXPRESSION_INDEX, SKELETON_BONES, VISEMES

F32 = npt.NDArray[np.float32]

DEG = math.pi / 180
SHIFT_PERIOD_S = 13.0
HIPS_Y = 0.95


def quat_yxz(yaw: float, pitch: float, roll: float) -> tuple[float, float, float, float]:
    """R_y(yaw) R_x(pitch) R_z(roll) as (x, y, z, w), as pose.js setBoneYXZ."""
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    cx, sx = math.cos(pitch / 2), math.sin(pitch / 2)
    cz, sz = math.cos(roll / 2), math.sin(roll / 2)
    return (
        cy * sx * cz + sy * cx * sz,
        sy * cx * cz - cy * sx * sz,
        cy * cx * sz - sy * sx * cz,
        cy * cx * cz + sy * sx * sz,
    )


def weight_shift(t: float) -> float:
    """-1..1, holding near the ends: weight on one leg, then a slow move to the other."""
    s = math.sin(2 * math.pi * t / SHIFT_PERIOD_S)
    return math.copysign(abs(s) ** 0.35, s)


def blink(t: float) -> float:
    """A 150 ms blink every 2.5-5.5 s (spacing from a hash of the blink's number)."""
    k = math.floor(t / 4.0)
    for n in (k - 1, k):
        jitter = ((n * 2654435761) % 1000) / 1000.0
        start = n * 4.0 + 3.0 * jitter
        u = (t - start) / 0.15
        if 0 <= u <= 1:
            return math.sin(math.pi * u)
    return 0.0


def idle_pose(t: float) -> tuple[F32, F32, F32, F32]:
    """(hips_pos (3,), rotations (23, 4), visemes (15,), expressions (20,)) at ``t`` s."""
    rot = np.zeros((len(SKELETON_BONES), 4), np.float32)
    rot[:, 3] = 1.0
    breath = math.sin(2 * math.pi * 0.25 * t)
    sway = math.sin(2 * math.pi * 0.061 * t)
    roll = math.sin(2 * math.pi * 0.097 * t + 1.3)
    w = weight_shift(t)
    tilt = 2.2 * DEG * w
    stand_l, stand_r = max(0.0, w), max(0.0, -w)

    def bone(name: str, yaw: float, pitch: float, r: float) -> None:
        rot[BONE_INDEX[name]] = quat_yxz(yaw, pitch, r)

    bone("hips", 1.5 * DEG * w, 0, tilt)
    bone("spine", 0.8 * DEG * sway, -0.3 * DEG * breath, -0.7 * tilt + 0.6 * DEG * roll)
    bone("chest", 0, -0.8 * DEG * breath, -0.25 * tilt)
    bone("neck", 0, 0.9 * DEG * breath, -0.42 * DEG * roll)
    bone("leftShoulder", 0, 0, 1.2 * DEG * breath)
    bone("rightShoulder", 0, 0, -1.2 * DEG * breath)
    bone("leftUpperArm", 0, -3 * DEG, -73 * DEG)
    bone("rightUpperArm", 0, -3 * DEG, 73 * DEG)
    bone("leftLowerArm", -8 * DEG, 0, 0)
    bone("rightLowerArm", 8 * DEG, 0, 0)
    bone("leftHand", 0, 0, -5 * DEG)
    bone("rightHand", 0, 0, 5 * DEG)
    bone("leftUpperLeg", 0, -5 * DEG * stand_r, -tilt - 1.5 * DEG * w)
    bone("leftLowerLeg", 0, 10 * DEG * stand_r, 0)
    bone("rightUpperLeg", 0, -5 * DEG * stand_l, -tilt - 1.5 * DEG * w)
    bone("rightLowerLeg", 0, 10 * DEG * stand_l, 0)
    hips = np.array([0.02 * w, HIPS_Y - 0.004 * abs(w), 0.0], np.float32)
    vis = np.zeros(len(VISEMES), np.float32)
    vis[0] = 1.0  # sil
    expr = np.zeros(len(EXPRESSION_INDEX), np.float32)
    b = blink(t)
    expr[EXPRESSION_INDEX["blinkLeft"]] = expr[EXPRESSION_INDEX["blinkRight"]] = b
    return hips, rot, vis, expr
