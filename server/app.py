"""The server: one room, its tick, the gateway and the HTTP routes on one port."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import Keyframe, Message, StagePacket
from townhall.scenes import Scene, default_scene_path, load_scene
from townhall.server.clone.avatar.source import AvatarModel, model_for_persona
from townhall.server.core.crowd import Crowd, assign_cells
from townhall.server.core.room import Room
from townhall.server.fanout.local import Fanout
from townhall.server.fanout.pool import WorkerPool
from townhall.server.gateway.admission import Admission
from townhall.server.gateway.http import WS_PATH, Router, json_response, response, text_response
from townhall.server.gateway.names import StaffLookalikes, persona_names
from townhall.server.gateway.people import PeopleService
from townhall.server.gateway.qa_service import QaService
from townhall.server.gateway.session import Session
from townhall.server.gateway.static import ASSET_PREFIX, PAGES, StaticFiles
from townhall.server.gateway.tokens import resolve_secret
from townhall.server.gateway.websocket import STAFF, Gateway
from townhall.server.ops.config import Settings
from townhall.server.ops.metrics import Metrics
from townhall.server.store.sqlite import Store

if TYPE_CHECKING:
    from townhall.server.clone.director import Director
    from townhall.server.rtc.service import RtcService

log = logging.getLogger("townhall.server")

# websockets refuses frames above this outright (close 1009); frames between the
# protocol limit and this get a TOO_LARGE error and the connection lives on.
HARD_FRAME_FACTOR = 8


class TownhallServer:
    """Owns the room authority and the fan-out; ``async with`` starts and stops it."""

    def __init__(self, settings: Settings, scene: Scene | None = None) -> None:
        self.settings = settings
        scene_path = settings.server.scene or str(default_scene_path())
        self.scene_path = Path(scene_path)
        self.scene = scene or load_scene(self.scene_path)
        self.secret = resolve_secret(settings.auth)
        self.metrics = Metrics()
        r = settings.room
        self.room = Room(
            settings.server.room,
            len(self.scene.seats),
            resume_window_s=r.resume_window_s,
            event_log_size=r.event_log,
        )
        cells = assign_cells(self.scene.seats, r.cell_rows, r.cell_seats)
        self.crowd = Crowd(cells, r.crowd_hz, r.far_refresh_s)
        self.fanout = Fanout(settings.limits, self.metrics)
        self.workers: WorkerPool | None = None
        if settings.server.workers > 0:
            self.workers = WorkerPool(self, settings.server.workers)
            self.fanout.pool = self.workers
        store = Store(settings.store.path, settings.server.room, settings.store.synchronous)
        self.qa = QaService(self, store)
        self.banned: set[str] = set()
        self.people = PeopleService(self)
        self.rtc: RtcService | None = None
        if settings.rtc.enabled:
            from townhall.server.rtc.service import RtcService

            self.rtc = RtcService(self)
        self.director: Director | None = None
        self.detect_language: Callable[[str], str] = lambda text: "en"
        self.gateway = Gateway(self)
        self.staff_names = StaffLookalikes(persona_names(settings.clone.persona))  # names.py
        # Origin and the connection limit, checked at the handshake (gateway/admission.py).
        self.admission = Admission(
            settings.server.allowed_origins,
            settings.server.public_url,
            settings.server.max_connections,
            self.metrics,
            held_elsewhere=lambda: self.workers.held() if self.workers is not None else 0,
        )
        self.router = Router()
        self.router.add("/healthz", self._healthz)
        self.router.add("/metrics", self._metrics)
        self.router.add("/scene.json", self._scene)
        self.router.add("/", self._index)
        self.avatar: AvatarModel | None = None  # the stage's VRM, resolved at start
        self.router.add("/avatar.vrm", self._avatar)
        self.router.add("/avatar.json", self._avatar_info)
        self.static = StaticFiles()
        for page in PAGES:
            self.router.add(page, lambda request, page=page: self.static.page(page))
        self.router.add_prefix(
            ASSET_PREFIX, lambda request: self.static.asset(request.path.split("?", 1)[0])
        )
        self._epoch = time.monotonic()
        self._keyframe: tuple[tuple[int, int], bytes] | None = None
        self._server: Server | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self.port = settings.server.port

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        s = self.settings
        # The stage's model: built from the persona's appearance (once per process) off the
        # event loop, before anyone can ask for it.
        self.avatar = await asyncio.to_thread(model_for_persona, s.clone.persona)
        self._server = await serve(
            self.gateway.handle,
            s.server.host,
            s.server.port,
            process_request=self._process_request,
            max_size=s.limits.max_frame_bytes * HARD_FRAME_FACTOR,
            compression=None,
            max_queue=64,
            backlog=4096,  # a crowd arriving at once should queue, not be refused
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        if self.workers is not None:
            await self.workers.start()
        self._tick_task = asyncio.create_task(self._tick_loop(), name="room-tick")
        if self.rtc is not None:
            self.rtc.start()
        if self.settings.clone.enabled:
            from townhall.server.clone.factory import build_director

            self.director = build_director(self)
            self.director.next_answer_id = self.qa.store.max_answer_id() + 1
            self.director.start()
        # Long-lived startup objects (scene, arrays) need no more GC scans; fewer, later
        # collections keep full-GC pauses from stalling the tick under thousands of clients.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        log.info("serving", extra={"url": self.url, "room": self.room.room_id})

    async def stop(self) -> None:
        """Tell every client the server is stopping (so they reconnect later), then close."""
        if self._tick_task:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
        if self.director is not None:
            await self.director.close()
        for session in list(self.fanout.sessions.values()):
            self.gateway.fail(session, ProtocolError(ErrorCode.SERVER_SHUTDOWN, "server stopping"))
        if self.workers is not None:
            await self.workers.stop()
        if self._server:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        await self.people.close()
        if self.rtc is not None:
            await self.rtc.close()
        await self.qa.close()

    async def __aenter__(self) -> TownhallServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    @property
    def url(self) -> str:
        base = self.settings.server.public_url or f"http://{self.settings.server.host}:{self.port}"
        return base.rstrip("/")

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + WS_PATH

    def now_us(self) -> int:
        """The room's media clock: microseconds since the server started."""
        return int((time.monotonic() - self._epoch) * 1_000_000)

    # ------------------------------------------------------------ room operations

    def keyframe(self) -> bytes:
        """The room's state for a joiner; built at most once per sequenced event and tick.

        A crowd arriving at once would otherwise rebuild the same (large) frame for
        every join: the participant list, the coarse crowd and the question board.
        """
        key = (self.room.log.last_seq, self.metrics.ticks)
        if self._keyframe is not None and self._keyframe[0] == key:
            return self._keyframe[1]
        frame = Keyframe(
            self.room.log.last_seq,
            self.now_us(),
            self.room.participants(),
            self.crowd.coarse_all(),
            self.qa.board(),
            self.director.current if self.director is not None else None,
            self.qa.queue.mode,
            self.qa.queue.review,
        )
        encoded = codec.encode(frame)
        self._keyframe = (key, encoded)
        return encoded

    def broadcast_stage(self, packet: StagePacket) -> None:
        """A stage packet to everyone now: encoded and framed once."""
        self.fanout.broadcast(codec.encode(packet))

    def send_to_moderators(self, message: Message) -> None:
        self.fanout.broadcast(codec.encode(message), roles=STAFF)

    def set_hand(self, slot: int, raised: bool) -> None:
        self.room.set_hand(slot, raised)
        self.crowd.set_hand(slot, raised)

    def leave(self, session: Session) -> None:
        self.crowd.remove(session.slot)
        self.room.leave(session.slot)
        session.joined = False
        self.fanout.remove(session)
        session.close(None, "left")

    def remove_member(self, slot: int, reason: ProtocolError) -> None:
        """Kick or ban: close the member's connection with the reason and free the seat."""
        member = self.room.members.get(slot)
        if member is None:
            return
        session = self.fanout.sessions.get(member.connection_id)
        if session is not None:
            self.gateway.fail(session, reason)
            session.joined = False
            self.fanout.remove(session)
        self.crowd.remove(slot)
        self.room.leave(slot)

    def detach(self, session: Session) -> None:
        """A connection ended: keep the member for the resume window."""
        if session.handed_off:
            return  # a fan-out worker has the socket; the room still has the session
        self.fanout.remove(session)
        if self.rtc is not None:
            self.rtc.disconnected(session)  # an open mic ends with its connection
        if session.joined:
            self.room.disconnect(session.slot, session.id, time.monotonic())
            member = self.room.members.get(session.slot)
            if member is not None and member.connection_id == session.id:
                self.crowd.set_hand(session.slot, False)

    # ------------------------------------------------------------ tick

    async def _tick_loop(self) -> None:
        r = self.settings.room
        period = 1.0 / r.tick_hz
        crowd_every = max(1, round(r.tick_hz / r.crowd_hz))
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        n = 0
        last_expire = 0.0
        while True:
            deadline += period
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = max(0.0, loop.time() - deadline)
            if lag > 5 * period:
                deadline = loop.time()  # fell far behind: skip ticks rather than burst
            started = time.perf_counter()
            now = time.monotonic()
            try:
                if now - last_expire >= 1.0:
                    last_expire = now
                    for slot in self.room.expire(now):
                        self.crowd.remove(slot)
                self.tick(now, crowd=(n % crowd_every == 0))
            except Exception:
                self.metrics.tick_errors += 1
                log.exception("tick failed")
            n += 1
            self.metrics.observe_tick(lag, time.perf_counter() - started)

    def tick(self, now: float, crowd: bool) -> None:
        """One room tick: sequenced events to all, crowd frames on crowd ticks."""
        self.qa.flush()
        events = self.room.drain()
        if crowd:
            now_us = self.now_us()
            near = self.crowd.near_frames(now_us)
            far = self.crowd.far_frame(now_us)
        else:
            near, far = {}, None
        self.fanout.tick(now, events, near, far)

    # ------------------------------------------------------------ HTTP

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        refused = self.admission.check(connection, request)
        if refused is not None:
            return refused
        return self.router(request)

    def _healthz(self, request: Request) -> Response:
        body: dict[str, Any] = {
            "status": "ok",
            "room": self.room.room_id,
            "connections": len(self.fanout.sessions),
            "members": len(self.room.members),
            "uptime_s": round(time.monotonic() - self._epoch, 1),
        }
        return json_response(body)

    def _metrics(self, request: Request) -> Response:
        text = self.metrics.render(self.fanout.count_by_role(), self.room.count_by_role())
        resp = text_response(text)
        resp.headers["Content-Type"] = "text/plain; version=0.0.4; charset=utf-8"
        return resp

    def _scene(self, request: Request) -> Response:
        return response(HTTPStatus.OK, self.scene_path.read_bytes(), "application/json")

    def _avatar(self, request: Request) -> Response:
        """The stage's VRM model (the persona's own, or built from its appearance)."""
        if self.avatar is None:
            return text_response("no avatar model yet\n", HTTPStatus.NOT_FOUND)
        return response(HTTPStatus.OK, self.avatar.data, "model/gltf-binary")

    def _avatar_info(self, request: Request) -> Response:
        a = self.avatar
        info = {"vrm": "/avatar.vrm", "source": a.source, "name": a.name} if a else {"vrm": None}
        return json_response(info)

    def _index(self, request: Request) -> Response:
        lines = [
            "Townhall server",
            f"room: {self.room.room_id}",
            f"WebSocket: {self.ws_url}",
            "GET /healthz   health as JSON",
            "GET /metrics   Prometheus metrics",
            "GET /scene.json  the hall",
            "GET /watch?token=T     the spectator view",
            "GET /moderate?token=T  the moderator console",
        ]
        return text_response("\n".join(lines) + "\n")
