"""``townhall xr``: the reference headset app, and its desktop mirror (``--window``).

Without ``--window`` this is the headset app: ``HeadsetClient`` with an OpenGL session draws
the hall, the crowd and the clone into the headset's swapchains, one image per eye. Should
the runtime offer no OpenGL (XR_MND_headless only), the headset still tracks and sends poses
and the pictures go to a desktop window from the wearer's eyes instead.

With ``--window`` (no headset) the mirror joins the room as any client does, plays the stage
through the same StagePlayer and draws the same HallRenderer into a GLFW window from the
spectator camera. Audio goes to a sink: a WAV file
(``--audio-wav``) or nowhere; it is pulled on the render clock exactly as a sound device
callback would pull it. ``--frames`` and ``--screenshot`` make it scriptable for tests.

With ``--recording ID`` either of them plays a recorded event instead of the live room:
``RecordingClient`` (plugin/replay.py) fetches it from the server and feeds it, on its
recorded times, through the same state, StagePlayer and renderer; the raise button (A on the
right controller) skips to the next chapter, and the app ends with the recording.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import time
import wave
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..client import RoomClient, local_us
from ..playback import SAMPLE_RATE, PlaybackStats, StagePlayer
from ..replay import ChapterMark, RecordingClient
from ..signin import DeviceCode, device_sign_in
from .audio import pan_gains, stereo

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
    """Writes what would be played to a WAV file (48 kHz, mono or interleaved stereo)."""

    def __init__(self, path: Path, channels: int = 1) -> None:
        self._wav = wave.open(str(path), "wb")  # noqa: SIM115 (closed by close())
        self._wav.setnchannels(channels)
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

        from .graphics import GraphicsError, core_profile_hints, start_glfw

        start_glfw(glfw)

        glfw.window_hint(glfw.VISIBLE, glfw.TRUE if visible else glfw.FALSE)
        core_profile_hints(glfw)
        self.window = glfw.create_window(width, height, "Townhall", None, None)
        if not self.window:
            glfw.terminate()
            raise GraphicsError("cannot open an OpenGL 3.3 core window")
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


class AudioPump:
    """Pulls what a sound device would have pulled since the last call, on the render clock.
    With ``gains`` (a function giving the left and right gains now) the voice is placed at
    the stage: stereo, panned by where the wearer's head is turned."""

    def __init__(
        self,
        player: StagePlayer,
        sink: WavSink | None,
        gains: Callable[[], tuple[float, float]] | None = None,
    ) -> None:
        self.player, self.sink, self.gains = player, sink, gains
        self._last: float = local_us()

    def pump(self, now: float) -> None:
        n = int((now - self._last) * SAMPLE_RATE / 1e6)
        if n > 0:
            pcm = self.player.read_audio(n, now + OUTPUT_LATENCY_US)
            self._last += n * 1e6 / SAMPLE_RATE
            if self.gains is not None:
                pcm = stereo(pcm, self.gains())
            if self.sink is not None:
                self.sink.write(pcm)

    def close(self) -> None:
        if self.sink is not None:
            self.sink.close()


def summary(frames: int, stats: PlaybackStats) -> str:
    """The app's last line: what it showed and what of the stage it received, lost, or
    received too late to play (a machine too slow for the stream gives that audio up)."""
    return (
        f"frames {frames} packets {stats.packets} lost_frames {stats.lost_frames} late {stats.late}"
    )


def print_chapter(chapter: ChapterMark) -> None:
    print(f"chapter: {chapter.text}", flush=True)


def _replaying(client: RoomClient) -> bool:
    """A recording that has played to its end."""
    return isinstance(client, RecordingClient) and client.ended


def print_code(code: DeviceCode) -> None:
    """The sign-in code on the terminal (the headset shows it on the stage panel)."""
    print(code.instructions(), flush=True)
    if code.verification_uri_complete != code.verification_uri:
        print(f"(or open {code.verification_uri_complete})", flush=True)


