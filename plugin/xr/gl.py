"""Small OpenGL 3.3 core helpers: shader programs, vertex arrays, buffer textures.

Only what the renderer needs, over PyOpenGL: compile and link with readable errors, upload
numpy arrays as vertex attributes (float or integer, per vertex or per instance), and
float buffer textures (``samplerBuffer``) for joint matrices and morph target deltas.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field

import numpy as np
from OpenGL import GL


class ShaderError(RuntimeError):
    """A shader that does not compile or link (the driver's log is in the message)."""


def program(vertex: str, fragment: str, defines: tuple[str, ...] = ()) -> int:
    head = "#version 330 core\n" + "".join(f"#define {d}\n" for d in defines)
    shaders = []
    for kind, src in ((GL.GL_VERTEX_SHADER, vertex), (GL.GL_FRAGMENT_SHADER, fragment)):
        sh = GL.glCreateShader(kind)
        GL.glShaderSource(sh, head + src)
        GL.glCompileShader(sh)
        if not GL.glGetShaderiv(sh, GL.GL_COMPILE_STATUS):
            log = GL.glGetShaderInfoLog(sh).decode(errors="replace")
            raise ShaderError(f"shader does not compile ({defines}): {log}")
        shaders.append(sh)
    prog = GL.glCreateProgram()
    for sh in shaders:
        GL.glAttachShader(prog, sh)
    GL.glLinkProgram(prog)
    if not GL.glGetProgramiv(prog, GL.GL_LINK_STATUS):
        raise ShaderError(f"program does not link: {GL.glGetProgramInfoLog(prog).decode()}")
    for sh in shaders:
        GL.glDeleteShader(sh)
    return int(prog)


@dataclass
class Program:
    """A linked program and its uniform locations (looked up once)."""

    id: int
    _locs: dict[str, int] = field(default_factory=dict)

    def loc(self, name: str) -> int:
        if name not in self._locs:
            self._locs[name] = int(GL.glGetUniformLocation(self.id, name))
        return self._locs[name]

    def use(self) -> None:
        GL.glUseProgram(self.id)

    def mat4(self, name: str, m: np.ndarray) -> None:
        GL.glUniformMatrix4fv(self.loc(name), 1, GL.GL_TRUE, np.ascontiguousarray(m, np.float32))

    def vec3(self, name: str, v: object) -> None:
        GL.glUniform3f(self.loc(name), *[float(x) for x in v])  # type: ignore[attr-defined]

    def f(self, name: str, v: float) -> None:
        GL.glUniform1f(self.loc(name), float(v))

    def i(self, name: str, v: int) -> None:
        GL.glUniform1i(self.loc(name), int(v))


class VertexArray:
    """A VAO with its buffers; attributes by location."""

    def __init__(self) -> None:
        self.id = int(GL.glGenVertexArrays(1))
        self.buffers: list[int] = []
        self.count = 0  # indices (or vertices) to draw
        self.index_type = GL.GL_UNSIGNED_INT
        self.instances = 0

    def attribute(
        self, location: int, data: np.ndarray, divisor: int = 0, integer: bool = False
    ) -> int:
        GL.glBindVertexArray(self.id)
        buf = int(GL.glGenBuffers(1))
        self.buffers.append(buf)
        arr = np.ascontiguousarray(data)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buf)
        GL.glBufferData(
            GL.GL_ARRAY_BUFFER,
            arr.nbytes,
            arr,
            GL.GL_DYNAMIC_DRAW if divisor else GL.GL_STATIC_DRAW,
        )
        width = arr.shape[1] if arr.ndim > 1 else 1
        cols = (width + 3) // 4 if width > 4 else 1
        per = width if cols == 1 else 4
        stride = arr.strides[0]
        for c in range(cols):
            GL.glEnableVertexAttribArray(location + c)
            offset = ctypes.c_void_p(c * 4 * arr.itemsize)
            if integer:
                kind = {
                    np.dtype(np.uint8): GL.GL_UNSIGNED_BYTE,
                    np.dtype(np.uint16): GL.GL_UNSIGNED_SHORT,
                    np.dtype(np.uint32): GL.GL_UNSIGNED_INT,
                }[arr.dtype]
                GL.glVertexAttribIPointer(location + c, per, kind, stride, offset)
            else:
                GL.glVertexAttribPointer(
                    location + c, per, GL.GL_FLOAT, GL.GL_FALSE, stride, offset
                )
            if divisor:
                GL.glVertexAttribDivisor(location + c, divisor)
        GL.glBindVertexArray(0)
        return buf

    def update(self, buf: int, data: np.ndarray) -> None:
        arr = np.ascontiguousarray(data)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buf)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, arr.nbytes, arr, GL.GL_DYNAMIC_DRAW)

    def indices(self, data: np.ndarray) -> None:
        GL.glBindVertexArray(self.id)
        buf = int(GL.glGenBuffers(1))
        self.buffers.append(buf)
        arr = np.ascontiguousarray(data.reshape(-1))
        self.index_type = GL.GL_UNSIGNED_SHORT if arr.dtype == np.uint16 else GL.GL_UNSIGNED_INT
        if arr.dtype not in (np.uint16, np.uint32):
            arr = arr.astype(np.uint32)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, buf)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, arr.nbytes, arr, GL.GL_STATIC_DRAW)
        GL.glBindVertexArray(0)
        self.count = len(arr)

    def draw(self, mode: int = GL.GL_TRIANGLES) -> None:
        GL.glBindVertexArray(self.id)
        if self.instances:
            GL.glDrawElementsInstanced(mode, self.count, self.index_type, None, self.instances)
        else:
            GL.glDrawElements(mode, self.count, self.index_type, None)
        GL.glBindVertexArray(0)

    def draw_arrays(self, mode: int, count: int) -> None:
        GL.glBindVertexArray(self.id)
        GL.glDrawArrays(mode, 0, count)
        GL.glBindVertexArray(0)


