"""Meshes for the hall and the crowd, made with numpy: boxes, spheres, capsules, merged
with a colour per part. Each shape is (positions, normals, colours, indices)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
Mesh = tuple[F32, F32, F32, npt.NDArray[np.uint32]]


def box(
    size: tuple[float, float, float],
    center: tuple[float, float, float],
    color: tuple[float, float, float],
) -> Mesh:
    sx, sy, sz = (s / 2 for s in size)
    faces = []
    for axis in range(3):
        for sign in (-1, 1):
            n = np.zeros(3)
            n[axis] = sign
            u = np.zeros(3)
            u[(axis + 1) % 3] = 1
            v = np.cross(n, u)
            corners = [n + a * u + b * v for a, b in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
            faces.append((np.array(corners), n))
    pos: list[npt.NDArray[np.float64]] = []
    nrm: list[npt.NDArray[np.float64]] = []
    idx: list[int] = []
    for k, (face_corners, n) in enumerate(faces):
        pos.append(face_corners * [sx, sy, sz] + center)
        nrm.append(np.tile(n, (4, 1)))
        b = 4 * k
        idx += [b, b + 1, b + 2, b, b + 2, b + 3]
    p = np.concatenate(pos).astype(np.float32)
    return (
        p,
        np.concatenate(nrm).astype(np.float32),
        np.tile(np.array(color, np.float32), (len(p), 1)),
        np.array(idx, np.uint32),
    )


def ellipsoid(
    radii: tuple[float, float, float],
    center: tuple[float, float, float],
    color: tuple[float, float, float],
    rows: int = 10,
    cols: int = 14,
    cut: float = np.pi,
) -> Mesh:
    """An ellipsoid; ``cut`` < pi keeps only the cap within that polar angle from +Y."""
    th = np.linspace(0, cut, rows)
    ph = np.linspace(0, 2 * np.pi, cols + 1)
    t, p = np.meshgrid(th, ph, indexing="ij")
    unit = np.stack([np.sin(t) * np.sin(p), np.cos(t), np.sin(t) * np.cos(p)], -1).reshape(-1, 3)
    r = np.array(radii)
    pos = unit * r + center
    nrm = unit / r
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-9)
    idx = []
    for i in range(rows - 1):
        for j in range(cols):
            a = i * (cols + 1) + j
            b = a + cols + 1
            idx += [a, b, a + 1, a + 1, b, b + 1]
    return (
        pos.astype(np.float32),
        nrm.astype(np.float32),
        np.tile(np.array(color, np.float32), (len(pos), 1)),
        np.array(idx, np.uint32),
    )


def capsule(
    radius: float,
    length: float,
    a: tuple[float, float, float],
    direction: tuple[float, float, float],
    color: tuple[float, float, float],
    seg: int = 10,
    k: int = 4,
) -> Mesh:
    """A capsule from point ``a`` along ``direction`` (length between the caps' centres)."""
    d = np.array(direction, np.float64)
    d /= np.linalg.norm(d)
    up = np.array([0.0, 1.0, 0.0]) if abs(d[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    s = np.cross(d, up)
    s /= np.linalg.norm(s)
    f = np.cross(s, d)
    rings = []
    for i in range(k + 1):  # lower hemisphere
        ang = -np.pi / 2 + np.pi / 2 * i / k
        rings.append((np.cos(ang), np.sin(ang), 0.0))
    for i in range(k + 1):  # upper hemisphere
        ang = np.pi / 2 * i / k
        rings.append((np.cos(ang), np.sin(ang), length))
    ph = np.linspace(0, 2 * np.pi, seg + 1)
    pos, nrm = [], []
    for ring_r, ring_h, off in rings:
        for p in ph:
            n = ring_r * (np.cos(p) * s + np.sin(p) * f) + ring_h * d
            pos.append(np.array(a) + d * off + radius * n)
            nrm.append(n)
    idx = []
    for i in range(len(rings) - 1):
        for j in range(seg):
            a0 = i * (seg + 1) + j
            b0 = a0 + seg + 1
            idx += [a0, a0 + 1, b0, a0 + 1, b0 + 1, b0]
    return (
        np.array(pos, np.float32),
        np.array(nrm, np.float32),
        np.tile(np.array(color, np.float32), (len(pos), 1)),
        np.array(idx, np.uint32),
    )


def merge(meshes: list[Mesh]) -> Mesh:
    ps, ns, cs, ix = [], [], [], []
    base = 0
    for p, n, c, i in meshes:
        ps.append(p)
        ns.append(n)
        cs.append(c)
        ix.append(i + base)
        base += len(p)
    return (
        np.concatenate(ps),
        np.concatenate(ns),
        np.concatenate(cs),
        np.concatenate(ix).astype(np.uint32),
    )


def quad(width: float, height: float) -> tuple[F32, F32, npt.NDArray[np.uint32]]:
    """A quad in the XY plane facing +Z, centred; positions and UVs (v up)."""
    w, h = width / 2, height / 2
    p = np.array([[-w, -h, 0], [w, -h, 0], [w, h, 0], [-w, h, 0]], np.float32)
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float32)
    return p, uv, np.array([0, 1, 2, 0, 2, 3], np.uint32)
