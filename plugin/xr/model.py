"""A VRM model for the headset: read with pygltflib, posed from the protocol's frames.

``load_vrm(bytes)`` reads the GLB with pygltflib (the glTF JSON and binary chunk; accessors,
sparse ones included, become numpy arrays) and the VRM extension (1.0 ``VRMC_vrm``, or 0.x
``VRM``): humanoid bones, expressions (morph target binds) and lookAt. ``VrmModel.pose()``
turns one AvatarPose into what the GPU needs: a joint matrix per skin joint and a weight
per morph target. Bone rotations arrive in the normalized humanoid convention (three-vrm's:
relative to a T-pose with every bone's axes parallel to the model's), so for models whose
nodes carry rest rotations they are converted to each node's own frame the way three-vrm's
VRMHumanoidRig does: raw = parentWorldRest^-1 * normalized * parentWorldRest * restLocal.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pygltflib

from townhall.protocol.skeleton import EXPRESSIONS, SKELETON_BONES, VISEME_TO_VRM, VRM_VOWELS

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

REST_HIPS_Y = 0.95  # the protocol's hips height (frames carry hips relative to it)
_COMPONENT = {
    5120: np.int8,
    5121: np.uint8,
    5122: np.int16,
    5123: np.uint16,
    5125: np.uint32,
    5126: np.float32,
}
_WIDTH = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
_VRM0_PRESETS = {
    "a": "aa",
    "i": "ih",
    "u": "ou",
    "e": "ee",
    "o": "oh",
    "blink": "blink",
    "blink_l": "blinkLeft",
    "blink_r": "blinkRight",
    "joy": "happy",
    "angry": "angry",
    "sorrow": "sad",
    "fun": "relaxed",
    "surprised": "surprised",
}
_VISEME_TO_VRM = np.array(VISEME_TO_VRM, np.float32)


class ModelError(ValueError):
    """Bytes that are not a usable VRM model (the reason says what is missing)."""


def qmul(a: F64, b: F64) -> F64:
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def qinv(q: F64) -> F64:
    return np.array([-q[0], -q[1], -q[2], q[3]])


def qmat(q: F64) -> F64:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def trs(t: F64, q: F64, s: F64) -> F64:
    m = np.eye(4)
    m[:3, :3] = qmat(q) * s
    m[:3, 3] = t
    return m


@dataclass
class Material:
    color: tuple[float, float, float, float]
    unlit: bool
    double_sided: bool
    alpha_mode: str
    alpha_cutoff: float
    texture: F32 | None = None  # RGBA8 image rows top first (sRGB), or None


@dataclass
class Primitive:
    skin: int  # index into VrmModel.skins
    mesh: int  # glTF mesh index (its morph weights)
    positions: F32
    normals: F32
    joints: npt.NDArray[np.uint16]  # (n, 4) indices into the skin's joints
    weights: F32
    colors: F32  # (n, 3) linear
    uvs: F32 | None
    indices: npt.NDArray[np.uint32]
    material: Material
    morph_positions: F32  # (targets, n, 3)
    morph_normals: F32


@dataclass
class Skin:
    joints: list[int]  # node indices
    inverse_bind: F64  # (j, 4, 4)


@dataclass
class VrmModel:
    nodes_parent: list[int]
    rest_t: F64
    rest_r: F64
    rest_s: F64
    order: list[int]  # nodes, parents first
    humanoid: dict[str, int]  # bone -> node
    skins: list[Skin]
    primitives: list[Primitive]
    mesh_targets: list[int]  # morph target count per mesh
    expressions: dict[str, list[tuple[int, int, float]]]  # name -> (mesh, target, weight)
    look_at_offset: F64
    look_range: tuple[float, float, float, float]  # (in-max, out-scale) horizontal, vertical
    vrm0: bool
    name: str = ""
    _world_rest: F64 = field(default_factory=lambda: np.zeros((0, 4, 4)))

    def __post_init__(self) -> None:
        self._world_rest = self.world(self.rest_t, self.rest_r)
        self._world_rest_r = [
            self._world_rot(i, self.rest_r) for i in range(len(self.nodes_parent))
        ]

    def _world_rot(self, i: int, rots: F64) -> F64:
        q = np.array([0.0, 0.0, 0.0, 1.0])
        while i >= 0:
            q = qmul(rots[i], q)
            i = self.nodes_parent[i]
        return q

    def world(self, t: F64, r: F64) -> F64:
        out = np.zeros((len(self.nodes_parent), 4, 4))
        for i in self.order:
            m = trs(t[i], r[i], self.rest_s[i])
            p = self.nodes_parent[i]
            out[i] = m if p < 0 else out[p] @ m
        return out

    def bone_world_rest(self, bone: str) -> F64:
        return np.asarray(self._world_rest[self.humanoid[bone]], np.float64)

    # ---------------------------------------------------------------- posing
    def pose(
        self, hips: F32, rotations: F32, visemes: F32, expressions: F32, gaze_local: F64 | None
    ) -> tuple[list[F32], list[F32]]:
        """(joint matrices (j, 4, 4) per skin, morph weights per mesh) for one frame.
        ``gaze_local``: the gaze point in the model's space (None: eyes as the frame says)."""
        world = self.posed_world(hips, rotations, gaze_local)
        joints = [(world[s.joints] @ s.inverse_bind).astype(np.float32) for s in self.skins]
        return joints, self.morph_weights(visemes, expressions)

    def bone_position(self, world: F64, bone: str) -> F64:
        """A humanoid bone's position (model space) in posed node matrices."""
        out: F64 = world[self.humanoid[bone]][:3, 3]
        return out

    def posed_world(self, hips: F32, rotations: F32, gaze_local: F64 | None) -> F64:
        """Every node's model-space matrix with the frame's bone rotations applied."""
        t = self.rest_t.copy()
        r = self.rest_r.copy()
        flip = np.array([0.0, 1.0, 0.0, 0.0])  # 180 degrees about +Y, for VRM 0.x models
        normalized: dict[str, F64] = {}
        for k, bone in enumerate(SKELETON_BONES):
            if bone in self.humanoid:
                q = rotations[k].astype(np.float64)
                normalized[bone] = qmul(qmul(flip, q), qinv(flip)) if self.vrm0 else q
        if gaze_local is not None and "leftEye" in self.humanoid:
            yaw, pitch = self._eye_angles(normalized, gaze_local)
            for eye in ("leftEye", "rightEye"):
                if eye in self.humanoid:
                    normalized[eye] = _yaw_pitch(yaw, pitch)
        for bone, q in normalized.items():
            i = self.humanoid[bone]
            p = self.nodes_parent[i]
            pw = self._world_rest_r[p] if p >= 0 else np.array([0.0, 0.0, 0.0, 1.0])
            r[i] = qmul(qmul(qmul(qinv(pw), q), pw), self.rest_r[i])
        if "hips" in self.humanoid:
            i = self.humanoid["hips"]
            delta = np.array([hips[0], hips[1] - REST_HIPS_Y, hips[2]], np.float64)
            if self.vrm0:
                delta = delta * [-1, 1, -1]
            p = self.nodes_parent[i]
            pw = self._world_rest_r[p] if p >= 0 else np.array([0.0, 0.0, 0.0, 1.0])
            t[i] = self.rest_t[i] + qmat(qinv(pw)) @ delta
        return self.world(t, r)

    def morph_weights(self, visemes: F32, expressions: F32) -> list[F32]:
        """Each mesh's morph target weights: the visemes as VRM vowels, expressions by name."""
        weights = [np.zeros(n, np.float32) for n in self.mesh_targets]
        vowels = np.clip(visemes.astype(np.float32) @ _VISEME_TO_VRM, 0, 1)
        named = {v: float(vowels[k]) for k, v in enumerate(VRM_VOWELS)}
        for k, e in enumerate(EXPRESSIONS):
            named[e] = max(named.get(e, 0.0), float(expressions[k]))
        for name, value in named.items():
            if value <= 0:
                continue
            for mesh, target, w in self.expressions.get(name, ()):
                if target < len(weights[mesh]):
                    weights[mesh][target] += value * w
        for mesh_weights in weights:
            np.clip(mesh_weights, 0, 1, out=mesh_weights)
        return weights

    def _eye_angles(self, normalized: dict[str, F64], gaze: F64) -> tuple[float, float]:
        """VRM lookAt (bone type): yaw and pitch of the eyes toward a point in model space."""
        chain = ["hips", "spine", "chest", "upperChest", "neck", "head"]
        q = np.array([0.0, 0.0, 0.0, 1.0])
        for b in chain:
            if b in normalized:
                q = qmul(q, normalized[b])
        head = self.bone_world_rest("head")[:3, 3]
        hips_rest = self.bone_world_rest("hips")[:3, 3] if "hips" in self.humanoid else np.zeros(3)
        eye = hips_rest + qmat(q) @ (head + self.look_at_offset - hips_rest)
        d = qmat(qinv(q)) @ (gaze - eye)
        if self.vrm0:
            d = d * [-1, 1, -1]
        yaw = math.degrees(math.atan2(d[0], d[2]))
        pitch = math.degrees(math.atan2(-d[1], math.hypot(d[0], d[2])))
        in_h, out_h, in_v, out_v = self.look_range
        yaw = max(-in_h, min(in_h, yaw)) / in_h * out_h
        pitch = max(-in_v, min(in_v, pitch)) / in_v * out_v
        return math.radians(yaw), math.radians(pitch)


