"""``townhall xr``: the reference headset app, and its desktop mirror (``--window``).

The mirror joins the room as any client does, plays the stage through the same
StagePlayer and draws the same HallRenderer into a GLFW window, from the spectator camera
or, with a headset, from the wearer's eyes. Audio goes to a sink: a WAV file
(``--audio-wav``) or nowhere; it is pulled on the render clock exactly as a sound device
callback would pull it. ``--frames`` and ``--screenshot`` make it scriptable for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
import wave
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ..client import RoomClient, local_us
from ..playback import SAMPLE_RATE, StagePlayer

OUTPUT_LATENCY_US = 40_000


def write_png(path: Path, rgb: np.ndarray) -> None:
    """A minimal PNG writer (8-bit RGB), so screenshots need no imaging library."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw, 6))
        + chunk(b"IEND", b"")
    )


class WavSink:
    """Writes what would be played to a WAV file (48 kHz mono)."""

    def __init__(self, path: Path) -> None:
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 (closed by close())
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)

    def write(self, pcm: np.ndarray) -> None:
        self._wav.writeframes(pcm.astype("<i2").tobytes())

    def close(self) -> None:
        self._wav.close()


class Mirror:
    """A window showing the room as the headset would."""

    def __init__(self, width: int = 1280, height: int = 720, visible: bool = True) -> None:
        import glfw

        if not glfw.init():
            raise RuntimeError("GLFW could not start (no display? set DISPLAY or use Xvfb)")
        glfw.window_hint(glfw.VISIBLE, glfw.TRUE if visible else glfw.FALSE)
        glfw.window_hint(glfw.CONTEXT_VERSION_MAJOR, 2)
        glfw.window_hint(glfw.CONTEXT_VERSION_MINOR, 1)
        self.window = glfw.create_window(width, height, "Townhall", None, None)
        if not self.window:
            glfw.terminate()
            raise RuntimeError("GLFW could not open an OpenGL 2.1 window")
        glfw.make_context_current(self.window)
        glfw.swap_interval(1)
        self.glfw = glfw

    def size(self) -> tuple[int, int]:
        w, h = self.glfw.get_framebuffer_size(self.window)
        return int(w), int(h)

    def should_close(self) -> bool:
        return bool(self.glfw.window_should_close(self.window))

    def swap(self) -> None:
        self.glfw.swap_buffers(self.window)
        self.glfw.poll_events()

    def screenshot(self, path: Path) -> None:
        from OpenGL import GL

        w, h = self.size()
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        data = GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        rgb = np.frombuffer(data, np.uint8).reshape(h, w, 3)[::-1]
        write_png(path, np.ascontiguousarray(rgb))

    def close(self) -> None:
        self.glfw.destroy_window(self.window)
        self.glfw.terminate()


async def run_mirror(args: argparse.Namespace) -> int:
    from OpenGL import GL

    from townhall.scenes.loader import default_scene_path, load_scene

    from .render import HallRenderer, front_row_camera, look_at, perspective, pose_view

    scene = load_scene(args.scene or default_scene_path())
    mirror = Mirror(args.width, args.height)
    renderer = HallRenderer(scene)
    headset_client: Any = None
    player: StagePlayer
    client: RoomClient
    if args.window:
        holder: dict[str, StagePlayer] = {}
        client = RoomClient(
            args.url,
            args.token,
            client_info="townhall-xr-mirror/0.1",
            on_message=lambda m: holder["p"].on_message(m, local_us()) if holder else None,
        )
        await client.connect()
        player = holder["p"] = StagePlayer(client.clock)
        await client.sync_clock()
    else:  # a headset: tracking, pose uplink and the raise button from OpenXR
        from .app import HeadsetClient

        headset_client = HeadsetClient(args.url, args.token, headless=True)
        task = asyncio.create_task(headset_client.run())
        while headset_client.player is None and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            return int(bool(task.exception()))
        client, player = headset_client.client, headset_client.player
    sink = WavSink(Path(args.audio_wav)) if args.audio_wav else None
    cam = scene.spectator_camera
    eye, target = front_row_camera(scene)
    frames = 0
    last_audio = local_us()
    try:
        while not mirror.should_close() and (args.frames <= 0 or frames < args.frames):
            now = local_us()
            n = int((now - last_audio) * SAMPLE_RATE / 1e6)
            if n > 0:  # what a sound device would have pulled since the last frame
                pcm = player.read_audio(n, now + OUTPUT_LATENCY_US)
                last_audio += n * 1e6 / SAMPLE_RATE
                if sink is not None:
                    sink.write(pcm)
            renderer.seats_of = {s: p.seat for s, p in client.state.participants.items()}
            frame = player.frame(now + 16_000)
            w, h = mirror.size()
            GL.glViewport(0, 0, w, h)
            sample = headset_client.last_sample if headset_client is not None else None
            seat = client.welcome.seat if client.welcome is not None else -1
            if sample is not None and sample.head is not None and 0 <= seat < len(scene.seats):
                view = _seat_view(scene, seat, sample.head, pose_view)
            else:
                view = look_at(eye, target)
            renderer.draw(frame, view, perspective(cam.fov_deg, w / max(1, h)))
            frames += 1
            if args.screenshot and frames == max(1, args.frames):
                mirror.screenshot(Path(args.screenshot))
            mirror.swap()
            await asyncio.sleep(max(0.0, 1 / 60 - (local_us() - now) / 1e6))
    finally:
        if sink is not None:
            sink.close()
        if headset_client is not None:
            headset_client.stop()
        with contextlib.suppress(Exception):
            await client.close()
        mirror.close()
    print(f"frames {frames} packets {player.stats.packets} lost_frames {player.stats.lost_frames}")
    return 0


def _seat_view(scene: Any, seat: int, head: Any, pose_view: Any) -> Any:
    """The wearer's eye in the hall: seat position + the seat's yaw applied to the head pose."""
    from .render import quat_matrix, yaw_matrix

    s = scene.seats[seat]
    r = yaw_matrix(s.yaw_deg)
    pos = np.array(s.position, np.float32) + r @ np.array(head[:3], np.float32)
    m = r @ quat_matrix(head[3:])
    # back to a quaternion-free view: build the 4x4 directly
    view = np.eye(4, dtype=np.float32)
    view[:3, :3] = m.T
    view[:3, 3] = -m.T @ pos
    return view


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    code = asyncio.run(run_mirror(args))
    if args.verbose:
        print(f"ran {time.monotonic() - started:.1f} s")
    return code
