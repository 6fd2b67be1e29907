"""Pixels into the headset: an OpenGL context, per-eye swapchains and projection layers.

The XR_KHR_opengl_enable path, as pyopenxr's own ``xr.utils.gl`` helpers do it: a hidden
GLFW window gives the GL context (pyopenxr's ``GLXGraphicsBinding`` turns the current GLX
context into the session's ``XrGraphicsBindingOpenGLXlibKHR``), the runtime's graphics
requirements are asked before the session exists (the spec requires it), and each view
gets its own swapchain. Per frame, ``render()`` locates the views, and for each one
acquires and waits for a swapchain image, binds it to a framebuffer object with a depth
buffer, lets the caller draw with the view's pose and field of view, and releases it; the
returned ``XrCompositionLayerProjection`` goes to xrEndFrame.

The context is OpenGL 3.3 core (the renderer skins the clone and instances the crowd on
the GPU). Colour formats: sRGB first (GL_SRGB8_ALPHA8, written without GL_FRAMEBUFFER_SRGB, so the
renderer's display-referred colours are shown as they are), then the linear ones.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import xr
import xr.utils.gl
from OpenGL import GL

log = logging.getLogger("townhall.plugin.xr")

COLOR_FORMATS = (GL.GL_SRGB8_ALPHA8, GL.GL_RGBA8, GL.GL_RGB10_A2, GL.GL_RGBA16F)

# draw(eye index, eye pose (x y z qx qy qz qw) in the world space, XrFovf, width, height)
DrawEye = Callable[[int, tuple[float, ...], Any, int, int], None]


class GraphicsError(RuntimeError):
    """No OpenGL context (no display?) or the runtime's GL requirements are not met."""


def start_glfw(glfw: Any) -> None:
    """``glfw.init()``, with GLFW's own reason in the error instead of a warning printed aside."""
    before, glfw.ERROR_REPORTING = glfw.ERROR_REPORTING, "raise"
    try:
        ok = glfw.init()
    except glfw.GLFWError as err:
        raise GraphicsError(f"cannot open a window: {_glfw_reason(err)}") from None
    finally:
        glfw.ERROR_REPORTING = before
    if not ok:
        raise GraphicsError("cannot open a window: GLFW could not start (no display?)")


def _glfw_reason(err: Exception) -> str:
    text = str(err)
    if "DISPLAY" in text:
        return "no display (DISPLAY is not set; run on a desktop, or under Xvfb)"
    return text.split("b'", 1)[-1].rstrip("'") or "GLFW could not start"


def core_profile_hints(glfw: Any) -> None:
    """OpenGL 3.3 core: what the renderer's shaders need (GPU skinning, instancing)."""
    glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 3)
    glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 3)
    glfw.window_hint(glfw.OPENGL_PROFILE, glfw.OPENGL_CORE_PROFILE)
    glfw.window_hint(glfw.OPENGL_FORWARD_COMPAT, glfw.TRUE)


class GlfwContext(xr.utils.GraphicsContextProvider):  # type: ignore[misc]  # pyopenxr is untyped
    """A GL context from a hidden GLFW window (GLX on X11): what the headset draws with."""

    def __init__(self) -> None:
        import glfw

        start_glfw(glfw)
        glfw.window_hint(glfw.VISIBLE, glfw.FALSE)
        core_profile_hints(glfw)
        glfw.window_hint(glfw.DOUBLEBUFFER, glfw.FALSE)
        self.window: Any = glfw.create_window(64, 64, "Townhall headset", None, None)
        if not self.window:
            glfw.terminate()
            raise GraphicsError("GLFW could not make an OpenGL 3.3 core context")
        self.glfw = glfw
        self.make_current()

    def make_current(self) -> None:
        self.glfw.make_context_current(self.window)

    def done_current(self) -> None:
        self.glfw.make_context_current(cast(Any, None))  # glfw's stubs omit "no context"

    def destroy(self) -> None:
        if self.window is not None:
            self.glfw.destroy_window(self.window)
            self.window = None
            self.glfw.terminate()

    def gl_version(self) -> tuple[int, int]:
        text = GL.glGetString(GL.GL_VERSION).decode().split()[0]
        major, minor = text.split(".")[:2]
        return int(major), int(minor)


class Swapchain:
    """One view's colour swapchain, its GL textures and a depth buffer to draw with."""

    def __init__(self, session: Any, fmt: int, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.handle = xr.create_swapchain(
            session,
            xr.SwapchainCreateInfo(
                usage_flags=xr.SwapchainUsageFlags.COLOR_ATTACHMENT_BIT
                | xr.SwapchainUsageFlags.SAMPLED_BIT,
                format=fmt,
                sample_count=1,
                width=width,
                height=height,
                face_count=1,
                array_size=1,
                mip_count=1,
            ),
        )
        self._images = xr.enumerate_swapchain_images(self.handle, xr.SwapchainImageOpenGLKHR)
        self.textures = [int(img.image) for img in self._images]
        self.depth = int(GL.glGenRenderbuffers(1))
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self.depth)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT24, width, height)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, 0)

    def destroy(self) -> None:
        GL.glDeleteRenderbuffers(1, [self.depth])
        xr.destroy_swapchain(self.handle)


