"""The clone's VRM on the GPU: each primitive's vertices once, skinned in the vertex shader
from a buffer texture of joint matrices, with the frame's morph targets (mouth shapes,
blinks, emotions) added from another buffer texture before skinning."""

from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL

from . import shaders
from .gl import BufferTexture, Program, ShaderError, Texture2D, VertexArray
from .model import Primitive, VrmModel

MAX_MORPHS = 16  # active morph targets per primitive per frame (the shader's arrays)


def skinning_program() -> int:
    """The skinning pass: a vertex shader whose outputs are captured, no fragments."""
    head = "#version 330 core\n"
    ids = []
    for kind, src in (
        (GL.GL_VERTEX_SHADER, shaders.SKIN_VS),
        (GL.GL_FRAGMENT_SHADER, shaders.SKIN_FS),
    ):
        sh = GL.glCreateShader(kind)
        GL.glShaderSource(sh, head + src)
        GL.glCompileShader(sh)
        if not GL.glGetShaderiv(sh, GL.GL_COMPILE_STATUS):
            raise ShaderError(
                f"skinning shader: {GL.glGetShaderInfoLog(sh).decode(errors='replace')}"
            )
        ids.append(sh)
    prog = GL.glCreateProgram()
    for sh in ids:
        GL.glAttachShader(prog, sh)
    names = (ctypes.c_char_p * 2)(b"tPos", b"tNormal")
    GL.glTransformFeedbackVaryings(
        prog,
        2,
        ctypes.cast(names, ctypes.POINTER(ctypes.POINTER(ctypes.c_char))),
        GL.GL_INTERLEAVED_ATTRIBS,
    )
    GL.glLinkProgram(prog)
    if not GL.glGetProgramiv(prog, GL.GL_LINK_STATUS):
        raise ShaderError(f"skinning program: {GL.glGetProgramInfoLog(prog).decode()}")
    for sh in ids:
        GL.glDeleteShader(sh)
    return int(prog)


class _GpuPrimitive:
    def __init__(self, p: Primitive) -> None:
        self.p = p
        n = len(p.positions)
        # The skinning pass reads the rest vertices and writes skinned ones (tf_buffer).
        self.skin_vao = VertexArray()
        self.skin_vao.attribute(0, p.positions)
        self.skin_vao.attribute(1, p.normals)
        self.skin_vao.attribute(4, p.joints.astype(np.uint16), integer=True)
        self.skin_vao.attribute(5, p.weights)
        self.tf_buffer = int(GL.glGenBuffers(1))
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.tf_buffer)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, n * 24, None, GL.GL_DYNAMIC_COPY)
        # The drawing pass: skinned position and normal interleaved, colour, UV, indices.
        self.vao = VertexArray()
        GL.glBindVertexArray(self.vao.id)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self.tf_buffer)
        for loc, off in ((0, 0), (1, 12)):
            GL.glEnableVertexAttribArray(loc)
            GL.glVertexAttribPointer(loc, 3, GL.GL_FLOAT, GL.GL_FALSE, 24, ctypes.c_void_p(off))
        GL.glBindVertexArray(0)
        self.vao.attribute(2, p.colors)
        self.vao.attribute(3, p.uvs if p.uvs is not None else np.zeros((n, 2), np.float32))
        self.vao.indices(p.indices)
        n = len(p.morph_positions)
        self.morph_pos = BufferTexture(
            p.morph_positions.reshape(-1, 3) if n else np.zeros((1, 3)), 3
        )
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
        self.skin_prog = Program(skinning_program())
        self.prims = [_GpuPrimitive(p) for p in model.primitives]
        self.joint_tex = [
            BufferTexture(np.zeros((len(s.joints) * 4, 4), np.float32)) for s in model.skins
        ]
        self.weights: list[np.ndarray] = [np.zeros(n, np.float32) for n in model.mesh_targets]
        # Opaque first, then cut-out, then blended (hair cards, lashes of other models).
        order = {"OPAQUE": 0, "MASK": 1, "BLEND": 2}
        self.prims.sort(key=lambda g: order.get(g.p.material.alpha_mode, 0))

    def update(self, joints: list[np.ndarray], weights: list[np.ndarray]) -> None:
        """Skin every vertex once for this frame (transform feedback into each primitive's
        buffer); the eyes and the screens then draw the same skinned vertices."""
        for tex, mats in zip(self.joint_tex, joints, strict=True):
            # Each matrix as four column texels (GLSL mat4 from columns).
            tex.update(np.ascontiguousarray(mats.transpose(0, 2, 1)).reshape(-1, 4))
        self.weights = weights
        prog = self.skin_prog
        prog.use()
        prog.i("uJoints", 1)
        prog.i("uMorphPos", 2)
        prog.i("uMorphNrm", 3)
        GL.glEnable(GL.GL_RASTERIZER_DISCARD)
        for g in self.prims:
            w = self.weights[g.p.mesh] if g.p.mesh < len(self.weights) else np.zeros(0)
            active = np.nonzero(w[: len(g.p.morph_positions)] > 1e-3)[0][:MAX_MORPHS]
            prog.i("uMorphCount", len(active))
            if len(active):
                GL.glUniform1iv(prog.loc("uMorphIndex"), len(active), active.astype(np.int32))
                GL.glUniform1fv(prog.loc("uMorphWeight"), len(active), w[active].astype(np.float32))
            prog.i("uVertexCount", len(g.p.positions))
            self.joint_tex[g.p.skin].bind(1)
            g.morph_pos.bind(2)
            g.morph_nrm.bind(3)
            GL.glBindBufferBase(GL.GL_TRANSFORM_FEEDBACK_BUFFER, 0, g.tf_buffer)
            GL.glBindVertexArray(g.skin_vao.id)
            GL.glBeginTransformFeedback(GL.GL_POINTS)
            GL.glDrawArrays(GL.GL_POINTS, 0, len(g.p.positions))
            GL.glEndTransformFeedback()
        GL.glBindVertexArray(0)
        GL.glBindBufferBase(GL.GL_TRANSFORM_FEEDBACK_BUFFER, 0, 0)
        GL.glDisable(GL.GL_RASTERIZER_DISCARD)
        GL.glActiveTexture(GL.GL_TEXTURE0)

    def draw(self, prog: Program, model_matrix: np.ndarray) -> int:
        """Draw the skinned vertices with the lit shader (static variant)."""
        prog.mat4("uModel", model_matrix)
        prog.i("uTex", 0)
        tris = 0
        for g in self.prims:
            m = g.p.material
            GL.glUniform4f(prog.loc("uBase"), *m.color)
            prog.i("uUnlit", 1 if m.unlit else 0)
            prog.f("uAlphaCutoff", m.alpha_cutoff if m.alpha_mode == "MASK" else -1.0)
            prog.i("uHasTex", 1 if g.texture is not None else 0)
            if g.texture is not None:
                g.texture.bind(0)
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
