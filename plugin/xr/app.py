"""The headset client: the room connection, the OpenXR loop, playback and the pose uplink.

``HeadsetClient.run()`` is the whole app: it joins the room, syncs the clock, then for every
OpenXR frame samples the wearer at the predicted display time, sends the pose at the room's
``pose_hz``, toggles the raised hand on a button press and asks playback for the stage at
that display time. With an OpenGL session and a ``scene`` it draws that stage into both eyes
(``render.HallRenderer`` from each eye's pose and field of view, seated in the wearer's
seat) and submits the projection layer; ``on_frame`` also gets the frame (a test, or an
engine bridge adding layers). It leaves when the runtime says EXITING or LOSS_PENDING, or
on ``stop()``. When the connection drops (its server or edge died, the room's authority
failed over) it reconnects and resumes by itself, to another of the room's edges if the
Welcome listed some, with backoff, showing "reconnecting" on the stage panel meanwhile;
poses and clicks made while it is down are dropped. A close that says not to come back
(kicked, banned, replaced by another join, a bad token) ends the app. Given a
``RecordingClient`` (plugin/replay.py) as ``client`` it plays a recorded event through the
same loop: its clock starts with the first frame, nothing is sent, and the raise button
skips to the next chapter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.exceptions import ConnectionClosed

from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Message, Vote
from townhall.scenes.model import Scene

from ..client import CannotReach, ClockNotSynced, JoinRejected, RoomClient, local_us
from ..playback import StageFrame, StagePlayer, rest_pose
from ..replay import RecordingClient
from ..signin import DeviceCode, device_sign_in
from .interact import BoardController
from .session import Headset, HeadsetStatus
from .tracking import PoseUplink, TrackingSample

log = logging.getLogger("townhall.plugin.xr")

FrameCallback = Callable[[StageFrame, TrackingSample, Any], None]

RECONNECT_FIRST_S = 0.25  # the first retry's delay; each failed round doubles it ...
RECONNECT_MAX_S = 2.0  # ... up to this (jittered, so a hall of headsets spreads out)
# Closes and refusals after which coming back would be wrong or useless.
STAY_DOWN = frozenset(
    {
        ErrorCode.KICKED,
        ErrorCode.BANNED,
        ErrorCode.REPLACED,
        ErrorCode.AUTH_INVALID,
        ErrorCode.AUTH_EXPIRED,
        ErrorCode.WRONG_ROOM,
        ErrorCode.BAD_TOKEN,
        ErrorCode.VERSION_UNSUPPORTED,
        ErrorCode.FLOODING,
    }
)


def stays_down(close_code: int | None) -> bool:
    """Whether a WebSocket close (``4000 + error code`` for the server's errors) means the
    room does not want this client back; anything else (1006, 1012, 1001, ...) is a drop."""
    if close_code is None or not 4000 <= close_code < 4100:
        return False
    try:
        return ErrorCode(close_code - 4000) in STAY_DOWN
    except ValueError:
        return False


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
        self.reconnecting = False  # the connection is down and being brought back
        self.reconnects = 0  # drops it came back from
        self.ended = ""  # why the room sent the headset away for good (then the loop ends)
        self.notice: Any = None  # panels.StageText over the stage while not in the room
        self.random = random.Random()

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
        keeper: asyncio.Task[None] | None = None
        if not isinstance(self.client, RecordingClient):
            keeper = asyncio.create_task(self._stay_connected(), name="headset-reconnect")
        try:
            return await self._loop()
        finally:
            for task in (pinger, keeper):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            self.headset.close()
            await self.client.close()

    # ------------------------------------------------------------ staying in the room

    async def _stay_connected(self) -> None:
        """Each time the connection drops, bring it back (until the app stops)."""
        while not self._stop.is_set():
            await self.client.wait_closed()
            if self._stop.is_set():
                return
            code, reason = self.client.close_code, self.client.close_reason
            if stays_down(code):
                self._leave(f"the room closed the connection: {code} {reason}".strip())
                return
            log.warning("connection dropped; reconnecting", extra={"code": code, "reason": reason})
            await self._come_back()

    async def _come_back(self) -> None:
        """Reconnect and resume (any of the room's edges), with jittered exponential backoff;
        then follow the media clock of whichever server answered."""
        from .panels import reconnecting_text

        self.reconnecting = True
        delay, attempt = RECONNECT_FIRST_S, 0
        try:
            while not self._stop.is_set():
                attempt += 1
                self._show(reconnecting_text(attempt))
                try:
                    welcome = await self.client.reconnect()
                except JoinRejected as exc:
                    if ErrorCode(exc.error.code) in STAY_DOWN:
                        self._leave(f"the room refused the headset: {exc}")
                        return
                    log.info("reconnect refused; retrying", extra={"error": str(exc)})
                except (CannotReach, ConnectionClosed, OSError, TimeoutError) as exc:
                    log.info("reconnect failed; retrying", extra={"error": str(exc)})
                except Exception as exc:  # a server answering nonsense: it may be mended
                    log.warning("reconnect failed; retrying", extra={"error": repr(exc)})
                else:
                    if self.uplink is not None:
                        self.uplink.interval_s = 1.0 / max(1, welcome.pose_hz)
                        self.uplink.hand_raised = False  # the room lowered it on the drop
                    # Another authority (a failover) has a media clock of its own: the
                    # stage rests until the first new sample, a Ping's round trip away.
                    self.client.clock.reset()
                    self.reconnects += 1
                    self.reconnecting = False
                    self._show(None)
                    log.info("reconnected", extra={"url": self.client.url, "seat": welcome.seat})
                    with contextlib.suppress(ClockNotSynced, ConnectionClosed):
                        await self.client.sync_clock()
                    return
                await asyncio.sleep(delay * self.random.uniform(0.5, 1.0))
                delay = min(RECONNECT_MAX_S, delay * 2)
        finally:
            if self.reconnecting:  # stopped (or ended) before it came back
                self.reconnecting = False
                if not self.ended:
                    self._show(None)

    def _leave(self, why: str) -> None:
        log.error("left the room", extra={"reason": why})
        self.ended = why
        self.stop()

    def _show(self, notice: Any) -> None:
        """A notice over the stage panel (None: the stage again)."""
        self.notice = notice
        if self.renderer is not None:
            self.renderer.notice = notice

    async def _send(self, sending: Coroutine[Any, Any, None]) -> bool:
        """Send unless the connection is down (then what was sent is dropped: poses are
        latest-wins, and a click made while away is not replayed)."""
        if self.reconnecting or self.client.closed:
            sending.close()
            return False
        try:
            await sending
        except ConnectionClosed:
            return False
        return True

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
                await self._send(self.client.raise_hand(hand))
            await self._board(sample)
            if record is not None and await self._send(self.client.send_pose(record, sample.flags)):
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
                await self._send(self.client.raise_hand(action.up))
            else:
                self._ref += 1
                if await self._send(self.client.send(Vote(self._ref, action.question, action.up))):
                    self.votes_sent.append((action.question, action.up))

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
