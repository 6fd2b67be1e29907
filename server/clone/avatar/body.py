"""The body below the head: torso, neck, arms, hands, legs and shoes, with clothes as
material regions and offsets (a blazer's V shows the blouse; sleeves end in shirt cuffs).

Each part is a smooth surface swept along its bones in the rest pose and skinned by
blending neighbouring bones over a few centimetres around each joint. Weights are built
as a dense (vertices x bones) matrix and reduced to glTF's four influences when written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from townhall.protocol.skeleton import SKELETON_BONES

from .appearance import Appearance
from .mesh import F64, I32, capped_tube, interp_profile, smoothstep, sweep
from .skeleton import Frame

BONE = {name: i for i, name in enumerate(SKELETON_BONES)}
NB = len(SKELETON_BONES)


class Dense:
    """A part under construction: points, triangles, materials, dense skin weights."""

    def __init__(self, name: str, pts: F64, tris: I32, mats: Sequence[str], w: F64) -> None:
        self.name, self.pts, self.tris, self.mats, self.w = name, pts, tris, list(mats), w

    def mirrored(self, name: str) -> Dense:
        """The other side: x negated, left and right bones swapped, winding flipped."""
        pts = self.pts * [-1, 1, 1]
        perm = list(range(NB))
        for bone, i in BONE.items():
            if bone.startswith("left"):
                perm[i], perm[BONE["right" + bone[4:]]] = BONE["right" + bone[4:]], i
        return Dense(name, pts, self.tris[:, ::-1].copy(), self.mats, self.w[:, perm])


def chain_weights(v: F64, stops: Sequence[float], bones: Sequence[str], width: float) -> F64:
    """Weights along one axis: bone k owns [stops[k], stops[k+1]); around each inner stop
    the two bones blend over +-width. ``stops`` ascending, one per bone."""
    w = np.zeros((len(v), NB))
    idx = np.clip(np.searchsorted(stops, v, side="right") - 1, 0, len(bones) - 1)
    w[np.arange(len(v)), np.array([BONE[b] for b in bones])[idx]] = 1.0
    for k in range(1, len(bones)):
        d = v - stops[k]
        near = np.abs(d) < width
        if not np.any(near):
            continue
        s = smoothstep(-width, width, d[near])
        rows = np.nonzero(near)[0]
        w[rows] = 0.0
        w[rows, BONE[bones[k - 1]]] = 1 - s
        w[rows, BONE[bones[k]]] = s
    return w


def only(n: int, bone: str) -> F64:
    w = np.zeros((n, NB))
    w[:, BONE[bone]] = 1.0
    return w


# ---------------------------------------------------------------- torso


def torso(fr: Frame, ap: Appearance) -> Dense:
    h = fr.height
    fem = fr.feminine
    s = h / 1.70
    sh, ch, wa, hp = fr.shoulder_hw, fr.chest_hw, fr.waist_hw, fr.hip_hw
    nr = fr.neck_r
    d = s * (1.0 if fem else 1.08)
    # y/h, half-width, front depth, back depth
    keys = [
        (0.474, 0.03, 0.02 * d, 0.025 * d),
        (0.485, hp * 0.6, 0.05 * d, 0.065 * d),
        (0.50, hp, 0.083 * d, 0.1 * d),
        (0.545, hp * 0.94, 0.08 * d, 0.095 * d),
        (0.615, wa, 0.074 * d, 0.072 * d),
        (0.685, ch * 0.95, 0.08 * d, 0.08 * d),
        (0.72, ch, 0.086 * d, 0.085 * d),
        (0.76, ch * 1.04, 0.082 * d, 0.086 * d),
        (0.79, sh * 0.97, 0.072 * d, 0.078 * d),
        (0.806, sh, 0.06 * d, 0.064 * d),
        (0.819, sh * 0.84, 0.05 * d, 0.054 * d),
        (0.829, nr + 0.045 * s, 0.047 * d, 0.05 * d),
        (0.837, nr + 0.008, nr * 0.95, nr),
        (0.85, nr * 0.8, nr * 0.75, nr * 0.8),
    ]
    ty = np.concatenate(
        [
            np.linspace(0.474, 0.5, 8),
            np.linspace(0.5, 0.79, 38)[1:],
            np.linspace(0.79, 0.85, 26)[1:],
        ]
    )
    prof = interp_profile([(k[0], k[1], k[2], k[3]) for k in keys], ty)
    n = len(ty)
    centers = np.stack([np.zeros(n), ty * h, np.full(n, -0.01 * s)], -1)
    side = np.tile([1.0, 0, 0], (n, 1))
    front = np.tile([0, 0, 1.0], (n, 1))
    radii = np.stack([prof[:, 0], prof[:, 1], prof[:, 0], prof[:, 2]], -1)
    seg, expo = 72, 2.35
    jacket = ap.clothing in ("blazer", "suit")
    yv = ty * h
    v_half = 0.075 * s * smoothstep(0.655 * h, 0.836 * h, yv) ** 0.8 if jacket else 0 * yv
    # Column angles per ring: columns 14..22 span the V exactly, so its edges run along
    # columns (clean lapels instead of a stair of triangles). Angle pi/2 is the front.
    cl, cm, cr = 14, 18, 22
    edge = np.arccos(np.clip((np.maximum(v_half, 0.003 * s) / prof[:, 0]) ** (expo / 2), 0, 1))
    ang = np.zeros((n, seg))
    for i in range(n):
        a_l = edge[i]
        ang[i, : cl + 1] = np.linspace(0, a_l, cl + 1)
        ang[i, cl : cm + 1] = np.linspace(a_l, np.pi / 2, cm - cl + 1)
        ang[i, cm : cr + 1] = np.linspace(np.pi / 2, np.pi - a_l, cr - cm + 1)
        ang[i, cr : seg // 2 + 1] = np.linspace(np.pi - a_l, np.pi, seg // 2 - cr + 1)
        ang[i, seg // 2 :] = np.linspace(np.pi, 2 * np.pi, seg - seg // 2, endpoint=False)
    grid = sweep(centers, side, front, radii, seg, exponent=expo, angles=ang)
    x, y, z = grid[..., 0], grid[..., 1], grid[..., 2]
    # The bust, softened under a jacket.
    if fr.bust > 0:
        for sx in (-1, 1):
            g = np.exp(
                -(((x - sx * 0.052 * s) / (0.05 * s)) ** 2) - ((y - 0.718 * h) / (0.05 * s)) ** 2
            )
            z += fr.bust * g * (z > 0) * (0.8 if jacket else 1.0)
    col = np.arange(seg)[None, :]
    in_v_rows = (yv > 0.657 * h)[:, None]
    in_v = in_v_rows & (col > cl) & (col < cr)
    lapel = in_v_rows & (((col >= cl - 3) & (col <= cl)) | ((col >= cr) & (col <= cr + 3)))
    jacket_zone = y > (0.5 * h if jacket else 0.53 * h)
    r = np.sqrt(x * x + (z + 0.01 * s) ** 2) + 1e-9
    push = np.where(jacket_zone & ~in_v, 0.006 * s if jacket else 0.0, 0.0)
    if jacket:
        push = push + np.where(lapel, 0.004 * s * smoothstep(0.66 * h, 0.7 * h, y), 0.0)
    x = x + push * x / r
    z = z + push * (z + 0.01 * s) / r
    grid = np.stack([x, y, z], -1)
    pts, tris = capped_tube(grid)
    ring_of = tris // seg
    col_of = tris % seg
    tri_y = pts[tris].mean(axis=1)[:, 1]
    on_grid = (tris < n * seg).all(axis=1)
    tri_v = (
        on_grid
        & (col_of.min(axis=1) >= cl)
        & (col_of.max(axis=1) <= cr)
        & (np.take(yv, np.clip(ring_of.min(axis=1), 0, n - 1)) > 0.655 * h)
    )
    if not jacket:
        tri_v[:] = False
    top_wear = "jacket" if jacket else ("sweater" if ap.clothing == "sweater" else "shirt")
    lower_y = 0.5 * h if jacket else 0.545 * h
    mats = np.where(tri_y < lower_y, "lower", np.where(tri_v, "shirt", top_wear))
    # Skin: hips, spine, chest, upperChest by height; legs below the hip; shoulders out wide.
    b = fr.bones
    w = chain_weights(
        pts[:, 1],
        [
            -1.0,
            float(b["spine"][1]),
            float(b["chest"][1]),
            float(b["upperChest"][1]),
            float(b["neck"][1]),
        ],
        ["hips", "spine", "chest", "upperChest", "neck"],
        0.05 * s,
    )
    for sx, leg, shoulder in (
        (1, "leftUpperLeg", "leftShoulder"),
        (-1, "rightUpperLeg", "rightShoulder"),
    ):
        on = pts[:, 0] * sx > 0.02 * s
        k = (
            smoothstep(b["hips"][1] - 0.02 * s, b[leg][1] - 0.05 * s, pts[:, 1])
            * smoothstep(0.02 * s, 0.08 * s, pts[:, 0] * sx)
            * on
        )
        w = w * (1 - 0.7 * k[:, None])
        w[:, BONE[leg]] += 0.7 * k
        ks = (
            smoothstep(0.09 * s, sh, pts[:, 0] * sx) * smoothstep(0.74 * h, 0.8 * h, pts[:, 1]) * on
        )
        w = w * (1 - 0.8 * ks[:, None])
        w[:, BONE[shoulder]] += 0.8 * ks
    return Dense("torso", pts, tris, list(mats), w)


def neck(fr: Frame, ap: Appearance) -> list[Dense]:
    h, s, b = fr.height, fr.height / 1.70, fr.bones
    y0, y1 = 0.826 * h, float(fr.head_center[1]) - 0.035 * s
    ty = np.linspace(y0, y1, 16)
    n = len(ty)
    lean = (ty - y0) / (y1 - y0)
    centers = np.stack([np.zeros(n), ty, -0.02 * s + 0.018 * s * lean], -1)
    r = fr.neck_r * (1.05 - 0.08 * lean)
    radii = np.stack([r, r * 0.95, r, r * 0.98], -1)
    grid = sweep(centers, np.tile([1.0, 0, 0], (n, 1)), np.tile([0, 0, 1.0], (n, 1)), radii, 32)
    pts, tris = capped_tube(grid)
    w = chain_weights(
        pts[:, 1],
        [-1.0, float(b["neck"][1]), float(b["head"][1])],
        ["upperChest", "neck", "head"],
        0.03 * s,
    )
    parts = [Dense("neck", pts, tris, ["skin"] * len(tris), w)]
    ring_y = np.linspace(0.824 * h, 0.842 * h, 4)
    centers = np.stack([np.zeros(4), ring_y, np.full(4, -0.016 * s)], -1)
    rc = fr.neck_r * np.array([1.3, 1.2, 1.1, 1.0])  # sloping in to meet the neck
    radii = np.stack([rc, rc * 0.97, rc, rc], -1)
    grid = sweep(centers, np.tile([1.0, 0, 0], (4, 1)), np.tile([0, 0, 1.0], (4, 1)), radii, 36)
    pts, tris = capped_tube(grid)
    from .mesh import orient_outward

    tris = orient_outward(pts, tris, pts.mean(axis=0))
    collar = "sweater" if ap.clothing == "sweater" else "shirt"
    parts.append(Dense("neckline", pts, tris, [collar] * len(tris), only(len(pts), "upperChest")))
    if ap.clothing == "shirt":
        # A shirt collar standing round the base of the neck, open at the front.
        ty = np.linspace(0.826 * h, 0.85 * h, 4)
        n = len(ty)
        centers = np.stack([np.zeros(n), ty, np.full(n, -0.016 * s)], -1)
        rc = fr.neck_r + np.linspace(0.012, 0.006, n) * s
        radii = np.stack([rc, rc * 0.98, rc, rc], -1)
        grid = sweep(centers, np.tile([1.0, 0, 0], (n, 1)), np.tile([0, 0, 1.0], (n, 1)), radii, 32)
        cols = np.arange(32)
        keep = ~((cols > 5) & (cols < 11))  # an opening toward the front
        grid = grid[:, keep]
        from .mesh import grid_triangles

        rows, cc = grid.shape[:2]
        tris = grid_triangles(rows, cc, wrap=False)
        pts = grid.reshape(-1, 3)
        tris = _outward_from_axis(pts, tris)
        parts.append(
            Dense("collar", pts, tris, ["shirt"] * len(tris), only(len(pts), "upperChest"))
        )
    return parts


def _outward_from_axis(p: F64, t: I32) -> I32:
    fn = np.cross(p[t[:, 1]] - p[t[:, 0]], p[t[:, 2]] - p[t[:, 0]])
    c = p[t].mean(axis=1)
    radial = c * [1, 0, 1]
    return t if float(np.sum(np.einsum("ij,ij->i", fn, radial))) > 0 else t[:, ::-1].copy()


# ---------------------------------------------------------------- arms and hands


def arm(fr: Frame, ap: Appearance) -> list[Dense]:
    """The left arm's sleeve and hand (T-pose, along +X); mirrored for the right."""
    s, b = fr.height / 1.70, fr.bones
    x_sh = float(b["leftUpperArm"][0])
    x_el = float(b["leftLowerArm"][0])
    x_wr = float(b["leftHand"][0])
    y0, z0 = float(b["leftUpperArm"][1]), float(b["leftUpperArm"][2])
    ar = fr.arm_r
    sleeve = ap.clothing in ("blazer", "suit", "sweater")
    loose = 0.005 * s if sleeve else 0.002 * s
    keys = [
        (x_sh - 0.05 * s, ar * 0.8, ar * 0.9),
        (x_sh - 0.01 * s, ar * 1.02, ar * 1.08),
        (x_sh + 0.07 * s, ar * 0.95, ar * 1.0),
        (x_el - 0.03 * s, ar * 0.8, ar * 0.82),
        (x_el, ar * 0.76, ar * 0.8),
        (x_el + 0.07 * s, ar * 0.8, ar * 0.78),
        (x_wr - 0.045 * s, ar * 0.66, ar * 0.62),
        (x_wr - 0.012 * s, ar * 0.66, ar * 0.6),
    ]
    tx = np.linspace(keys[0][0], keys[-1][0], 34)
    prof = interp_profile(keys, tx) + loose
    n = len(tx)
    centers = np.stack([tx, np.full(n, y0), np.full(n, z0)], -1)
    # Cross-section plane: +Y (up) and +Z (front); columns go round from up toward front.
    radii = np.stack([prof[:, 0], prof[:, 1], prof[:, 0], prof[:, 1]], -1)
    grid = sweep(centers, np.tile([0, 1.0, 0], (n, 1)), np.tile([0, 0, 1.0], (n, 1)), radii, 22)
    pts, tris = capped_tube(grid)
    from .mesh import orient_outward

    tris = orient_outward(pts, tris, pts.mean(axis=0))
    top = "jacket" if ap.clothing in ("blazer", "suit") else ("sweater" if sleeve else "shirt")
    cx = pts[tris].mean(axis=1)[:, 0]
    cuff = x_wr - 0.024 * s
    mats = (
        np.where(cx > cuff, "shirt", top)
        if ap.clothing in ("blazer", "suit")
        else np.full(len(tris), top)
    )
    bones = ["leftShoulder", "leftUpperArm", "leftLowerArm", "leftHand"]
    w = chain_weights(pts[:, 0], [-1.0, x_sh - 0.02 * s, x_el, x_wr], bones, 0.035 * s)
    parts = [Dense("leftSleeve", pts, tris, list(mats), w)]
    parts.append(hand(fr, x_wr, y0, z0))
    return parts


