"""What the headset tracks, in the protocol's terms (pure: no OpenXR calls here).

- Head and hands become the 30-byte pose record (SPEC §9) plus tracking flags. OpenXR's
  STAGE space already matches the seat frame for a seated wearer (origin on the floor, +Y up,
  -Z forward toward the stage); LOCAL space sits at the eyes, so it is lifted by
  ``SEATED_EYE_HEIGHT_M``.
- Face tracking (XR_FB_face_tracking2, XR_HTC_facial_tracking) and eye gaze
  (XR_EXT_eye_gaze_interaction) become the protocol's ``EXPRESSIONS`` weights. Protocol v1
  has no channel for an attendee's face, so these drive the wearer's own mirrored avatar and
  wait for a protocol version that carries them.
- Body tracking (XR_FB_body_tracking) stands in for controllers that are not tracked: its
  head and wrist joints fill the pose record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from townhall.protocol import quant
from townhall.protocol.skeleton import EXPRESSIONS

F64 = npt.NDArray[np.float64]
Pose7 = tuple[float, float, float, float, float, float, float]  # x y z qx qy qz qw

SEATED_EYE_HEIGHT_M = 1.2
IDENTITY: Pose7 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0)
_EXPR = {name: i for i, name in enumerate(EXPRESSIONS)}

# Where an untracked hand rests (seat frame): in the lap, so the avatar still looks seated.
LAP_LEFT: Pose7 = (-0.17, 0.62, -0.28, 0.0, 0.0, 0.0, 1.0)
LAP_RIGHT: Pose7 = (0.17, 0.62, -0.28, 0.0, 0.0, 0.0, 1.0)


@dataclass
class TrackingSample:
    """One instant of the wearer, in the seat frame."""

    head: Pose7 | None = None
    left: Pose7 | None = None
    right: Pose7 | None = None
    gaze: Pose7 | None = None  # the eye-gaze ray (origin, -Z along the gaze)
    raise_pressed: bool = False
    select_pressed: bool = False  # the trigger: the pointer's click
    expressions: F64 = field(default_factory=lambda: np.zeros(len(EXPRESSIONS)))

    @property
    def flags(self) -> int:
        f = 0
        if self.left is not None:
            f |= int(quant.PoseFlag.LEFT_TRACKED)
        if self.right is not None:
            f |= int(quant.PoseFlag.RIGHT_TRACKED)
        return f

    def pose_record(self) -> bytes | None:
        """The 30-byte pose record, or None while the head is not tracked."""
        if self.head is None:
            return None
        devices = (self.head, self.left or LAP_LEFT, self.right or LAP_RIGHT)
        pos = np.array([[d[0], d[1], d[2]] for d in devices], np.float64)
        rot = np.array([[d[3], d[4], d[5], d[6]] for d in devices], np.float64)
        return bytes(quant.encode_poses(pos[None], rot[None]).tobytes())


def usable(pose: Pose7) -> Pose7 | None:
    """The pose with its orientation made unit length, or None when no rotation can be made
    of it (zero length, not finite). A runtime may report such a pose as valid for a frame
    (seen from the test runtime, read while being written); the device then counts as not
    tracked for that frame, rather than stopping the app in the pose encoder."""
    values = np.asarray(pose, np.float64)
    if values.shape != (7,) or not np.isfinite(values).all():
        return None
    norm = float(np.linalg.norm(values[3:]))
    if norm < 1e-6:
        return None
    x, y, z, w = (float(v) for v in values[3:] / norm)
    return (float(values[0]), float(values[1]), float(values[2]), x, y, z, w)


def lift(pose: Pose7, dy: float) -> Pose7:
    return (pose[0], pose[1] + dy, pose[2], pose[3], pose[4], pose[5], pose[6])


def rotate(q: Sequence[float], v: Sequence[float]) -> tuple[float, float, float]:
    """Rotate vector v by unit quaternion q (x, y, z, w)."""
    x, y, z, w = q
    vx, vy, vz = v
    tx, ty, tz = 2 * (y * vz - z * vy), 2 * (z * vx - x * vz), 2 * (x * vy - y * vx)
    return (
        vx + w * tx + (y * tz - z * ty),
        vy + w * ty + (z * tx - x * tz),
        vz + w * tz + (x * ty - y * tx),
    )


# ---------------------------------------------------------------- eye gaze


def gaze_expressions(head: Pose7, gaze: Pose7, full_deg: float = 30.0) -> dict[str, float]:
    """lookUp/lookDown/lookLeft/lookRight from the gaze direction relative to the head.

    A look ``full_deg`` off the head's forward is a full weight.
    """
    fwd = rotate(gaze[3:], (0.0, 0.0, -1.0))
    inv = (-head[3], -head[4], -head[5], head[6])
    x, y, z = rotate(inv, fwd)  # gaze direction in head space
    yaw = math.degrees(math.atan2(-x, -z))  # + looks left
    pitch = math.degrees(math.atan2(y, math.hypot(x, z)))  # + looks up

    def w(a: float) -> float:
        return min(1.0, max(0.0, a / full_deg))

    return {"lookUp": w(pitch), "lookDown": w(-pitch), "lookLeft": w(yaw), "lookRight": w(-yaw)}


# ---------------------------------------------------------------- face tracking

# XR_FB_face_tracking2 (XrFaceExpression2FB names) -> protocol expression: the mean of them.
FB_FACE: Mapping[str, tuple[str, ...]] = {
    "blinkLeft": ("EYES_CLOSED_L",),
    "blinkRight": ("EYES_CLOSED_R",),
    "happy": ("LIP_CORNER_PULLER_L", "LIP_CORNER_PULLER_R"),
    "angry": ("BROW_LOWERER_L", "BROW_LOWERER_R"),
    "sad": ("LIP_CORNER_DEPRESSOR_L", "LIP_CORNER_DEPRESSOR_R"),
    "surprised": ("UPPER_LID_RAISER_L", "UPPER_LID_RAISER_R", "INNER_BROW_RAISER_L"),
    "lookUp": ("EYES_LOOK_UP_L", "EYES_LOOK_UP_R"),
    "lookDown": ("EYES_LOOK_DOWN_L", "EYES_LOOK_DOWN_R"),
    "lookLeft": ("EYES_LOOK_LEFT_L", "EYES_LOOK_LEFT_R"),
    "lookRight": ("EYES_LOOK_RIGHT_L", "EYES_LOOK_RIGHT_R"),
    "jawOpen": ("JAW_DROP",),
    "mouthSmileLeft": ("LIP_CORNER_PULLER_L",),
    "mouthSmileRight": ("LIP_CORNER_PULLER_R",),
    "mouthFrownLeft": ("LIP_CORNER_DEPRESSOR_L",),
    "mouthFrownRight": ("LIP_CORNER_DEPRESSOR_R",),
    "browInnerUp": ("INNER_BROW_RAISER_L", "INNER_BROW_RAISER_R"),
    "browDownLeft": ("BROW_LOWERER_L",),
    "browDownRight": ("BROW_LOWERER_R",),
    "cheekPuff": ("CHEEK_PUFF_L", "CHEEK_PUFF_R"),
}

# XR_HTC_facial_tracking: eye (XrEyeExpressionHTC) and lip (XrLipExpressionHTC) names.
HTC_FACE: Mapping[str, tuple[str, ...]] = {
    "blinkLeft": ("eye.LEFT_BLINK",),
    "blinkRight": ("eye.RIGHT_BLINK",),
    "happy": ("lip.MOUTH_SMILE_LEFT", "lip.MOUTH_SMILE_RIGHT"),
    "sad": ("lip.MOUTH_SAD_LEFT", "lip.MOUTH_SAD_RIGHT"),
    "surprised": ("eye.LEFT_WIDE", "eye.RIGHT_WIDE"),
    "lookUp": ("eye.LEFT_UP", "eye.RIGHT_UP"),
    "lookDown": ("eye.LEFT_DOWN", "eye.RIGHT_DOWN"),
    "lookLeft": ("eye.LEFT_OUT", "eye.RIGHT_IN"),  # both eyes turned to the wearer's left
    "lookRight": ("eye.LEFT_IN", "eye.RIGHT_OUT"),
    "jawOpen": ("lip.JAW_OPEN",),
    "mouthSmileLeft": ("lip.MOUTH_SMILE_LEFT",),
    "mouthSmileRight": ("lip.MOUTH_SMILE_RIGHT",),
    "mouthFrownLeft": ("lip.MOUTH_SAD_LEFT",),
    "mouthFrownRight": ("lip.MOUTH_SAD_RIGHT",),
    "cheekPuff": ("lip.CHEEK_PUFF_LEFT", "lip.CHEEK_PUFF_RIGHT"),
}


def map_weights(table: Mapping[str, tuple[str, ...]], weights: Mapping[str, float]) -> F64:
    """Protocol EXPRESSIONS weights (clipped to 0..1) from named source weights."""
    out = np.zeros(len(EXPRESSIONS))
    for name, sources in table.items():
        values = [weights[s] for s in sources if s in weights]
        if values:
            out[_EXPR[name]] = min(1.0, max(0.0, sum(values) / len(values)))
    return out


def named(enum_names: Sequence[str], values: Sequence[float], prefix: str = "") -> dict[str, float]:
    """Zip an OpenXR expression enum's names (in value order) with a weights array."""
    return {prefix + n: float(v) for n, v in zip(enum_names, values, strict=False)}


