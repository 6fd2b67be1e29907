"""Curves on the media clock that animation state is made of.

Every piece of animator state is a function of absolute media time, built from
events scheduled on that clock (a glide toward a new gaze point, a nod at
0:12.4, a speaking interval). Evaluating frames then never depends on how the
caller slices time into calls, and consecutive calls join without a seam.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

__all__ = ["Bumps", "Glide", "Intervals", "min_jerk"]


def min_jerk(u: npt.ArrayLike) -> F64:
    """The minimum-jerk ease 0 -> 1 over u in [0, 1] (clamped): how eyes and limbs move."""
    x = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
    out: F64 = x * x * x * (10.0 + x * (-15.0 + 6.0 * x))
    return out


@dataclass(slots=True)
class _Move:
    start: float
    origin: F64
    goal: F64
    duration: float


class Glide:
    """A vector that moves to each new goal along a min-jerk curve, starting where it is."""

    def __init__(self, value: npt.ArrayLike) -> None:
        v = np.asarray(value, dtype=np.float64)
        self._moves: list[_Move] = [_Move(-math.inf, v, v, 1.0)]

    @property
    def goal(self) -> F64:
        return self._moves[-1].goal

    def go(self, t: float, goal: npt.ArrayLike, duration_s: float) -> None:
        """Start moving toward ``goal`` at media time ``t`` (drops moves planned after t)."""
        while len(self._moves) > 1 and self._moves[-1].start > t:
            self._moves.pop()
        origin = self.at(np.array([t]))[0]
        self._moves.append(
            _Move(t, origin, np.asarray(goal, dtype=np.float64), max(duration_s, 1e-6))
        )

    def forget_before(self, t: float) -> None:
        """Drop moves that no time >= t can see."""
        while len(self._moves) > 1 and self._moves[1].start <= t:
            self._moves.pop(0)

    def at(self, times: npt.ArrayLike) -> F64:
        """Values (N, D) at media times (N,)."""
        t = np.asarray(times, dtype=np.float64)
        starts = np.array([m.start for m in self._moves])
        idx = np.maximum(np.searchsorted(starts, t, side="right") - 1, 0)
        origin = np.array([m.origin for m in self._moves])[idx]
        goal = np.array([m.goal for m in self._moves])[idx]
        u = (t - starts[idx]) / np.array([m.duration for m in self._moves])[idx]
        s = min_jerk(np.where(np.isfinite(u), u, 1.0))[:, None]
        out: F64 = origin + (goal - origin) * s
        return out


class Intervals:
    """A 0..1 level: up over ``rise_s`` from each interval's start, held, then down.

    The level falls only ``hold_s`` after an interval ends, so sentences that
    follow each other closely keep it up.
    """

    def __init__(self, rise_s: float, hold_s: float, fall_s: float) -> None:
        self.rise_s, self.hold_s, self.fall_s = rise_s, hold_s, fall_s
        self._spans: list[tuple[float, float]] = []

    def add(self, start: float, end: float) -> None:
        self._spans.append((start, max(start, end)))

    def forget_before(self, t: float) -> None:
        tail = self.hold_s + self.fall_s
        self._spans = [(a, b) for a, b in self._spans if b + tail > t]

    def at(self, times: npt.ArrayLike) -> F64:
        t = np.asarray(times, dtype=np.float64)
        level = np.zeros(t.shape)
        for a, b in self._spans:
            up = min_jerk((t - a) / self.rise_s)
            down = 1.0 - min_jerk((t - b - self.hold_s) / self.fall_s)
            level = np.maximum(level, np.minimum(up, down))
        return level


class Bumps:
    """Sums of raised-cosine bumps on named channels: nods, beats, brow raises."""

    def __init__(self, channels: Sequence[str]) -> None:
        self._index = {name: i for i, name in enumerate(channels)}
        self._events: list[tuple[int, float, float, float]] = []  # channel, centre, width, height

    def add(self, channel: str, centre_s: float, width_s: float, height: float) -> None:
        self._events.append((self._index[channel], centre_s, width_s, height))

    def forget_before(self, t: float) -> None:
        self._events = [e for e in self._events if e[1] + e[2] / 2 > t]

    def at(self, times: npt.ArrayLike) -> F64:
        """Channel values (N, channels) at media times (N,)."""
        t = np.asarray(times, dtype=np.float64)
        out = np.zeros((t.shape[0], len(self._index)))
        if not self._events or not t.size:
            return out
        ev = np.array(self._events)
        lo, hi = t.min(), t.max()
        ev = ev[(ev[:, 1] + ev[:, 2] / 2 > lo) & (ev[:, 1] - ev[:, 2] / 2 < hi)]
        if not ev.size:
            return out
        x = (t[:, None] - ev[:, 1]) / (ev[:, 2] / 2)
        shape = np.where(np.abs(x) < 1.0, 0.5 + 0.5 * np.cos(np.pi * x), 0.0) * ev[:, 3]
        onehot = np.zeros((ev.shape[0], len(self._index)))
        onehot[np.arange(ev.shape[0]), ev[:, 0].astype(np.int64)] = 1.0
        result: F64 = shape @ onehot
        return result
