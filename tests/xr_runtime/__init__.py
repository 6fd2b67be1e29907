"""The OpenXR test runtime: build it, point the loader at it, drive it, see what it showed.

``build(tmp)`` compiles runtime.c with the system C compiler into ``tmp`` and writes the
runtime manifest; ``TestRuntime`` sets ``XR_RUNTIME_JSON`` (the Khronos loader's override)
and ``TOWNHALL_XR_CONTROL`` and maps the control block (control.h) so a test can move the
headset, press buttons and ask for session states while the plugin runs real OpenXR calls.
Sessions are headless (XR_MND_headless) or OpenGL (XR_KHR_opengl_enable); for the latter,
``displayed()`` returns the two eye images of the last projection layer the app submitted.
"""

from __future__ import annotations

import json
import mmap
import os
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

HERE = Path(__file__).parent
MAGIC = 0x54485852

# control.h, field by field (little-endian, no padding): the in half, then the out half.
_IN = "<IiIIII" + "7f" * 4
_OUT = "<iIIIIIIIq"
_GL = "<I" + "IIIIiIIIIII" + "7f" * 2 + "4f" * 2
_IN_SIZE = struct.calcsize(_IN)
_GL_AT = _IN_SIZE + struct.calcsize(_OUT)
_EYE_AT = _GL_AT + struct.calcsize(_GL)
EYE_MAX_W, EYE_MAX_H = 640, 480
SIZE = _EYE_AT + 2 * EYE_MAX_H * EYE_MAX_W * 4
GL_RGBA8 = 0x8058
GL_SRGB8_ALPHA8 = 0x8C43

BUTTON_LEFT_SELECT = 1
BUTTON_RIGHT_SELECT = 2
BUTTON_RIGHT_A = 4
BUTTON_MENU = 8

Pose7 = tuple[float, float, float, float, float, float, float]  # x y z, qx qy qz qw


class RuntimeBuildError(RuntimeError):
    """The C compiler is missing or refused runtime.c."""


