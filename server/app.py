"""The server: one room, its tick, the gateway and the HTTP routes on one port.

The composition root: it builds the sans-I/O room authority from the settings and the
store, wraps it in the room host (the shell that carries out its effects), and wires the
host to the fan-out, the clone's turns and the live mics. Nothing imports this module
back; each part gets what it needs as arguments.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import Role, StagePacket
from townhall.scenes import Scene, default_scene_path, load_scene
from townhall.server.clone.avatar.source import AvatarModel, model_for_persona
from townhall.server.clone.brain.language import warm as warm_language
from townhall.server.clone.turn import Turns
from townhall.server.core.authority import RoomAuthority, Saved
from townhall.server.core.crowd import Crowd, assign_cells
from townhall.server.core.identity import Identity
from townhall.server.core.room import Room
from townhall.server.core.rules import RoomRules
from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout.bus_room import BusRoom
from townhall.server.fanout.local import Fanout
from townhall.server.fanout.pool import WorkerPool
from townhall.server.gateway.addresses import ClientAddresses
from townhall.server.gateway.admission import Admission
from townhall.server.gateway.guests import GuestCookies
from townhall.server.gateway.host import RoomHost
from townhall.server.gateway.http import (
    WS_PATH,
    Router,
    json_response,
    protect_page,
    response,
    text_response,
    without_body,
)
from townhall.server.gateway.insights import InsightRoutes
from townhall.server.gateway.names import StaffLookalikes, persona_names, shown_identity
from townhall.server.gateway.oidc import OidcConfig, Person
from townhall.server.gateway.recorder import StageRecorder
from townhall.server.gateway.recordings import RecordingRoutes
from townhall.server.gateway.signin import SignIn, name_of, user_id_of
from townhall.server.gateway.static import ASSET_PREFIX, PAGES, StaticFiles
from townhall.server.gateway.tokens import issue_token, resolve_secret, verify_token
from townhall.server.gateway.websocket import Gateway
from townhall.server.ops.config import Settings, recording_folder, start_seconds
from townhall.server.ops.errors import listen_error
from townhall.server.ops.metrics import Metrics
from townhall.server.ops.notify import Notifier
from townhall.server.rtc.remote import RemoteMics
from townhall.server.rtc.service import MicStation
from townhall.server.store.factory import open_store

log = logging.getLogger("townhall.server")
#: A tick this late means the room's loop was blocked (or the process starved) that long:
#: worth a line in the log, which the metrics' maximum alone does not place in time.
STALL_WARN_S = 1.0

# websockets refuses frames above this outright (close 1009); frames between the
# protocol limit and this get a TOO_LARGE error and the connection lives on.
HARD_FRAME_FACTOR = 8


def tick_plan(settings: Settings) -> TickPlan:
    r = settings.room
    return TickPlan(r.tick_hz, r.crowd_hz, r.spectator_every)


def room_rules(settings: Settings) -> RoomRules:
    """The authority's rules from the settings."""
    s, r, lim, qa, rtc = settings.server, settings.room, settings.limits, settings.qa, settings.rtc
    return RoomRules(
        room_id=s.room,
        plan=tick_plan(settings),
        max_connections=s.max_connections,
        allow_anonymous_spectators=s.allow_anonymous_spectators and settings.auth.anonymous_viewing,
        join_timeout_s=lim.join_timeout_s,
        max_frame_bytes=lim.max_frame_bytes,
        messages_per_s=lim.messages_per_s,
        message_burst=lim.message_burst,
        max_rejects=lim.max_rejects,
        pose_hz=r.pose_hz,
        resume_window_s=r.resume_window_s,
        resume_token_ttl_s=r.resume_token_ttl_s,
        event_log=r.event_log,
        far_refresh_s=r.far_refresh_s,
        mode="moderated" if qa.mode == "moderated" else "auto",
        review=qa.review,
        questions_per_minute=qa.questions_per_minute,
        votes_per_s=qa.votes_per_s,
        guest_questions_per_minute=qa.guest_questions_per_minute,
        guest_votes_per_question=qa.guest_votes_per_question,
        max_questions=qa.max_questions,
        clone=settings.clone.enabled,
        pause_s=settings.clone.pause_s,
        interrupted="escalate" if settings.clone.interrupted == "escalate" else "requeue",
        mics=rtc.enabled,
        max_live_mics=rtc.max_live_mics,
        accept_timeout_s=rtc.accept_timeout_s,
        connect_timeout_s=rtc.connect_timeout_s,
        mic_time_limit_s=rtc.mic_time_limit_s,
        phase="doors" if r.phase == "doors" else "live",
        starts_at=start_seconds(r.starts_at) or 0,
    )


