"""OpenGL drawing of the hall, the crowd and the clone: one renderer for headset and mirror.

Deliberately plain: OpenGL 2.1 fixed-function with client-side vertex arrays (works on any
headset driver and on Mesa's software renderer in CI), geometry built with numpy each frame
as flat-shaded boxes. The clone is the browser viewer's procedural humanoid rig (bone
offsets from server/web/src/watch/avatar.js) posed by forward kinematics from the frame's
local bone rotations; its mouth opens with the visemes. The caller sets the viewport and
passes a view and projection matrix (column vectors, row-major numpy arrays).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from OpenGL import GL

from townhall.protocol.skeleton import SKELETON_BONES, VISEMES
from townhall.scenes.model import Scene

from ..playback import StageFrame

F32 = npt.NDArray[np.float32]

SKY = (0.06, 0.07, 0.10)
FLOOR = (0.20, 0.20, 0.22)
STAGE = (0.42, 0.30, 0.20)
SEAT = (0.35, 0.08, 0.10)
SUIT = (0x24 / 255, 0x34 / 255, 0x5A / 255)
SKIN = (0xD9 / 255, 0xA0 / 255, 0x7E / 255)
MOUTH = (0x3A / 255, 0x0C / 255, 0x12 / 255)
TROUSERS = (0x2C / 255, 0x2C / 255, 0x34 / 255)
ATTENDEE = (0.30, 0.55, 0.75)
RAISED = (0.95, 0.80, 0.20)

# name, parent, rest offset (m) in the avatar's space (faces +Z, left hand along +X).
RIG: tuple[tuple[str, str | None, tuple[float, float, float]], ...] = (
    ("hips", None, (0, 0.95, 0)),
    ("spine", "hips", (0, 0.1, 0)),
    ("chest", "spine", (0, 0.12, 0)),
    ("upperChest", "chest", (0, 0.12, 0)),
    ("neck", "upperChest", (0, 0.15, -0.01)),
    ("head", "neck", (0, 0.08, 0)),
    ("leftEye", "head", (0.033, 0.08, 0.084)),
    ("rightEye", "head", (-0.033, 0.08, 0.084)),
    ("jaw", "head", (0, 0.03, 0.02)),
    ("leftShoulder", "upperChest", (0.03, 0.1, -0.01)),
    ("leftUpperArm", "leftShoulder", (0.11, 0, 0)),
    ("leftLowerArm", "leftUpperArm", (0.27, 0, 0)),
    ("leftHand", "leftLowerArm", (0.25, 0, 0)),
    ("rightShoulder", "upperChest", (-0.03, 0.1, -0.01)),
    ("rightUpperArm", "rightShoulder", (-0.11, 0, 0)),
    ("rightLowerArm", "rightUpperArm", (-0.27, 0, 0)),
    ("rightHand", "rightLowerArm", (-0.25, 0, 0)),
    ("leftUpperLeg", "hips", (0.09, -0.06, 0)),
    ("leftLowerLeg", "leftUpperLeg", (0, -0.42, 0)),
    ("leftFoot", "leftLowerLeg", (0, -0.39, 0)),
    ("rightUpperLeg", "hips", (-0.09, -0.06, 0)),
    ("rightLowerLeg", "rightUpperLeg", (0, -0.42, 0)),
    ("rightFoot", "rightLowerLeg", (0, -0.39, 0)),
)
_LIMBS = {  # bone -> (child it reaches to, thickness, colour)
    "hips": ("spine", 0.30, TROUSERS),
    "spine": ("chest", 0.30, SUIT),
    "chest": ("upperChest", 0.33, SUIT),
    "upperChest": ("neck", 0.36, SUIT),
    "neck": ("head", 0.09, SKIN),
    "leftUpperArm": ("leftLowerArm", 0.10, SUIT),
    "leftLowerArm": ("leftHand", 0.09, SUIT),
    "rightUpperArm": ("rightLowerArm", 0.10, SUIT),
    "rightLowerArm": ("rightHand", 0.09, SUIT),
    "leftUpperLeg": ("leftLowerLeg", 0.13, TROUSERS),
    "leftLowerLeg": ("leftFoot", 0.11, TROUSERS),
    "rightUpperLeg": ("rightLowerLeg", 0.13, TROUSERS),
    "rightLowerLeg": ("rightFoot", 0.11, TROUSERS),
}
_OPEN_VISEMES = np.array([0, 0, 0.2, 0.3, 0.4, 0.6, 0.4, 0.2, 0.3, 0.4, 1.0, 0.6, 0.5, 0.8, 0.5])
assert len(_OPEN_VISEMES) == len(VISEMES)
_BONE = {name: i for i, name in enumerate(SKELETON_BONES)}

# A unit cube's 12 triangles and a brightness per face (fake light from above-front).
_CUBE = (
    np.array(
        [
            [[-1, -1, 1], [1, -1, 1], [1, 1, 1], [-1, -1, 1], [1, 1, 1], [-1, 1, 1]],
            [[1, -1, -1], [-1, -1, -1], [-1, 1, -1], [1, -1, -1], [-1, 1, -1], [1, 1, -1]],
            [[-1, 1, 1], [1, 1, 1], [1, 1, -1], [-1, 1, 1], [1, 1, -1], [-1, 1, -1]],
            [[-1, -1, -1], [1, -1, -1], [1, -1, 1], [-1, -1, -1], [1, -1, 1], [-1, -1, 1]],
            [[1, -1, 1], [1, -1, -1], [1, 1, -1], [1, -1, 1], [1, 1, -1], [1, 1, 1]],
            [[-1, -1, -1], [-1, -1, 1], [-1, 1, 1], [-1, -1, -1], [-1, 1, 1], [-1, 1, -1]],
        ],
        np.float32,
    ).reshape(36, 3)
    * 0.5
)
_SHADE = np.repeat(np.array([1.0, 0.75, 0.95, 0.55, 0.85, 0.85], np.float32), 6)


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
    """Eye and target for the mirror: in front of the stage, looking at the clone."""
    mark = scene.stage.clone_mark
    yaw = math.radians(mark.yaw_deg)
    facing = (-math.sin(yaw), 0.0, -math.cos(yaw))
    p = mark.position
    eye = (p[0] + facing[0] * 10.0, p[1] + 2.6, p[2] + facing[2] * 10.0)
    return eye, (p[0], p[1] + 0.9, p[2])


def look_at(eye: Sequence[float], target: Sequence[float]) -> F32:
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


def seat_view(scene: Scene, seat: int, pose: Sequence[float]) -> F32:
    """View matrix of an eye (or head) at ``pose`` in the seat frame of ``seat`` (SPEC §5:
    world = seat position + the seat's yaw applied to the pose)."""
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


class Boxes:
    """Accumulates oriented boxes as coloured triangles."""

    def __init__(self) -> None:
        self.verts: list[F32] = []
        self.colors: list[F32] = []

    def add(self, center: F32, axes: F32, size: Sequence[float], color: Sequence[float]) -> None:
        """``axes`` (3,3): box axes as columns; ``size`` full extents along them."""
        v = (_CUBE * np.array(size, np.float32)) @ axes.T + center
        self.verts.append(v.astype(np.float32))
        self.colors.append((_SHADE[:, None] * np.array(color, np.float32)).astype(np.float32))

    def add_many(self, centers: F32, size: Sequence[float], color: Sequence[float]) -> None:
        """Axis-aligned boxes of one size at many centres (the seats, the far crowd)."""
        if len(centers) == 0:
            return
        v = (_CUBE * np.array(size, np.float32))[None] + centers[:, None, :]
        self.verts.append(v.reshape(-1, 3).astype(np.float32))
        c = np.tile(_SHADE[:, None] * np.array(color, np.float32), (len(centers), 1))
        self.colors.append(c.astype(np.float32))

    def arrays(self) -> tuple[F32, F32]:
        if not self.verts:
            return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
        return np.concatenate(self.verts), np.concatenate(self.colors)


def _segment_axes(y: F32, frame: F32) -> F32:
    """Box axes with Y along a limb, Z as close to the bone's own Z as the limb allows."""
    z = frame[:, 2] - y * float(frame[:, 2] @ y)
    if np.linalg.norm(z) < 1e-4:
        z = frame[:, 0] - y * float(frame[:, 0] @ y)
    z = z / np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1).astype(np.float32)


