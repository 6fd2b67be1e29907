"""The clone's voice placed at the stage: equal-power stereo panning by where the stage is
relative to the wearer's head, and a gentle fall-off with distance (a hall's PA carries
the voice everywhere, so it never falls silent)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]


def pan_gains(head: npt.NDArray[np.float64] | F32, source: Sequence[float]) -> tuple[float, float]:
    """(left, right) gains for a source at world point ``source`` heard by a head whose
    world transform is ``head`` (4x4; the head looks along its -Z, +X to its right)."""
    local = np.linalg.inv(np.asarray(head, np.float64)) @ np.array([*source, 1.0])
    x, z = float(local[0]), float(-local[2])
    d = math.hypot(x, float(local[1]), z)
    azimuth = math.atan2(x, z)  # 0 ahead, +90 degrees to the right
    pan = math.sin(azimuth)
    left = math.cos((pan + 1) * math.pi / 4)
    right = math.sin((pan + 1) * math.pi / 4)
    level = 1.0 / (1.0 + 0.04 * max(0.0, d - 2.0))
    return left * level * math.sqrt(2), right * level * math.sqrt(2)


def stereo(mono: npt.NDArray[np.int16], gains: tuple[float, float]) -> npt.NDArray[np.int16]:
    """Interleaved stereo int16 from mono samples and (left, right) gains."""
    m = mono.astype(np.float32)
    out = np.empty((len(m), 2), np.float32)
    out[:, 0] = m * gains[0]
    out[:, 1] = m * gains[1]
    return np.clip(out, -32768, 32767).astype(np.int16).reshape(-1)