async def run_mirror(args: argparse.Namespace) -> int:
    from townhall.scenes.loader import default_scene_path, load_scene

    scene = load_scene(args.scene or default_scene_path())
    if getattr(args, "sign_in", False) and args.window:
        signed = await device_sign_in(args.url, print_code)
        args.token = signed.token
    recording = getattr(args, "recording", None)
    if args.window:
        holder: dict[str, StagePlayer] = {}
        client = (
            RecordingClient(args.url, args.token or "", recording)
            if recording
            else RoomClient(args.url, args.token, client_info="townhall-xr-mirror/0.1")
        )
        client.on_message = lambda m: holder["p"].on_message(m, local_us()) if holder else None
        await client.connect()
        player = holder["p"] = StagePlayer(client.clock, adaptive=client.live)
        await client.sync_clock()
        return await _window_loop(args, scene, client, player, None)
    # A headset: tracking, pose uplink and the raise button from OpenXR; pictures into the
    # headset when the runtime takes OpenGL, else (a headless runtime) into a mirror window.
    from .app import HeadsetClient

    replay = RecordingClient(args.url, args.token or "", recording) if recording else None
    if replay is not None:
        replay.on_chapter = print_chapter
    headset_client = HeadsetClient(
        args.url, args.token or "", headless=None, scene=scene, sign_in=print_code,
        client=replay,
    )  # fmt: skip
    task = asyncio.create_task(headset_client.run())
    while (headset_client.player is None or headset_client.headset.session is None) and (
        not task.done()
    ):
        await asyncio.sleep(0.01)
    if task.done():
        err = task.exception()
        if err is not None:
            raise err  # no runtime, no display, a refused token: the CLI says it in a line
        return 0
    assert headset_client.player is not None
    if headset_client.headset.graphics is not None:
        return await _headset_loop(args, headset_client, task)
    return await _window_loop(args, scene, headset_client.client, headset_client.player,
                              headset_client)  # fmt: skip


async def _headset_loop(args: argparse.Namespace, hc: Any, task: asyncio.Task[Any]) -> int:
    """Pictures go to the headset (HeadsetClient draws them); here: audio and --frames."""
    assert hc.player is not None
    shot: list[np.ndarray] = []

    def after_render(hc: Any) -> None:
        if args.frames > 0 and hc.frames_shown >= args.frames:
            if args.screenshot and not shot:
                shot.append(hc.headset.graphics.read_eye(0))
            hc.stop()

    hc.after_render = after_render
    mark = hc.scene.stage.clone_mark.position
    voice_at = (mark[0], mark[1] + 1.55, mark[2])  # the clone's mouth, roughly

    def gains() -> tuple[float, float]:
        head = hc.head_world()
        return (1.0, 1.0) if head is None else pan_gains(head, voice_at)

    sink = WavSink(Path(args.audio_wav), channels=2) if args.audio_wav else None
    audio = AudioPump(hc.player, sink, gains)
    try:
        while not task.done():
            if _replaying(hc.client):
                hc.stop()
            audio.pump(local_us())
            await asyncio.sleep(0.01)
        status = await task
    finally:
        audio.close()
        if not task.done():
            hc.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 10)
    if shot:
        write_png(Path(args.screenshot), shot[0])
    print(summary(hc.frames_shown, hc.player.stats))
    return 1 if status.lost else 0


async def _window_loop(
    args: argparse.Namespace, scene: Any, client: RoomClient, player: StagePlayer,
    headset_client: Any,
) -> int:  # fmt: skip
    from OpenGL import GL

    from .render import HallRenderer, front_row_camera, look_at, perspective, seat_view

    try:
        mirror = Mirror(args.width, args.height)
    except Exception:
        if headset_client is not None:
            headset_client.stop()
        with contextlib.suppress(Exception):
            await client.close()
        raise
    from .stagemodel import fetch_stage_model

    model = await asyncio.to_thread(fetch_stage_model, args.url)
    renderer = HallRenderer(scene, model)
    audio = AudioPump(player, WavSink(Path(args.audio_wav)) if args.audio_wav else None)
    cam = scene.spectator_camera
    eye, target = front_row_camera(scene)
    frames = 0
    if isinstance(client, RecordingClient):
        client.play()
    try:
        while not mirror.should_close() and (args.frames <= 0 or frames < args.frames):
            if _replaying(client):
                break
            now = local_us()
            audio.pump(now)
            renderer.seats_of = {s: p.seat for s, p in client.state.participants.items()}
            if headset_client is not None and client.welcome is not None:
                renderer.hidden = {client.welcome.slot}  # the wearer's own head
            frame = player.frame(now + 16_000)
            w, h = mirror.size()
            GL.glViewport(0, 0, w, h)
            sample = headset_client.last_sample if headset_client is not None else None
            seat = client.welcome.seat if client.welcome is not None else -1
            if sample is not None and sample.head is not None:
                view = seat_view(scene, seat, sample.head)
            else:
                view = look_at(eye, target)
            renderer.draw(frame, view, perspective(cam.fov_deg, w / max(1, h)))
            frames += 1
            if args.screenshot and frames == max(1, args.frames):
                mirror.screenshot(Path(args.screenshot))
            mirror.swap()
            await asyncio.sleep(max(0.0, 1 / 60 - (local_us() - now) / 1e6))
    finally:
        audio.close()
        if headset_client is not None:
            headset_client.stop()
        with contextlib.suppress(Exception):
            await client.close()
        mirror.close()
    print(summary(frames, player.stats))
    return 0


def main(args: argparse.Namespace) -> int:
    started = time.monotonic()
    code = asyncio.run(run_mirror(args))
    if args.verbose:
        print(f"ran {time.monotonic() - started:.1f} s")
    return code
