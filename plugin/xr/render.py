"""OpenGL 3.3 drawing of the hall, the crowd, the clone and the panels: one renderer for the
headset's eyes and the desktop mirror.

- The clone is the stage's VRM model (the same file /watch shows), skinned on the GPU with
  its morph targets (model.py, avatar_gl.py), posed by the frame, at rest in the idle pose
  (plugin/idle.py) when no frames play: never a T-pose.
- The hall: floor, stage deck, a lit backdrop, the proscenium, the seats (one instanced
  draw), and two screens beside the stage showing the clone's close-up, drawn once per
  frame into a texture (image magnification, as at real town halls).
- The crowd: seated people drawn instanced (body, head, hair, a raised arm), placed from
  their crowd records: near attendees by their head pose, far ones by yaw and pitch.
- The stage panel under the clone (disclosure, label, captions) and the question board on
  the left controller with the right controller's pointer (panels.py).

The caller sets the viewport and passes a view and projection matrix (column vectors,
row-major numpy arrays); ``prepare()`` does the once-per-frame work shared by both eyes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from OpenGL import GL

from townhall.scenes.model import Scene

from ..playback import StageFrame
from . import panels, shaders, shapes
from .avatar_gl import AvatarGL
from .gl import Program, RenderTarget, Texture2D, VertexArray, program
from .model import VrmModel

F32 = npt.NDArray[np.float32]

# The clear colour (the dark of the hall beyond the lights).
SKY = (0.035, 0.04, 0.055)
FLOOR = (0.09, 0.095, 0.11)
STAGE = (0.28, 0.17, 0.10)
SEAT = (0.38, 0.06, 0.08)
CLOTHES = (
    np.array(
        [
            [0x2B, 0x3A, 0x55],
            [0x3B, 0x3F, 0x46],
            [0x1D, 0x1F, 0x24],
            [0xD9, 0xD6, 0xCF],
            [0x5B, 0x6F, 0x8A],
            [0x6B, 0x2F, 0x36],
            [0x3E, 0x5A, 0x48],
            [0x7A, 0x6A, 0x58],
            [0x8D, 0x9B, 0xB0],
            [0x4A, 0x3B, 0x5C],
            [0xB9, 0xA3, 0x8A],
            [0x2F, 0x4F, 0x6F],
        ]
    )
    / 255
)
SKINS = (
    np.array(
        [
            [0xF1, 0xC9, 0xAD],
            [0xE0, 0xAC, 0x8A],
            [0xC9, 0x8F, 0x6B],
            [0xA8, 0x71, 0x4E],
            [0x8A, 0x56, 0x36],
            [0x5E, 0x3A, 0x24],
            [0xD8, 0xA7, 0x86],
            [0xB5, 0x7F, 0x5A],
        ]
    )
    / 255
)
HAIRS = (
    np.array(
        [
            [0x16, 0x11, 0x0E],
            [0x2E, 0x1D, 0x14],
            [0x4A, 0x2F, 0x1E],
            [0x6E, 0x4A, 0x2C],
            [0xB8, 0x98, 0x68],
            [0x8D, 0x8A, 0x86],
            [0x2A, 0x24, 0x20],
            [0xCF, 0xC9, 0xC0],
        ]
    )
    / 255
)
RAISED = (1.0, 0.78, 0.24)
DEFAULT_DISCLOSURE = "You are watching an AI clone of the leader, not the leader in person."
LOD_M = 11.0  # people and seats further than this from the eye are drawn simpler


_NO_POS = np.zeros((3, 3), np.float32)
_NO_ROT = np.tile(np.array([0, 0, 0, 1], np.float32), (3, 1))


def _quat_matrices(q: F32) -> F32:
    """Rotation matrices of (n, 4) quaternions (x, y, z, w)."""
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    m = np.empty((len(q), 3, 3), np.float32)
    m[:, 0, 0] = 1 - 2 * (y * y + z * z)
    m[:, 0, 1] = 2 * (x * y - z * w)
    m[:, 0, 2] = 2 * (x * z + y * w)
    m[:, 1, 0] = 2 * (x * y + z * w)
    m[:, 1, 1] = 1 - 2 * (x * x + z * z)
    m[:, 1, 2] = 2 * (y * z - x * w)
    m[:, 2, 0] = 2 * (x * z - y * w)
    m[:, 2, 1] = 2 * (y * z + x * w)
    m[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return m


def _lin(c: npt.ArrayLike) -> F32:
    a = np.asarray(c, np.float64)
    out: F32 = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4).astype(np.float32)
    return out


# ---------------------------------------------------------------- camera maths


def quat_matrix(q: Sequence[float] | F32) -> F32:
    x, y, z, w = (float(v) for v in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ],
        np.float32,
    )


def yaw_matrix(deg: float) -> F32:
    c, s = math.cos(math.radians(deg)), math.sin(math.radians(deg))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)


def perspective(fov_y_deg: float, aspect: float, near: float = 0.05, far: float = 200.0) -> F32:
    f = 1 / math.tan(math.radians(fov_y_deg) / 2)
    return np.array(
        [
            [f / aspect, 0, 0, 0],
            [0, f, 0, 0],
            [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
            [0, 0, -1, 0],
        ],
        np.float32,
    )


def frustum(fov: object, near: float = 0.05, far: float = 200.0) -> F32:
    """Projection from an OpenXR XrFovf (angle_left/right/up/down, radians)."""
    left, right = math.tan(fov.angle_left), math.tan(fov.angle_right)  # type: ignore[attr-defined]
    up, down = math.tan(fov.angle_up), math.tan(fov.angle_down)  # type: ignore[attr-defined]
    w, h = right - left, up - down
    return np.array(
        [
            [2 / w, 0, (right + left) / w, 0],
            [0, 2 / h, (up + down) / h, 0],
            [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)],
            [0, 0, -1, 0],
        ],
        np.float32,
    )


def front_row_camera(scene: Scene) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Eye and target for the mirror: a seat in front of the stage, looking at the clone."""
    mark = scene.stage.clone_mark
    yaw = math.radians(mark.yaw_deg)
    facing = (-math.sin(yaw), 0.0, -math.cos(yaw))
    p = mark.position
    eye = (p[0] + facing[0] * 8.0, p[1] + 1.0, p[2] + facing[2] * 8.0)
    return eye, (p[0], p[1] + 1.3, p[2])


