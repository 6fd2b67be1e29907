"""The room's seam over NATS: subjects, the tick stream, and an ordered publisher.

A room's authority and its edges meet on a handful of subjects named after the room
(``Subjects``). Ticks (sequenced events, stage packets, broadcasts) go to a JetStream
stream so an edge can replay what it missed; crowd frames and live voice go to plain
subjects (latest-wins). Each message is one length-prefixed ``seam`` message, the same
bytes the local workers read from their stream, and is validated on arrival like
client input: a bad one is logged and dropped.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from townhall.server.fanout import seam as ipc
from townhall.server.ops.config import BusSettings
from townhall.server.ops.errors import UsageError

log = logging.getLogger("townhall.bus")

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
PRESENCE_ROOT = "edges"  # townhall.edges.<edge>: no room may take this id
CANCEL_AGAIN_S = 0.1  # a cancel nats.py lost is sent again this soon
TICK_STREAM_MAX_MSGS = 100_000  # at 20 Hz, well over an hour; max_age trims it first


class BusError(UsageError):
    """The bus cannot be used: a room id that is no subject token, NATS not answering."""


@dataclass(frozen=True)
class Subjects:
    """The subjects of one room (``townhall.<room>.…``)."""

    room: str

    @classmethod
    def of(cls, room: str) -> Subjects:
        if not _TOKEN.match(room):
            raise BusError(
                f"room id {room!r} cannot name NATS subjects: use letters, digits, - and _"
            )
        if room == PRESENCE_ROOT:
            raise BusError(f"room id {room!r} is taken by the bus itself (edges' presence)")
        return cls(room)

    @property
    def ticks(self) -> str:
        """Numbered ticks, authority -> every edge, kept in the JetStream stream."""
        return f"townhall.{self.room}.ticks"

    @property
    def crowd(self) -> str:
        """Crowd frames, authority -> every edge (latest-wins, not kept)."""
        return f"townhall.{self.room}.crowd"

    @property
    def live(self) -> str:
        """Droppable broadcasts between ticks (a live mic's voice), not kept."""
        return f"townhall.{self.room}.live"

    def edge(self, edge_id: str) -> str:
        """Messages for one edge's clients: Adopt, Send, Close, a keyframe Broadcast."""
        return f"townhall.{self.room}.edge.{edge_id}"

    def inbound(self, edge_id: str) -> str:
        """What one edge's clients send, and the edge's own Connect/Gone/Stats."""
        return f"townhall.{self.room}.in.{edge_id}"

    @property
    def inbound_all(self) -> str:
        return f"townhall.{self.room}.in.*"

    @property
    def stream(self) -> str:
        return f"TOWNHALL_{self.room.replace('-', '_')}_TICKS"


def presence(deployment: str, edge_id: str) -> str:
    """Where an edge says, once a second, the URL it serves every room of its deployment at
    (``townhall.edges.<deployment>.<edge>``): pages served by any authority of the deployment
    may connect there, and its rooms' clients may move there. Deployments sharing one NATS
    (staging beside production) each hear only their own edges (``bus.deployment``)."""
    return f"townhall.{PRESENCE_ROOT}.{deployment}.{edge_id}"


def presence_all(deployment: str) -> str:
    """Every edge's presence in one deployment."""
    return f"townhall.{PRESENCE_ROOT}.{deployment}.*"


def presence_message(url: str) -> bytes:
    """A presence message: a ``Stats`` carrying only the edge's URL."""
    return ipc.pack(ipc.Stats(0, 0, 0, {}, {}, url=url))


def edge_id_of(subject: str) -> str:
    """The edge a ``…in.<edge>`` subject came from ('' if it is not one)."""
    last = subject.rsplit(".", 1)[-1]
    return last if _TOKEN.match(last) else ""


Reconnected = list[Callable[[], Awaitable[None]]]


RESET_ATTEMPTS = 3  # first connects that end in a bare reset before giving up


async def connect(
    settings: BusSettings, name: str, on_reconnect: Reconnected | None = None
) -> NatsClient:
    """A NATS connection that reconnects by itself; one-line BusError if none answers.

    Once connected the client retries for ever (a NATS restart is a pause, not an end);
    the first connection gets ``bus.connect_timeout_s``, so a wrong ``bus.url`` is reported.
    After a reconnect each of ``on_reconnect`` (a list its owner may fill later) runs:
    a restarted server has lost what lived in its memory, such as the tick stream.
    """
    hooks: Reconnected = on_reconnect if on_reconnect is not None else []
    running: set[asyncio.Task[None]] = set()

    async def run_hooks() -> None:
        for hook in list(hooks):
            try:
                await hook()
            except Exception as exc:  # logged; the next reconnect tries again
                log.error("bus: after reconnecting", extra={"error": str(exc) or repr(exc)})

    servers = [u.strip() for u in settings.url.split(",") if u.strip()]
    last_error = ["no answer in time"]

    async def error(exc: Exception) -> None:
        last_error[0] = str(exc) or type(exc).__name__
        log.warning("bus error", extra={"error": last_error[0]})

    async def disconnected() -> None:
        log.warning("bus disconnected")

    async def reconnected() -> None:
        log.info("bus reconnected")
        task = asyncio.get_running_loop().create_task(run_hooks(), name="bus-reconnected")
        running.add(task)
        task.add_done_callback(running.discard)

    options: dict[str, Any] = {
        "servers": servers,
        "name": name,
        "connect_timeout": 3,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "error_cb": error,
        "disconnected_cb": disconnected,
        "reconnected_cb": reconnected,
    }
    if settings.user:
        options["user"] = settings.user
        options["password"] = settings.password
    tls = tls_context(settings)
    if tls is not None:
        options["tls"] = tls
    for attempt in range(RESET_ATTEMPTS):
        try:
            return await within(nats.connect(**options), settings.connect_timeout_s)
        except ConnectionResetError as exc:
            # NATS refuses bad credentials with -ERR and closes at once: the client may
            # read the reset before the -ERR. Ask again to learn the reason; say it if not.
            if "authorization" in last_error[0].lower():
                raise BusError(f"cannot reach NATS at {settings.url}: {last_error[0]}") from exc
            if attempt + 1 < RESET_ATTEMPTS:
                continue
            reason = _with_reset_hint(str(exc) or last_error[0], settings)
            raise BusError(f"cannot reach NATS at {settings.url}: {reason}") from exc
        except (NatsError, OSError, TimeoutError) as exc:
            # Out of time (a busy machine) after resets: the last error seen says why.
            reason = _with_reset_hint(str(exc) or last_error[0], settings)
            if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY" in reason:
                reason += " (bus.tls_ca names the CA that signed the NATS server's certificate)"
            raise BusError(f"cannot reach NATS at {settings.url}: {reason}") from exc
    raise AssertionError("unreachable")


async def within(connecting: Awaitable[NatsClient], timeout_s: float) -> NatsClient:
    """``connecting``'s client, or TimeoutError once ``timeout_s`` has passed and it ended.

    Not ``asyncio.wait_for``: nats.py retries a first connection for ever, and on Python
    3.11 a cancel that meets a refused TCP connect inside its own ``wait_for`` turns into
    the refusal, which nats.py catches and retries: the cancel is lost and ``wait_for``
    waits for ever (a test hung 180 s so). The attempt is cancelled until it ends.
    """
    task = asyncio.ensure_future(connecting)
    done, _ = await asyncio.wait({task}, timeout=timeout_s)
    if done:
        return task.result()
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_AGAIN_S)
    # exception() also marks an error retrieved: its reason is the last one the callback saw
    if not task.cancelled() and task.exception() is None:
        await task.result().close()  # connected as the deadline passed: too late
    raise TimeoutError


