"""An asyncio room client: connect, join, sync the clock, send poses, decode everything.

This is what a headset app (or a bot, or a test) uses to be in the room. It keeps
the resume token and last sequence number so a dropped connection comes back to
the same seat and continues where it left off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from townhall.protocol import ClockSync, codec, quant
from townhall.protocol.errors import ErrorCode
from townhall.protocol.limits import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION
from townhall.protocol.messages import (
    Error,
    Hand,
    Join,
    KeyframeRequest,
    Leave,
    Message,
    Ping,
    Pong,
    Pose,
    Welcome,
)

from .state import RoomState

log = logging.getLogger("townhall.plugin")


def local_us() -> int:
    return time.monotonic_ns() // 1000


class JoinRejected(Exception):
    """The server answered Join with an error."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{ErrorCode(error.code).name}: {error.reason}")
        self.error = error


class CannotReach(ConnectionError):
    """The server could not be reached or would not open the WebSocket (no Join was read)."""


def _unreachable(url: str, exc: BaseException) -> CannotReach:
    if isinstance(exc, InvalidURI):
        why = "not a WebSocket URL (ws://HOST:PORT/ws)"
    elif isinstance(exc, InvalidStatus):
        why = f"the server answered HTTP {exc.response.status_code}"
    elif isinstance(exc, TimeoutError):
        why = "no answer in time"
    elif isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        why = "connection refused (is the server running, on that port?)"
    elif isinstance(exc, socket.gaierror):
        why = "no such host"
    elif isinstance(exc, OSError) and exc.strerror:
        why = exc.strerror.lower()
    else:
        why = str(exc) or type(exc).__name__
    return CannotReach(f"cannot reach {url}: {why}")


class ClockNotSynced(TimeoutError):
    """No Pong came back: the server's media clock cannot be followed."""


SYNC_TIMEOUT_S = 15.0
MOVE_TIMEOUT_S = 3.0  # how long reconnecting waits for one edge before trying the next


