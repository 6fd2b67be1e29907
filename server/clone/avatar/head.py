"""The head: a sculpted skull with a face (nose, brows, cheeks, lips that part), eyeballs
that the eye bones turn, eyelids that close, teeth and a mouth to see into; and the
expression morphs (VRM's aa ih ou ee oh, blinks, emotions) as vertex deltas.

The skin is one surface in (azimuth, elevation) with the rows dense across the face; the
mouth is a slit cut along one row (the lips' vertices are doubled there), so the jaw morph
parts the lips instead of stretching a sealed skin. Eyelids are shells just outside the
eyeballs whose edge rows move in the blink morphs; brows and lips are regions of the skin
with their own materials, moved by the emotion morphs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .mesh import F64, I32, Part, ellipsoid, grid_triangles, smoothstep, vertex_normals
from .skeleton import Frame

JOINT_HEAD = "head"
EXPRESSION_NAMES = (
    "aa",
    "ih",
    "ou",
    "ee",
    "oh",
    "blink",
    "blinkLeft",
    "blinkRight",
    "happy",
    "angry",
    "sad",
    "relaxed",
    "surprised",
)

DEG = np.pi / 180


@dataclass
class HeadShape:
    """The skull without facial features: used by the face and by the hair."""

    center: F64
    a: float
    b: float
    c: float

    def point(self, theta: F64, phi: F64) -> F64:
        """Skull points (head-local, relative to ``center``) at azimuth theta (0 = front,
        + toward the model's left) and elevation phi."""
        a, b, c = self.a, self.b, self.c
        cp = np.cos(phi)
        x = a * cp * np.sin(theta)
        y = b * np.sin(phi)
        z = c * cp * np.cos(theta)
        front = smoothstep(-0.2, 0.7, np.cos(theta))
        back = smoothstep(0.25, -0.7, np.cos(theta))
        z = np.where(z < 0, z * 1.06, z)  # the occiput reaches further back
        # Below the cheekbones the face narrows to the jaw and chin.
        low = smoothstep(-0.15 * b, -0.95 * b, y)
        x = x * (1 - 0.13 * low * front - 0.08 * low * (1 - front))
        # The lower face stands more upright than an ellipsoid: jaw and chin come forward.
        chin_col = smoothstep(0.2, 0.95, np.cos(theta))
        z = z + c * 0.46 * smoothstep(-0.2 * b, -1.0 * b, y) ** 1.3 * chin_col
        # The face is flatter across than an ellipsoid: cheeks come forward.
        band = smoothstep(-0.95 * b, -0.3 * b, y) * smoothstep(0.75 * b, 0.2 * b, y)
        z = z + 0.22 * c * (np.clip(np.abs(x) / a, 0, 1) ** 2) * front * band * np.cos(phi)
        # The underside rises toward the back (skull base above the chin); the chin leads.
        y = np.where(y < 0, y * (1 - 0.42 * back), y)
        chin = smoothstep(-0.55 * b, -0.95 * b, y) * front
        z = z + 0.1 * c * chin
        y = y - 0.06 * b * chin
        out: F64 = np.stack([x, y, z], -1)
        return out


def head_shape(fr: Frame) -> HeadShape:
    return HeadShape(fr.head_center.copy(), fr.head_a, fr.head_b, fr.head_c)


def _rows(mouth_phi: float, n: int) -> F64:
    """Elevations from the crown to under the chin, dense over the face, one row exactly on
    the mouth line."""
    phi = np.linspace(np.pi / 2, -np.pi / 2, 4000)
    density = 1 + 2.6 * np.exp(-(((phi + 0.2) / 0.42) ** 2))
    cum = np.concatenate([[0], np.cumsum((density[1:] + density[:-1]) / 2)])
    cum /= cum[-1]
    rows = np.interp(np.linspace(0, 1, n), cum, phi)
    k = int(np.argmin(np.abs(rows - mouth_phi)))
    rows[k] = mouth_phi
    return rows


def _columns(n: int) -> F64:
    t = np.linspace(-1, 1, n, endpoint=False)
    out: F64 = np.pi * t * (0.28 + 0.72 * t * t)
    return out


def _gauss(x: F64, y: F64, cx: float, cy: float, sx: float, sy: float) -> F64:
    out: F64 = np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2)
    return out


