"""Hair and glasses.

Hair is a shell over the skull (HeadShape) that follows it down to just below its widest
line and then hangs: a column per azimuth, each as long as the style says there (a bob
frames the face and ends at the jaw, short hair stops at the hairline and the nape). Its
outer surface ripples in vertical clumps so light catches it like strands. Glasses are
thin tubes swept around each eye, a bridge, and temples back to the ears.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .appearance import Appearance
from .body import Dense, chain_weights, only
from .head import HeadShape
from .mesh import F64, grid_triangles, smoothstep, sweep


def _profile_lengths(style: str, theta: F64) -> tuple[F64, F64]:
    """Per column: where the hair ends, as (elevation of the end while it follows the skull,
    length hanging below the widest line in metres, 0 for none)."""
    at = np.abs(theta)
    side = smoothstep(0.7, 1.3, at)  # 0 at the face, 1 from the temples back
    back = smoothstep(1.7, 2.8, at)
    # A side-swept fringe: lower on the model's right (theta < 0).
    fringe = 0.5 - 0.16 * smoothstep(0.5, -0.5, theta)
    if style in ("short", "buzz"):
        end = fringe * (1 - side) + (0.12 * side) * (1 - back) + (-0.5) * back
        return end, np.zeros_like(theta)
    if style == "bun":
        end = fringe * (1 - side) + 0.02 * side * (1 - back) - 0.45 * back
        return end, np.zeros_like(theta)
    hang = {"bob": 0.085, "long": 0.2}[style]
    end = fringe * (1 - side) + (-0.05) * side
    length = hang * side * (1 + 0.12 * (1 - back))  # longer toward the face (an A-line)
    return end, length


def hair(shape: HeadShape, ap: Appearance, s: float, neck_y: float) -> list[Dense]:
    style = ap.hair_style
    if style == "bald":
        return []
    cols, rows = 84, 36
    theta = np.linspace(-np.pi, np.pi, cols, endpoint=False)
    end_phi, hang = _profile_lengths(style, theta)
    thick = 0.003 * s if style == "buzz" else 0.011 * s
    top_phi = np.pi / 2 - 0.06
    # Parameter u per row: 0..1 follows the skull from the crown to end_phi (or to the
    # widest line if the column hangs), then the hanging part.
    widest = -0.08
    follow_end = np.where(hang > 0, widest, end_phi)
    arc = top_phi - follow_end  # radians of skull followed
    hang_m = hang
    total = arc * shape.b + hang_m  # metres, roughly
    u = np.linspace(0, 1, rows)[:, None] * total[None, :]
    skull_len = arc * shape.b
    on_skull = u <= skull_len[None, :]
    phi = top_phi - (u / shape.b)
    phi = np.where(on_skull, phi, follow_end[None, :])
    th = np.broadcast_to(theta[None, :], phi.shape)
    base = shape.point(th, phi)
    # Outward from the skull's centre, with volume on top and strand clumps.
    radial = base / np.linalg.norm(base, axis=-1, keepdims=True)
    volume = 0.0 if style == "buzz" else 0.6
    lift = thick * (1 + volume * smoothstep(0.0, 1.2, phi))
    frac = u / np.maximum(total[None, :], 1e-9)
    wave = np.sin(theta * 23 + 2.0 * np.sin(theta * 4))[None, :]
    at_face = (1 - smoothstep(0.9, 1.6, np.abs(theta)))[None, :]
    clumps = (0.0 if style == "buzz" else 0.0022 * s) * wave * smoothstep(0.2, 0.8, frac)
    clumps = clumps * (1 - at_face)
    pts = base + radial * (lift + clumps)[..., None]
    # The hanging part: straight down from the widest line, a little flare, tips curled in.
    hang_t = np.clip((u - skull_len[None, :]) / np.maximum(hang_m[None, :], 1e-9), 0, 1)
    hanging = ~on_skull
    horiz = pts * [1, 0, 1]
    flare = 1 + 0.05 * np.sin(np.pi * hang_t) - 0.1 * smoothstep(0.7, 1.0, hang_t)
    down = np.stack(
        [horiz[..., 0] * flare, pts[..., 1] - hang_t * hang_m[None, :], horiz[..., 2] * flare], -1
    )
    pts = np.where(hanging[..., None], down, pts)
    grid = pts + shape.center
    crown = grid[0].mean(axis=0) + np.array([0, 0.002 * s, 0])
    p = np.concatenate([grid.reshape(-1, 3), [crown]])
    t = grid_triangles(rows, cols, wrap=True)
    c = np.arange(cols)
    fan = np.stack([np.full(cols, len(p) - 1), c, (c + 1) % cols], -1)
    t = np.concatenate([fan, t]).astype(np.int32)
    # Outward: compare with the direction from the head's centre.
    fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
    cen = p[t].mean(axis=1) - shape.center
    if float(np.sum(np.einsum("ij,ij->i", fn, cen))) < 0:
        t = t[:, ::-1].copy()
    if style == "long":
        w = chain_weights(
            p[:, 1],
            [-1.0, neck_y - 0.02 * s, neck_y + 0.06 * s],
            ["upperChest", "neck", "head"],
            0.04 * s,
        )
    else:
        w = only(len(p), "head")
    parts = [Dense("hair", p, t, ["hair"] * len(t), w)]
    if style == "bun":
        from .mesh import ellipsoid

        c0 = shape.center + np.array([0, 0.045 * s, -shape.c * 1.05])
        bp, bt = ellipsoid(c0, np.array([0.042, 0.038, 0.036]) * s, 12, 18)
        parts.append(Dense("bun", bp, bt, ["hair"] * len(bt), only(len(bp), "head")))
    return parts


def glasses(eyes: list[F64], shape: HeadShape, ap: Appearance, s: float) -> list[Dense]:
    if ap.glasses == "none":
        return []
    rect = ap.glasses == "rectangular"
    rx, ry = (0.024 * s, 0.0155 * s) if rect else (0.02 * s, 0.019 * s)
    zf = max(e[2] for e in eyes) + 0.02 * s
    tube_r = 0.0017 * s
    pts_all: list[F64] = []
    tris_all: list[npt.NDArray[np.int32]] = []

    def tube(path: F64, closed: bool) -> None:
        n = len(path)
        nxt = np.roll(path, -1, axis=0) if closed else np.gradient(path, axis=0)
        tang = (nxt - np.roll(path, 1, axis=0)) if closed else nxt
        tang = tang / np.linalg.norm(tang, axis=1, keepdims=True)
        up = np.tile([0, 0, 1.0], (n, 1))
        side = np.cross(tang, up)
        bad = np.linalg.norm(side, axis=1) < 1e-6
        side[bad] = np.cross(tang[bad], [0, 1.0, 0])
        side /= np.linalg.norm(side, axis=1, keepdims=True)
        front = np.cross(side, tang)
        r = np.full((n, 4), tube_r)
        grid = sweep(path, side, front, r, 8)
        rows = n + 1 if closed else n
        if closed:
            grid = np.concatenate([grid, grid[:1]])
        t = grid_triangles(rows, 8, wrap=True)
        p = grid.reshape(-1, 3)
        base = sum(len(q) for q in pts_all)
        pts_all.append(p)
        tris_all.append(t + base)

    for e in eyes:
        a = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        ex = 2.0 / (4.0 if rect else 2.0)
        c, sn = np.cos(a), np.sin(a)
        x = e[0] + np.sign(e[0]) * 0.002 * s + rx * np.sign(c) * np.abs(c) ** ex
        y = e[1] + 0.001 * s + ry * np.sign(sn) * np.abs(sn) ** ex
        z = np.full_like(a, zf) - 0.004 * s * (np.abs(x - e[0]) / rx) ** 2
        tube(np.stack([x, y, z], -1), True)
        # Temple: from the rim's outer edge back over the ear.
        side = np.sign(e[0])
        start = np.array([e[0] + side * (rx + 0.002 * s), e[1] + 0.004 * s, zf - 0.006 * s])
        end = shape.center + np.array(
            [side * shape.a * 1.02, e[1] - shape.center[1] - 0.004 * s, -0.02 * s]
        )
        k = np.linspace(0, 1, 10)[:, None]
        tube(start + k * (end - start), False)
    # Bridge between the rims.
    k = np.linspace(-1, 1, 9)
    inner = abs(eyes[0][0]) - rx + 0.001 * s
    bridge = np.stack(
        [
            k * inner,
            np.full_like(k, eyes[0][1] + 0.006 * s) + 0.002 * s * (1 - k * k),
            np.full_like(k, zf + 0.002 * s),
        ],
        -1,
    )
    tube(bridge, False)
    p = np.concatenate(pts_all)
    t = np.concatenate(tris_all).astype(np.int32)
    return [Dense("glasses", p, t, ["glasses"] * len(t), only(len(p), "head"))]