def _tube_along(path: F64, radii: F64, seg: int, up: F64) -> tuple[F64, I32]:
    """A capped tube along a polyline, cross-sections perpendicular to it."""
    n = len(path)
    tang = np.gradient(path, axis=0)
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    side = np.cross(tang, up)
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    front = np.cross(side, tang)
    grid = sweep(path, side, front, radii, seg, exponent=2.2)
    from .mesh import orient_outward

    pts, tris = capped_tube(grid)
    del n
    return pts, orient_outward(pts, tris, pts.mean(axis=0))


def hand(fr: Frame, x_wr: float, y0: float, z0: float) -> Dense:
    s = fr.height / 1.70 * (0.95 if fr.feminine else 1.0)
    parts_p, parts_t = [], []
    # Wrist and palm: flat, wider than thick, palm facing down in the T-pose.
    keys = [
        (x_wr - 0.05 * s, 0.02 * s, 0.023 * s),
        (x_wr - 0.01 * s, 0.017 * s, 0.024 * s),
        (x_wr + 0.03 * s, 0.016 * s, 0.035 * s),
        (x_wr + 0.085 * s, 0.014 * s, 0.038 * s),
        (x_wr + 0.1 * s, 0.01 * s, 0.034 * s),
    ]
    tx = np.linspace(keys[0][0], keys[-1][0], 18)
    prof = interp_profile(keys, tx)
    n = len(tx)
    centers = np.stack([tx, np.full(n, y0 - 0.004 * s), np.full(n, z0)], -1)
    radii = np.stack([prof[:, 0], prof[:, 1], prof[:, 0], prof[:, 1]], -1)
    grid = sweep(
        centers, np.tile([0, 1.0, 0], (n, 1)), np.tile([0, 0, 1.0], (n, 1)), radii, 20, 2.6
    )
    p, t = capped_tube(grid)
    from .mesh import orient_outward

    parts_p.append(p)
    parts_t.append(orient_outward(p, t, p.mean(axis=0)))
    # Four fingers, a little curled, and the thumb forward (+Z) and down.
    for dz, length in ((0.026, 0.074), (0.009, 0.082), (-0.009, 0.078), (-0.025, 0.062)):
        k = np.linspace(0, 1, 10)
        curl = 0.5 * k**1.5
        px = (
            x_wr
            + 0.085 * s
            + np.cumsum(np.concatenate([[0], np.diff(k) * length * s * np.cos(curl[1:])]))
        )
        py = (
            y0
            - 0.004 * s
            - np.cumsum(np.concatenate([[0], np.diff(k) * length * s * np.sin(curl[1:])]))
        )
        pz = np.full_like(k, z0 + dz * s * (1 + 0.15 * k))
        path = np.stack([px, py, pz], -1)
        r = (0.0085 - 0.0022 * k) * s
        r[-1] *= 0.6
        radii = np.stack([r, r * 0.9, r, r * 0.9], -1)
        p, t = _tube_along(path, radii, 7, np.array([0, 0, 1.0]))
        parts_p.append(p)
        parts_t.append(t)
    k = np.linspace(0, 1, 9)
    start = np.array([x_wr + 0.018 * s, y0 - 0.01 * s, z0 + 0.024 * s])
    direction = np.array([0.55, -0.35, 0.76])
    direction /= np.linalg.norm(direction)
    path = start + (k * 0.062 * s)[:, None] * direction
    r = (0.0115 - 0.0035 * k) * s
    r[-1] *= 0.6
    p, t = _tube_along(path, np.stack([r, r, r, r], -1), 10, np.array([0, 1.0, 0]))
    parts_p.append(p)
    parts_t.append(t)
    pts = np.concatenate(parts_p)
    offs = np.cumsum([0] + [len(q) for q in parts_p[:-1]])
    tris = np.concatenate([tt + o for tt, o in zip(parts_t, offs, strict=True)]).astype(np.int32)
    w = chain_weights(pts[:, 0], [-1.0, x_wr - 0.015], ["leftLowerArm", "leftHand"], 0.02)
    return Dense("leftHand", pts, tris, ["skin"] * len(tris), w)