class BufferTexture:
    """Floats for a ``samplerBuffer`` (RGBA32F or RGB32F texels)."""

    def __init__(self, data: np.ndarray, channels: int = 4) -> None:
        self.buffer = int(GL.glGenBuffers(1))
        self.texture = int(GL.glGenTextures(1))
        self.format = GL.GL_RGBA32F if channels == 4 else GL.GL_RGB32F
        self.update(data)

    def update(self, data: np.ndarray) -> None:
        arr = np.ascontiguousarray(data, np.float32).reshape(-1)
        if arr.size == 0:
            arr = np.zeros(4, np.float32)
        GL.glBindBuffer(GL.GL_TEXTURE_BUFFER, self.buffer)
        GL.glBufferData(GL.GL_TEXTURE_BUFFER, arr.nbytes, arr, GL.GL_DYNAMIC_DRAW)
        GL.glBindTexture(GL.GL_TEXTURE_BUFFER, self.texture)
        GL.glTexBuffer(GL.GL_TEXTURE_BUFFER, self.format, self.buffer)

    def bind(self, unit: int) -> None:
        GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
        GL.glBindTexture(GL.GL_TEXTURE_BUFFER, self.texture)


class Texture2D:
    """An RGBA8 texture (panels, the screens' picture)."""

    def __init__(self, width: int, height: int, data: np.ndarray | None = None) -> None:
        self.id = int(GL.glGenTextures(1))
        self.width, self.height = width, height
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR_MIPMAP_LINEAR)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_S, GL.GL_CLAMP_TO_EDGE)
        GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_WRAP_T, GL.GL_CLAMP_TO_EDGE)
        GL.glTexImage2D(
            GL.GL_TEXTURE_2D,
            0,
            GL.GL_RGBA8,
            width,
            height,
            0,
            GL.GL_RGBA,
            GL.GL_UNSIGNED_BYTE,
            data,
        )
        GL.glGenerateMipmap(GL.GL_TEXTURE_2D)

    def upload(self, rgba: np.ndarray) -> None:
        """Rows top first (as images are); GL's origin is the bottom left."""
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)
        GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
        flipped = np.ascontiguousarray(rgba[::-1])
        GL.glTexSubImage2D(
            GL.GL_TEXTURE_2D,
            0,
            0,
            0,
            self.width,
            self.height,
            GL.GL_RGBA,
            GL.GL_UNSIGNED_BYTE,
            flipped,
        )
        GL.glGenerateMipmap(GL.GL_TEXTURE_2D)

    def bind(self, unit: int) -> None:
        GL.glActiveTexture(GL.GL_TEXTURE0 + unit)
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.id)


class RenderTarget:
    """A colour texture with a depth buffer to draw into (the screens' close-up)."""

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.texture = Texture2D(width, height)
        self.fbo = int(GL.glGenFramebuffers(1))
        self.depth = int(GL.glGenRenderbuffers(1))
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self.depth)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT24, width, height)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferTexture2D(
            GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, self.texture.id, 0
        )
        GL.glFramebufferRenderbuffer(
            GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, self.depth
        )
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
