"""Eye blinks: both lids, about 175 ms each, every 2 to 6 s (seeded), plus on big gaze shifts."""

from __future__ import annotations

import bisect
from typing import Final

import numpy as np
import numpy.typing as npt

from townhall.server.clone.face.timeline import min_jerk

F64 = npt.NDArray[np.float64]

__all__ = ["BLINK_S", "Blinks"]

CLOSE_S: Final = 0.05
HOLD_S: Final = 0.035  # longer than a 30 fps frame, so some frame shows the lids shut
OPEN_S: Final = 0.09
BLINK_S: Final = CLOSE_S + HOLD_S + OPEN_S
MIN_GAP_S: Final = 2.0
MAX_GAP_S: Final = 6.0


class Blinks:
    """A blink schedule on the media clock, drawn lazily from a seed.

    Each gap is drawn from a generator keyed by the seed and the blink it
    follows, not from one running stream: how far ahead a caller happened to
    look then cannot change later blinks, so frames do not depend on how time
    was split into calls.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._starts: list[float] = []

    def _draw(self, after: float, low: float, high: float) -> float:
        key = round(after * 1000.0) & 0xFFFF_FFFF_FFFF_FFFF
        return after + float(np.random.default_rng([self._seed, key]).uniform(low, high))

    def _extend(self, until: float, now: float) -> None:
        if not self._starts:  # the first blink comes sooner: the face should look alive
            self._starts.append(self._draw(now, 0.5, 3.0))
        while self._starts[-1] < until:
            self._starts.append(self._draw(self._starts[-1], MIN_GAP_S, MAX_GAP_S))

    def blink_now(self, t: float) -> bool:
        """Blink at ``t`` (people blink with big gaze shifts) unless one was too recent.

        Blinks already scheduled after ``t`` are redrawn from it, keeping the gaps.
        """
        self._extend(t, t)
        i = bisect.bisect_right(self._starts, t)
        if i and t - self._starts[i - 1] < MIN_GAP_S:
            return False
        del self._starts[i:]
        self._starts.append(t)
        return True

    def forget_before(self, t: float) -> None:
        i = bisect.bisect_right(self._starts, t - BLINK_S)
        del self._starts[: max(0, i - 1)]  # keep one: blink_now measures gaps from it

    def at(self, times: npt.ArrayLike) -> F64:
        """Lid closure (N,) in [0, 1] at media times (N,)."""
        t = np.asarray(times, dtype=np.float64)
        if not t.size:
            return np.zeros(0)
        self._extend(float(t.max()), float(t.min()))
        starts = np.array(self._starts)
        idx = np.searchsorted(starts, t, side="right") - 1
        u = np.where(idx >= 0, t - starts[np.maximum(idx, 0)], np.inf)
        closing = min_jerk(u / CLOSE_S)
        opening = 1.0 - min_jerk((u - CLOSE_S - HOLD_S) / OPEN_S)
        out: F64 = np.where(u < CLOSE_S + HOLD_S, closing, opening)
        return out
