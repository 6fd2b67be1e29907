"""Where the clone looks: the asker, or, without one, the audience in turn.

Gaze is two points in world space that glide on the media clock: the eye point
jumps in a saccade (tens of ms, longer for bigger jumps), the head point
follows in about half a second. The body turns the head toward the head point
and aims the eyes at the eye point (see `body.eye_angles`), which is also the
gaze target the animation frame carries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from townhall.server.clone.face.timeline import Glide

F64 = npt.NDArray[np.float64]
Vec3 = tuple[float, float, float]

__all__ = ["SEATED_EYE_HEIGHT_M", "Gaze", "default_audience", "seated_head"]

SACCADE_BASE_S: Final = 0.025
SACCADE_PER_DEG_S: Final = 0.0025  # the "main sequence": bigger saccades take longer
HEAD_LAG_S: Final = 0.04
HEAD_BASE_S: Final = 0.35
HEAD_PER_DEG_S: Final = 0.008
DWELL_S: Final = (1.5, 4.0)  # how long the eyes rest on one audience member
SAME_POINT_M: Final = 0.02
SEATED_EYE_HEIGHT_M: Final = 1.2


def seated_head(seat_floor_point: Vec3) -> Vec3:
    """Where a seated asker's eyes are, from the seat's floor point (scenes' positions).

    Use the attendee's tracked head when there is one; this is for everyone else.
    """
    x, y, z = seat_floor_point
    return (x, y + SEATED_EYE_HEIGHT_M, z)


def default_audience(
    rng: np.random.Generator, eye: npt.ArrayLike, forward: npt.ArrayLike, count: int = 24
) -> F64:
    """Plausible audience head positions in front of the clone, when the hall gives none.

    Within 40 degrees either side of its facing, 5 to 14 m away, around its eye level.
    """
    e = np.asarray(eye, dtype=np.float64)
    f = np.asarray(forward, dtype=np.float64)
    heading = math.atan2(f[0], f[2])
    angle = heading + np.radians(rng.uniform(-40.0, 40.0, count))
    dist = rng.uniform(5.0, 14.0, count)
    out: F64 = np.stack(
        [
            e[0] + dist * np.sin(angle),
            e[1] + rng.uniform(-0.8, 0.6, count),
            e[2] + dist * np.cos(angle),
        ],
        axis=1,
    )
    return out


def _angle_deg(eye: F64, a: F64, b: F64) -> float:
    u, v = a - eye, b - eye
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-9 or nv < 1e-9:
        return 0.0
    return math.degrees(math.acos(max(-1.0, min(1.0, float(u @ v) / (nu * nv)))))


class Gaze:
    """Eye and head gaze points over media time, steered once per call."""

    def __init__(
        self, rng: np.random.Generator, eye: npt.ArrayLike, audience: Sequence[Vec3] | F64
    ) -> None:
        self._rng = rng
        self._eye = np.asarray(eye, dtype=np.float64)
        self._audience = np.asarray(audience, dtype=np.float64).reshape(-1, 3)
        if not len(self._audience):
            raise ValueError("audience needs at least one point")
        start = self._audience[int(rng.integers(len(self._audience)))]
        self._eyes = Glide(start)
        self._head = Glide(start)
        self._target: F64 | None = None
        self._next_wander = -math.inf

    def _look(self, t: float, point: F64) -> float:
        """Saccade to ``point`` at ``t``; returns the size of the jump in degrees."""
        jump = _angle_deg(self._eye, self._eyes.goal, point)
        if np.linalg.norm(point - self._eyes.goal) < SAME_POINT_M:
            return 0.0
        self._eyes.go(t, point, SACCADE_BASE_S + SACCADE_PER_DEG_S * jump)
        self._head.go(t + HEAD_LAG_S, point, HEAD_BASE_S + HEAD_PER_DEG_S * jump)
        return jump

    def steer(self, t0: float, t1: float, target: Vec3 | None) -> list[tuple[float, float]]:
        """Plan gaze for [t0, t1): hold ``target``, or wander the audience when it is None.

        Returns the gaze shifts it planned as (time, degrees), so blinks can join them.
        """
        shifts: list[tuple[float, float]] = []
        if target is not None:
            point = np.asarray(target, dtype=np.float64)
            if self._target is None or np.linalg.norm(point - self._target) >= SAME_POINT_M:
                shifts.append((t0, self._look(t0, point)))
            self._target = point
            self._next_wander = -math.inf
        else:
            if self._target is not None or self._next_wander == -math.inf:
                self._target = None
                self._next_wander = t0
            while self._next_wander < t1:
                t = max(self._next_wander, t0)
                pick = self._audience[int(self._rng.integers(len(self._audience)))]
                shifts.append((t, self._look(t, pick)))
                self._next_wander = t + float(self._rng.uniform(*DWELL_S))
        self._eyes.forget_before(t0)
        self._head.forget_before(t0)
        return shifts

    def eye_points(self, times: npt.ArrayLike) -> F64:
        return self._eyes.at(times)

    def head_points(self, times: npt.ArrayLike) -> F64:
        return self._head.at(times)
