"""The body as joint angles: standing pose, breathing, idle sway, gestures and gaze turns.

Conventions (VRM 1.0 normalized humanoid, as the protocol's skeleton frame):

- Rotations are local and relative to the rest pose, and the rest pose is the
  T-pose: every bone's axes parallel to the model's, the model facing +Z with
  +Y up and its left hand along +X. So a bone's world rotation is just the
  product of local rotations down its chain, whatever the model's proportions.
- Angles here are (yaw, pitch, roll) for `quat.from_yxz`: +yaw turns toward
  the model's left, +pitch tips the front down (a nod; an arm hanging down
  swings back), +roll tips the top toward the model's right.
- Standing at rest: legs straight, arms let down from the T-pose by 73 degrees
  (a hand's width from the thighs), elbows barely bent. While speaking, the
  forearms come up in front of the waist where beat gestures happen.

The avatar root sits at the clone's mark turned by `root_quat`, so that the
model's +Z is the mark's facing (scenes: yaw 0 faces -Z, 180 faces +Z).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

from townhall.protocol.skeleton import BONE_INDEX, SKELETON_BONES
from townhall.server.clone.face import quat

F64 = npt.NDArray[np.float64]

__all__ = [
    "HEAD_CHAIN",
    "REST_POSE",
    "SPEAKING_POSE",
    "breathing",
    "eye_angles",
    "head_turn",
    "idle_sway",
    "root_quat",
]

_B = BONE_INDEX
_DEG = math.pi / 180.0


def _pose(entries: dict[str, tuple[float, float, float]]) -> F64:
    out = np.zeros((len(SKELETON_BONES), 3))
    for bone, angles in entries.items():
        out[_B[bone]] = np.radians(angles)
    out.flags.writeable = False
    return out


REST_POSE: Final = _pose(
    {
        "leftUpperArm": (0.0, -3.0, -73.0),
        "rightUpperArm": (0.0, -3.0, 73.0),
        "leftLowerArm": (-8.0, 0.0, 0.0),
        "rightLowerArm": (8.0, 0.0, 0.0),
        "leftHand": (0.0, 0.0, -5.0),
        "rightHand": (0.0, 0.0, 5.0),
    }
)
SPEAKING_POSE: Final = _pose(
    {
        "leftUpperArm": (0.0, -18.0, -70.0),
        "rightUpperArm": (0.0, -18.0, 70.0),
        "leftLowerArm": (-55.0, 0.0, 0.0),
        "rightLowerArm": (55.0, 0.0, 0.0),
        "leftHand": (0.0, 0.0, -10.0),
        "rightHand": (0.0, 0.0, 10.0),
    }
)

# Bones from the root to the head: their product is the head's world rotation.
HEAD_CHAIN: Final = tuple(_B[b] for b in ("hips", "spine", "chest", "upperChest", "neck", "head"))

# How a head turn toward the gaze is shared out (the rest is left to the eyes).
HEAD_YAW_SHARE: Final = 0.8
HEAD_PITCH_SHARE: Final = 0.7
MAX_HEAD_YAW: Final = 60.0 * _DEG
MAX_HEAD_PITCH: Final = 30.0 * _DEG
_YAW_SPLIT: Final = {"chest": 0.1, "upperChest": 0.15, "neck": 0.3, "head": 0.45}
_PITCH_SPLIT: Final = {"neck": 0.4, "head": 0.6}
MAX_EYE_YAW: Final = 35.0 * _DEG
MAX_EYE_PITCH: Final = 25.0 * _DEG

BREATH_HZ: Final = 0.25
SWAY_HZ: Final = (0.061, 0.097)


def root_quat(clone_yaw_deg: float) -> F64:
    """The avatar root's world rotation, R_y(yaw + 180 deg): the model's +Z to the facing."""
    return quat.from_yxz(np.array([math.radians(clone_yaw_deg) + math.pi, 0.0, 0.0]))


def breathing(times: F64, phase: float, speaking: F64) -> F64:
    """Angle offsets (N, 23, 3): chest rises and opens at 0.25 Hz, a little less while speaking."""
    wave = np.sin(2 * math.pi * BREATH_HZ * times + phase) * (1.0 - 0.4 * speaking)
    out = np.zeros((times.shape[0], len(SKELETON_BONES), 3))
    out[:, _B["spine"], 1] = -0.3 * _DEG * wave
    out[:, _B["chest"], 1] = -0.8 * _DEG * wave
    out[:, _B["upperChest"], 1] = -0.5 * _DEG * wave
    out[:, _B["neck"], 1] = 0.9 * _DEG * wave  # keeps the head level
    out[:, _B["leftShoulder"], 2] = 1.2 * _DEG * wave
    out[:, _B["rightShoulder"], 2] = -1.2 * _DEG * wave
    return out


def idle_sway(times: F64, phases: tuple[float, float]) -> F64:
    """Angle offsets (N, 23, 3): a slow, small weave of the spine (nobody stands still)."""
    yaw = 0.8 * _DEG * np.sin(2 * math.pi * SWAY_HZ[0] * times + phases[0])
    roll = 0.6 * _DEG * np.sin(2 * math.pi * SWAY_HZ[1] * times + phases[1])
    out = np.zeros((times.shape[0], len(SKELETON_BONES), 3))
    out[:, _B["spine"], 0] = yaw
    out[:, _B["spine"], 2] = roll
    out[:, _B["neck"], 2] = -0.7 * roll
    return out


def head_turn(direction_local: F64) -> F64:
    """Angle offsets (N, 23, 3) turning chest, neck and head toward root-space directions (N, 3)."""
    yaw, pitch = quat.yaw_pitch_of(direction_local)
    yaw = np.clip(HEAD_YAW_SHARE * yaw, -MAX_HEAD_YAW, MAX_HEAD_YAW)
    pitch = np.clip(HEAD_PITCH_SHARE * pitch, -MAX_HEAD_PITCH, MAX_HEAD_PITCH)
    out = np.zeros((direction_local.shape[0], len(SKELETON_BONES), 3))
    for bone, share in _YAW_SPLIT.items():
        out[:, _B[bone], 0] = share * yaw
    for bone, share in _PITCH_SPLIT.items():
        out[:, _B[bone], 1] = share * pitch
    return out


def eye_angles(head_world: F64, direction_world: F64) -> tuple[F64, F64]:
    """Eye yaw and pitch (N,) that aim along world directions, given the head's world rotation.

    Computed from the final head rotation, nods and breathing included, so the
    eyes hold their target while the head moves (the vestibulo-ocular reflex).
    """
    local = quat.rotate(quat.conjugate(head_world), direction_world)
    yaw, pitch = quat.yaw_pitch_of(local)
    return (
        np.clip(yaw, -MAX_EYE_YAW, MAX_EYE_YAW),
        np.clip(pitch, -MAX_EYE_PITCH, MAX_EYE_PITCH),
    )
