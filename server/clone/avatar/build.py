"""Build the avatar of an appearance: skeleton, face, body, hair, clothes -> VRM bytes.

Deterministic: the same appearance always gives the same bytes (no randomness, no
timestamps), so a built file can be cached by the appearance's key and rebuilt to check.
"""

from __future__ import annotations

import hashlib

import numpy as np

from townhall.protocol.skeleton import SKELETON_BONES

from .appearance import Appearance, hex_colour, srgb_to_linear
from .body import BONE, Dense, arm, details, leg, neck, skirt, torso
from .hair import glasses, hair
from .head import EXPRESSION_NAMES, build_face
from .mesh import Part
from .skeleton import body_frame
from .vrm import Material, MeshSpec, VrmMeta, write_vrm

#: Bump when the builder's output changes for the same appearance (cache keys use it).
BUILDER_VERSION = 2  # bump when the same appearance builds a different model

#: The mouth's inside: unlit, so the pages and the headset can find an open mouth by colour.
MOUTH_RGB = (0x3A / 255, 0x0C / 255, 0x12 / 255)


def _materials(ap: Appearance) -> list[Material]:
    skin = ap.rgb("skin_tone")
    hair_c = ap.rgb("hair_colour")
    if ap.lip_colour:
        lips = ap.rgb("lip_colour")
    else:
        r, gr, b = hex_colour(ap.skin_tone)
        lips = srgb_to_linear((min(1.0, r * 0.88 + 0.06), gr * 0.62, b * 0.62))
    brows = tuple(c * 0.75 for c in hair_c)
    return [
        Material("face", (1.0, 1.0, 1.0), roughness=0.6),
        Material("skin", skin, roughness=0.62),
        Material("lips", lips, roughness=0.45),
        Material("brows", brows, roughness=0.95),  # type: ignore[arg-type]
        Material("lashes", (0.012, 0.009, 0.008), roughness=0.9),
        Material("sclera", (0.82, 0.8, 0.76), roughness=0.3),
        Material("iris", ap.rgb("eye_colour"), roughness=0.3),
        Material("pupil", (0.01, 0.01, 0.012), roughness=0.2),
        Material("teeth", (0.78, 0.75, 0.68), roughness=0.4),
        Material("mouth", srgb_to_linear(MOUTH_RGB), unlit=True),
        Material("hair", hair_c, roughness=0.55, double_sided=True),
        Material("jacket", ap.rgb("clothing_colour"), roughness=0.85),
        Material("sweater", ap.rgb("clothing_colour"), roughness=0.95),
        Material("shirt", ap.rgb("shirt_colour"), roughness=0.75),
        Material("tie", srgb_to_linear((0.45, 0.1, 0.14)), roughness=0.6),
        Material("buttons", srgb_to_linear((0.08, 0.07, 0.07)), roughness=0.35),
        Material("lower", ap.rgb("lower_colour"), roughness=0.85),
        Material("legs", skin, roughness=0.6),
        Material("shoes", ap.rgb("shoe_colour"), roughness=0.35),
        Material("glasses", ap.rgb("glasses_colour"), roughness=0.3, metallic=0.3),
    ]


def _to_part(d: Dense) -> Part:
    """Dense weights -> the four largest influences per vertex, renormalised."""
    order = np.argsort(-d.w, axis=1, kind="stable")[:, :4]
    w = np.take_along_axis(d.w, order, axis=1)
    w = np.clip(w, 0, None)
    w = np.where(w < 1e-3, 0.0, w)
    w /= w.sum(axis=1, keepdims=True)
    # Quantise so the float32 weights sum to one exactly enough for validators.
    w = np.round(w, 4)
    w[:, 0] += 1 - w.sum(axis=1)
    joints = np.where(w > 0, order, 0).astype(np.int32)
    return Part(d.name, d.pts, d.tris, d.mats, joints, w)


def build_avatar(ap: Appearance, name: str = "Avatar") -> bytes:
    """The VRM 1.0 file (GLB bytes) of ``ap``."""
    fr = body_frame(ap)
    s = fr.height / 1.70
    mats = {m.name: m.color for m in _materials(ap)}
    face = build_face(fr, lambda bone: BONE[bone], mats)
    # The eye bones sit at the eyeballs' centres the face placed.
    fr.bones["leftEye"] = face.eye_centers[0].copy()
    fr.bones["rightEye"] = face.eye_centers[1].copy()
    body: list[Dense] = [torso(fr, ap)]
    body += neck(fr, ap)
    left_arm = arm(fr, ap)
    body += left_arm + [p.mirrored(p.name.replace("left", "right")) for p in left_arm]
    left_leg = leg(fr, ap)
    body += left_leg + [p.mirrored(p.name.replace("left", "right")) for p in left_leg]
    if ap.lower == "skirt":
        body.append(skirt(fr, ap))
    body += details(fr, ap)
    body += hair(face.shape, ap, s, float(fr.bones["neck"][1]))
    body += glasses(face.eye_centers, face.shape, ap, s)
    parts = [_to_part(d) for d in body] + face.eyes + [face.ears]
    mid = (face.eye_centers[0] + face.eye_centers[1]) / 2
    meta = VrmMeta(
        name=name, authors=["Townhall avatar builder"], look_at_offset=tuple(mid - fr.bones["head"])
    )
    meshes = [MeshSpec("Face", [face.part], EXPRESSION_NAMES), MeshSpec("Body", parts)]
    return write_vrm(fr.bones, meshes, _materials(ap), meta)


def cache_key(ap: Appearance, name: str) -> str:
    text = f"v{BUILDER_VERSION};{name};{ap.key()};{','.join(SKELETON_BONES)}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]
