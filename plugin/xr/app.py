"""The headset client: the room connection, the OpenXR loop, playback and the pose uplink.

``HeadsetClient.run()`` is the whole app: it joins the room, syncs the clock, then for every
OpenXR frame samples the wearer at the predicted display time, sends the pose at the room's
``pose_hz``, toggles the raised hand on a button press and asks playback for the stage at
that display time. With an OpenGL session and a ``scene`` it draws that stage into both eyes
(``render.HallRenderer`` from each eye's pose and field of view, seated in the wearer's
seat) and submits the projection layer; ``on_frame`` also gets the frame (a test, or an
engine bridge adding layers). It leaves when the runtime says EXITING or LOSS_PENDING, or
on ``stop()``. Given a ``RecordingClient`` (plugin/replay.py) as ``client`` it plays a
recorded event through the same loop: its clock starts with the first frame, nothing is
sent, and the raise button skips to the next chapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from townhall.protocol.messages import Message, Vote
from townhall.scenes.model import Scene

from ..client import RoomClient, local_us
from ..playback import StageFrame, StagePlayer, rest_pose
from ..replay import RecordingClient
from ..signin import DeviceCode, device_sign_in
from .interact import BoardController
from .session import Headset, HeadsetStatus
from .tracking import PoseUplink, TrackingSample

log = logging.getLogger("townhall.plugin.xr")

FrameCallback = Callable[[StageFrame, TrackingSample, Any], None]


class HeadsetClient:
    """One attendee in a headset."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        headless: bool | None = True,
        on_frame: FrameCallback | None = None,
        session_next: Any = None,
        scene: Scene | None = None,
        sign_in: Callable[[DeviceCode], None] | None = None,
        client: RoomClient | None = None,
    ) -> None:
        self.player: StagePlayer | None = None
        # ``client``: another source for the room, e.g. a recording (plugin/replay.py).
        self.client = client or RoomClient(url, token, client_info="townhall-xr/0.1")
        self.client.on_message = self._on_message
        self.headset = Headset(headless=headless)
        self.on_frame = on_frame
        self.session_next = session_next
        self.uplink: PoseUplink | None = None
        self.poses_sent = 0
        self.hand_changes: list[bool] = []
        self.last_sample: TrackingSample | None = None
        self.frames = 0
        self.frames_shown = 0  # frames that submitted a projection layer
        self.scene = scene
        self.renderer: Any = None  # HallRenderer, once an OpenGL session is open
        self.after_render: Callable[[HeadsetClient], None] | None = None  # e.g. a screenshot
        self.board = BoardController()
        self.votes_sent: list[tuple[int, bool]] = []
        self._ref = 0
        self._stop = asyncio.Event()
        # With ``sign_in`` (and no token) the headset signs in first with the device grant:
        # the code is drawn on the stage panel and handed to ``sign_in`` (the terminal).
        self.sign_in = sign_in
        self.sign_in_code: DeviceCode | None = None

    def _on_message(self, message: Message) -> None:
        if self.player is not None:
            self.player.on_message(message, local_us())

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> HeadsetStatus:
        if self.sign_in is not None and not self.client.token:
            try:
                await self._open()
                if not await self._sign_in():
                    return self.headset.status  # the wearer left before signing in
            except BaseException:
                self.headset.close()
                raise
        welcome = await self.client.connect()
        self.player = StagePlayer(self.client.clock, adaptive=self.client.live)
        self.uplink = PoseUplink(welcome.pose_hz)
        pinger = asyncio.create_task(self._keep_clock())
        await self.client.sync_clock()
        await self._open()
        try:
            return await self._loop()
        finally:
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            self.headset.close()
            await self.client.close()

    async def _open(self) -> None:
        """The OpenXR session and, with OpenGL and a scene, the renderer (once)."""
        if self.headset.session is not None:
            return
        self.headset.open(self.session_next)
        if self.headset.graphics is not None and self.scene is not None:
            from .render import HallRenderer
            from .stagemodel import fetch_stage_model

            model = await asyncio.to_thread(fetch_stage_model, self.client.url)
            self.headset.graphics.context.make_current()
            self.renderer = HallRenderer(self.scene, model)

    async def _sign_in(self) -> bool:
        """Show the hall with the sign-in code on the stage panel until the person has
        approved it elsewhere; then the client joins with the room token. False if the
        wearer left first."""
        from .panels import sign_in_text

        def show(code: DeviceCode) -> None:
            self.sign_in_code = code
            if self.renderer is not None:
                self.renderer.notice = sign_in_text(code.user_code, code.verification_uri)
            if self.sign_in is not None:
                self.sign_in(code)

        task = asyncio.create_task(device_sign_in(self.client.url, show))
        idle = StageFrame(0.0, rest_pose(), {}, [], "", "", "")
        try:
            while not task.done() and not self._stop.is_set():
                status = self.headset.poll()
                if status.exit:
                    return False
                if not status.running:
                    await asyncio.sleep(0.02)
                    continue
                fs = await asyncio.to_thread(self.headset.wait_frame)
                self.last_sample = self.headset.sample(fs.predicted_display_time)
                layers: list[Any] = []
                if self.renderer is not None and fs.should_render:
                    layers = self._draw(idle, fs.predicted_display_time)
                self.headset.end_frame(layers)
                await asyncio.sleep(0)
            if not task.done():
                return False
            signed = task.result()
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.client.token = signed.token
        if self.renderer is not None:
            self.renderer.notice = None
        log.info("signed in", extra={"name": signed.name})
        return True

    async def _keep_clock(self) -> None:
        """Ping every few seconds (SPEC §8) so the media clock mapping follows drift."""
        while True:
            await asyncio.sleep(3.0)
            with contextlib.suppress(Exception):
                await self.client.sync_clock(samples=2)

    async def _loop(self) -> HeadsetStatus:
        assert self.player is not None and self.uplink is not None
        if isinstance(self.client, RecordingClient):
            self.client.play()  # a recording starts with the first frame, not before
        while not self._stop.is_set():
            status = self.headset.poll()
            if status.exit:
                break
            if not status.running:
                await asyncio.sleep(0.02)
                continue
            # xrWaitFrame blocks until the runtime wants the next frame: off the event loop.
            fs = await asyncio.to_thread(self.headset.wait_frame)
            sample = self.headset.sample(fs.predicted_display_time)
            self.last_sample = sample
            record, hand = self.uplink.update(sample, time.monotonic())
            if hand is not None:
                self.hand_changes.append(hand)
                await self.client.raise_hand(hand)
            await self._board(sample)
            if record is not None:
                await self.client.send_pose(record, sample.flags)
                self.poses_sent += 1
            frame = self.player.frame(self.headset.to_local_us(fs.predicted_display_time))
            layers: list[Any] = []
            if self.renderer is not None and fs.should_render:
                layers += self._draw(frame, fs.predicted_display_time)
            if self.on_frame is not None and fs.should_render:
                self.on_frame(frame, sample, layers)
            self.headset.end_frame(layers)
            self.frames += 1
            if layers:
                self.frames_shown += 1
                if self.after_render is not None:
                    self.after_render(self)
            await asyncio.sleep(0)
        return self.headset.status

    def seat(self) -> int:
        welcome = self.client.welcome
        return welcome.seat if welcome is not None else -1

    def head_world(self) -> Any:
        """The wearer's head in the world (4x4), or None while untracked."""
        from .render import pose_matrix, seat_matrix

        if self.last_sample is None or self.last_sample.head is None or self.scene is None:
            return None
        return seat_matrix(self.scene, self.seat()) @ pose_matrix(self.last_sample.head)

    async def _board(self, sample: TrackingSample) -> None:
        """The question board: the pointer's hover and clicks become votes and hands."""
        if self.scene is None or self.uplink is None:
            return
        from .render import seat_matrix

        welcome = self.client.welcome
        self.board.can_raise = welcome is not None and welcome.role == "attendee"
        actions = self.board.update(
            sample.left, sample.right, seat_matrix(self.scene, self.seat()),
            self.client.state.questions, self.uplink.hand_raised, sample.select_pressed,
            sample.head,
        )  # fmt: skip
        for action in actions:
            if action.kind == "hand":
                self.uplink.hand_raised = action.up
                self.hand_changes.append(action.up)
                await self.client.raise_hand(action.up)
            else:
                self._ref += 1
                self.votes_sent.append((action.question, action.up))
                await self.client.send(Vote(self._ref, action.question, action.up))

    def _draw(self, frame: StageFrame, xr_time: int) -> list[Any]:
        """Both eyes: the hall from the wearer's seat, with each eye's own projection."""
        from .render import frustum, seat_view

        assert self.scene is not None
        self.renderer.seats_of = {s: p.seat for s, p in self.client.state.participants.items()}
        welcome = self.client.welcome
        seat = welcome.seat if welcome is not None else -1
        self.renderer.hidden = {welcome.slot} if welcome is not None else set()
        self.renderer.pointer = self.board.pointer
        self.renderer.prepare(frame)
        scene = self.scene

        def eye(i: int, pose: Any, fov: Any, width: int, height: int) -> None:
            self.renderer.draw(frame, seat_view(scene, seat, pose), frustum(fov))

        return self.headset.render(xr_time, eye)
