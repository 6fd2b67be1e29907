"""Surfaces as grids of points, and the skinned, morphable parts the avatar is made of.

Everything is built as smooth parametric surfaces (rings swept along a path, lathes,
sculpted spheres): a grid of points (rows x columns) becomes quads, normals are averaged
over the whole part, so a part shades smoothly across its material regions (the lips are
part of the face surface, the shirt's V part of the torso).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]


@dataclass
class Part:
    """One surface: points, triangles with a material each, skin weights and morphs."""

    name: str
    positions: F64  # (n, 3)
    triangles: I32  # (m, 3)
    materials: list[str]  # per triangle
    joints: I32  # (n, 4) bone names' indices into the skeleton's joint list
    weights: F64  # (n, 4), rows sum to 1
    morphs: dict[str, F64] = field(default_factory=dict)  # expression -> (n, 3) deltas
    colors: F64 | None = None  # (n, 3) linear RGB multiplying the material's colour

    @property
    def count(self) -> int:
        return len(self.positions)


def grid_triangles(rows: int, cols: int, wrap: bool) -> I32:
    """Two triangles per quad of a rows x cols grid (wrapping the columns if ``wrap``),
    wound counter-clockwise seen from outside when rows go down and columns go round
    counter-clockwise seen from above (the right-hand rule gives outward normals)."""
    r = np.arange(rows - 1)[:, None]
    c = np.arange(cols if wrap else cols - 1)[None, :]
    c1 = (c + 1) % cols
    a = r * cols + c
    b = r * cols + c1
    d = (r + 1) * cols + c
    e = (r + 1) * cols + c1
    t1 = np.stack([a, d, e], -1).reshape(-1, 3)
    t2 = np.stack([a, e, b], -1).reshape(-1, 3)
    return np.concatenate([t1, t2]).astype(np.int32)


def vertex_normals(positions: F64, triangles: I32) -> F64:
    """Area-weighted smooth normals."""
    p = positions
    t = triangles
    fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
    n = np.zeros_like(p)
    for k in range(3):
        np.add.at(n, t[:, k], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    fallback = np.array([0.0, 1.0, 0.0])
    out: F64 = np.where(length > 1e-12, n / np.maximum(length, 1e-12), fallback)
    return out


def smoothstep(e0: float, e1: float, x: F64 | float) -> F64:
    t = np.clip((np.asarray(x, dtype=np.float64) - e0) / (e1 - e0), 0.0, 1.0)
    out: F64 = t * t * (3 - 2 * t)
    return out


def interp_profile(keys: Sequence[tuple[float, ...]], t: F64) -> F64:
    """Smoothly interpolated columns of ``keys`` (first column the parameter) at ``t``:
    monotone cubic (Fritsch-Carlson), so profiles never overshoot between their keys."""
    k = np.array(keys, dtype=np.float64)
    x = k[:, 0]
    out = np.empty((len(t), k.shape[1] - 1))
    for col in range(1, k.shape[1]):
        out[:, col - 1] = _pchip(x, k[:, col], t)
    return out


def _pchip(x: F64, y: F64, t: F64) -> F64:
    h = np.diff(x)
    d = np.diff(y) / h
    m = np.zeros_like(y)
    for i in range(1, len(y) - 1):
        if d[i - 1] * d[i] > 0:
            w1, w2 = 2 * h[i] + h[i - 1], h[i] + 2 * h[i - 1]
            m[i] = (w1 + w2) / (w1 / d[i - 1] + w2 / d[i])
    m[0], m[-1] = d[0], d[-1]
    at = np.clip(np.searchsorted(x, t) - 1, 0, len(x) - 2)
    s = (np.clip(t, x[0], x[-1]) - x[at]) / h[at]
    h00 = 2 * s**3 - 3 * s**2 + 1
    h10 = s**3 - 2 * s**2 + s
    h01 = -2 * s**3 + 3 * s**2
    h11 = s**3 - s**2
    out: F64 = h00 * y[at] + h10 * h[at] * m[at] + h01 * y[at + 1] + h11 * h[at] * m[at + 1]
    return out


def superellipse(angle: F64, exponent: float) -> tuple[F64, F64]:
    """Unit superellipse directions (cos-like, sin-like): 2 is an ellipse, more is boxier."""
    c, s = np.cos(angle), np.sin(angle)
    e = 2.0 / exponent
    return np.sign(c) * np.abs(c) ** e, np.sign(s) * np.abs(s) ** e


def sweep(
    centers: F64,
    side: F64,
    front: F64,
    radii: F64,
    segments: int,
    exponent: float = 2.0,
    angles: F64 | None = None,
) -> F64:
    """Rings around a path: ring i is centred at centers[i] in the plane of unit vectors
    side[i] and front[i]; radii[i] = (side+, front+, side-, front-) half-extents.
    Returns a (rings, segments, 3) grid; column 0 points along +side, columns go round
    toward +front."""
    if angles is None:
        angles = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)[None, :]
    cu, su = superellipse(angles, exponent)
    cu = np.broadcast_to(cu, (len(centers), segments))
    su = np.broadcast_to(su, (len(centers), segments))
    rs = np.where(cu >= 0, radii[:, 0:1], radii[:, 2:3])  # (rings, segments)
    rf = np.where(su >= 0, radii[:, 1:2], radii[:, 3:4])
    grid: F64 = (
        centers[:, None, :]
        + (cu * rs)[..., None] * side[:, None, :]
        + (su * rf)[..., None] * front[:, None, :]
    )
    return grid


def capped_tube(grid: F64) -> tuple[F64, I32]:
    """A (rings, segments, 3) tube closed at both ends with a centre point each: the points
    and triangles. Winding: rings run in the direction that makes normals point out when
    columns go counter-clockwise around the ring's travel direction."""
    rings, seg, _ = grid.shape
    pts = grid.reshape(-1, 3)
    tris = grid_triangles(rings, seg, wrap=True)
    start = grid[0].mean(axis=0)
    end = grid[-1].mean(axis=0)
    i0 = len(pts)
    i1 = i0 + 1
    c = np.arange(seg)
    cap0 = np.stack([np.full(seg, i0), (c + 1) % seg, c], -1)
    last = (rings - 1) * seg
    cap1 = np.stack([np.full(seg, i1), last + c, last + (c + 1) % seg], -1)
    all_pts = np.concatenate([pts, start[None], end[None]])
    all_tris = np.concatenate([tris, cap0, cap1]).astype(np.int32)
    return all_pts, all_tris