class TownhallServer:
    """Owns the room, its host and the fan-out; ``async with`` starts and stops it."""

    def __init__(
        self,
        settings: Settings,
        scene: Scene | None = None,
        term: int = 0,
        held: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        self.term = term  # the authority lease's term (ops/failover.py); 0 without one
        self.held = held  # whether the lease is still ours: the bus is fenced when not
        scene_path = settings.server.scene or str(default_scene_path())
        self.scene_path = Path(scene_path)
        self.scene = scene or load_scene(self.scene_path)
        self.secret = resolve_secret(settings.auth)
        self.metrics = Metrics()
        r = settings.room
        cells = assign_cells(self.scene.seats, r.cell_rows, r.cell_seats)
        self.store = open_store(
            settings.store.url,
            settings.store.path,
            settings.server.room,
            settings.store.synchronous,
            anonymous_attendance=settings.attendance.anonymous,
            term=term,
        )
        saved = self.store.load()
        self._epoch = time.monotonic()
        self.staff_names = StaffLookalikes(persona_names(settings.clone.persona))  # names.py
        self.authority = RoomAuthority(
            room_rules(settings),
            Crowd(cells, r.crowd_hz, r.far_refresh_s),
            [seat.position for seat in self.scene.seats],
            self._verify,
            counters=self.metrics,
            saved=Saved(
                saved.questions,
                saved.settings,
                saved.banned,
                saved.max_answer_id,
                saved.max_question_id,
                saved.muted,
                saved.places,
            ),
            epoch=self._epoch,
            wall_epoch=time.time(),
            resume_secret=self.secret,
        )
        self.fanout = Fanout(self.authority.plan, settings.limits, self.metrics)
        self.host = RoomHost(self.authority, self.fanout, self.store)
        self._load_studio(saved.settings)
        self.notifier: Notifier | None = None
        c = settings.clone
        if c.escalation_webhook or c.escalation_smtp:
            self.notifier = Notifier(
                c.escalation_webhook,
                self.persona.escalation_contact,
                settings.server.room,
                c.escalation_smtp,
                c.escalation_from,
            )
            self.host.on_escalated = self.notifier
        self.bus: BusRoom | None = None  # edges over NATS (role authority), at start
        self.workers: WorkerPool | None = None
        if settings.server.workers > 0:
            self.workers = WorkerPool(
                settings,
                self.metrics,
                self.fanout,
                self.host,
                settings.server.workers,
                lambda: self.authority.keyframe(time.monotonic()),
            )
            self.fanout.pool = self.workers
        self.mics: MicStation | None = None
        self.remote_mics: RemoteMics | None = None  # rtc.media = bus: made with the bus
        if settings.rtc.enabled and settings.rtc.media == "local":
            self.mics = MicStation(settings, self.now_us, self.host.broadcast_live, self.host)
            self.host.mics = self.mics
        self.turns: Turns | None = None
        self.guests = GuestCookies(
            self.secret, secure=settings.server.public_url.lower().startswith("https:")
        )
        self.gateway = Gateway(
            self.host, self.fanout, settings.limits.socket_send_buffer, self.guests
        )
        # Origin and the connection limit, checked at the handshake (gateway/admission.py).
        self.admission = Admission(
            settings.server.allowed_origins,
            settings.server.public_url,
            settings.server.max_connections,
            self.metrics,
            held_elsewhere=self._held_elsewhere,
            addresses=ClientAddresses(
                settings.server.trusted_proxies, settings.server.client_address_header
            ),
            connects_per_address_per_min=settings.limits.connects_per_address_per_min,
        )
        self.gateway.address_of = self.admission.address_of
        self.router = Router()
        self.router.add("/healthz", self._healthz)
        self.router.add("/metrics", self._metrics)
        self.router.add("/scene.json", self._scene)
        self.router.add("/", self._index)
        self.avatar: AvatarModel | None = None  # the stage's VRM, resolved at start
        self.router.add("/avatar.vrm", self._avatar)
        self.router.add("/avatar.json", self._avatar_info)
        self.recorder: StageRecorder | None = None
        self.recordings = RecordingRoutes(
            recording_folder(settings),
            self._verify_or_guest,
            self.store,
            self.authority.plan.lead_us,
        )
        self.recordings.mount(self.router)
        self.insights = InsightRoutes(self.store, self._verify, self._statement_topics)
        self.static = StaticFiles()
        # Sign-in with the company's identity provider (gateway/signin.py), when configured.
        self.signin = SignIn(
            OidcConfig.from_settings(settings.auth),
            self._issue_signed_in,
            settings.server.public_url,
            self._expired,
            settings.auth.anonymous_viewing and settings.server.allow_anonymous_spectators,
            settings.limits.connects_per_address_per_min,
        )
        for page in PAGES:
            self.router.add(page, self._page(page))
        self.router.add_prefix(
            ASSET_PREFIX, lambda request: self.static.asset(request.path.split("?", 1)[0])
        )
        self._server: Server | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self.port = settings.server.port

    # ------------------------------------------------------------ lifecycle

    def _verify(self, token: str) -> Identity:
        """A join token's identity: strict claims, the display name cleaned and staff
        look-alikes marked (gateway/tokens.py, gateway/names.py)."""
        s = self.settings
        identity = verify_token(
            self.secret, token, s.server.room, max_lifetime_s=s.auth.max_token_lifetime_s
        )
        return shown_identity(identity, self.staff_names)

    async def start(self) -> None:
        """Listen and run; on failure everything opened so far is closed again."""
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise
        # Long-lived startup objects (scene, arrays) need no more GC scans; fewer, later
        # collections keep full-GC pauses from stalling the tick under thousands of clients.
        gc.freeze()
        gc.set_threshold(50_000, 20, 100)
        log.info("serving", extra={"url": self.url, "room": self.room.room_id})

    async def _start(self) -> None:
        s = self.settings
        # The stage's model: built from the persona's appearance (once per process) off the
        # event loop, before anyone can ask for it; the clone (and its persona) before the
        # port opens, so a bad persona stops the server before anyone can join.
        if self.settings.clone.enabled:
            self._start_clone()
            # Off the loop, before anyone can ask: the first question would load it on it.
            await asyncio.to_thread(warm_language)
        self.avatar = await asyncio.to_thread(model_for_persona, s.clone.persona)
        try:
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
        except OSError as exc:
            raise listen_error(s.server.host, s.server.port, exc) from exc
        if s.recording.enabled:
            self._start_recording()
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        if self.workers is not None:
            await self.workers.start()
        if s.server.role == "authority":
            await self._start_bus()
        self._tick_task = asyncio.create_task(self._tick_loop(), name="room-tick")

    async def _start_bus(self) -> None:
        """Feed the room's edges over NATS (fanout/bus_room.py)."""
        from townhall.server.fanout import bus

        s = self.settings
        subjects = bus.Subjects.of(s.server.room)
        reconnected: bus.Reconnected = []
        nc = await bus.connect(s.bus, f"townhall-authority-{s.server.room}", reconnected)
        try:
            await bus.ensure_stream(nc, subjects, s.bus.replay_s)
        except BaseException:
            await nc.close()
            raise
        self.bus = BusRoom(
            nc,
            subjects,
            self.host,
            lambda: self.authority.keyframe(time.monotonic()),
            self.metrics,
            s.bus.edge_timeout_s,
            term=self.term,
            held=self.held,
            on_edges=self._edges_changed,
            deployment=s.bus.deployment,
            guest_of=self.guests.verify,
        )
        self.fanout.bus = self.bus
        await self.bus.start()
        # A restarted NATS has lost the (in-memory) tick stream: make it again.
        reconnected.append(lambda: bus.ensure_stream(nc, subjects, s.bus.replay_s))
        if s.rtc.enabled and s.rtc.media == "bus":
            self.remote_mics = RemoteMics(
                nc, s.server.room, self.host, self.now_us, self._live_here,
                s.rtc.media_timeout_s, held=self.held,
            )  # fmt: skip
            await self.remote_mics.subscribe()
            self.host.mics = self.remote_mics

    def _live_here(self, payload: bytes, packet: StagePacket) -> None:
        """A media node's relayed voice, for this process's clients (edges get it themselves)."""
        self.fanout.writer.broadcast(payload, None)
        if self.workers is not None:
            self.workers.broadcast(payload, None)
        if self.recorder is not None:
            self.recorder.live(packet.media_time_us, payload)

    def _edges_changed(self, urls: tuple[str, ...]) -> None:
        """Every Welcome from now on lists these edges (where a client may resume)."""
        self.authority.edge_urls = urls
        log.info("edges", extra={"urls": list(urls)})

    def _held_elsewhere(self) -> int:
        """Clients whose sockets fan-out workers or networked edges hold."""
        held = self.workers.held() if self.workers is not None else 0
        return held + (self.bus.held() if self.bus is not None else 0)

    def _start_recording(self) -> None:
        """A new recording for this run, beginning with the room's state (the board)."""
        now = time.monotonic()
        self.recorder = StageRecorder(
            recording_folder(self.settings),
            self.settings.server.room,
            self.authority.keyframe(now),
            self.authority.media_us(now),
            self.settings.recording.flush_s,
        )
        self.host.recorder = self.recorder

    def _verify_or_guest(self, token: str) -> Identity | None:
        """Who may fetch recordings: a valid token's holder, or nobody (None) when the room
        admits anonymous spectators and no token is given; a bad token raises."""
        if not token and self.settings.server.allow_anonymous_spectators:
            return None
        return self._verify(token)

    def _statement_topics(self) -> dict[str, str]:
        """Each statement's topic (its latest version), for Insights: read in a thread."""
        persona = getattr(self, "persona", None)
        if persona is None:
            return {}
        return {v.id: v.topic for v in self.store.load_all_statements(persona.id)}

    def _load_studio(self, settings: dict[str, str]) -> None:
        """/studio's state from the store: statements (seeded from the persona folder the
        first time), the inbox, the answers, follow-ups not yet delivered."""
        from townhall.server.clone.persona import load_persona, sample_persona_path
        from townhall.server.clone.statements import version_of
        from townhall.server.core.authority import DELIVERED_PREFIX
        from townhall.server.core.studio import Studio

        persona = load_persona(self.settings.clone.persona or sample_persona_path())
        versions = self.store.load_all_statements(persona.id)
        if not versions:
            versions = [version_of(persona.id, s) for s in persona.statements]
            self.store.write_now(versions)
        studio: Studio = self.authority.studio
        studio.load_statements(persona.id, persona.languages, versions)
        self.persona = persona
        qa = self.authority.qa.questions
        askers = {q.id: (q.asker_id, q.asker_name) for q in qa.values()}
        rows = self.store.load_inbox()
        studio.inbox.restore(rows, askers)
        for a in self.store.load_answers():
            q = qa.get(a.question_id)
            studio.record_answer(a, q.text if q is not None else "")
        from townhall.protocol import codec
        from townhall.protocol.messages import FollowUp

        for e, resolved in rows:
            qid = e.question_id
            if resolved is None or resolved.action != "asker":
                continue
            if f"{DELIVERED_PREFIX}{qid}" in settings:
                continue
            follow = FollowUp(0, qid, "answer", resolved.text, "leader", e.question)
            asker = askers.get(qid, ("", ""))[0]
            studio.waiting.setdefault(asker, []).append((qid, codec.encode(follow)))

    def _start_clone(self) -> None:
        from townhall.server.clone.factory import build_clone

        room = self.authority
        built = build_clone(
            self.settings.clone,
            self.scene,
            self.metrics,
            self.now_us,
            room.plan.lead_us,
            self.store.write,
            lambda: room.answer.question.id if room.answer is not None else 0,
            versions=list(room.studio.book.current.values()),
            escalated=self.host.escalated,
        )
        self.host.on_statements = built.brain.update
        room.detect_language = built.detect_language
        self.turns = Turns(built.clone, self.host.turn_event)
        self.host.turns = self.turns

    async def step_down(self) -> None:
        """The lease is lost: stop acting as the room at once (no tick, nothing to the edges,
        whom the new authority now feeds), then close everything as ``stop`` does."""
        if self.bus is not None:
            self.bus.fence()
        if self._tick_task:
            self._tick_task.cancel()
        await self.stop()

    async def stop(self) -> None:
        """Tell every client the server is stopping (so they reconnect later), then close."""
        if self._tick_task:
            self._tick_task.cancel()
            await asyncio.gather(self._tick_task, return_exceptions=True)
        if self.turns is not None:
            await self.turns.close()
        self.host.shutdown()
        if self.workers is not None:
            await self.workers.stop()
        if self.remote_mics is not None:
            await self.remote_mics.close()
        if self.bus is not None:
            await self.bus.stop()
            if not self.bus.nc.is_closed:
                await self.bus.nc.close()
        if self._server:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
        if self.mics is not None:
            await self.mics.close()
        await self.host.drain()
        if self.recorder is not None:
            self.recorder.close()
        if self.notifier is not None:
            await self.notifier.close()
        await self.store.close()

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
        return self.authority.media_us(time.monotonic())

    @property
    def room(self) -> Room:
        """The room's membership and event log (for the status routes and tests)."""
        return self.authority.room

    # ------------------------------------------------------------ tick

    async def _tick_loop(self) -> None:
        period = self.authority.plan.period_s
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            deadline += period
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lag = max(0.0, loop.time() - deadline)
            if lag > 5 * period:
                deadline = loop.time()  # fell far behind: skip ticks rather than burst
                if lag >= STALL_WARN_S:  # every client's view froze that long: say so
                    log.warning("the room's event loop stalled", extra={"stalled_s": round(lag, 2)})
            started = time.perf_counter()
            try:
                self.host.tick()
            except Exception:
                self.metrics.tick_errors += 1
                log.exception("tick failed")
            self.metrics.observe_tick(lag, time.perf_counter() - started)

    # ------------------------------------------------------------ HTTP

    def _page(self, page: str) -> Callable[[Request], Response]:
        if page != "/watch":
            return lambda request: self.signin.guard(request) or self.static.page(page)

        def watch(request: Request) -> Response:
            guarded = self.signin.guard(request)
            if guarded is not None:
                return guarded
            # A browser without a valid guest cookie gets one: the same guest from now on.
            resp = self.static.page(page)
            if resp.status_code == 200 and not self.guests.read(request.headers):
                resp.headers["Set-Cookie"] = self.guests.issue()
            edges = self.bus.deployment_urls() if self.bus is not None else ()
            if resp.status_code == 200 and edges:
                protect_page(resp, edges)  # it may join through, or move to, any edge
            return resp

        return watch

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        refused = self.admission.check(connection, request)
        if refused is not None:
            return refused
        if InsightRoutes.wants(request) and request.method == "GET":
            return await asyncio.to_thread(self.insights.handle, request)
        if RecordingRoutes.wants(request) and request.method in ("GET", "HEAD"):
            # A recording is read (and indexed) off the event loop: the room keeps ticking.
            resp = await asyncio.to_thread(self.recordings.handle, request)
            return resp if request.method == "GET" else without_body(resp)
        if self.signin.handles(request.path):
            peer = connection.remote_address
            address = self.admission.addresses.of(
                str(peer[0]) if peer else "",
                request.headers.get_all(self.admission.addresses.header),
            )
            return await self.signin.handle(request, address)
        return self.router(request)

    def _expired(self, token: str) -> bool:
        try:
            self._verify(token)
        except ProtocolError as exc:
            return exc.code == ErrorCode.AUTH_EXPIRED
        return False

    def _issue_signed_in(self, person: Person, role: Role) -> str:
        """The room token for someone the identity provider signed in (short-lived)."""
        s = self.settings
        return issue_token(
            self.secret,
            user_id=user_id_of(person),
            name=name_of(person),
            role=role,
            room=s.server.room,
            ttl_s=s.auth.signed_in_ttl_s,
        )

    def _healthz(self, request: Request) -> Response:
        """The room's health; 503 when it cannot do its job (the store takes no writes)."""
        failure = self.store.failure
        body: dict[str, Any] = {
            "status": "ok" if failure is None else "unhealthy",
            "role": self.settings.server.role,
            "room": self.room.room_id,
            "connections": len(self.fanout.sessions),
            "members": len(self.room.members),
            "uptime_s": round(time.monotonic() - self._epoch, 1),
        }
        if self.bus is not None:
            body["edges"] = len(self.bus.edges)
            body["edge_clients"] = self.bus.held()
            body["bus_dropped"] = self.bus.dropped
            body["bus_bytes_out"] = self.bus.publisher.bytes_out
            body["edge_urls"] = list(self.bus.edge_urls())
            body["deployment_edges"] = list(self.bus.deployment_urls())
            body["lease"] = "active"
            body["term"] = self.term
        if self.remote_mics is not None:
            body["media_mics"] = len(self.remote_mics.open)  # mics open on media nodes
            body["media_dropped"] = self.remote_mics.dropped
        if failure is not None:
            body["store"] = failure
            return json_response(body, HTTPStatus.SERVICE_UNAVAILABLE)
        return json_response(body)

    def _metrics(self, request: Request) -> Response:
        text = self.metrics.render(self.authority.count_by_role(), self.room.count_by_role())
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
            "GET /watch?recording=ID&token=T  a recording played back",
            "GET /studio?token=T    the studio (operators): inbox, answers, statements",
            "GET /studio/insights.json?token=T  insights per event, day and week (operators)",
            "GET /recordings/answer-N.json?token=T  one answer as heard (moderators)",
        ]
        if self.signin.enabled:
            lines.append("GET /auth/login?next=/moderate  sign in with the identity provider")
        return text_response("\n".join(lines) + "\n")
