"""The clone's VRM on the GPU: each primitive's vertices once, skinned in the vertex shader
from a buffer texture of joint matrices, with the frame's morph targets (mouth shapes,
blinks, emotions) added from another buffer texture before skinning."""

from __future__ import annotations

import numpy as np
from OpenGL import GL

from .gl import BufferTexture, Program, Texture2D, VertexArray
from .model import Primitive, VrmModel

MAX_MORPHS = 16  # active morph targets per primitive per frame (the shader's arrays)


class _GpuPrimitive:
    def __init__(self, p: Primitive) -> None:
        self.p = p
        self.vao = VertexArray()
        self.vao.attribute(0, p.positions)
        self.vao.attribute(1, p.normals)
        self.vao.attribute(2, p.colors)
        self.vao.attribute(3, p.uvs if p.uvs is not None else np.zeros((len(p.positions), 2), np.float32))
        self.vao.attribute(4, p.joints.astype(np.uint16), integer=True)
        self.vao.attribute(5, p.weights)
        self.vao.indices(p.indices)
        n = len(p.morph_positions)
        self.morph_pos = BufferTexture(p.morph_positions.reshape(-1, 3) if n else np.zeros((1, 3)), 3)
        self.morph_nrm = BufferTexture(p.morph_normals.reshape(-1, 3) if n else np.zeros((1, 3)), 3)
        self.texture = None
        if p.material.texture is not None:
            img = p.material.texture
            self.texture = Texture2D(img.shape[1], img.shape[0])
            self.texture.upload(img)


class AvatarGL:
    """Uploads a VrmModel; ``update()`` once per frame, ``draw()`` per eye."""

    def __init__(self, model: VrmModel) -> None:
        self.model = model
        self.prims = [_GpuPrimitive(p) for p in model.primitives]
        self.joint_tex = [BufferTexture(np.zeros((len(s.joints) * 4, 4), np.float32)) for s in model.skins]
        self.weights: list[np.ndarray] = [np.zeros(n, np.float32) for n in model.mesh_targets]
        # Opaque first, then cut-out, then blended (hair cards, lashes of other models).
        order = {"OPAQUE": 0, "MASK": 1, "BLEND": 2}
        self.prims.sort(key=lambda g: order.get(g.p.material.alpha_mode, 0))

    def update(self, joints: list[np.ndarray], weights: list[np.ndarray]) -> None:
        for tex, mats in zip(self.joint_tex, joints, strict=True):
            # Each matrix as four column texels (GLSL mat4 from columns).
            tex.update(np.ascontiguousarray(mats.transpose(0, 2, 1)).reshape(-1, 4))
        self.weights = weights

    def draw(self, prog: Program, model_matrix: np.ndarray) -> int:
        prog.mat4("uModel", model_matrix)
        prog.i("uJoints", 1)
        prog.i("uMorphPos", 2)
        prog.i("uMorphNrm", 3)
        prog.i("uTex", 0)
        tris = 0
        for g in self.prims:
            m = g.p.material
            w = self.weights[g.p.mesh] if g.p.mesh < len(self.weights) else np.zeros(0)
            active = np.nonzero(w[: len(g.p.morph_positions)] > 1e-3)[0][:MAX_MORPHS]
            prog.i("uMorphCount", len(active))
            if len(active):
                GL.glUniform1iv(prog.loc("uMorphIndex"), len(active), active.astype(np.int32))
                GL.glUniform1fv(prog.loc("uMorphWeight"), len(active), w[active].astype(np.float32))
            prog.i("uVertexCount", len(g.p.positions))
            GL.glUniform4f(prog.loc("uBase"), *m.color)
            prog.i("uUnlit", 1 if m.unlit else 0)
            prog.f("uAlphaCutoff", m.alpha_cutoff if m.alpha_mode == "MASK" else -1.0)
            prog.i("uHasTex", 1 if g.texture is not None else 0)
            if g.texture is not None:
                g.texture.bind(0)
            self.joint_tex[g.p.skin].bind(1)
            g.morph_pos.bind(2)
            g.morph_nrm.bind(3)
            if m.double_sided:
                GL.glDisable(GL.GL_CULL_FACE)
            else:
                GL.glEnable(GL.GL_CULL_FACE)
            blend = m.alpha_mode == "BLEND"
            if blend:
                GL.glEnable(GL.GL_BLEND)
                GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
                GL.glDepthMask(GL.GL_FALSE)
            g.vao.draw()
            if blend:
                GL.glDisable(GL.GL_BLEND)
                GL.glDepthMask(GL.GL_TRUE)
            tris += len(g.p.indices) // 3
        GL.glDisable(GL.GL_CULL_FACE)
        GL.glActiveTexture(GL.GL_TEXTURE0)
        return tris