def look_at(eye: Sequence[float] | F32, target: Sequence[float] | F32) -> F32:
    e, t = np.array(eye, np.float32), np.array(target, np.float32)
    f = t - e
    f /= np.linalg.norm(f)
    s = np.cross(f, [0, 1, 0])
    s /= np.linalg.norm(s)
    u = np.cross(s, f)
    m = np.eye(4, dtype=np.float32)
    m[0, :3], m[1, :3], m[2, :3] = s, u, -f
    m[:3, 3] = -m[:3, :3] @ e
    return m


def seat_place(scene: Scene, seat: int) -> tuple[F32, float]:
    """Where a wearer sits: the seat's floor point and yaw, or without a seat (a spectator,
    a full hall) a spot on the floor 6 m in front of the clone, facing it."""
    if 0 <= seat < len(scene.seats):
        s = scene.seats[seat]
        return np.array(s.position, np.float32), float(s.yaw_deg)
    mark = scene.stage.clone_mark
    yaw = math.radians(mark.yaw_deg)
    p = mark.position
    spot = (p[0] - 6.0 * math.sin(yaw), 0.0, p[2] - 6.0 * math.cos(yaw))
    return np.array(spot, np.float32), mark.yaw_deg + 180.0


def seat_matrix(scene: Scene, seat: int) -> F32:
    """Seat frame -> world (SPEC §5: world = seat position + the seat's yaw applied)."""
    origin, yaw = seat_place(scene, seat)
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = yaw_matrix(yaw)
    m[:3, 3] = origin
    return m


def seat_view(scene: Scene, seat: int, pose: Sequence[float]) -> F32:
    """View matrix of an eye (or head) at ``pose`` in the seat frame of ``seat``."""
    origin, yaw = seat_place(scene, seat)
    r = yaw_matrix(yaw)
    pos = origin + r @ np.array(pose[:3], np.float32)
    m = r @ quat_matrix(pose[3:])
    view = np.eye(4, dtype=np.float32)
    view[:3, :3] = m.T
    view[:3, 3] = -m.T @ pos
    return view


def pose_view(pose: Sequence[float]) -> F32:
    """View matrix of an eye at pose (x, y, z, qx, qy, qz, qw)."""
    r = quat_matrix(pose[3:])
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = r.T
    m[:3, 3] = -r.T @ np.array(pose[:3], np.float32)
    return m


def pose_matrix(pose: Sequence[float]) -> F32:
    m = np.eye(4, dtype=np.float32)
    m[:3, :3] = quat_matrix(pose[3:])
    m[:3, 3] = pose[:3]
    return m


# ---------------------------------------------------------------- interaction state


@dataclass
class Pointer:
    """The right controller's ray and the board on the left controller (world space)."""

    board: panels.Board = field(default_factory=panels.Board)
    board_model: F32 | None = None  # None: the left controller is not tracked
    ray_origin: F32 | None = None
    ray_dir: F32 | None = None
    ray_length: float = 3.0