def build(out_dir: Path) -> Path:
    """Compile the runtime into ``out_dir``; returns the path of its JSON manifest."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise RuntimeBuildError("no C compiler (cc or gcc) on PATH")
    out_dir.mkdir(parents=True, exist_ok=True)
    lib = out_dir / "libtownhall_xr_test_runtime.so"
    cmd = [cc, "-shared", "-fPIC", "-O1", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
           "-o", str(lib), str(HERE / "runtime.c"), "-lm", "-ldl"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeBuildError(f"{' '.join(cmd)}\n{proc.stderr}")
    manifest = out_dir / "townhall_xr_test_runtime.json"
    manifest.write_text(
        json.dumps(
            {
                "file_format_version": "1.0.0",
                "runtime": {"name": "Townhall test runtime", "library_path": str(lib)},
            }
        )
    )
    return manifest


@dataclass
class Observed:
    """What the runtime saw the app do (the control block's out half)."""

    state: int
    frames: int
    syncs: int
    sessions: int
    session_running: bool
    instance_alive: bool
    locates: int
    headless: bool
    last_display_time: int
    gl_session: bool = False
    swapchains: int = 0
    swapchain_format: int = 0
    layer_frames: int = 0  # xrEndFrame calls that submitted a projection layer
    layer_error: int = 0  # the XrResult the last bad layer failed with


@dataclass
class Displayed:
    """What the headset showed: the last submitted projection layer, read back per eye."""

    frame: int  # Observed.frames when it was read back
    eyes: np.ndarray  # (2, h, w, 4) uint8 RGBA, top row first, downscaled
    image_size: tuple[int, int]  # the submitted image rect (width, height)
    poses: list[Pose7]  # each view's pose in the layer's space
    fovs: list[tuple[float, float, float, float]]  # left, right, up, down (radians)


class TestRuntime:
    """A built runtime plus its control block; use as a context manager around the app."""

    __test__ = False  # not a pytest class

    def __init__(self, out_dir: Path) -> None:
        self.manifest = build(out_dir)
        self.control_path = out_dir / "control.bin"
        self.control_path.write_bytes(bytes(SIZE))
        self._file = self.control_path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), SIZE)
        # magic, target state (5: FOCUSED), request exit, loss pending, buttons, tracked bits
        self._in = [MAGIC, 5, 0, 0, 0, 0xF]
        self._no_gl = 0
        self._poses: dict[str, Pose7] = {
            "head": (0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0),
            "left": (-0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0),
            "right": (0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0),
            "gaze": (0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0),
        }
        self._write()
        self._saved: dict[str, str | None] = {}

    def __enter__(self) -> TestRuntime:
        for key, value in (
            ("XR_RUNTIME_JSON", str(self.manifest)),
            ("TOWNHALL_XR_CONTROL", str(self.control_path)),
        ):
            self._saved[key] = os.environ.get(key)
            os.environ[key] = value
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def close(self) -> None:
        self._map.close()
        self._file.close()

    def _write(self) -> None:
        flat = [v for name in ("head", "left", "right", "gaze") for v in self._poses[name]]
        struct.pack_into(_IN, self._map, 0, *self._in, *flat)
        struct.pack_into("<I", self._map, _GL_AT, self._no_gl)

    # ---------------------------------------------------------------- the headset
    def reset(self) -> None:
        """Back to a tracked, focused headset at rest with nothing pressed."""
        self._in = [MAGIC, 5, 0, 0, 0, 0xF]
        self._no_gl = 0
        self._poses.update(
            head=(0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0),
            left=(-0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0),
            right=(0.2, 0.7, -0.3, 0.0, 0.0, 0.0, 1.0),
            gaze=(0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 1.0),
        )
        self._write()

    def target_state(self, state: int) -> None:
        """The highest session state to let the app reach (an XrSessionState value)."""
        self._in[1] = int(state)
        self._write()

    def request_exit(self) -> None:
        self._in[2] = 1
        self._write()

    def lose(self) -> None:
        """Report XR_SESSION_STATE_LOSS_PENDING (the headset went away)."""
        self._in[3] = 1
        self._write()

    def buttons(self, bits: int) -> None:
        self._in[4] = bits
        self._write()

    def tracked(self, bits: int) -> None:
        """Bit 0 head, 1 left hand, 2 right hand, 3 eye gaze."""
        self._in[5] = bits
        self._write()

    def pose(self, device: str, pose: Pose7) -> None:
        """Put ``device`` (head, left, right, gaze) at ``pose`` in STAGE space."""
        self._poses[device] = pose
        self._write()

    def offer_gl(self, offered: bool) -> None:
        """Whether the next instance sees XR_KHR_opengl_enable (it does if libGL loads)."""
        self._no_gl = 0 if offered else 1
        self._write()

    def observed(self) -> Observed:
        v = struct.unpack_from(_OUT, self._map, _IN_SIZE)
        g = struct.unpack_from(_GL, self._map, _GL_AT)
        return Observed(
            v[0], v[1], v[2], v[3], bool(v[4]), bool(v[5]), v[6], bool(v[7]), v[8],
            gl_session=bool(g[1]), swapchains=g[2], swapchain_format=g[3],
            layer_frames=g[4], layer_error=g[5],
        )  # fmt: skip

    def displayed(self) -> Displayed | None:
        """The eyes of the last submitted projection layer, or None before the first one."""
        seq = -1
        for _ in range(1000):
            g = struct.unpack_from(_GL, self._map, _GL_AT)
            seq = g[6]
            if seq % 2:
                time.sleep(0.001)  # the runtime is writing: try again
                continue
            eyes = np.frombuffer(self._map, np.uint8, 2 * EYE_MAX_H * EYE_MAX_W * 4, _EYE_AT)
            eyes = eyes.reshape(2, EYE_MAX_H, EYE_MAX_W, 4).copy()
            after = struct.unpack_from(_GL, self._map, _GL_AT)
            if after[6] != seq:
                time.sleep(0.001)
                continue
            if seq == 0:
                return None
            w, h = g[8], g[9]
            f = g[12:]
            return Displayed(
                frame=g[7],
                eyes=eyes[:, :h, :w],
                image_size=(g[10], g[11]),
                poses=[tuple(f[0:7]), tuple(f[7:14])],  # type: ignore[list-item]
                fovs=[tuple(f[14:18]), tuple(f[18:22])],  # type: ignore[list-item]
            )
        raise AssertionError(f"the runtime kept writing the eye images (sequence {seq})")