class GLGraphics:
    """The headset's OpenGL side; ``Headset.open(graphics=...)`` calls it in spec order."""

    def __init__(self) -> None:
        self.context = GlfwContext()
        self.swapchains: list[Swapchain] = []
        self.format = 0
        self.framebuffer = 0
        self._binding: Any = None
        self._layer: Any = None  # kept alive until xrEndFrame has read it
        self._views: Any = None
        self.shown: list[int] = []  # the texture each eye showed last

    # ---------------------------------------------------------------- setup
    def session_next(self, instance: Any, system: Any) -> Any:
        """The XrSessionCreateInfo ``next`` chain, after checking the GL requirements."""
        req = xr.get_opengl_graphics_requirements_khr(instance, system)
        self.context.make_current()
        have = xr.Version(*self.context.gl_version(), 0)
        lowest = xr.Version(req.min_api_version_supported)
        if have.number() < lowest.number():
            raise GraphicsError(f"the runtime needs OpenGL {lowest}, this context is {have}")
        self._binding = xr.utils.gl.GLXGraphicsBinding(self.context)
        return self._binding.pointer

    def create_swapchains(self, instance: Any, system: Any, session: Any) -> None:
        """One colour swapchain per view, at the runtime's recommended size."""
        self.context.make_current()
        offered = list(xr.enumerate_swapchain_formats(session))
        fmt = next((f for f in COLOR_FORMATS if f in offered), None)
        if fmt is None:
            raise GraphicsError(f"no usable colour format among {offered}")
        self.format = int(fmt)
        views = xr.enumerate_view_configuration_views(
            instance, system, xr.ViewConfigurationType.PRIMARY_STEREO
        )
        self.swapchains = [
            Swapchain(
                session, self.format, v.recommended_image_rect_width,
                v.recommended_image_rect_height,
            )
            for v in views
        ]  # fmt: skip
        self.shown = [0] * len(self.swapchains)
        self.framebuffer = int(GL.glGenFramebuffers(1))
        log.info(
            "swapchains: %d x %dx%d, format 0x%X",
            len(self.swapchains), self.swapchains[0].width, self.swapchains[0].height, self.format,
        )  # fmt: skip

    def destroy_swapchains(self) -> None:
        if not self.swapchains and not self.framebuffer:
            return
        self.context.make_current()
        for sc in self.swapchains:
            sc.destroy()
        self.swapchains.clear()
        if self.framebuffer:
            GL.glDeleteFramebuffers(1, [self.framebuffer])
            self.framebuffer = 0

    def close(self) -> None:
        self.destroy_swapchains()
        self.context.destroy()

    # ---------------------------------------------------------------- frames
    def render(self, session: Any, space: Any, display_time: int, draw: DrawEye) -> list[Any]:
        """Draw every view into its swapchain; the layers to pass to xrEndFrame."""
        view_state, views = xr.locate_views(
            session,
            xr.ViewLocateInfo(
                view_configuration_type=xr.ViewConfigurationType.PRIMARY_STEREO,
                display_time=display_time,
                space=space,
            ),
        )
        valid = xr.ViewStateFlags.POSITION_VALID_BIT | xr.ViewStateFlags.ORIENTATION_VALID_BIT
        if (view_state.view_state_flags & valid) != valid or not self.swapchains:
            return []  # nothing trustworthy to draw from: submit no layer this frame
        self.context.make_current()
        projection_views = (xr.CompositionLayerProjectionView * len(views))()
        for i, (view, sc) in enumerate(zip(views, self.swapchains, strict=False)):
            index = xr.acquire_swapchain_image(sc.handle, xr.SwapchainImageAcquireInfo())
            xr.wait_swapchain_image(sc.handle, xr.SwapchainImageWaitInfo(xr.INFINITE_DURATION))
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.framebuffer)
            GL.glFramebufferTexture2D(
                GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_TEXTURE_2D, sc.textures[index], 0
            )
            GL.glFramebufferRenderbuffer(
                GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, sc.depth
            )
            GL.glViewport(0, 0, sc.width, sc.height)
            try:
                p, o = view.pose.position, view.pose.orientation
                draw(i, (p.x, p.y, p.z, o.x, o.y, o.z, o.w), view.fov, sc.width, sc.height)
            finally:
                GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
                xr.release_swapchain_image(sc.handle, xr.SwapchainImageReleaseInfo())
            self.shown[i] = sc.textures[index]
            pv = projection_views[i]
            pv.type = xr.StructureType.COMPOSITION_LAYER_PROJECTION_VIEW.value
            pv.pose = view.pose
            pv.fov = view.fov
            pv.sub_image.swapchain = sc.handle
            pv.sub_image.image_rect.offset.x = pv.sub_image.image_rect.offset.y = 0
            pv.sub_image.image_rect.extent.width = sc.width
            pv.sub_image.image_rect.extent.height = sc.height
            pv.sub_image.image_array_index = 0
        GL.glFlush()
        self._views = projection_views
        self._layer = xr.CompositionLayerProjection(space=space, views=projection_views)
        return [ctypes.byref(self._layer)]

    def read_eye(self, eye: int) -> np.ndarray:
        """What ``eye`` showed last, as RGB rows top first (for --screenshot)."""
        self.context.make_current()
        sc = self.swapchains[eye]
        GL.glBindTexture(GL.GL_TEXTURE_2D, self.shown[eye])
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glGetTexImage(GL.GL_TEXTURE_2D, 0, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        rgb = np.frombuffer(data, np.uint8).reshape(sc.height, sc.width, 3)[::-1]
        return np.ascontiguousarray(rgb)