# ---------------------------------------------------------------- the renderer


def _instance_matrices(m: F32) -> F32:
    """(n, 4, 4) row-major -> (n, 16) column-major rows for the instanced attributes."""
    return np.ascontiguousarray(m.transpose(0, 2, 1).reshape(len(m), 16), np.float32)


class _InstancedMesh:
    def __init__(self, mesh: shapes.Mesh, capacity: int) -> None:
        p, n, c, i = mesh
        self.vao = VertexArray()
        self.vao.attribute(0, p)
        self.vao.attribute(1, n)
        self.vao.attribute(2, c)
        self.vao.attribute(3, np.zeros((len(p), 2), np.float32))
        self.mats = self.vao.attribute(6, np.zeros((max(1, capacity), 16), np.float32), divisor=1)
        self.cols = self.vao.attribute(10, np.ones((max(1, capacity), 3), np.float32), divisor=1)
        self.vao.indices(i)
        self.tris = len(i) // 3

    def set(self, matrices: F32, colours: F32) -> None:
        """The instances (all of them; each view draws those in its frustum)."""
        self.all_mats = (
            _instance_matrices(matrices) if len(matrices) else np.zeros((0, 16), np.float32)
        )
        self.all_cols = np.ascontiguousarray(colours, np.float32).reshape(-1, 3)
        self.centres = matrices[:, :3, 3] if len(matrices) else np.zeros((0, 3), np.float32)
        self._shown: np.ndarray | None = None

    def draw_visible(
        self,
        view_proj: F32,
        radius: float = 0.8,
        eye: F32 | None = None,
        near: float = 0.0,
        far: float = 1e9,
    ) -> int:
        """Draw the instances whose bounding sphere may be in view and whose distance from
        ``eye`` is in [near, far) (levels of detail); returns how many."""
        if not len(self.centres):
            return 0
        c = (
            np.concatenate([self.centres, np.ones((len(self.centres), 1), np.float32)], axis=1)
            @ view_proj.T
        )
        w = c[:, 3] + radius * 2.5
        keep = (c[:, 3] > -radius) & (np.abs(c[:, 0]) <= w) & (np.abs(c[:, 1]) <= w)
        if eye is not None:
            d = np.linalg.norm(self.centres - eye, axis=1)
            keep &= (d >= near) & (d < far)
        if (
            self._shown is None
            or len(self._shown) != len(keep)
            or not np.array_equal(self._shown, keep)
        ):
            self._shown = keep
            self.vao.update(
                self.mats, self.all_mats[keep] if keep.any() else np.zeros((1, 16), np.float32)
            )
            self.vao.update(
                self.cols, self.all_cols[keep] if keep.any() else np.ones((1, 3), np.float32)
            )
        self.vao.instances = int(keep.sum())
        if self.vao.instances:
            self.vao.draw()
        return self.vao.instances


def _mesh_vao(mesh: shapes.Mesh) -> VertexArray:
    p, n, c, i = mesh
    vao = VertexArray()
    vao.attribute(0, p)
    vao.attribute(1, n)
    vao.attribute(2, c)
    vao.attribute(3, np.zeros((len(p), 2), np.float32))
    vao.indices(i)
    return vao


def _quad_vao(width: float, height: float) -> VertexArray:
    p, uv, i = shapes.quad(width, height)
    vao = VertexArray()
    vao.attribute(0, p)
    vao.attribute(3, uv)
    vao.indices(i)
    return vao