def orient_outward(positions: F64, triangles: I32, inside: F64) -> I32:
    """Flip the winding if most faces point toward ``inside`` (a point inside the shape)."""
    p = positions
    t = triangles
    fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
    centre = p[t].mean(axis=1)
    if float(np.sum(np.einsum("ij,ij->i", fn, centre - inside))) < 0:
        return t[:, ::-1].copy()
    return t


def ellipsoid(center: F64, radii: F64, rows: int, cols: int) -> tuple[F64, I32]:
    """A closed ellipsoid (poles along y)."""
    phi = np.linspace(np.pi / 2, -np.pi / 2, rows)[1:-1]
    th = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    x = np.cos(phi)[:, None] * np.sin(th)[None]
    z = np.cos(phi)[:, None] * np.cos(th)[None]
    y = np.sin(phi)[:, None] * np.ones_like(th)[None]
    grid = np.stack([x, y, z], -1) * radii + center
    pts = grid.reshape(-1, 3)
    tris = grid_triangles(rows - 2, cols, wrap=True)
    top = len(pts)
    bottom = top + 1
    c = np.arange(cols)
    last = (rows - 3) * cols
    cap0 = np.stack([np.full(cols, top), c, (c + 1) % cols], -1)
    cap1 = np.stack([np.full(cols, bottom), last + (c + 1) % cols, last + c], -1)
    pts = np.concatenate(
        [pts, [center + np.array([0, radii[1], 0])], [center - np.array([0, radii[1], 0])]]
    )
    tris = np.concatenate([tris, cap0, cap1]).astype(np.int32)
    return pts, orient_outward(pts, tris, np.asarray(center, dtype=np.float64))
