"""Waiting on events, never on time: the one polling helper and the barriers built on it.

``eventually`` polls a condition until it holds or a deadline passes (then it fails with
what it was waiting for); the condition may be a coroutine function (a status read over a
socket, a retried connection). ``ticks_later`` waits for the room to tick; ``round_trip`` waits
until everything the server had sent a client before now has arrived (a Ping's Pong comes
after it on the same connection). A test that must show something did *not* happen waits
for the room to have ticked and the connection to be flushed, then looks.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from townhall.protocol.messages import Message, Ping, Pong

if TYPE_CHECKING:
    from townhall.plugin.client import RoomClient
    from townhall.server.app import TownhallServer

POLL_S = 0.02


async def eventually(
    predicate: Callable[[], object | Awaitable[object]],
    timeout: float = 10.0,
    what: str = "",
    poll: float = POLL_S,
) -> None:
    """Return once ``predicate()`` (awaited if it is a coroutine) is true; fail after
    ``timeout`` seconds. ``poll`` paces a costly predicate (a new connection each time)."""
    deadline = time.monotonic() + timeout
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(poll)


async def ticks_later(server: TownhallServer, ticks: int = 2, timeout: float = 5.0) -> None:
    """Return once the room has ticked ``ticks`` more times (shipped what was due)."""
    target = server.metrics.ticks + ticks
    await eventually(lambda: server.metrics.ticks >= target, timeout, f"{ticks} room ticks")


async def round_trip(*clients: RoomClient, timeout: float = 5.0) -> None:
    """Return once each client has everything the server sent it before this call."""
    for client in clients:
        marker = -(time.monotonic_ns() // 1000)  # a client time no real Ping carries
        answered = asyncio.Event()

        def on_message(
            message: Message, marker: int = marker, answered: asyncio.Event = answered
        ) -> None:
            if isinstance(message, Pong) and message.client_time_us == marker:
                answered.set()

        client.listeners.append(on_message)
        try:
            await client.send(Ping(marker))
            await asyncio.wait_for(answered.wait(), timeout)
        finally:
            client.listeners.remove(on_message)


async def settled(server: TownhallServer, *clients: RoomClient) -> None:
    """The room has ticked twice and every client has what those ticks sent it."""
    await ticks_later(server)
    await round_trip(*clients)