# ---------------------------------------------------------------- legs and shoes


def leg(fr: Frame, ap: Appearance) -> list[Dense]:
    s, b = fr.height / 1.70, fr.bones
    hx = float(b["leftUpperLeg"][0])
    y_hip = float(b["leftUpperLeg"][1])
    y_knee = float(b["leftLowerLeg"][1])
    y_ank = float(b["leftFoot"][1])
    kx = float(b["leftLowerLeg"][0])
    fx = float(b["leftFoot"][0])
    tr = fr.thigh_r
    trousers = ap.lower == "trousers"
    keys = [
        (y_ank + 0.012 * s, 0.034 * s, 0.036 * s),
        (y_ank + 0.06 * s, 0.038 * s, 0.04 * s),
        (y_knee - 0.13 * s, 0.05 * s, 0.056 * s),
        (y_knee - 0.02 * s, 0.046 * s, 0.05 * s),
        (y_knee + 0.08 * s, tr * 0.72, tr * 0.74),
        (y_hip - 0.08 * s, tr * 0.96, tr),
        (y_hip + 0.05 * s, tr * 0.9, tr * 0.95),
    ]
    if trousers:  # a straight trouser leg over it
        keys = [
            (k[0], max(k[1] + 0.008 * s, 0.05 * s), max(k[2] + 0.008 * s, 0.052 * s)) for k in keys
        ]
        keys[0] = (y_ank + 0.025 * s, 0.052 * s, 0.055 * s)
    ty = np.linspace(keys[0][0], keys[-1][0], 30)
    prof = interp_profile(keys, ty)
    n = len(ty)
    xs = np.interp(ty, [y_ank, y_knee, y_hip], [fx, kx, hx])
    centers = np.stack([xs, ty, np.full(n, 0.0)], -1)
    radii = np.stack([prof[:, 0], prof[:, 1], prof[:, 0], prof[:, 1]], -1)
    grid = sweep(centers, np.tile([1.0, 0, 0], (n, 1)), np.tile([0, 0, 1.0], (n, 1)), radii, 20)
    pts, tris = capped_tube(grid)
    from .mesh import orient_outward

    tris = orient_outward(pts, tris, pts.mean(axis=0))
    mat = "lower" if trousers else "legs"
    w = chain_weights(
        pts[:, 1], [-1.0, y_knee, y_hip], ["leftLowerLeg", "leftUpperLeg", "hips"], 0.04 * s
    )
    # Above the hip joint the hips take over a little.
    parts = [Dense("leftLeg", pts, tris, [mat] * len(tris), w), shoe(fr, fx, y_ank)]
    return parts