class RoomClient:
    """One participant's connection to a Townhall room."""

    live = True  # False for a recording played back (plugin/replay.py): no jitter to adapt to

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        client_info: str = "townhall-plugin/0.1",
        on_message: Callable[[Message], None] | None = None,
        timeout_s: float = 15.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.headers = headers or {}  # extra handshake headers (e.g. a browser's Cookie)
        self.token = token
        self.client_info = client_info
        self.on_message = on_message
        self.listeners: list[Callable[[Message], None]] = []  # e.g. the mic (plugin/mic.py)
        self.timeout_s = timeout_s
        self._tasks: set[asyncio.Task[None]] = set()
        self.state = RoomState()
        self.clock = ClockSync()
        self.welcome: Welcome | None = None
        self.errors: list[Error] = []
        self.received = 0
        self.connection: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self._open_timeout_s: float | None = None  # shorter while trying edge after edge
        self.moves = 0  # reconnects that came back through another URL than the one before
        self.random = random.Random()

    # ------------------------------------------------------------ connection

    async def connect(self, resume: bool = False) -> Welcome:
        """Open the WebSocket, send Join (resuming if asked and possible), read Welcome."""
        self._closed.clear()
        try:
            self.connection = await connect(
                self.url,
                compression=None,
                max_size=None,
                open_timeout=self._open_timeout_s or self.timeout_s,
                additional_headers=self.headers,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise _unreachable(self.url, exc) from exc
        join = Join(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, self.token, client=self.client_info)
        if resume and self.welcome is not None:
            join = Join(
                MIN_PROTOCOL_VERSION,
                PROTOCOL_VERSION,
                self.token,
                self.welcome.resume,
                self.state.seq,
                self.client_info,
            )
        await self.connection.send(codec.encode(join))
        first = codec.decode_server(await asyncio.wait_for(self._recv_bytes(), self.timeout_s))
        if isinstance(first, Error):
            await self.connection.wait_closed()
            raise JoinRejected(first)
        if not isinstance(first, Welcome):
            raise RuntimeError(f"expected Welcome, got {type(first).__name__}")
        self.welcome = first
        self._handle(first)
        self._reader = asyncio.create_task(self._read_loop(), name="room-client-reader")
        return first

    async def _recv_bytes(self) -> bytes:
        assert self.connection is not None
        data = await self.connection.recv()
        if isinstance(data, str):
            raise RuntimeError("server sent a text frame")
        return data

    async def _read_loop(self) -> None:
        assert self.connection is not None
        try:
            async for data in self.connection:
                if isinstance(data, bytes):
                    self._handle(codec.decode_server(data))
        except ConnectionClosed:
            pass
        finally:
            self.close_code = self.connection.close_code
            self.close_reason = self.connection.close_reason or ""
            self._closed.set()

    def _handle(self, message: Message) -> None:
        self.received += 1
        if isinstance(message, Pong):
            self.clock.add(
                message.client_time_us, message.server_recv_us, message.server_send_us, local_us()
            )
        elif isinstance(message, Error):
            self.errors.append(message)
        self.state.apply(message, quant.COARSE_DTYPE.itemsize)
        if self.state.needs_keyframe and self.connection is not None:
            self.state.needs_keyframe = False
            task = asyncio.get_running_loop().create_task(self._request_keyframe())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if self.on_message is not None:
            self.on_message(message)
        for listener in self.listeners:
            listener(message)

    async def _request_keyframe(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self.send(KeyframeRequest())

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def reconnect(self) -> Welcome:
        """Come back after a drop: same seat, continuing from the last sequence number.

        With a list of edges from the last Welcome, the other edges are tried first (from a
        random one on, so the clients of a dead edge spread over the rest), then this one;
        each gets ``MOVE_TIMEOUT_S`` to open. Any edge resumes the seat: the room is one.
        """
        await self.close()
        candidates = self.candidates()
        last: CannotReach | JoinRejected | None = None
        for url in candidates:
            before, self.url = self.url, url
            self._open_timeout_s = min(self.timeout_s, MOVE_TIMEOUT_S)
            try:
                welcome = await self.connect(resume=True)
            except (CannotReach, JoinRejected) as exc:
                # An edge that cannot serve the room now (ROOM_UNAVAILABLE) is as one that
                # cannot be reached: the next may. Any other refusal holds at every edge.
                if isinstance(exc, JoinRejected) and exc.error.code != ErrorCode.ROOM_UNAVAILABLE:
                    raise
                self.url = before
                last = exc
                log.info("edge unreachable, trying the next", extra={"url": url})
                continue
            finally:
                self._open_timeout_s = None
            if url != before:
                self.moves += 1
                log.info("moved to another edge", extra={"from": before, "to": url})
            return welcome
        assert last is not None
        raise last

    def candidates(self) -> list[str]:
        """Where to reconnect, in order: the Welcome's other edges, then this URL."""
        edges = list(self.welcome.edges) if self.welcome is not None else []
        others = [u for u in dict.fromkeys(edges) if u != self.url]
        if others:
            start = self.random.randrange(len(others))
            others = others[start:] + others[:start]
        return [*others, self.url]

    # ------------------------------------------------------------ sending

    async def send(self, message: Message) -> None:
        assert self.connection is not None, "not connected"
        await self.connection.send(codec.encode(message))

    async def sync_clock(
        self, samples: int = 5, interval_s: float = 0.02, timeout_s: float = SYNC_TIMEOUT_S
    ) -> float:
        """Ping a few times; returns the estimated offset (server minus local, microseconds).

        Waits for a first Pong up to ``timeout_s``: joining mid-answer, the Pongs queue behind
        the replayed speech, which a busy machine can take seconds to deliver. Raises
        :class:`ClockNotSynced` if none comes or the connection closes meanwhile.
        """
        for _ in range(samples):
            await self.send(Ping(local_us()))
            await asyncio.sleep(interval_s)
        deadline = time.monotonic() + timeout_s
        while not self.clock.synced:
            if self.closed:
                raise ClockNotSynced(
                    f"{self.url} closed the connection ({self.close_code} {self.close_reason})"
                )
            if time.monotonic() > deadline:
                raise ClockNotSynced(f"{self.url} did not answer Ping in {timeout_s:.0f} s")
            await asyncio.sleep(0.01)
        return self.clock.offset_us

    async def send_pose(self, pose: bytes, flags: int = 0) -> None:
        await self.send(Pose(local_us(), pose, flags))

    async def raise_hand(self, raised: bool = True) -> None:
        await self.send(Hand(raised))

    async def leave(self) -> None:
        await self.send(Leave())
        await self.close()

    def server_now_us(self) -> float:
        """The server's media clock as this client estimates it now."""
        return self.clock.to_server(local_us())
