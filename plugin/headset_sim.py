"""A simulated headset: a seated person looking around and now and then raising a hand.

It stands in for OpenXR in load bots, demos and tests. Everything is a pure
function of (seed, time), so a run can be replayed exactly and a batch of many
headsets can be evaluated in one vectorised numpy pass (the bots' shared ticker
sends hundreds of poses per tick; a Python loop per headset would cost more than
the sockets).

Conventions follow ``townhall.protocol.quant``: metres from the seat's floor
point, +Y up, -Z forward (toward the stage), quaternions (x, y, z, w).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from townhall.protocol import quant

F64 = npt.NDArray[np.float64]

TAU: Final = 2.0 * math.pi
YAW_RANGE_DEG: Final = 60.0
PITCH_RANGE_DEG: Final = 20.0
HEAD_HEIGHT_M: Final = (1.15, 1.25)
RAISE_S: Final = 0.5  # time to lift the hand above the head (and to lower it)
FLAGS: Final = int(quant.PoseFlag.LEFT_TRACKED | quant.PoseFlag.RIGHT_TRACKED)

# Fingers pointing up, palm toward the stage: the hand's -Z turned to +Y.
_RAISED_ROT: Final = np.array([math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4)])


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent streams per purpose, so changing the hand schedule leaves motion alone."""
    return np.random.default_rng([seed % 2**64, stream])


class HandSchedule:
    """When one attendee's hand is up: a raise every ``every_s`` for ``up_s`` seconds.

    Windows are drawn lazily in time order from a seeded generator, so the
    schedule is the same however it is queried. Consecutive windows are at
    least one raise-and-lower apart, so the hand always gets down in between.
    """

    def __init__(
        self,
        seed: int,
        every_s: tuple[float, float] = (30.0, 90.0),
        up_s: tuple[float, float] = (2.0, 6.0),
    ) -> None:
        for name, (lo, hi) in (("every_s", every_s), ("up_s", up_s)):
            if not 0 < lo <= hi:
                raise ValueError(f"{name} must be (low, high) with 0 < low <= high")
        self.every_s = every_s
        self.up_s = up_s
        self._rng = _rng(seed, 1)
        self._starts: list[float] = []
        self._ends: list[float] = []
        # The first raise falls anywhere in the first interval: bots started
        # together must not all raise their hands at once.
        self._next = float(self._rng.uniform(0.0, every_s[1]))

    def _cover(self, t: float) -> None:
        while self._next <= t:
            start = self._next
            up = float(self._rng.uniform(*self.up_s))
            gap = float(self._rng.uniform(*self.every_s))
            self._starts.append(start)
            self._ends.append(start + up)
            self._next = start + max(gap, up + 2 * RAISE_S)

    def _window(self, t: float) -> int:
        """Index of the last window starting at or before ``t`` (-1 if none)."""
        self._cover(t)
        return bisect.bisect_right(self._starts, t) - 1

    def raised_at(self, t: float) -> bool:
        i = self._window(t)
        return i >= 0 and t < self._ends[i]

    def lift(self, t: float) -> float:
        """How far the hand is up, 0 (in the lap) to 1 (above the head), eased."""
        i = self._window(t)
        if i < 0:
            return 0.0
        start, end = self._starts[i], self._ends[i]
        x = (t - start) / RAISE_S if t < end else 1.0 - (t - end) / RAISE_S
        x = min(1.0, max(0.0, x))
        return x * x * (3.0 - 2.0 * x)

    def events(self, t0: float, t1: float) -> list[tuple[float, bool]]:
        """Hand changes (time, raised) in the interval (t0, t1], in time order."""
        self._cover(t1)
        out = [(s, True) for s in self._starts if t0 < s <= t1]
        out += [(e, False) for e in self._ends if t0 < e <= t1]
        return sorted(out)


def _draw_motion(rng: np.random.Generator) -> dict[str, float]:
    """One person's character: how fast and how far they look around, their height."""
    u = rng.uniform
    return {
        "yaw_w": u(0.55, 0.8),  # share of the slow component; the two always sum to 1
        "yaw_f1": u(0.015, 0.04),  # Hz: a glance across the hall takes tens of seconds
        "yaw_f2": u(0.05, 0.12),
        "yaw_p1": u(0.0, TAU),
        "yaw_p2": u(0.0, TAU),
        "pitch_w": u(0.6, 0.8),
        "pitch_f1": u(0.02, 0.05),
        "pitch_f2": u(0.07, 0.15),
        "pitch_p1": u(0.0, TAU),
        "pitch_p2": u(0.0, TAU),
        "height": u(*HEAD_HEIGHT_M),
        "breath_a": u(0.004, 0.008),
        "breath_f": u(0.2, 0.33),
        "breath_p": u(0.0, TAU),
        "sway_f": u(0.03, 0.07),
        "sway_p": u(0.0, TAU),
        "lap_dx": u(-0.02, 0.02),
        "lap_dy": u(-0.02, 0.02),
        "lap_turn": u(0.1, 0.3),  # radians the resting hands point inward
        "reach": u(0.4, 0.5),  # raised hand height above the head
    }


def _axis_quats(axis: int, angle: F64) -> F64:
    """Rotations (N,4) by ``angle`` radians about the x, y or z axis."""
    q = np.zeros((angle.shape[0], 4))
    q[:, axis] = np.sin(angle / 2)
    q[:, 3] = np.cos(angle / 2)
    return q