def shoe(fr: Frame, fx: float, y_ank: float) -> Dense:
    s = fr.height / 1.70 * (0.93 if fr.feminine else 1.0)
    keys = [
        (-0.055 * s, 0.03 * s, 0.028 * s, 0.02 * s),
        (-0.045 * s, 0.034 * s, 0.034 * s, 0.034 * s),
        (0.0, 0.036 * s, 0.05 * s, 0.04 * s),
        (0.06 * s, 0.042 * s, 0.034 * s, 0.03 * s),
        (0.14 * s, 0.04 * s, 0.02 * s, 0.018 * s),
        (0.185 * s, 0.024 * s, 0.012 * s, 0.012 * s),
        (0.2 * s, 0.008 * s, 0.006 * s, 0.006 * s),
    ]
    tz = np.linspace(keys[0][0], keys[-1][0], 24)
    prof = interp_profile(keys, tz)
    n = len(tz)
    # centre height: the sole rests on y=0, each section's lower half reaches the floor
    cy = prof[:, 2]
    centers = np.stack([np.full(n, fx), cy + 0.004 * s, tz - 0.01], -1)
    radii = np.stack([prof[:, 0], prof[:, 1], prof[:, 0], prof[:, 2]], -1)
    grid = sweep(
        centers, np.tile([1.0, 0, 0], (n, 1)), np.tile([0, 1.0, 0], (n, 1)), radii, 24, 3.0
    )
    pts, tris = capped_tube(grid)
    from .mesh import orient_outward

    tris = orient_outward(pts, tris, pts.mean(axis=0))
    del y_ank
    return Dense("leftShoe", pts, tris, ["shoes"] * len(tris), only(len(pts), "leftFoot"))