def _with_reset_hint(reason: str, settings: BusSettings) -> str:
    """A reset connection with credentials set is most likely NATS refusing them."""
    if settings.user and "reset" in reason.lower():
        return reason + " (NATS closes the connection on a wrong bus.user/bus.password)"
    return reason


def tls_context(settings: BusSettings) -> ssl.SSLContext | None:
    """TLS for the bus when a URL asks for it or TLS files are set; None: plain TCP.

    The server is verified against ``bus.tls_ca`` (else the system's CAs) and its name or
    address; ``bus.tls_cert``/``bus.tls_key`` answer a server that verifies its clients.
    """
    urls = [u.strip() for u in settings.url.split(",")]
    wanted = any(u.startswith("tls://") for u in urls)
    if not (wanted or settings.tls_ca or settings.tls_cert):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.tls_ca or None)
        if settings.tls_cert:
            context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise BusError(f"cannot use the bus's TLS files: {exc}") from exc
    return context


async def ensure_stream(nc: NatsClient, subjects: Subjects, replay_s: float) -> None:
    """The room's tick stream (in memory: ticks matter for minutes, not after a restart)."""
    js = nc.jetstream()
    config = StreamConfig(
        name=subjects.stream,
        subjects=[subjects.ticks],
        storage=StorageType.MEMORY,
        max_age=replay_s,
        max_msgs=TICK_STREAM_MAX_MSGS,
        discard=DiscardPolicy.OLD,
    )
    try:
        await js.add_stream(config)
    except BadRequestError:  # it exists with other limits: take ours
        await js.update_stream(config)
    except NatsError as exc:
        raise BusError(f"NATS has no usable JetStream (run nats-server -js): {exc}") from exc


class Publisher:
    """Publishes from synchronous code, in order: one task drains a queue.

    ``nc.publish`` is a coroutine; the room's effects are carried out synchronously, so
    publishing goes through this queue rather than a task per message (which could
    reorder them when a flush awaits).
    """

    def __init__(self, nc: NatsClient, guard: Callable[[], bool] = lambda: True) -> None:
        """``guard``: whether we may still speak (an authority: it holds the room's lease);
        once it says no, the publisher is fenced for good, checked on every message."""
        self.nc = nc
        self.guard = guard
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.bytes_out = 0
        self.fenced = False  # set when the authority lost its lease: nothing more goes out
        self.task = asyncio.get_running_loop().create_task(self._run(), name="bus-publish")

    def publish(self, subject: str, data: bytes) -> None:
        if self.fenced:
            return
        if not self.guard():
            log.error("no longer allowed to speak for the room: publishing stopped")
            self.fence()
            return
        self.queue.put_nowait((subject, data))

    def fence(self) -> None:
        """Publish nothing more, not even what is queued (a deposed authority's last words)."""
        self.fenced = True
        while not self.queue.empty():
            self.queue.get_nowait()

    async def _run(self) -> None:
        while True:
            subject, data = await self.queue.get()
            if self.fenced or not self.guard():
                self.fence()
                continue
            try:
                await self.nc.publish(subject, data)
                self.bytes_out += len(data)
            except NatsError as exc:  # disconnected past the reconnect buffer: dropped
                log.warning("bus publish failed", extra={"error": str(exc), "subject": subject})

    async def close(self) -> None:
        """Publish what is queued, then stop."""
        while not self.queue.empty() and not self.nc.is_closed and not self.fenced:
            await asyncio.sleep(0.01)
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class SubjectWriter:
    """A ``RoomWriter`` for the uplink: packed seam messages to one subject."""

    def __init__(self, publisher: Publisher, subject: str) -> None:
        self.publisher = publisher
        self.subject = subject

    def write(self, data: bytes) -> None:
        self.publisher.publish(self.subject, data)