def _qmul(a: F64, b: F64) -> F64:
    """Hamilton products a*b of (N,4) xyzw quaternions."""
    ax, ay, az, aw = a.T
    bx, by, bz, bw = b.T
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=1,
    )


def _nlerp(a: F64, b: F64, s: F64) -> F64:
    """Normalised lerp: close enough to slerp for a hand swinging up, and cheap."""
    b = np.where((np.einsum("ij,ij->i", a, b) < 0)[:, None], -b, b)
    q = a + (b - a) * s[:, None]
    out: F64 = q / np.linalg.norm(q, axis=1, keepdims=True)
    return out


def _poses(m: dict[str, F64], t: float, lift: F64) -> tuple[F64, F64]:
    """Positions (N,3,3) and rotations (N,3,4) of N people at time ``t``."""
    n = lift.shape[0]
    yaw = np.radians(YAW_RANGE_DEG) * (
        m["yaw_w"] * np.sin(TAU * m["yaw_f1"] * t + m["yaw_p1"])
        + (1 - m["yaw_w"]) * np.sin(TAU * m["yaw_f2"] * t + m["yaw_p2"])
    )
    pitch = np.radians(PITCH_RANGE_DEG) * (
        m["pitch_w"] * np.sin(TAU * m["pitch_f1"] * t + m["pitch_p1"])
        + (1 - m["pitch_w"]) * np.sin(TAU * m["pitch_f2"] * t + m["pitch_p2"])
    )
    head_y = m["height"] + m["breath_a"] * np.sin(TAU * m["breath_f"] * t + m["breath_p"])
    sway = 0.015 * np.sin(TAU * m["sway_f"] * t + m["sway_p"])

    pos = np.empty((n, 3, 3))
    pos[:, 0] = np.stack([sway, head_y, 0.5 * sway], axis=1)
    lap_y = 0.62 + m["lap_dy"] + 0.3 * (head_y - m["height"])  # hands rise with the breath
    pos[:, 1] = np.stack([-0.17 - m["lap_dx"], lap_y, np.full(n, -0.28)], axis=1)
    rest = np.stack([0.17 + m["lap_dx"], lap_y, np.full(n, -0.28)], axis=1)
    up = np.stack([np.full(n, 0.22), m["height"] + m["reach"], np.full(n, -0.05)], axis=1)
    pos[:, 2] = rest + (up - rest) * lift[:, None]

    rot = np.empty((n, 3, 4))
    # Yaw about world Y, then pitch about the turned X: the Y-X-Z order that
    # quant.head_yaw_pitch reads back.
    rot[:, 0] = _qmul(_axis_quats(1, yaw), _axis_quats(0, pitch))
    rot[:, 1] = _axis_quats(1, -m["lap_turn"])
    rot[:, 2] = _nlerp(_axis_quats(1, m["lap_turn"]), np.tile(_RAISED_ROT, (n, 1)), lift)
    return pos, rot


class SimulatedHeadset:
    """One seated attendee's head and hands as a deterministic function of time."""

    def __init__(self, seed: int, hands: HandSchedule | None = None) -> None:
        self.seed = seed
        self.hands = hands if hands is not None else HandSchedule(seed)
        self.motion = _draw_motion(_rng(seed, 0))
        self._m1 = {k: np.array([v]) for k, v in self.motion.items()}

    def pose_at(self, t: float) -> tuple[F64, F64]:
        """Positions (3,3) of head, left and right hand, and their rotations (3,4), at ``t``."""
        pos, rot = _poses(self._m1, t, np.array([self.hands.lift(t)]))
        return pos[0], rot[0]

    def flags_at(self, t: float) -> int:
        """Tracking bits; HAND_RAISED is the room's to set, from Hand messages."""
        return FLAGS

    def hand_raised_at(self, t: float) -> bool:
        return self.hands.raised_at(t)

    def hand_events(self, t0: float, t1: float) -> list[tuple[float, bool]]:
        """Hand changes (time, raised) in (t0, t1]."""
        return self.hands.events(t0, t1)

    def encoded_pose_at(self, t: float) -> bytes:
        """The 30-byte pose record for ``RoomClient.send_pose``."""
        pos, rot = self.pose_at(t)
        return bytes(quant.encode_poses(pos[None], rot[None]).tobytes())


class HeadsetBatch:
    """Many headsets evaluated and encoded together: one numpy pass per tick."""

    def __init__(self, headsets: Sequence[SimulatedHeadset]) -> None:
        self.headsets = list(headsets)
        keys = self.headsets[0].motion.keys() if self.headsets else ()
        self._m = {k: np.array([h.motion[k] for h in self.headsets]) for k in keys}

    def __len__(self) -> int:
        return len(self.headsets)

    def poses_at(self, t: float) -> tuple[F64, F64]:
        """Positions (N,3,3) and rotations (N,3,4) of every headset at ``t``."""
        if not self.headsets:
            return np.empty((0, 3, 3)), np.empty((0, 3, 4))
        lift = np.array([h.hands.lift(t) for h in self.headsets])
        return _poses(self._m, t, lift)

    def encoded_at(self, t: float) -> bytes:
        """N pose records back to back; headset i's is bytes [30*i, 30*i + 30)."""
        pos, rot = self.poses_at(t)
        return bytes(quant.encode_poses(pos, rot).tobytes())