def skirt(fr: Frame, ap: Appearance) -> Dense:
    h, s = fr.height, fr.height / 1.70
    keys = [
        (0.3 * h, fr.hip_hw * 1.0, 0.1 * s, 0.11 * s),
        (0.42 * h, fr.hip_hw * 1.04, 0.1 * s, 0.115 * s),
        (0.5 * h, fr.hip_hw * 1.05, 0.095 * s, 0.112 * s),
        (0.56 * h, fr.hip_hw * 0.98, 0.088 * s, 0.1 * s),
    ]
    ty = np.linspace(keys[0][0], keys[-1][0], 24)
    prof = interp_profile(keys, ty)
    n = len(ty)
    centers = np.stack([np.zeros(n), ty, np.full(n, -0.01 * s)], -1)
    radii = np.stack([prof[:, 0], prof[:, 1], prof[:, 0], prof[:, 2]], -1)
    grid = sweep(
        centers, np.tile([1.0, 0, 0], (n, 1)), np.tile([0, 0, 1.0], (n, 1)), radii, 64, 2.2
    )
    pts, tris = capped_tube(grid)
    from .mesh import orient_outward

    tris = orient_outward(pts, tris, pts.mean(axis=0))
    b = fr.bones
    w = only(len(pts), "hips")
    k = smoothstep(b["hips"][1], 0.3 * h, pts[:, 1]) * 0.8
    for sx, bone in ((1, "leftUpperLeg"), (-1, "rightUpperLeg")):
        on = (pts[:, 0] * sx > 0).astype(float)
        amt = k * on * smoothstep(0.0, 0.06 * s, pts[:, 0] * sx)
        w[:, BONE["hips"]] -= amt
        w[:, BONE[bone]] += amt
    return Dense("skirt", pts, tris, ["lower"] * len(tris), w)


