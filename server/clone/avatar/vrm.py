"""Writing the avatar as a VRM 1.0 file: glTF 2.0 binary (GLB) with the VRMC_vrm extension.

pygltflib does the glTF side (its dataclasses are the glTF schema, and it packs the GLB
container), so this module only lays out buffers and fills in VRM's humanoid bones,
expressions, lookAt and meta. One skin serves two meshes: the face (with the expression
morph targets) and the body. Each material's triangles become a primitive with only the
vertices it uses; morph targets are sparse accessors over the vertices they move.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pygltflib as g

from townhall.protocol.skeleton import SKELETON_BONES

from .mesh import F64, I32, Part, vertex_normals
from .skeleton import PARENT


@dataclass(frozen=True)
class Material:
    name: str
    color: tuple[float, float, float]  # linear RGB
    roughness: float = 0.7
    metallic: float = 0.0
    unlit: bool = False
    double_sided: bool = False


@dataclass
class MeshSpec:
    name: str
    parts: list[Part]
    expressions: tuple[str, ...] = ()  # morph target order (face mesh)


@dataclass
class VrmMeta:
    name: str
    authors: list[str]
    look_at_offset: tuple[float, float, float]  # eyes' midpoint from the head bone


class _Blob:
    """The binary chunk, with 4-byte aligned buffer views."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.views: list[g.BufferView] = []

    def view(self, raw: bytes, target: int | None = None) -> int:
        while len(self.data) % 4:
            self.data.append(0)
        self.views.append(
            g.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(raw), target=target)
        )
        self.data.extend(raw)
        return len(self.views) - 1