def clone_boxes(boxes: Boxes, frame: StageFrame, position: Sequence[float], yaw_deg: float) -> None:
    """The clone, posed by forward kinematics, standing at ``position`` turned by ``yaw_deg``."""
    av = frame.avatar
    root_r = yaw_matrix(yaw_deg)
    root_t = np.array(position, np.float32)
    world_r: dict[str, F32] = {}
    world_t: dict[str, F32] = {}
    for name, parent, offset in RIG:
        local_r = quat_matrix(av.rotations[_BONE[name]])
        off = np.array(offset, np.float32)
        if parent is None:
            off = np.array(av.hips_pos, np.float32)
            pr, pt = root_r, root_t
        else:
            pr, pt = world_r[parent], world_t[parent]
        world_t[name] = pt + pr @ off
        world_r[name] = pr @ local_r
    for bone, (child, thick, color) in _LIMBS.items():
        a, b = world_t[bone], world_t[child]
        length = float(np.linalg.norm(b - a))
        r = _segment_axes((b - a) / max(length, 1e-6), world_r[bone])
        boxes.add(
            ((a + b) / 2).astype(np.float32), r, (thick, max(length, 0.02), thick * 0.7), color
        )
        if bone.endswith("LowerArm"):
            boxes.add(b.astype(np.float32), r, (0.08, 0.08, 0.04), SKIN)  # hands
    head_r, head_t = world_r["head"], world_t["head"]
    boxes.add(
        head_t + head_r @ np.array([0, 0.1, 0.01], np.float32), head_r, (0.19, 0.24, 0.2), SKIN
    )
    opening = float(np.clip(av.visemes @ _OPEN_VISEMES, 0, 1))
    mouth = head_t + head_r @ np.array([0, 0.04, 0.105], np.float32)
    boxes.add(mouth, head_r, (0.07, 0.01 + 0.05 * opening, 0.01), MOUTH)
    for foot in ("leftFoot", "rightFoot"):
        boxes.add(world_t[foot] + np.array([0, 0.03, 0.05], np.float32), world_r[foot],
                  (0.1, 0.06, 0.25), (0.1, 0.07, 0.05))  # fmt: skip


