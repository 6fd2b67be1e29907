"""Vectorised quaternion helpers, (x, y, z, w) like the protocol, over leading axes.

Rotation angles follow the right-hand rule, and with the VRM model facing +Z
(up +Y, its left +X) that means: +yaw about Y turns toward the model's left,
+pitch about X tips its front down (a nod), +roll about Z tips its top toward
its right.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

__all__ = ["conjugate", "from_yxz", "multiply", "rotate", "yaw_pitch_of"]


def from_yxz(angles: npt.ArrayLike) -> F64:
    """Quaternions (..., 4) of R_y(yaw) * R_x(pitch) * R_z(roll), angles (..., 3) in radians.

    The order applies roll first and yaw last, so yaw stays "turn about
    vertical" whatever the pitch: the natural order for heads, eyes and arms.
    """
    a = np.asarray(angles, dtype=np.float64) * 0.5
    cy, sy = np.cos(a[..., 0]), np.sin(a[..., 0])
    cx, sx = np.cos(a[..., 1]), np.sin(a[..., 1])
    cz, sz = np.cos(a[..., 2]), np.sin(a[..., 2])
    out = np.empty((*a.shape[:-1], 4))
    out[..., 0] = cy * sx * cz + sy * cx * sz
    out[..., 1] = sy * cx * cz - cy * sx * sz
    out[..., 2] = cy * cx * sz - sy * sx * cz
    out[..., 3] = cy * cx * cz + sy * sx * sz
    return out


def multiply(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """Hamilton product a * b (apply b, then a), broadcasting over leading axes."""
    p = np.asarray(a, dtype=np.float64)
    q = np.asarray(b, dtype=np.float64)
    x1, y1, z1, w1 = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    x2, y2, z2, w2 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    out = np.empty((*np.broadcast_shapes(p.shape[:-1], q.shape[:-1]), 4))
    out[..., 0] = w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2
    out[..., 1] = w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2
    out[..., 2] = w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2
    out[..., 3] = w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2
    return out


def conjugate(q: npt.ArrayLike) -> F64:
    """The inverse of unit quaternions."""
    out = np.array(q, dtype=np.float64)
    out[..., :3] *= -1.0
    return out


def rotate(q: npt.ArrayLike, v: npt.ArrayLike) -> F64:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4): v + 2w(u x v) + 2u x (u x v)."""
    p = np.asarray(q, dtype=np.float64)
    vec = np.asarray(v, dtype=np.float64)
    x, y, z, w = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
    vx, vy, vz = vec[..., 0], vec[..., 1], vec[..., 2]
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    out = np.empty((*np.broadcast_shapes(p.shape[:-1], vec.shape[:-1]), 3))
    out[..., 0] = vx + w * tx + (y * tz - z * ty)
    out[..., 1] = vy + w * ty + (z * tx - x * tz)
    out[..., 2] = vz + w * tz + (x * ty - y * tx)
    return out


def yaw_pitch_of(direction: npt.ArrayLike) -> tuple[F64, F64]:
    """Yaw and pitch (radians) that turn +Z toward ``direction`` (..., 3) in from_yxz's terms."""
    d = np.asarray(direction, dtype=np.float64)
    yaw = np.arctan2(d[..., 0], d[..., 2])
    pitch = np.arctan2(-d[..., 1], np.hypot(d[..., 0], d[..., 2]))
    return yaw, pitch