def _yaw_pitch(yaw: float, pitch: float) -> F64:
    cy, sy = math.cos(yaw / 2), math.sin(yaw / 2)
    cx, sx = math.cos(pitch / 2), math.sin(pitch / 2)
    return np.array([cy * sx, sy * cx, -sy * sx, cy * cx])


# ---------------------------------------------------------------- reading


class _Reader:
    def __init__(self, g: pygltflib.GLTF2, blob: bytes) -> None:
        self.g, self.blob = g, blob

    def array(self, index: int) -> npt.NDArray[Any]:
        a = self.g.accessors[index]
        width = _WIDTH[a.type]
        dtype = _COMPONENT[a.componentType]
        if a.bufferView is not None:
            v = self.g.bufferViews[a.bufferView]
            start = (v.byteOffset or 0) + (a.byteOffset or 0)
            item = np.dtype(dtype).itemsize * width
            stride = v.byteStride or item
            if stride == item:
                out = np.frombuffer(self.blob, dtype, a.count * width, start).reshape(
                    a.count, width
                )
            else:
                rows = np.frombuffer(self.blob, np.uint8, stride * (a.count - 1) + item, start)
                out = np.stack(
                    [
                        np.frombuffer(rows[i * stride : i * stride + item].tobytes(), dtype)
                        for i in range(a.count)
                    ]
                )
            out = out.copy()
        else:
            out = np.zeros((a.count, width), dtype)
        if a.sparse is not None and a.sparse.count:
            iv = self.g.bufferViews[a.sparse.indices.bufferView]
            idt = _COMPONENT[a.sparse.indices.componentType]
            idx = np.frombuffer(
                self.blob,
                idt,
                a.sparse.count,
                (iv.byteOffset or 0) + (a.sparse.indices.byteOffset or 0),
            )
            vv = self.g.bufferViews[a.sparse.values.bufferView]
            vals = np.frombuffer(
                self.blob,
                dtype,
                a.sparse.count * width,
                (vv.byteOffset or 0) + (a.sparse.values.byteOffset or 0),
            )
            out[idx.astype(np.int64)] = vals.reshape(-1, width)
        if a.normalized and out.dtype != np.float32:
            out = out.astype(np.float32) / np.iinfo(out.dtype).max
        return out

    def image(self, index: int) -> F32 | None:
        from PIL import Image

        img = self.g.images[index]
        if img.bufferView is None:
            return None  # external or data-URI images are not loaded
        v = self.g.bufferViews[img.bufferView]
        raw = self.blob[(v.byteOffset or 0) : (v.byteOffset or 0) + v.byteLength]
        with Image.open(io.BytesIO(raw)) as im:
            return np.asarray(im.convert("RGBA"))