def _person_meshes(far: bool = False) -> dict[str, shapes.Mesh]:
    """A seated person in the seat frame (facing -Z), in parts coloured per instance; ``far``
    is the distant level of detail (a tenth of the triangles)."""
    white = (1.0, 1.0, 1.0)
    if far:
        body = shapes.merge(
            [
                shapes.box((0.36, 0.5, 0.24), (0, 0.78, 0.05), white),
                shapes.box((0.44, 0.1, 0.2), (0, 1.0, 0.05), white),
                shapes.box((0.34, 0.14, 0.4), (0, 0.55, -0.12), white),
            ]
        )
        head = shapes.ellipsoid((0.082, 0.105, 0.095), (0, 0, 0), white, 5, 6)
        hair = shapes.ellipsoid((0.09, 0.113, 0.102), (0, 0.012, 0.012), white, 4, 6, cut=1.9)
        arm = shapes.box((0.08, 0.5, 0.08), (0, -0.25, 0), white)
        return {"body": body, "head": head, "hair": hair, "arm": arm}
    body = shapes.merge(
        [
            shapes.capsule(0.15, 0.26, (0, 0.7, 0.05), (0, 1, 0), white, 8, 3),
            shapes.capsule(0.06, 0.3, (-0.15, 1.02, 0.05), (1, 0, 0), white, 6, 2),
            shapes.capsule(0.045, 0.24, (-0.2, 0.98, 0.03), (0, -0.9, -0.25), white, 5, 1),
            shapes.capsule(0.045, 0.24, (0.2, 0.98, 0.03), (0, -0.9, -0.25), white, 5, 1),
            shapes.capsule(0.04, 0.2, (-0.18, 0.68, -0.05), (0.1, 0.0, -1), white, 5, 1),
            shapes.capsule(0.04, 0.2, (0.18, 0.68, -0.05), (-0.1, 0.0, -1), white, 5, 1),
            shapes.capsule(0.07, 0.32, (-0.1, 0.52, 0.02), (0, 0, -1), white, 6, 1),
            shapes.capsule(0.07, 0.32, (0.1, 0.52, 0.02), (0, 0, -1), white, 6, 1),
        ]
    )
    head = shapes.merge(
        [
            shapes.ellipsoid((0.082, 0.105, 0.095), (0, 0, 0), white, 8, 10),
            shapes.capsule(0.045, 0.08, (0, -0.18, 0.01), (0, 1, 0), white, 6, 1),
        ]
    )
    hair = shapes.ellipsoid((0.09, 0.113, 0.102), (0, 0.012, 0.012), white, 6, 10, cut=1.9)
    arm = shapes.merge(
        [
            shapes.capsule(0.04, 0.42, (0, -0.48, 0), (0, 1, 0), white, 6, 1),
            shapes.ellipsoid((0.05, 0.06, 0.03), (0, 0, 0), white, 4, 6),
        ]
    )
    return {"body": body, "head": head, "hair": hair, "arm": arm}


def _seat_mesh(far: bool = False) -> shapes.Mesh:
    red = tuple(_lin(SEAT))
    dark = tuple(_lin((0.08, 0.06, 0.06)))
    if far:
        return shapes.merge(
            [
                shapes.box((0.5, 0.55, 0.08), (0, 0.68, 0.22), red),
                shapes.box((0.48, 0.47, 0.44), (0, 0.235, -0.02), red),
            ]
        )
    return shapes.merge(
        [
            shapes.box((0.5, 0.55, 0.08), (0, 0.68, 0.22), red),
            shapes.box((0.48, 0.1, 0.44), (0, 0.42, -0.02), red),
            shapes.box((0.06, 0.25, 0.4), (-0.26, 0.55, 0.0), dark),
            shapes.box((0.06, 0.25, 0.4), (0.26, 0.55, 0.0), dark),
            shapes.box((0.5, 0.37, 0.3), (0, 0.18, 0.05), dark),
        ]
    )


