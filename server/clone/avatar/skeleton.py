"""The avatar's bones in the VRM 1.0 rest pose, sized from the appearance.

The rest pose is the T-pose the protocol assumes (protocol/skeleton.py, face/body.py): the
model faces +Z, +Y up, its left hand along +X, every bone's axes parallel to the model's,
so the nodes carry translations only and an animation frame's local rotations apply as
they are. Proportions are fractions of the height from adult averages (the body's
landmarks in anthropometric tables), with a wider frame for ``masculine`` and ``broad``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from townhall.protocol.skeleton import SKELETON_BONES

from .appearance import Appearance

PARENT: dict[str, str | None] = {
    "hips": None,
    "spine": "hips",
    "chest": "spine",
    "upperChest": "chest",
    "neck": "upperChest",
    "head": "neck",
    "leftEye": "head",
    "rightEye": "head",
    "jaw": "head",
    "leftShoulder": "upperChest",
    "leftUpperArm": "leftShoulder",
    "leftLowerArm": "leftUpperArm",
    "leftHand": "leftLowerArm",
    "rightShoulder": "upperChest",
    "rightUpperArm": "rightShoulder",
    "rightLowerArm": "rightUpperArm",
    "rightHand": "rightLowerArm",
    "leftUpperLeg": "hips",
    "leftLowerLeg": "leftUpperLeg",
    "leftFoot": "leftLowerLeg",
    "rightUpperLeg": "hips",
    "rightLowerLeg": "rightUpperLeg",
    "rightFoot": "rightLowerLeg",
}
assert set(PARENT) == set(SKELETON_BONES)


@dataclass(frozen=True)
class Frame:
    """Body measurements (metres) the surfaces are built from; world rest positions."""

    height: float
    bones: dict[str, np.ndarray]  # bone -> world position at rest
    shoulder_hw: float  # half the shoulder breadth (skin)
    chest_hw: float
    waist_hw: float
    hip_hw: float
    bust: float  # forward bulge of the bust (0 for masculine)
    head_a: float  # head half-width, half-height, half-depth
    head_b: float
    head_c: float
    head_center: np.ndarray
    eye_y: float
    mouth_y: float
    neck_r: float
    arm_r: float  # upper arm radius at the shoulder
    thigh_r: float
    feminine: bool


def body_frame(a: Appearance) -> Frame:
    h = a.height_m
    fem = a.body == "feminine"
    build = {"slim": 0.93, "average": 1.0, "broad": 1.08}[a.build]
    s = h / 1.70  # lengths scale with height; breadths also with build
    w = s * build
    shoulder_hw = (0.178 if fem else 0.2) * w
    hip_hw = (0.178 if fem else 0.165) * w
    chest_hw = (0.148 if fem else 0.168) * w
    waist_hw = (0.122 if fem else 0.145) * w
    head_b = 0.108 * s * (0.97 if fem else 1.0)
    head_a = (0.076 if fem else 0.08) * s
    head_c = (0.092 if fem else 0.097) * s
    top = h - 0.024 * s  # the skull's crown; hair adds the rest
    head_cy = top - head_b
    eye_y = head_cy - 0.004 * s
    mouth_y = head_cy - 0.073 * s
    upper_arm_x = shoulder_hw - 0.018 * w
    shoulder_y = 0.818 * h
    bones = {
        "hips": (0.0, 0.53 * h, 0.0),
        "spine": (0.0, 0.585 * h, -0.005 * s),
        "chest": (0.0, 0.655 * h, -0.01 * s),
        "upperChest": (0.0, 0.725 * h, -0.012 * s),
        "neck": (0.0, 0.835 * h, -0.018 * s),
        "head": (0.0, head_cy - 0.07 * s, -0.01 * s),
        "leftEye": (0.032 * s, eye_y, 0.0),
        "rightEye": (-0.032 * s, eye_y, 0.0),
        "jaw": (0.0, eye_y - 0.03 * s, 0.0),
        "leftShoulder": (0.025 * w, shoulder_y, -0.02 * s),
        "leftUpperArm": (upper_arm_x, shoulder_y - 0.012 * s, -0.02 * s),
        "leftLowerArm": (upper_arm_x + 0.172 * h, shoulder_y - 0.012 * s, -0.02 * s),
        "leftHand": (upper_arm_x + 0.322 * h, shoulder_y - 0.012 * s, -0.02 * s),
        "leftUpperLeg": (0.08 * w, 0.5 * h, 0.0),
        "leftLowerLeg": (0.08 * w - 0.004, 0.285 * h, 0.0),
        "leftFoot": (0.08 * w - 0.006, 0.045 * h, -0.01),
    }
    for name in list(bones):
        if name.startswith("left") and name != "leftEye":
            x, y, z = bones[name]
            bones["right" + name[4:]] = (-x, y, z)
    frame_bones = {k: np.array(v, dtype=np.float64) for k, v in bones.items()}
    # The eyes sit in the face, in front of the head's centre; set once the head is known.
    zc = 0.012 * s
    head_center = np.array([0.0, head_cy, zc])
    eye_z = zc + head_c * 0.83
    for name in ("leftEye", "rightEye"):
        frame_bones[name][2] = eye_z
    frame_bones["jaw"][2] = zc + 0.01
    return Frame(
        height=h,
        bones=frame_bones,
        shoulder_hw=shoulder_hw,
        chest_hw=chest_hw,
        waist_hw=waist_hw,
        hip_hw=hip_hw,
        bust=0.028 * w if fem else 0.0,
        head_a=head_a,
        head_b=head_b,
        head_c=head_c,
        head_center=head_center,
        eye_y=eye_y,
        mouth_y=mouth_y,
        neck_r=(0.056 if fem else 0.063) * w,
        arm_r=(0.046 if fem else 0.052) * w,
        thigh_r=(0.09 if fem else 0.092) * w,
        feminine=fem,
    )


def local_offsets(bones: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each bone's rest translation relative to its parent (the node translations)."""
    out = {}
    for name in SKELETON_BONES:
        parent = PARENT[name]
        out[name] = bones[name] - (bones[parent] if parent else 0.0)
    return out