def write_vrm(
    bones: dict[str, np.ndarray], meshes: list[MeshSpec], materials: list[Material], meta: VrmMeta
) -> bytes:
    blob = _Blob()
    accessors: list[g.Accessor] = []

    def accessor(
        arr: np.ndarray,
        kind: str,
        ctype: int,
        target: int | None,
        minmax: bool = False,
        normalized: bool = False,
    ) -> int:
        view = blob.view(np.ascontiguousarray(arr).tobytes(), target)
        a = g.Accessor(
            bufferView=view,
            componentType=ctype,
            count=len(arr),
            type=kind,
            normalized=normalized or None,
        )
        if minmax:
            a.min = [float(v) for v in arr.min(axis=0)]
            a.max = [float(v) for v in arr.max(axis=0)]
        accessors.append(a)
        return len(accessors) - 1

    def sparse_vec3(delta: np.ndarray, minmax: bool) -> int:
        moved = np.nonzero(np.abs(delta).max(axis=1) > 1e-7)[0].astype(np.uint32)
        a = g.Accessor(componentType=g.FLOAT, count=len(delta), type=g.VEC3, byteOffset=None)
        if minmax:
            vals = delta[moved] if len(moved) else np.zeros((1, 3), np.float32)
            lo = np.minimum(vals.min(axis=0), 0.0) if len(moved) < len(delta) else vals.min(axis=0)
            hi = np.maximum(vals.max(axis=0), 0.0) if len(moved) < len(delta) else vals.max(axis=0)
            a.min = [float(v) for v in lo]
            a.max = [float(v) for v in hi]
        if len(moved):
            iv = blob.view(moved.tobytes())
            vv = blob.view(np.ascontiguousarray(delta[moved], dtype=np.float32).tobytes())
            a.sparse = g.Sparse(
                count=len(moved),
                indices=g.AccessorSparseIndices(bufferView=iv, componentType=g.UNSIGNED_INT),
                values=g.AccessorSparseValues(bufferView=vv),
            )
        accessors.append(a)
        return len(accessors) - 1

    # ---- nodes: a root, the bones (rest translations only), the mesh nodes
    nodes: list[g.Node] = [g.Node(name="Root", children=[])]
    bone_node: dict[str, int] = {}
    for name in SKELETON_BONES:
        bone_node[name] = len(nodes)
        nodes.append(g.Node(name=name, children=[]))
    for name in SKELETON_BONES:
        parent = PARENT[name]
        local = bones[name] - (bones[parent] if parent else 0.0)
        nodes[bone_node[name]].translation = [float(v) for v in np.round(local, 6)]
        if parent is None:
            nodes[0].children.append(bone_node[name])
        else:
            nodes[bone_node[parent]].children.append(bone_node[name])
    joints = [bone_node[n] for n in SKELETON_BONES]
    ibm = np.zeros((len(SKELETON_BONES), 4, 4), np.float32)
    for i, name in enumerate(SKELETON_BONES):
        m = np.eye(4, dtype=np.float32)
        m[:3, 3] = -np.round(bones[name], 6)
        ibm[i] = m.T  # glTF matrices are column-major
    ibm_acc = accessor(ibm.reshape(-1, 16), g.MAT4, g.FLOAT, None)
    skin = g.Skin(
        name="Armature", inverseBindMatrices=ibm_acc, joints=joints, skeleton=bone_node["hips"]
    )

    used_names = {m for spec in meshes for part in spec.parts for m in part.materials}
    materials = [m for m in materials if m.name in used_names]
    mat_index = {m.name: i for i, m in enumerate(materials)}
    gmeshes: list[g.Mesh] = []
    mesh_nodes: dict[str, int] = {}
    for spec in meshes:
        prims = []
        for part in spec.parts:
            normals = vertex_normals(part.positions, part.triangles)
            morph_normals = {
                k: vertex_normals(part.positions + d, part.triangles) - normals
                for k, d in part.morphs.items()
            }
            mats = np.array(part.materials, dtype=object)
            for mname in sorted(set(part.materials), key=lambda m: mat_index[m]):
                tris = part.triangles[mats == mname]
                used, remap = np.unique(tris.reshape(-1), return_inverse=True)
                idx = remap.reshape(-1, 3).astype(np.uint16 if len(used) < 65536 else np.uint32)
                attrs = g.Attributes(
                    POSITION=accessor(
                        part.positions[used].astype(np.float32),
                        g.VEC3,
                        g.FLOAT,
                        g.ARRAY_BUFFER,
                        True,
                    ),
                    NORMAL=accessor(
                        normals[used].astype(np.float32), g.VEC3, g.FLOAT, g.ARRAY_BUFFER
                    ),
                    JOINTS_0=accessor(
                        part.joints[used].astype(np.uint8), g.VEC4, g.UNSIGNED_BYTE, g.ARRAY_BUFFER
                    ),
                    WEIGHTS_0=accessor(
                        part.weights[used].astype(np.float32), g.VEC4, g.FLOAT, g.ARRAY_BUFFER
                    ),
                )
                if part.colors is not None:
                    attrs.COLOR_0 = accessor(
                        part.colors[used].astype(np.float32), g.VEC3, g.FLOAT, g.ARRAY_BUFFER
                    )
                ictype = g.UNSIGNED_SHORT if idx.dtype == np.uint16 else g.UNSIGNED_INT
                prim = g.Primitive(
                    attributes=attrs,
                    indices=accessor(idx.reshape(-1), g.SCALAR, ictype, g.ELEMENT_ARRAY_BUFFER),
                    material=mat_index[mname],
                )
                if spec.expressions:
                    targets = []
                    for ex in spec.expressions:
                        d = part.morphs.get(ex)
                        dp = (d[used] if d is not None else np.zeros((len(used), 3))).astype(
                            np.float32
                        )
                        dn = (
                            morph_normals[ex][used] if d is not None else np.zeros((len(used), 3))
                        ).astype(np.float32)
                        targets.append(
                            g.Attributes(
                                POSITION=sparse_vec3(dp, True), NORMAL=sparse_vec3(dn, False)
                            )
                        )
                    prim.targets = targets
                prims.append(prim)
        mesh = g.Mesh(name=spec.name, primitives=prims)
        if spec.expressions:
            mesh.weights = [0.0] * len(spec.expressions)
            mesh.extras = {"targetNames": list(spec.expressions)}
        gmeshes.append(mesh)
        mesh_nodes[spec.name] = len(nodes)
        nodes.append(g.Node(name=spec.name, mesh=len(gmeshes) - 1, skin=0))

    gmats = []
    for spec_mat in materials:
        pbr = g.PbrMetallicRoughness(
            baseColorFactor=[*spec_mat.color, 1.0],
            metallicFactor=spec_mat.metallic,
            roughnessFactor=spec_mat.roughness,
        )
        mat = g.Material(
            name=spec_mat.name, pbrMetallicRoughness=pbr, doubleSided=spec_mat.double_sided or None
        )
        if spec_mat.unlit:
            mat.extensions = {"KHR_materials_unlit": {}}
        gmats.append(mat)

    face = next(s for s in meshes if s.expressions)
    face_node = mesh_nodes[face.name]

    def expression(name: str) -> dict[str, object]:
        binds = (
            [{"node": face_node, "index": face.expressions.index(name), "weight": 1.0}]
            if name in face.expressions
            else []
        )
        return {
            "morphTargetBinds": binds,
            "isBinary": False,
            "overrideBlink": "none",
            "overrideLookAt": "none",
            "overrideMouth": "none",
        }

    presets = [
        "happy",
        "angry",
        "sad",
        "relaxed",
        "surprised",
        "aa",
        "ih",
        "ou",
        "ee",
        "oh",
        "blink",
        "blinkLeft",
        "blinkRight",
    ]
    eye_range = {"inputMaxValue": 35.0, "outputScale": 24.0}
    vrm = {
        "specVersion": "1.0",
        "meta": {
            "name": meta.name,
            "version": "1",
            "authors": meta.authors,
            "copyrightInformation": "Generated by Townhall from the persona's appearance",
            "licenseUrl": "https://vrm.dev/licenses/1.0/",
            "avatarPermission": "onlyAuthor",
            "allowExcessivelyViolentUsage": False,
            "allowExcessivelySexualUsage": False,
            "commercialUsage": "corporation",
            "allowPoliticalOrReligiousUsage": False,
            "allowAntisocialOrHateUsage": False,
            "creditNotation": "unnecessary",
            "allowRedistribution": False,
            "modification": "allowModification",
        },
        "humanoid": {"humanBones": {n: {"node": bone_node[n]} for n in SKELETON_BONES}},
        "firstPerson": {
            "meshAnnotations": [{"node": mesh_nodes[s.name], "type": "auto"} for s in meshes]
        },
        "lookAt": {
            "offsetFromHeadBone": [float(v) for v in np.round(meta.look_at_offset, 6)],
            "type": "bone",
            "rangeMapHorizontalInner": eye_range,
            "rangeMapHorizontalOuter": eye_range,
            "rangeMapVerticalDown": {"inputMaxValue": 30.0, "outputScale": 18.0},
            "rangeMapVerticalUp": {"inputMaxValue": 30.0, "outputScale": 16.0},
        },
        "expressions": {"preset": {name: expression(name) for name in presets}},
    }
    gltf = g.GLTF2(
        asset=g.Asset(version="2.0", generator="Townhall avatar builder"),
        scene=0,
        scenes=[g.Scene(name="Avatar", nodes=[0, *mesh_nodes.values()])],
        nodes=nodes,
        meshes=gmeshes,
        skins=[skin],
        materials=gmats,
        accessors=accessors,
        bufferViews=blob.views,
        buffers=[g.Buffer(byteLength=len(blob.data))],
        extensionsUsed=["VRMC_vrm", "KHR_materials_unlit"],
        extensions={"VRMC_vrm": vrm},
    )
    gltf.set_binary_blob(bytes(blob.data))
    return b"".join(gltf.save_to_bytes())


def vrm_json(data: bytes) -> dict[str, object]:
    """The JSON chunk of a GLB (for checks and tools)."""
    n = int.from_bytes(data[12:16], "little")
    out: dict[str, object] = json.loads(data[20 : 20 + n])
    return out


__all__ = ["F64", "I32", "Material", "MeshSpec", "VrmMeta", "vrm_json", "write_vrm"]