# ---------------------------------------------------------------- body tracking

# XR_FB_body_tracking joint indices (XrBodyJointFB) the pose record can use.
FB_BODY_HEAD = 7
FB_BODY_LEFT_WRIST = 19  # LEFT_HAND_WRIST
FB_BODY_RIGHT_WRIST = 45  # RIGHT_HAND_WRIST


def body_fallback(sample: TrackingSample, joints: Mapping[int, Pose7]) -> TrackingSample:
    """Fill untracked head or hands from body-tracking joints (seat frame)."""
    if sample.head is None and FB_BODY_HEAD in joints:
        sample.head = joints[FB_BODY_HEAD]
    if sample.left is None and FB_BODY_LEFT_WRIST in joints:
        sample.left = joints[FB_BODY_LEFT_WRIST]
    if sample.right is None and FB_BODY_RIGHT_WRIST in joints:
        sample.right = joints[FB_BODY_RIGHT_WRIST]
    return sample


# ---------------------------------------------------------------- the uplink


class PoseUplink:
    """Pose at most ``pose_hz`` times a second (Welcome.pose_hz), and hand raise on a press.

    Pure: ``update(sample, now_s)`` returns what to send now, the caller sends it.
    """

    def __init__(self, pose_hz: int) -> None:
        self.interval_s = 1.0 / max(1, pose_hz)
        self._next_s = 0.0
        self._was_pressed = False
        self.hand_raised = False

    def update(self, sample: TrackingSample, now_s: float) -> tuple[bytes | None, bool | None]:
        """(pose record or None, new hand state or None)."""
        hand: bool | None = None
        if sample.raise_pressed and not self._was_pressed:  # a press toggles the hand
            self.hand_raised = not self.hand_raised
            hand = self.hand_raised
        self._was_pressed = sample.raise_pressed
        record = None
        if now_s >= self._next_s:
            record = sample.pose_record()
            if record is not None:
                # Keep the schedule, but never let a stall turn into a burst.
                self._next_s = max(self._next_s + self.interval_s, now_s)
        return record, hand