def load_vrm(data: bytes) -> VrmModel:
    """Read a VRM (1.0 or 0.x) GLB; raises ModelError when it is not one."""
    try:
        g = pygltflib.GLTF2.load_from_bytes(data)
    except Exception as err:  # pygltflib raises assorted errors for non-GLB bytes
        raise ModelError(f"not a glTF binary: {err}") from err
    blob = g.binary_blob() or b""
    ext = g.extensions or {}
    vrm0 = "VRMC_vrm" not in ext and "VRM" in ext
    if "VRMC_vrm" not in ext and not vrm0:
        raise ModelError("no VRM extension (VRMC_vrm or VRM)")
    reader = _Reader(g, blob)
    n = len(g.nodes)
    parent = [-1] * n
    for i, node in enumerate(g.nodes):
        for c in node.children or []:
            parent[c] = i
    rest_t = np.array([node.translation or [0, 0, 0] for node in g.nodes], np.float64)
    rest_r = np.array([node.rotation or [0, 0, 0, 1] for node in g.nodes], np.float64)
    rest_s = np.array([node.scale or [1, 1, 1] for node in g.nodes], np.float64)
    for i, node in enumerate(g.nodes):
        if node.matrix:
            m = np.array(node.matrix, np.float64).reshape(4, 4).T
            rest_t[i] = m[:3, 3]
            s = np.linalg.norm(m[:3, :3], axis=0)
            rest_s[i] = s
            rest_r[i] = _mat_quat(m[:3, :3] / s)
    order: list[int] = []
    seen = set()

    def visit(i: int) -> None:
        if i in seen:
            return
        if parent[i] >= 0:
            visit(parent[i])
        seen.add(i)
        order.append(i)

    for i in range(n):
        visit(i)
    if vrm0:
        v0 = ext["VRM"]
        humanoid = {b["bone"]: b["node"] for b in v0.get("humanoid", {}).get("humanBones", [])}
    else:
        v1 = ext["VRMC_vrm"]
        humanoid = {k: v["node"] for k, v in v1.get("humanoid", {}).get("humanBones", {}).items()}
    missing = [b for b in ("hips", "spine", "head") if b not in humanoid]
    if missing:
        raise ModelError(f"the humanoid has no {', '.join(missing)} bone")
    # Skins: glTF skins, plus one per rigid mesh node (joint: the node itself).
    skins: list[Skin] = []
    for s in g.skins:
        ibm = (
            reader.array(s.inverseBindMatrices).reshape(-1, 4, 4).transpose(0, 2, 1)
            if s.inverseBindMatrices is not None
            else np.tile(np.eye(4), (len(s.joints), 1, 1))
        )
        skins.append(Skin(list(s.joints), ibm.astype(np.float64)))
    prims: list[Primitive] = []
    mats = [_material(reader, m) for m in g.materials] or []
    default_mat = Material((1, 1, 1, 1), False, False, "OPAQUE", 0.5)
    mesh_targets = [0] * len(g.meshes)
    mesh_node: dict[int, int] = {}
    for ni, node in enumerate(g.nodes):
        if node.mesh is None:
            continue
        mesh_node.setdefault(node.mesh, ni)
        mesh = g.meshes[node.mesh]
        if node.skin is not None:
            skin_index = node.skin
        else:
            skins.append(Skin([ni], np.eye(4)[None].copy()))
            skin_index = len(skins) - 1
        for p in mesh.primitives:
            if p.mode not in (None, 4):
                continue  # triangles only
            a = p.attributes
            pos = reader.array(a.POSITION).astype(np.float32)
            cnt = len(pos)
            nrm = (
                reader.array(a.NORMAL).astype(np.float32)
                if a.NORMAL is not None
                else _normals(pos, reader, p)
            )
            if node.skin is not None and a.JOINTS_0 is not None:
                jn = reader.array(a.JOINTS_0).astype(np.uint16)
                wt = reader.array(a.WEIGHTS_0).astype(np.float32)
                wt = wt / np.maximum(wt.sum(axis=1, keepdims=True), 1e-6)
            else:
                jn = np.zeros((cnt, 4), np.uint16)
                wt = np.tile(np.array([1, 0, 0, 0], np.float32), (cnt, 1))
            col = np.ones((cnt, 3), np.float32)
            if a.COLOR_0 is not None:
                col = reader.array(a.COLOR_0).astype(np.float32)[:, :3]
            uv = reader.array(a.TEXCOORD_0).astype(np.float32) if a.TEXCOORD_0 is not None else None
            idx = (
                reader.array(p.indices).reshape(-1).astype(np.uint32)
                if p.indices is not None
                else np.arange(cnt, dtype=np.uint32)
            )
            targets = p.targets or []
            mesh_targets[node.mesh] = max(mesh_targets[node.mesh], len(targets))
            mp = np.zeros((len(targets), cnt, 3), np.float32)
            mn = np.zeros((len(targets), cnt, 3), np.float32)
            for k, tg in enumerate(targets):
                if tg.get("POSITION") is not None:
                    mp[k] = reader.array(tg["POSITION"])
                if tg.get("NORMAL") is not None:
                    mn[k] = reader.array(tg["NORMAL"])
            mat = (
                mats[p.material]
                if p.material is not None and p.material < len(mats)
                else default_mat
            )
            prims.append(
                Primitive(skin_index, node.mesh, pos, nrm, jn, wt, col, uv, idx, mat, mp, mn)
            )
    if not prims:
        raise ModelError("the model has no triangles")
    expressions = _expressions(ext, vrm0, mesh_node, g)
    if vrm0:
        fp = ext["VRM"].get("firstPerson", {})
        off = fp.get("firstPersonBoneOffset", {"x": 0, "y": 0.06, "z": 0})
        look_offset = np.array([off.get("x", 0), off.get("y", 0.06), off.get("z", 0)], np.float64)
        look_range = (90.0, 10.0, 90.0, 10.0)
    else:
        la = ext["VRMC_vrm"].get("lookAt", {})
        look_offset = np.array(la.get("offsetFromHeadBone", [0, 0.06, 0]), np.float64)
        h = la.get("rangeMapHorizontalOuter", {"inputMaxValue": 90, "outputScale": 10})
        v = la.get("rangeMapVerticalDown", {"inputMaxValue": 90, "outputScale": 10})
        look_range = (
            float(h["inputMaxValue"]),
            float(h["outputScale"]),
            float(v["inputMaxValue"]),
            float(v["outputScale"]),
        )
    name = ""
    meta = (ext.get("VRMC_vrm") or {}).get("meta") or (ext.get("VRM") or {}).get("meta") or {}
    name = str(meta.get("name") or meta.get("title") or "")
    return VrmModel(
        parent,
        rest_t,
        rest_r,
        rest_s,
        order,
        humanoid,
        skins,
        prims,
        mesh_targets,
        expressions,
        look_offset,
        look_range,
        vrm0,
        name,
    )