class HallRenderer:
    """Draws a StageFrame; ``model`` is the clone's VRM (None until it has loaded)."""

    def __init__(self, scene: Scene, model: VrmModel | None = None, screens: bool = True) -> None:
        self.scene = scene
        self.seat_pos = np.array([s.position for s in scene.seats], np.float32).reshape(-1, 3)
        self.seat_yaw = np.array([s.yaw_deg for s in scene.seats], np.float32)
        self.seats_of: dict[int, int] = {}  # slot -> seat index (from the room's participants)
        self.hidden: set[int] = set()  # slots not drawn: the wearer, whose eyes are inside it
        self.pointer = Pointer()
        self.lit = Program(program(shaders.LIT_VS, shaders.LIT_FS))
        self.lit_inst = Program(program(shaders.LIT_VS, shaders.LIT_FS, ("INSTANCED",)))
        self.quad = Program(program(shaders.QUAD_VS, shaders.QUAD_FS))
        st = scene.stage
        mark = st.clone_mark
        self.mark = np.array(mark.position, np.float32)
        self.mark_yaw = float(mark.yaw_deg)
        yaw = math.radians(mark.yaw_deg)
        self.facing = np.array([-math.sin(yaw), 0.0, -math.cos(yaw)], np.float32)
        self._build_hall()
        n = max(1, len(scene.seats))
        self.seats = _InstancedMesh(_seat_mesh(), n)
        self.seats_far = _InstancedMesh(_seat_mesh(far=True), n)
        mats = np.tile(np.eye(4, dtype=np.float32), (len(scene.seats), 1, 1))
        for k in range(len(scene.seats)):
            mats[k, :3, :3] = yaw_matrix(float(self.seat_yaw[k]))
            mats[k, :3, 3] = self.seat_pos[k]
        for seats in (self.seats, self.seats_far):
            seats.set(mats, np.ones((len(mats), 3), np.float32))
        self.crowd = {k: _InstancedMesh(v, n) for k, v in _person_meshes().items()}
        self.crowd_far = {k: _InstancedMesh(v, n) for k, v in _person_meshes(far=True).items()}
        self.screens_on = screens
        self.screen_target = RenderTarget(640, 360) if screens else None
        self.stage_tex = Texture2D(*panels.STAGE_PX)
        self.board_tex = Texture2D(*panels.BOARD_PX)
        self._stage_text: panels.StageText | None = None
        self.notice: panels.StageText | None = None  # shown instead of the stage's (sign-in)
        self._disclosure = DEFAULT_DISCLOSURE
        self._board_key: object = None
        self.avatar: AvatarGL | None = None
        self.model: VrmModel | None = None
        if model is not None:
            self.set_model(model)
        self._prepared: StageFrame | None = None
        self.triangles = 0

    # ---------------------------------------------------------------- setup
    def set_model(self, model: VrmModel) -> None:
        self.model = model
        self.avatar = AvatarGL(model)

    def _build_hall(self) -> None:
        st = self.scene.stage
        sx, sy, sz = st.center
        sw, sh, sd = st.size
        deck_h = float(self.mark[1])
        front = sz + sd / 2
        back = sz - sd / 2
        floor_c = tuple(_lin(FLOOR))
        wood = tuple(_lin(STAGE))
        frame = tuple(_lin((0.06, 0.065, 0.08)))
        parts = [
            shapes.box((90, 0.1, 90), (0, -0.05, 8), floor_c),
            shapes.box((sw, deck_h, sd), (sx, deck_h / 2, sz), wood),
            shapes.box((sw, 0.05, 0.05), (sx, deck_h, front), tuple(_lin((0.85, 0.65, 0.35)))),
        ]
        pillar = 1.2
        for side in (-1, 1):
            parts.append(
                shapes.box(
                    (pillar, sh + 1.5, 1.0),
                    (sx + side * (sw / 2 + pillar / 2), (sh + 1.5) / 2, front - 0.5),
                    frame,
                )
            )
        parts.append(
            shapes.box((sw + 2 * pillar, 1.5, 1.0), (sx, sy + sh / 2 + 0.75, front - 0.5), frame)
        )
        # Risers under the raised seating (boxes, balconies) so seats do not float.
        for s in self.scene.seats:
            if s.position[1] > 1.0:
                pass
        self.hall_vao = _mesh_vao(shapes.merge(parts))
        # The backdrop: a grid coloured brighter behind the clone.
        nx, ny = 24, 12
        xs = np.linspace(sx - sw / 2, sx + sw / 2, nx)
        ys = np.linspace(deck_h, sy + sh / 2, ny)
        gx, gy = np.meshgrid(xs, ys)
        p = np.stack([gx, gy, np.full_like(gx, back + 0.02)], -1).reshape(-1, 3).astype(np.float32)
        r = np.hypot(
            (gx - self.mark[0]) / (sw * 0.35), (gy - (deck_h + 1.6)) / (sh * 0.45)
        ).reshape(-1)
        glow = np.clip(1 - r, 0, 1)[:, None] ** 1.5
        col = _lin((0.05, 0.09, 0.16)) * (1 - glow) + _lin((0.25, 0.36, 0.5)) * glow
        idx = []
        for j in range(ny - 1):
            for i in range(nx - 1):
                a = j * nx + i
                idx += [a, a + 1, a + nx, a + 1, a + nx + 1, a + nx]
        n = np.tile([0, 0, 1.0], (len(p), 1)).astype(np.float32)
        self.backdrop_vao = _mesh_vao((p, n, col.astype(np.float32), np.array(idx, np.uint32)))
        # Screens either side of the clone, angled to the audience; the stage panel on the
        # front of the deck, under the clone.
        self.screen_w = min(5.6, sw * 0.28)
        self.screen_h = self.screen_w * 9 / 16
        self.screen_models = []
        for side in (-1, 1):
            m = np.eye(4, dtype=np.float32)
            m[:3, :3] = yaw_matrix(-side * 14.0)
            m[:3, 3] = (
                sx + side * (sw / 2 - self.screen_w / 2 - 0.7),
                deck_h + 1.9 + self.screen_h / 2,
                max(back + 1.0, float(self.mark[2]) - 3.0),
            )
            self.screen_models.append(m)
        self.screen_vao = _quad_vao(self.screen_w, self.screen_h)
        self.bezel_vao = _mesh_vao(
            shapes.box(
                (self.screen_w + 0.25, self.screen_h + 0.25, 0.12),
                (0, 0, -0.07),
                (0.01, 0.01, 0.012),
            )
        )
        self.stage_panel_model = self.stage_panel_pose(self.scene)
        pw, ph = self.stage_panel_size(self.scene)
        self.stage_panel_vao = _quad_vao(pw, ph)
        self.board_vao = _quad_vao(*panels.BOARD_M)
        self.ray_vao = _mesh_vao(shapes.capsule(0.004, 1.0, (0, 0, 0), (0, 0, -1), (1, 1, 1), 6))
        self.dot_vao = _mesh_vao(
            shapes.ellipsoid((0.008, 0.008, 0.008), (0, 0, 0), (1, 1, 1), 6, 8)
        )

    @staticmethod
    def stage_panel_size(scene: Scene) -> tuple[float, float]:
        pw = min(6.0, scene.stage.size[0] * 0.5)
        return pw, pw * panels.STAGE_PX[1] / panels.STAGE_PX[0]

    @staticmethod
    def stage_panel_pose(scene: Scene) -> F32:
        """The stage panel's model matrix: on the front of the deck, under the clone."""
        st = scene.stage
        deck_h = float(st.clone_mark.position[1])
        _, ph = HallRenderer.stage_panel_size(scene)
        m = np.eye(4, dtype=np.float32)
        m[:3, 3] = (
            st.center[0],
            min(deck_h - ph / 2 - 0.06, deck_h * 0.55),
            st.center[2] + st.size[2] / 2 + 0.015,
        )
        return m

    # ---------------------------------------------------------------- per frame
    def clone_matrix(self) -> F32:
        m = np.eye(4, dtype=np.float32)
        extra = 180.0 if self.model is not None and self.model.vrm0 else 0.0
        m[:3, :3] = yaw_matrix(self.mark_yaw + 180.0 + extra)
        m[:3, 3] = self.mark
        return m

    def prepare(self, frame: StageFrame) -> None:
        """Once per frame, for both eyes: pose the clone, place the crowd, refresh the panel
        texts and draw the screens' close-up."""
        self._prepared = frame
        av = frame.avatar
        if self.avatar is not None and self.model is not None:
            root = self.clone_matrix()
            gaze = np.linalg.inv(root.astype(np.float64)) @ np.array([*av.gaze, 1.0])
            joints, weights = self.model.pose(
                av.hips_pos, av.rotations, av.visemes, av.expressions, gaze[:3]
            )
            self.avatar.update(joints, weights)
        self._place_crowd(frame)
        # The disclosure stays up between answers (the last one the room sent, or the
        # general one before any): nobody should take the clone for the person.
        self._disclosure = frame.disclosure or self._disclosure
        text = self.notice or panels.StageText(
            self._disclosure, frame.label, frame.line, frame.question
        )
        if text != self._stage_text:
            self._stage_text = text
            self.stage_tex.upload(panels.draw_stage_panel(text))
        b = self.pointer.board
        key = (
            tuple((i.question, i.text, i.votes, i.voted) for i in b.items),
            b.hand_raised,
            b.hover,
            b.status,
            b.can_raise,
        )
        if key != self._board_key:
            self._board_key = key
            self.board_tex.upload(panels.draw_board(b))
        if self.screen_target is not None:
            self._draw_screens_picture()

    def _draw_screens_picture(self) -> None:
        rt = self.screen_target
        assert rt is not None
        vp = GL.glGetIntegerv(GL.GL_VIEWPORT)
        fb = GL.glGetIntegerv(GL.GL_FRAMEBUFFER_BINDING)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, rt.fbo)
        GL.glViewport(0, 0, rt.width, rt.height)
        head = self.mark + np.array([0, 1.45, 0], np.float32)
        eye = head + self.facing * 2.2 + np.array([0, 0.05, 0], np.float32)
        view = look_at(eye, head)
        self._draw_world(
            view, perspective(17, 16 / 9), eye, crowd=False, screens=False, panels_on=False
        )
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, int(fb))
        GL.glViewport(*[int(v) for v in vp])
        rt.texture.bind(0)
        GL.glGenerateMipmap(GL.GL_TEXTURE_2D)

    def _place_crowd(self, frame: StageFrame) -> None:
        """Every attendee's body, head and raised arm as instance matrices (vectorised: the
        hall may hold thousands)."""
        slots, seats, near, rots, poss, yawp, flags = [], [], [], [], [], [], []
        for slot, a in frame.attendees.items():
            seat = self.seats_of.get(slot)
            if slot in self.hidden or seat is None or not 0 <= seat < len(self.seat_pos):
                continue
            slots.append(slot)
            seats.append(seat)
            flags.append(a.flags)
            is_near = a.pos is not None and a.rot is not None
            near.append(is_near)
            poss.append(a.pos if is_near else _NO_POS)
            rots.append(a.rot if is_near else _NO_ROT)
            yawp.append((a.yaw_deg, a.pitch_deg))
        n = len(slots)
        body = np.tile(np.eye(4, dtype=np.float32), (n, 1, 1))
        head = body.copy()
        if n:
            seat_i = np.array(seats)
            yaw = np.radians(self.seat_yaw[seat_i])
            c, s_ = np.cos(yaw), np.sin(yaw)
            r = np.zeros((n, 3, 3), np.float32)
            r[:, 0, 0], r[:, 0, 2], r[:, 1, 1], r[:, 2, 0], r[:, 2, 2] = c, s_, 1, -s_, c
            base = self.seat_pos[seat_i]
            body[:, :3, :3] = r
            body[:, :3, 3] = base
            pos = np.array(poss, np.float32)  # (n, 3, 3)
            rot = np.array(rots, np.float32)  # (n, 3, 4)
            near_mask = np.array(near)
            hy, hp = np.radians(np.array(yawp, np.float32)).T
            cy, sy, cp, sp = np.cos(hy), np.sin(hy), np.cos(hp), np.sin(hp)
            turn = np.zeros((n, 3, 3), np.float32)
            turn[:, 0, 0], turn[:, 0, 1], turn[:, 0, 2] = cy, sy * sp, sy * cp
            turn[:, 1, 1], turn[:, 1, 2] = cp, -sp
            turn[:, 2, 0], turn[:, 2, 1], turn[:, 2, 2] = -sy, cy * sp, cy * cp
            head_rot = np.where(near_mask[:, None, None], _quat_matrices(rot[:, 0]), turn)
            head_pos = np.where(near_mask[:, None], pos[:, 0], np.array([0, 1.2, 0], np.float32))
            head[:, :3, :3] = r @ head_rot
            head[:, :3, 3] = base + np.einsum("nij,nj->ni", r, head_pos)
            h = (np.array(slots, np.uint64) * np.uint64(2654435761)) & np.uint64(0xFFFFFFFF)
            clothes = _lin(CLOTHES[(h % len(CLOTHES)).astype(int)])
            skin = _lin(SKINS[((h >> np.uint64(8)) % len(SKINS)).astype(int)])
            hair = _lin(HAIRS[((h >> np.uint64(16)) % len(HAIRS)).astype(int)])
            raised = (np.array(flags) & 1).astype(bool)
            clothes[raised] = _lin(RAISED)
            # A raised hand: where a tracked hand is (above 1.3 m), else a default reach.
            hand = np.tile(np.array([0.22, 1.9, -0.05], np.float32), (n, 1))
            tracked_high = is_near & (pos[:, 2, 1] > 1.3)
            hand[tracked_high] = pos[tracked_high, 2]
            arm = np.tile(np.eye(4, dtype=np.float32), (int(raised.sum()), 1, 1))
            arm[:, :3, :3] = r[raised]
            arm[:, :3, 3] = base[raised] + np.einsum("nij,nj->ni", r[raised], hand[raised])
            arm_c = skin[raised]
        else:
            clothes = skin = hair = np.zeros((0, 3), np.float32)
            arm, arm_c = np.zeros((0, 4, 4), np.float32), np.zeros((0, 3), np.float32)
        for parts in (self.crowd, self.crowd_far):
            parts["body"].set(body, clothes)
            parts["head"].set(head, skin)
            parts["hair"].set(head, hair)
            parts["arm"].set(arm, arm_c)

    # ---------------------------------------------------------------- drawing
    def draw(self, frame: StageFrame, view: F32, projection: F32) -> int:
        """Draw into the bound framebuffer and viewport; returns the triangles drawn."""
        if self._prepared is not frame:
            self.prepare(frame)
        eye = np.linalg.inv(view.astype(np.float64))[:3, 3].astype(np.float32)
        return self._draw_world(view, projection, eye, crowd=True, screens=True, panels_on=True)

    def _lights(self, prog: Program, eye: F32, view_proj: F32) -> None:
        prog.use()
        prog.mat4("uViewProj", view_proj)
        prog.vec3("uEye", eye)
        key = np.array([0.3, 0.8, 0.5])
        prog.vec3("uKeyDir", key / np.linalg.norm(key))
        prog.vec3("uKeyColor", (0.35, 0.33, 0.3))
        prog.vec3("uSky", (0.16, 0.18, 0.24))
        prog.vec3("uGround", (0.05, 0.045, 0.04))
        spot = self.mark + self.facing * 6.0 + np.array([0, 6.5, 0], np.float32)
        target = self.mark + np.array([0, 1.3, 0], np.float32)
        d = target - spot
        prog.vec3("uSpotPos", spot)
        prog.vec3("uSpotDir", d / np.linalg.norm(d))
        prog.vec3("uSpotColor", (1.0, 0.93, 0.82))
        prog.f("uFog", 0.012)
        GL.glUniform4f(prog.loc("uBase"), 1, 1, 1, 1)
        prog.i("uUnlit", 0)
        prog.i("uHasTex", 0)
        prog.f("uAlphaCutoff", -1.0)

    def _draw_world(
        self, view: F32, projection: F32, eye: F32, *, crowd: bool, screens: bool, panels_on: bool
    ) -> int:
        GL.glClearColor(*SKY, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glEnable(GL.GL_DEPTH_TEST)
        vp = (projection @ view).astype(np.float32)
        tris = 0
        ident = np.eye(4, dtype=np.float32)
        # Nearer things first, so the depth test spares the hall's big surfaces behind them.
        if self.avatar is not None:
            self._lights(self.lit, eye, vp)
            tris += self.avatar.draw(self.lit, self.clone_matrix())
        GL.glEnable(GL.GL_CULL_FACE)
        if crowd:
            self._lights(self.lit_inst, eye, vp)
            self.lit_inst.mat4("uModel", ident)
            for part in self.crowd.values():
                tris += part.tris * part.draw_visible(vp, 0.5, eye, 0.0, LOD_M)
            for part in self.crowd_far.values():
                tris += part.tris * part.draw_visible(vp, 0.5, eye, LOD_M)
            tris += self.seats.tris * self.seats.draw_visible(vp, 0.6, eye, 0.0, LOD_M)
            tris += self.seats_far.tris * self.seats_far.draw_visible(vp, 0.6, eye, LOD_M)
        self._lights(self.lit, eye, vp)
        self.lit.mat4("uModel", ident)
        self.hall_vao.draw()
        self.backdrop_vao.draw()
        tris += (self.hall_vao.count + self.backdrop_vao.count) // 3
        if screens:
            for m in self.screen_models:
                self.lit.mat4("uModel", m)
                self.bezel_vao.draw()
        GL.glDisable(GL.GL_CULL_FACE)
        self.quad.use()
        self.quad.mat4("uViewProj", vp)
        self.quad.i("uTex", 0)
        self.quad.i("uHasTex", 1)
        GL.glUniform4f(self.quad.loc("uColor"), 1, 1, 1, 1)
        if screens and self.screen_target is not None:
            self.screen_target.texture.bind(0)
            for m in self.screen_models:
                self.quad.mat4("uModel", m)
                self.screen_vao.draw()
        if panels_on:
            self.stage_tex.bind(0)
            self.quad.mat4("uModel", self.stage_panel_model)
            self.stage_panel_vao.draw()
            tris += self._draw_pointer(vp)
        self.triangles = tris
        return tris

    def _draw_pointer(self, vp: F32) -> int:
        p = self.pointer
        tris = 0
        GL.glEnable(GL.GL_BLEND)
        GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        if p.board_model is not None:
            self.board_tex.bind(0)
            self.quad.mat4("uModel", p.board_model)
            self.board_vao.draw()
            tris += 2
        if p.ray_origin is not None and p.ray_dir is not None:
            d = p.ray_dir / np.linalg.norm(p.ray_dir)
            z = -d
            x = np.cross([0.0, 1.0, 0.0], z)
            if np.linalg.norm(x) < 1e-6:
                x = np.array([1.0, 0, 0])
            x /= np.linalg.norm(x)
            y = np.cross(z, x)
            m = np.eye(4, dtype=np.float32)
            m[:3, 0], m[:3, 1], m[:3, 2] = x, y, z * p.ray_length
            m[:3, 3] = p.ray_origin
            self.quad.i("uHasTex", 0)
            GL.glUniform4f(self.quad.loc("uColor"), 0.55, 0.8, 1.0, 0.8)
            self.quad.mat4("uModel", m)
            self.ray_vao.draw()
            m2 = np.eye(4, dtype=np.float32)
            m2[:3, 3] = p.ray_origin + d * p.ray_length
            GL.glUniform4f(self.quad.loc("uColor"), 1.0, 1.0, 1.0, 1.0)
            self.quad.mat4("uModel", m2)
            self.dot_vao.draw()
            self.quad.i("uHasTex", 1)
            GL.glUniform4f(self.quad.loc("uColor"), 1, 1, 1, 1)
            tris += 100
        GL.glDisable(GL.GL_BLEND)
        return tris