def details(fr: Frame, ap: Appearance) -> list[Dense]:
    """A jacket button; a tie with a suit."""
    from .mesh import ellipsoid

    h, s = fr.height, fr.height / 1.70
    out = []
    if ap.clothing in ("blazer", "suit"):
        # The button: on the jacket's front at the bottom of the V.
        z_front = 0.074 * s * (1.0 if fr.feminine else 1.08) + 0.006 * s - 0.01 * s + 0.002 * s
        p, t = ellipsoid(
            np.array([0.0, 0.652 * h, z_front]), np.array([0.009, 0.009, 0.004]) * s, 8, 12
        )
        out.append(Dense("button", p, t, ["buttons"] * len(t), only(len(p), "chest")))
    if ap.clothing == "suit":
        k = np.linspace(0, 1, 14)
        y = 0.835 * h - k * (0.835 - 0.63) * h
        zf = 0.045 * s + 0.035 * s * smoothstep(0.0, 0.5, k)
        path = np.stack([np.zeros_like(k), y, zf + 0.004 * s], -1)
        wd = (0.012 + 0.022 * k**0.7) * s
        wd[-1] *= 0.4
        radii = np.stack([wd, np.full_like(k, 0.003 * s), wd, np.full_like(k, 0.003 * s)], -1)
        p, t = _tube_along(path, radii, 8, np.array([0, 0, 1.0]))
        w = chain_weights(
            p[:, 1], [-1.0, float(fr.bones["upperChest"][1])], ["chest", "upperChest"], 0.04
        )
        out.append(Dense("tie", p, t, ["tie"] * len(t), w))
    return out