@dataclass
class Face:
    part: Part  # skin with lips and brows, lids, mouth, teeth: carries the morphs
    eyes: list[Part]  # eyeballs (no morphs)
    ears: Part
    eye_centers: list[F64]  # world
    mouth: F64  # world centre of the mouth line
    shape: HeadShape


def _face_colours(
    n: int,
    n_skin: int,
    weights: tuple[F64, F64, F64],
    kinds: np.ndarray,
    colours: dict[str, tuple[float, float, float]],
) -> F64:
    """Vertex colours: skin with lips, brows and a blush on the face; lids skin; white
    (the material's own colour) elsewhere."""
    out = np.ones((n, 3))
    skin = np.array(colours["skin"])
    lips, brows, blush = (np.clip(w, 0, 1)[:, None] for w in weights)
    tint = skin * np.array([1.04, 0.9, 0.88])
    c = skin * (1 - 0.35 * blush) + tint * 0.35 * blush
    c = c * (1 - lips) + np.array(colours["lips"]) * lips
    c = c * (1 - brows) + np.array(colours["brows"]) * brows
    out[:n_skin] = c
    lids = (kinds == 1) | (kinds == 2)
    out[lids] = skin * 0.96
    return out


def build_face(
    fr: Frame, joint_index: Callable[[str], int], colours: dict[str, tuple[float, float, float]]
) -> Face:
    shape = head_shape(fr)
    hc = shape.center
    mouth_rel = fr.mouth_y - hc[1]
    # The mouth row: the base elevation whose front point lies at the mouth's height.
    probe = np.linspace(-1.2, 0.2, 2000)
    ys = shape.point(np.zeros_like(probe), probe)[:, 1]
    mouth_phi = float(probe[np.argmin(np.abs(ys - mouth_rel))])
    phis = _rows(mouth_phi, 72)
    thetas = _columns(104)
    th, ph = np.meshgrid(thetas, phis)
    grid = shape.point(th, ph)  # (rows, cols, 3)
    rows, cols = th.shape
    m_row = int(np.argmin(np.abs(phis - mouth_phi)))
    mouth_y = float(grid[m_row, cols // 2, 1])
    x, y, z = grid[..., 0], grid[..., 1], grid[..., 2]
    front = smoothstep(0.3, 0.8, np.cos(th))
    s = fr.height / 1.70
    ex = 0.032 * s
    eye_y = fr.eye_y - hc[1]
    mw = (0.023 if fr.feminine else 0.025) * s  # half the mouth's width
    nose_top, nose_tip = eye_y + 0.004 * s, eye_y - 0.04 * s

    # --- features, pushed along +Z on the face (x, y unchanged)
    dz = np.zeros_like(z)
    # Nose: a ridge growing from the bridge to the tip, wings beside the tip.
    t = np.clip((nose_top - y) / (nose_top - nose_tip), 0, 1.45)
    ridge = np.where(t <= 1, 0.003 + 0.015 * t**1.7, 0.018 * smoothstep(1.45, 1.0, t))
    width = 0.0065 + 0.006 * np.clip(t, 0, 1) ** 2
    dz += s * ridge * np.exp(-((x / (width * s)) ** 2))
    for side in (-1, 1):
        dz += 0.004 * s * _gauss(x, y, side * 0.012 * s, nose_tip + 0.001 * s, 0.007 * s, 0.007 * s)
        # Cheekbones and the brow ridge.
        dz += 0.005 * s * _gauss(x, y, side * 0.042 * s, eye_y - 0.024 * s, 0.02 * s, 0.014 * s)
        dz += 0.0035 * s * _gauss(x, y, side * 0.03 * s, eye_y + 0.02 * s, 0.025 * s, 0.007 * s)
    # Lips: an upper and a lower cushion, the line between them set in a little.
    xl = np.clip(np.abs(x) / mw, 0, 1.6)
    lip_span = np.clip(1 - xl**2, 0, 1)
    upper_h = (0.0085 if fr.feminine else 0.0065) * s
    lower_h = (0.0105 if fr.feminine else 0.009) * s
    du = np.clip((y - mouth_y) / upper_h, -1, 2)
    dl = np.clip((mouth_y - y) / lower_h, -1, 2)
    dz += 0.0045 * s * lip_span**0.6 * np.exp(-(((du - 0.45) / 0.6) ** 2))
    dz += 0.0055 * s * lip_span**0.6 * np.exp(-(((dl - 0.5) / 0.6) ** 2))
    dz -= 0.0015 * s * np.exp(-((x / (mw * 1.1)) ** 2) - ((y - mouth_y) / (0.0018 * s)) ** 2)
    # Philtrum groove and chin.
    dz -= 0.0012 * s * _gauss(x, y, 0, mouth_y + 0.012 * s, 0.004 * s, 0.006 * s)
    dz += 0.0045 * s * _gauss(x, y, 0, mouth_y - 0.037 * s, 0.016 * s, 0.01 * s)
    # Eye sockets: an almond recess the eyeball shows through.
    recess = np.zeros_like(z)
    for side in (-1, 1):
        rho = np.sqrt(((x - side * ex) / (0.0175 * s)) ** 2 + ((y - eye_y) / (0.0115 * s)) ** 2)
        recess = np.maximum(recess, smoothstep(1.15, 0.55, rho))
    z = z + dz * front
    # The eyeball's front sits at the skin's level before the recess.
    d2 = (x - ex) ** 2 + (y - eye_y) ** 2 + np.where(z > 0, 0, 1)
    k = np.unravel_index(np.argmin(d2), d2.shape)
    skin_at_eye = float(z[k])
    r_eye = 0.0118 * s
    ez = skin_at_eye - r_eye + 0.0012 * s
    z = z - recess * front * 0.0085 * s
    grid = np.stack([x, y, z], -1)

    # --- the mouth slit: the mouth row's inner vertices get a copy for the lower lip
    pts = grid.reshape(-1, 3)
    tris = grid_triangles(rows, cols, wrap=True)
    row_x = grid[m_row, :, 0]
    inner = np.nonzero((np.abs(row_x) < mw) & (np.cos(thetas) > 0))[0]
    inner = inner[1:-1]  # the corners stay shared
    dup = {int(m_row * cols + cc): len(pts) + i for i, cc in enumerate(inner)}
    pts = np.concatenate([pts, pts[[m_row * cols + cc for cc in inner]]])
    lower_copy = np.zeros(len(pts), bool)
    lower_copy[list(dup.values())] = True
    # Quads between the mouth row and the row below use the copies.
    below = np.zeros(len(tris), bool)
    rows_of = tris // cols
    below = (rows_of.max(axis=1) == m_row + 1) & (rows_of.min(axis=1) == m_row)
    for tri in np.nonzero(below)[0]:
        for j in range(3):
            v = int(tris[tri, j])
            if v in dup:
                tris[tri, j] = dup[v]
    # Winding: rows go down, columns go toward +x at the front: fix to point outward.
    tris = _outward(pts, tris)
    # Close the crown and the underside with a centre point each.
    tris, pts, lower_copy = _close_poles(pts, tris, lower_copy, rows, cols)

    # --- colour regions: lips, brows, a little colour in the cheeks (vertex colours, so
    # the regions blend over a millimetre or two instead of stepping along triangles)
    mats = np.full(len(tris), "face", dtype=object)
    brow_y = eye_y + 0.021 * s
    vx, vy, vz = pts[:, 0], pts[:, 1], pts[:, 2]
    xr = np.abs(vx) / mw
    bow = 1 + 0.18 * np.exp(-(((np.abs(vx) - 0.35 * mw) / (0.25 * mw)) ** 2))
    span = np.clip(1 - xr**2, 0, 1)
    up_h = upper_h * 1.05 * span**0.45 * bow + 1e-6
    lo_h = lower_h * 0.95 * span**0.5 + 1e-6
    rel = vy - mouth_y
    lip_v = np.where(rel >= 0, rel / up_h, -rel / lo_h)
    lips_mask = smoothstep(1.15, 0.8, lip_v) * smoothstep(1.1, 0.9, xr) * (vz > 0)
    lips_mask = np.where(lower_copy, smoothstep(1.1, 0.9, xr), lips_mask)
    brow_mask = np.zeros(len(pts))
    for side in (-1, 1):
        u = (vx * side - ex + 0.02 * s) / (0.047 * s)  # 0 inner end .. 1 outer end
        arch = brow_y + 0.0045 * s * np.sin(np.clip(u, 0, 1) * np.pi * 0.85) - 0.002 * s * u
        half = (0.0028 - 0.0016 * np.clip(u, 0, 1)) * s
        along = smoothstep(-0.08, 0.06, u) * smoothstep(1.08, 0.9, u)
        brow_mask = np.maximum(
            brow_mask, along * smoothstep(1.25, 0.7, np.abs(vy - arch) / half) * (vz > 0)
        )
    blush = sum(
        np.exp(
            -(((vx - side * 0.042 * s) / (0.016 * s)) ** 2)
            - ((vy - (eye_y - 0.032 * s)) / (0.014 * s)) ** 2
        )
        for side in (-1, 1)
    ) * (vz > 0)
    face_weights = (lips_mask, brow_mask, blush)

    n_skin = len(pts)
    # --- lids, mouth cavity, teeth
    eye_centers = [hc + np.array([side * ex, eye_y, ez]) for side in (1, -1)]
    lid_parts = [_lids(e - hc, r_eye, s) for e in eye_centers]
    near_mouth = (np.abs(pts[:n_skin, 0]) < 0.004 * s) & (
        np.abs(pts[:n_skin, 1] - mouth_y) < 0.004 * s
    )
    lip_front = float(np.max(pts[:n_skin][near_mouth][:, 2]))
    teeth = [_teeth(mouth_y, lip_front, mw, s, upper) for upper in (True, False)]
    bag_c = np.array([0.0, mouth_y - 0.005 * s, lip_front - 0.024 * s])
    bag_p, bag_t = ellipsoid(bag_c, np.array([mw * 0.98, 0.016 * s, 0.019 * s]), 12, 20)
    pieces: list[tuple[F64, I32, list[str]]] = [(pts, tris, list(mats))]
    n_face_skin = len(pts)
    for lp, lt, lm in lid_parts:
        pieces.append((lp, lt, lm))
    pieces.append((bag_p, bag_t, ["mouth"] * len(bag_t)))
    for tp, tt in teeth:
        pieces.append((tp, tt, ["teeth"] * len(tt)))
    all_p, all_t, all_m = _merge(pieces)
    kinds = np.concatenate(
        [np.full(len(p), i) for i, (p, _, _) in enumerate(pieces)]
    )  # 0 skin, 1-2 lids, 3 mouth, 4 upper teeth, 5 lower teeth
    is_lower_copy = np.zeros(len(all_p), bool)
    is_lower_copy[: len(lower_copy)] = lower_copy

    eyes_local = [e - hc for e in eye_centers]
    morphs = _morphs(all_p, kinds, is_lower_copy, eyes_local, r_eye, mouth_y, mw, eye_y, brow_y, s)
    world = all_p + hc
    head = joint_index(JOINT_HEAD)
    part = Part(
        "face",
        world,
        all_t,
        all_m,
        np.tile([head, 0, 0, 0], (len(world), 1)).astype(np.int32),
        np.tile([1.0, 0, 0, 0], (len(world), 1)),
        morphs,
    )
    part.colors = _face_colours(len(world), n_face_skin, face_weights, kinds, colours)
    eyes = [
        _eyeball(e, r_eye, side, joint_index)
        for e, side in zip(eye_centers, ("left", "right"), strict=True)
    ]
    ears = _ears(shape, eye_y, s, head)
    return Face(part, eyes, ears, eye_centers, hc + np.array([0, mouth_y, lip_front]), shape)


def _outward(pts: F64, tris: I32) -> I32:
    fn = np.cross(pts[tris[:, 1]] - pts[tris[:, 0]], pts[tris[:, 2]] - pts[tris[:, 0]])
    cen = pts[tris].mean(axis=1)
    if float(np.sum(np.einsum("ij,ij->i", fn, cen))) < 0:
        return tris[:, ::-1].copy()
    return tris


def _close_poles(
    pts: F64, tris: I32, flags: np.ndarray, rows: int, cols: int
) -> tuple[I32, F64, np.ndarray]:
    top = pts[:cols].mean(axis=0) + np.array([0, 0.002, 0])
    bottom = pts[(rows - 1) * cols : rows * cols].mean(axis=0)
    it, ib = len(pts), len(pts) + 1
    c = np.arange(cols)
    cap0 = np.stack([np.full(cols, it), c, (c + 1) % cols], -1)
    last = (rows - 1) * cols
    cap1 = np.stack([np.full(cols, ib), last + (c + 1) % cols, last + c], -1)
    pts = np.concatenate([pts, [top, bottom]])
    caps = np.concatenate([cap0, cap1]).astype(np.int32)
    # The caps wind like the surface: compare each cap's normal with its direction.
    fn = np.cross(pts[caps[:, 1]] - pts[caps[:, 0]], pts[caps[:, 2]] - pts[caps[:, 0]])
    cen = pts[caps].mean(axis=1)
    bad = np.einsum("ij,ij->i", fn, cen) < 0
    caps[bad] = caps[bad][:, ::-1]
    flags = np.concatenate([flags, [False, False]])
    return np.concatenate([tris, caps]).astype(np.int32), pts, flags


def _merge(pieces: list[tuple[F64, I32, list[str]]]) -> tuple[F64, I32, list[str]]:
    ps, ts, ms = [], [], []
    base = 0
    for p, t, m in pieces:
        ps.append(p)
        ts.append(t + base)
        ms.extend(m)
        base += len(p)
    return np.concatenate(ps), np.concatenate(ts).astype(np.int32), ms


# ---------------------------------------------------------------- eyes and lids

LID_OPEN_UP = 15.0  # degrees above the eye's centre where the upper lid's edge sits open
LID_OPEN_LOW = -22.0
LID_CLOSED = -17.0


def _lid_grid(center: F64, radius: float, top: float, edge: F64, alphas: F64, n: int) -> F64:
    """A lid shell: rows from ``top`` elevation (deg) to ``edge`` (deg per column)."""
    s = np.linspace(0, 1, n)[:, None]
    beta = (top + s * (edge[None, :] - top)) * DEG
    al = alphas[None, :] * DEG
    x = radius * np.cos(beta) * np.sin(al)
    y = radius * np.sin(beta)
    z = radius * np.cos(beta) * np.cos(al)
    out: F64 = np.stack([x, y, z], -1) + center
    return out


def _lids(center: F64, r_eye: float, s: float) -> tuple[F64, I32, list[str]]:
    """Upper and lower lid of one eye (head-local), open; materials skin and lashes."""
    alphas = np.linspace(-88, 88, 25)
    shape = np.cos(alphas * DEG) ** 0.7
    up = _lid_grid(center, r_eye * 1.14, 75.0, LID_OPEN_UP * shape, alphas, 9)
    low = _lid_grid(center, r_eye * 1.1, -75.0, LID_OPEN_LOW * shape, alphas, 7)
    pts, tris, mats = [], [], []
    base = 0
    for grid, lash in ((up, True), (low, False)):
        rws, cls = grid.shape[:2]
        t = grid_triangles(rws, cls, wrap=False)
        p = grid.reshape(-1, 3)
        t = _face_away(p, t, center)
        row = (t // cls).max(axis=1)
        m = ["lashes" if lash and r == rws - 1 else "face" for r in row]
        pts.append(p)
        tris.append(t + base)
        mats.extend(m)
        base += len(p)
    return np.concatenate(pts), np.concatenate(tris).astype(np.int32), mats


def _face_away(p: F64, t: I32, center: F64) -> I32:
    fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
    c = p[t].mean(axis=1) - center
    return t if float(np.sum(np.einsum("ij,ij->i", fn, c))) > 0 else t[:, ::-1].copy()


def _lid_targets(center: F64, r_eye: float, up_edge: float, low_edge: float) -> F64:
    """Lid points (same layout as _lids) with the edges at other elevations."""
    alphas = np.linspace(-88, 88, 25)
    shape = np.cos(alphas * DEG) ** 0.7
    up = _lid_grid(center, r_eye * 1.14, 75.0, up_edge * shape, alphas, 9)
    low = _lid_grid(center, r_eye * 1.1, -75.0, low_edge * shape, alphas, 7)
    out: F64 = np.concatenate([up.reshape(-1, 3), low.reshape(-1, 3)])
    return out


def _eyeball(center: F64, r: float, side: str, joint_index: Callable[[str], int]) -> Part:
    """An eyeball on its bone: white, iris and pupil around +Z (where the bone looks)."""
    rows, cols = 14, 24
    polar = np.linspace(0, np.pi, rows)[1:]  # from the front pole backwards
    az = np.linspace(0, 2 * np.pi, cols, endpoint=False)
    pa, aa = np.meshgrid(polar, az, indexing="ij")
    bulge = 1 + 0.06 * smoothstep(0.6, 0.0, pa)
    x = r * bulge * np.sin(pa) * np.cos(aa)
    y = r * bulge * np.sin(pa) * np.sin(aa)
    zz = r * bulge * np.cos(pa)
    grid = np.stack([x, y, zz], -1)
    pts = np.concatenate([[[0, 0, r * 1.06]], grid.reshape(-1, 3)])
    tris = grid_triangles(rows - 1, cols, wrap=True) + 1
    c = np.arange(cols)
    fan = np.stack([np.zeros(cols, int), c + 1, (c + 1) % cols + 1], -1)
    tris = np.concatenate([fan, tris]).astype(np.int32)
    tris = _face_away(pts, tris, np.zeros(3))
    ang = np.arccos(
        np.clip(
            pts[tris].mean(axis=1)[:, 2] / np.linalg.norm(pts[tris].mean(axis=1), axis=1), -1, 1
        )
    )
    mats = ["pupil" if a < 0.2 else "iris" if a < 0.52 else "sclera" for a in ang]
    world = pts + center
    j = joint_index(f"{side}Eye")
    return Part(
        f"{side}Eye",
        world,
        tris,
        mats,
        np.tile([j, 0, 0, 0], (len(world), 1)).astype(np.int32),
        np.tile([1.0, 0, 0, 0], (len(world), 1)),
    )


def _ears(shape: HeadShape, eye_y: float, s: float, head: int) -> Part:
    pts_all, tris_all = [], []
    base = 0
    for side in (1, -1):
        side_pt = shape.point(
            np.array([side * np.pi / 2]),
            np.array([np.arcsin(np.clip((eye_y - 0.012 * s) / shape.b, -1, 1))]),
        )[0]
        c = shape.center + side_pt + [side * -0.002 * s, 0, -0.008 * s]
        p, t = ellipsoid(c, np.array([0.008, 0.029, 0.017]) * s, 10, 14)
        pts_all.append(p)
        tris_all.append(t + base)
        base += len(p)
    p = np.concatenate(pts_all)
    t = np.concatenate(tris_all).astype(np.int32)
    return Part(
        "ears",
        p,
        t,
        ["skin"] * len(t),
        np.tile([head, 0, 0, 0], (len(p), 1)).astype(np.int32),
        np.tile([1.0, 0, 0, 0], (len(p), 1)),
    )


def _teeth(mouth_y: float, lip_front: float, mw: float, s: float, upper: bool) -> tuple[F64, I32]:
    """A curved row of teeth behind the lips (head-local)."""
    gam = np.linspace(-0.95, 0.95, 15)
    rad = mw * 1.05
    cz = lip_front - 0.006 * s - rad
    if upper:
        ys = np.array([mouth_y + 0.009 * s, mouth_y - 0.0005 * s])
    else:
        ys = np.array([mouth_y - 0.0015 * s, mouth_y - 0.0095 * s])
    pts = []
    for yv in ys:
        for g in gam:
            pts.append([rad * np.sin(g), yv, cz + rad * np.cos(g)])
    p = np.array(pts)
    t = grid_triangles(2, len(gam), wrap=False)
    return p, _face_away(p, t, np.array([0.0, 0.5 * (ys[0] + ys[1]), cz]))


# ---------------------------------------------------------------- morphs


def _morphs(
    p: F64,
    kinds: np.ndarray,
    lower_copy: np.ndarray,
    eyes: list[F64],
    r_eye: float,
    mouth_y: float,
    mw: float,
    eye_y: float,
    brow_y: float,
    s: float,
) -> dict[str, F64]:
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    skin = kinds == 0
    # Jaw: rotate about the axis through the jaw joints, below the mouth line.
    pivot = np.array([0.0, eye_y - 0.032 * s, -0.012 * s])
    below = np.where(lower_copy, 1.0, smoothstep(mouth_y + 0.0008 * s, mouth_y - 0.006 * s, y))
    lateral = smoothstep(0.074 * s, 0.035 * s, np.abs(x))
    corner = 1 - (1 - smoothstep(1.55 * mw, 0.9 * mw, np.abs(x))) * smoothstep(
        0.016 * s, 0.0, mouth_y - y
    )
    front = smoothstep(-0.02 * s, 0.05 * s, z)
    jaw_w = np.where(skin, below * lateral * corner * front, 0.0)
    jaw_w = np.where(kinds == 5, 1.0, jaw_w)  # lower teeth
    jaw_w = np.where(kinds == 3, smoothstep(mouth_y + 0.002 * s, mouth_y - 0.008 * s, y), jaw_w)
    lips_near = np.exp(-((x / (mw * 1.5)) ** 2) - ((y - mouth_y) / (0.016 * s)) ** 2)
    lips_near = np.where(skin, lips_near * smoothstep(0.0, 0.06 * s, z), 0.0)
    above = np.where(lower_copy, 0.0, smoothstep(mouth_y - 0.001 * s, mouth_y + 0.004 * s, y))

    def jaw(angle_deg: float) -> F64:
        ang = angle_deg * DEG * jaw_w  # opening tips the chin down and back
        c, sn = np.cos(ang), np.sin(ang)
        ry = y - pivot[1]
        rz = z - pivot[2]
        out = np.zeros_like(p)
        out[:, 1] = pivot[1] + c * ry - sn * rz - y
        out[:, 2] = pivot[2] + sn * ry + c * rz - z
        return out

    def lips(widen: float, forward: float, raise_upper: float) -> F64:
        out = np.zeros_like(p)
        out[:, 0] = x * widen * lips_near
        out[:, 2] = forward * s * lips_near
        out[:, 1] = raise_upper * s * lips_near * above
        return out

    m: dict[str, F64] = {
        "aa": jaw(10.0) + lips(0.03, 0.0, 0.0018),
        "ih": jaw(3.5) + lips(0.08, 0.0, 0.0012),
        "ou": jaw(4.0) + lips(-0.3, 0.006, 0.0),
        "ee": jaw(4.5) + lips(0.15, -0.001, 0.0015),
        "oh": jaw(7.5) + lips(-0.17, 0.003, 0.0008),
    }
    # Lids: the lid vertices (kinds 1 and 2) move to closed, squinted or wide edges.
    lid_start = {1: int(np.argmax(kinds == 1)), 2: int(np.argmax(kinds == 2))}

    def lid_delta(which: tuple[int, ...], up_edge: float, low_edge: float) -> F64:
        out = np.zeros_like(p)
        for k in which:
            start = lid_start[k]
            n = int(np.sum(kinds == k))
            target = _lid_targets(eyes[k - 1], r_eye, up_edge, low_edge)
            out[start : start + n] = target - p[start : start + n]
        return out

    m["blink"] = lid_delta((1, 2), LID_CLOSED, LID_CLOSED - 2)
    m["blinkLeft"] = lid_delta((1,), LID_CLOSED, LID_CLOSED - 2)
    m["blinkRight"] = lid_delta((2,), LID_CLOSED, LID_CLOSED - 2)

    def region(cx: float, cy: float, sx: float, sy: float) -> F64:
        out: F64 = np.where(skin, np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2), 0.0)
        return out * smoothstep(0.0, 0.05 * s, z)

    def move(w: F64, dx: float, dy: float, dz: float) -> F64:
        return np.stack([w * dx * s, w * dy * s, w * dz * s], -1)

    corners = [region(side * mw, mouth_y, 0.012 * s, 0.01 * s) for side in (1, -1)]
    cheeks = [
        region(side * 0.04 * s, mouth_y + 0.025 * s, 0.018 * s, 0.016 * s) for side in (1, -1)
    ]
    brows_all = region(0, brow_y, 0.06 * s, 0.008 * s)
    brows_inner = [region(side * 0.014 * s, brow_y, 0.011 * s, 0.008 * s) for side in (1, -1)]
    m["happy"] = (
        move(corners[0], 0.0025, 0.0045, 0.0005)
        + move(corners[1], -0.0025, 0.0045, 0.0005)
        + move(cheeks[0] + cheeks[1], 0, 0.0022, 0.0015)
        + lid_delta((1, 2), 13.0, -12.0)
        + jaw(1.5)
    )
    m["sad"] = (
        move(corners[0] + corners[1], 0, -0.003, 0)
        + move(brows_inner[0] + brows_inner[1], 0, 0.004, 0)
        + lid_delta((1, 2), 17.0, LID_OPEN_LOW)
    )
    m["angry"] = (
        move(brows_inner[0], -0.0015, -0.0035, 0.001)
        + move(brows_inner[1], 0.0015, -0.0035, 0.001)
        + move(corners[0] + corners[1], 0, -0.0015, 0)
        + lid_delta((1, 2), 15.0, -22.0)
    )
    m["relaxed"] = (
        move(corners[0], 0.001, 0.0018, 0)
        + move(corners[1], -0.001, 0.0018, 0)
        + lid_delta((1, 2), 9.0, -24.0)
    )
    m["surprised"] = (
        move(brows_all, 0, 0.0055, 0)
        + lid_delta((1, 2), 34.0, -31.0)
        + jaw(5.0)
        + lips(-0.06, 0.002, 0.0)
    )
    return m


def with_normals(part: Part) -> tuple[F64, dict[str, F64]]:
    """Rest normals and each morph's normal deltas."""
    rest = vertex_normals(part.positions, part.triangles)
    deltas = {}
    for name, d in part.morphs.items():
        deltas[name] = vertex_normals(part.positions + d, part.triangles) - rest
    return rest, deltas