def _mat_quat(m: F64) -> F64:
    w = math.sqrt(max(0.0, 1 + m[0, 0] + m[1, 1] + m[2, 2])) / 2
    x = math.copysign(math.sqrt(max(0.0, 1 + m[0, 0] - m[1, 1] - m[2, 2])) / 2, m[2, 1] - m[1, 2])
    y = math.copysign(math.sqrt(max(0.0, 1 - m[0, 0] + m[1, 1] - m[2, 2])) / 2, m[0, 2] - m[2, 0])
    z = math.copysign(math.sqrt(max(0.0, 1 - m[0, 0] - m[1, 1] + m[2, 2])) / 2, m[1, 0] - m[0, 1])
    return np.array([x, y, z, w])


def _normals(pos: F32, reader: _Reader, p: Any) -> F32:
    idx = (
        reader.array(p.indices).reshape(-1, 3)
        if p.indices is not None
        else np.arange(len(pos)).reshape(-1, 3)
    )
    fn = np.cross(pos[idx[:, 1]] - pos[idx[:, 0]], pos[idx[:, 2]] - pos[idx[:, 0]])
    n = np.zeros_like(pos)
    for k in range(3):
        np.add.at(n, idx[:, k], fn)
    normals = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-9)
    return np.asarray(normals, np.float32)