class HallRenderer:
    """Draws a StageFrame: static hall geometry once, the clone and crowd every frame."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.seat_pos = np.array([s.position for s in scene.seats], np.float32)
        self.seat_yaw = np.array([s.yaw_deg for s in scene.seats], np.float32)
        self.seats_of: dict[int, int] = {}  # slot -> seat index (from the room's participants)
        self.hidden: set[int] = set()  # slots not drawn: the wearer, whose eyes are inside it
        static = Boxes()
        static.add(np.array([0, -0.05, 0], np.float32), np.eye(3, dtype=np.float32),
                   (80, 0.1, 80), FLOOR)  # fmt: skip
        st = scene.stage
        h = 1.0  # the stage platform; the rest of its volume is air above it
        static.add(np.array([st.center[0], st.clone_mark.position[1] - h / 2, st.center[2]],
                            np.float32), np.eye(3, dtype=np.float32),
                   (st.size[0], st.clone_mark.position[1], st.size[2]), STAGE)  # fmt: skip
        static.add_many(
            self.seat_pos + np.array([0, 0.22, 0], np.float32), (0.45, 0.44, 0.45), SEAT
        )
        self._static = static.arrays()

    def draw(self, frame: StageFrame, view: F32, projection: F32) -> int:
        """Draw into the bound framebuffer and viewport; returns the triangles drawn."""
        GL.glClearColor(*SKY, 1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDisable(GL.GL_LIGHTING)
        GL.glMatrixMode(GL.GL_PROJECTION)
        GL.glLoadMatrixf(projection.T.copy())
        GL.glMatrixMode(GL.GL_MODELVIEW)
        GL.glLoadMatrixf(view.T.copy())
        dynamic = Boxes()
        mark = self.scene.stage.clone_mark
        # The rig faces +Z; a scene yaw of 0 faces -Z (SPEC §5 seat frames): turn by 180 more.
        clone_boxes(dynamic, frame, mark.position, mark.yaw_deg + 180.0)
        self._crowd(dynamic, frame)
        n = 0
        for verts, colors in (self._static, dynamic.arrays()):
            if len(verts) == 0:
                continue
            GL.glEnableClientState(GL.GL_VERTEX_ARRAY)
            GL.glEnableClientState(GL.GL_COLOR_ARRAY)
            GL.glVertexPointer(3, GL.GL_FLOAT, 0, verts)
            GL.glColorPointer(3, GL.GL_FLOAT, 0, colors)
            GL.glDrawArrays(GL.GL_TRIANGLES, 0, len(verts))
            n += len(verts) // 3
        GL.glDisableClientState(GL.GL_VERTEX_ARRAY)
        GL.glDisableClientState(GL.GL_COLOR_ARRAY)
        return n

    def _crowd(self, boxes: Boxes, frame: StageFrame) -> None:
        eye = np.eye(3, dtype=np.float32)
        for slot, a in frame.attendees.items():
            if slot in self.hidden:
                continue
            seat = self.seats_of.get(slot)
            if seat is None or not 0 <= seat < len(self.seat_pos):
                continue
            base, r = self.seat_pos[seat], yaw_matrix(float(self.seat_yaw[seat]))
            color = RAISED if a.flags & 1 else ATTENDEE
            if a.pos is not None and a.rot is not None:
                head = base + r @ a.pos[0]
                boxes.add(head, r @ quat_matrix(a.rot[0]), (0.2, 0.24, 0.22), color)
                boxes.add(base + r @ np.array([0, 0.75, 0], np.float32), r, (0.36, 0.55, 0.22),
                          color)  # fmt: skip
                for k in (1, 2):
                    if a.flags & (2 << (k - 1)):
                        boxes.add(base + r @ a.pos[k], r @ quat_matrix(a.rot[k]),
                                  (0.08, 0.08, 0.12), SKIN)  # fmt: skip
            else:
                boxes.add(base + np.array([0, 1.2, 0], np.float32), eye, (0.2, 0.24, 0.22), color)
                boxes.add(base + np.array([0, 0.75, 0], np.float32), eye, (0.36, 0.55, 0.22), color)
