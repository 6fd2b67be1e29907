"""``townhall serve --role authority``: one active authority per room, any others standing by.

The process first takes the room's lease (``fanout/lease.py``). Until it has it, it is a
standby: it answers ``/healthz`` on its port (``"lease": "standby"`` and who is active)
and nothing else, and has loaded nothing of the room. Once it holds the lease it builds
the room from the durable store (which therefore must be shared: PostgreSQL, or one
SQLite file on one machine) and serves on the same port, stamping its ticks with the
lease's term. If the lease is lost (it could not renew in time, or the key changed) it
steps down at once: no more ticks or replies, its own clients closed, and it goes back
to standing by. A clean stop gives the lease back, so a standby takes over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from http import HTTPStatus

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from townhall.server.fanout import bus
from townhall.server.fanout.lease import Holder
from townhall.server.fanout.lease_thread import LeaseThread
from townhall.server.gateway.http import json_response, text_response
from townhall.server.ops.config import Settings
from townhall.server.ops.errors import listen_error

log = logging.getLogger("townhall.failover")

#: A standby tries the lease at least this often: a quarter second of the takeover, at the
#: cost of a few KV reads a second per standby (a second cost up to a second; beside a
#: busy test suite the whole takeover once took 10.2 s).
MAX_POLL_S = 0.25


class Standby:
    """The port of an authority waiting for the lease: ``/healthz`` only."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.active: Holder | None = None  # who holds the lease, as last read
        self.port = settings.server.port
        self._server: Server | None = None

    async def start(self) -> None:
        s = self.settings.server
        try:
            self._server = await serve(self._refuse, s.host, self.port, process_request=self._http)
        except OSError as exc:
            raise listen_error(s.host, self.port, exc) from exc
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def _refuse(self, connection: ServerConnection) -> None:  # never reached
        await connection.close(1013, "standby authority")

    def _http(self, connection: ServerConnection, request: Request) -> Response:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return json_response(
                {
                    "status": "ok",
                    "role": "authority",
                    "lease": "standby",
                    "room": self.settings.server.room,
                    "active": self.active.url if self.active is not None else "",
                }
            )
        refused = text_response(
            "a standby authority: the room is served elsewhere\n", HTTPStatus.SERVICE_UNAVAILABLE
        )
        refused.headers["Retry-After"] = "1"
        return refused

    async def wait_for(self, lease: LeaseThread) -> None:
        """Until the lease is ours: try it, and note who holds it meanwhile."""
        poll = min(MAX_POLL_S, lease.settings.lease_ttl_s / 4)
        while not await lease.acquire():
            self.active = await lease.current()
            await asyncio.sleep(poll)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def warm_up(settings: Settings) -> None:
    """What building the room costs and owes nothing to the store, done while standing by:
    training the clone's intent classifier (seconds; cached for the process) and loading
    its language identifier."""
    if not settings.clone.enabled:
        return
    from townhall.server.clone.brain.intent import IntentClassifier
    from townhall.server.clone.brain.language import warm

    warm()
    from townhall.server.clone.persona import PersonaError, load_persona, sample_persona_path

    try:
        persona = load_persona(settings.clone.persona or sample_persona_path())
    except PersonaError:
        return  # building the room reports it
    extra = (persona.path / "intents",) if persona.path is not None else ()
    IntentClassifier.for_directories(*extra)


async def serve_authority(settings: Settings, say: Callable[[str], None]) -> None:
    """Stand by, act as the room while the lease is ours, stand by again if it is lost."""
    from townhall.server.app import TownhallServer

    room = settings.server.room
    bus.Subjects.of(room)  # a room id that cannot name subjects or a key: one line, now
    standby = Standby(settings)
    await standby.start()
    # The active authority serves where the standby listened (a --port 0 stays put).
    settings = replace(settings, server=replace(settings.server, port=standby.port))
    url = f"http://{settings.server.host}:{standby.port}"
    holder = Holder(uuid.uuid4().hex[:12], settings.server.public_url or url, time.time())
    lease = LeaseThread(settings.bus, room, holder)
    server: TownhallServer | None = None
    warming = asyncio.get_running_loop().create_task(asyncio.to_thread(warm_up, settings))
    try:
        await lease.start()
        while True:
            say(f"townhall: standby for room {room!r} (waiting for the lease) at {url}")
            await standby.wait_for(lease)
            await standby.stop()
            term = lease.lease.term
            lease.starting = True  # building the room blocks this loop: renew regardless
            lease.keep()
            try:
                with contextlib.suppress(Exception):  # a failure here is reported below
                    await warming
                # The room, from the store; over the bus it speaks only while the lease is held.
                candidate = TownhallServer(settings, term=term, held=lease.is_held)
                await candidate.start()  # on failure it closes what it opened
            finally:
                lease.starting = False
            server = candidate
            if lease.is_held():
                say(f"townhall: serving room {room!r} at {server.url} (lease term {term})")
                say(f"townhall: WebSocket {server.ws_url}")
            await lease.lost.wait()
            await server.step_down()
            server = None
            await standby.start()
    finally:
        warming.cancel()
        if server is not None:
            await server.stop()  # its last writes are in before the lease goes back
        with contextlib.suppress(Exception):
            await lease.release()
        await lease.close()
        await standby.stop()