def _material(reader: _Reader, m: Any) -> Material:
    pbr = m.pbrMetallicRoughness
    color = tuple(pbr.baseColorFactor) if pbr and pbr.baseColorFactor else (1.0, 1.0, 1.0, 1.0)
    tex = None
    if pbr and pbr.baseColorTexture is not None:
        t = reader.g.textures[pbr.baseColorTexture.index]
        if t.source is not None:
            try:
                tex = reader.image(t.source)
            except Exception:  # an image Pillow cannot read: the colour factor alone
                tex = None
    unlit = bool(m.extensions and "KHR_materials_unlit" in m.extensions)
    return Material(
        color,
        unlit,
        bool(m.doubleSided),
        m.alphaMode or "OPAQUE",
        float(m.alphaCutoff if m.alphaCutoff is not None else 0.5),
        tex,
    )


def _expressions(
    ext: dict[str, Any], vrm0: bool, mesh_node: dict[int, int], g: Any
) -> dict[str, list[tuple[int, int, float]]]:
    out: dict[str, list[tuple[int, int, float]]] = {}
    if vrm0:
        for group in ext["VRM"].get("blendShapeMaster", {}).get("blendShapeGroups", []):
            name = _VRM0_PRESETS.get(group.get("presetName", ""), group.get("name", ""))
            binds = [
                (b["mesh"], b["index"], float(b.get("weight", 100)) / 100.0)
                for b in group.get("binds", [])
            ]
            out[name] = binds
        return out
    node_mesh = {ni: g.nodes[ni].mesh for ni in range(len(g.nodes)) if g.nodes[ni].mesh is not None}
    exprs = ext["VRMC_vrm"].get("expressions", {})
    for group in ("preset", "custom"):
        for name, e in exprs.get(group, {}).items():
            binds = []
            for b in e.get("morphTargetBinds", []):
                mesh = node_mesh.get(b["node"])
                if mesh is not None:
                    binds.append((mesh, int(b["index"]), float(b.get("weight", 1.0))))
            out[name] = binds
    del mesh_node
    return out
