"""``townhall demo``: a server and a hall full of simulated attendees in one process.

The quickest way to see the room alive: it prints the URLs to open and tokens
to join with, seats the bots, and says every few seconds how the room is doing,
from the same counters ``/metrics`` serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

import psutil

from townhall.plugin.bots import BotStats, run_bots
from townhall.server.app import TownhallServer
from townhall.server.gateway.tokens import issue_token
from townhall.server.ops.config import Settings
from townhall.server.ops.demo_audience import run_audience

Say = Callable[[str], None]

BOTS_STOP_TIMEOUT_S = 15.0


def _say(line: str) -> None:
    print(line, flush=True)


def banner(server: TownhallServer, bots: int) -> list[str]:
    """The lines that tell a person where to look and how to join."""
    room = server.room.room_id
    ttl = server.settings.auth.default_ttl_s

    def mint(role: str, name: str) -> str:
        user = f"{role}-{uuid.uuid4().hex[:8]}"
        return issue_token(server.secret, user_id=user, name=name, role=role, room=room, ttl_s=ttl)

    room_arg = "" if room == "main" else f" --room {room}"
    return [
        f"townhall demo: room {room!r} with {bots} simulated attendees",
        f"  server     {server.url}/",
        f"  health     {server.url}/healthz",
        f"  metrics    {server.url}/metrics",
        f"  WebSocket  {server.ws_url}",
        f"  watch      {server.url}/watch?token={mint('spectator', 'Demo Spectator')}",
        f"  moderate   {server.url}/moderate?token={mint('moderator', 'Demo Moderator')}",
        "  more tokens (same directory and --config as this demo):",
        f"    townhall token --role spectator --name You{room_arg}",
    ]


class StatusLine:
    """Rates since the last line, from the server's counters and this process's CPU."""

    def __init__(self, server: TownhallServer) -> None:
        self.server = server
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first call only sets the baseline
        self._mark()

    def _mark(self) -> None:
        m = self.server.metrics
        self.t = time.monotonic()
        self.out, self.inn, self.dropped = m.messages_out, m.messages_in, m.frames_dropped

    def line(self) -> str:
        m, room = self.server.metrics, self.server.room
        dt = max(1e-6, time.monotonic() - self.t)
        seated = sum(1 for x in room.members.values() if x.connected and x.seat >= 0)
        hands = sum(1 for x in room.members.values() if x.hand_raised)
        text = (
            f"demo: {seated} attendees seated, {hands} hands up, "
            f"{(m.messages_out - self.out) / dt:.0f} messages out/s, "
            f"{(m.messages_in - self.inn) / dt:.0f} in/s, "
            f"dropped {m.frames_dropped - self.dropped}, "
            f"tick lag max {m.tick_lag_max_s * 1000:.1f} ms, "
            f"cpu {self.process.cpu_percent():.0f}%"
        )
        self._mark()
        return text


async def _report(status: StatusLine, every_s: float, say: Say) -> None:
    while True:
        await asyncio.sleep(every_s)
        say(status.line())


async def run_demo(
    settings: Settings,
    bots: int = 200,
    seconds: float = 0,
    *,
    status_every_s: float = 10.0,
    say: Say = _say,
) -> None:
    """Serve, seat ``bots`` attendees, report; stop after ``seconds`` (0: until cancelled)."""
    async with TownhallServer(settings) as server:
        for line in banner(server, bots):
            say(line)
        started = time.monotonic()
        status = StatusLine(server)
        stop = asyncio.Event()
        crowd = asyncio.create_task(
            run_bots(
                server.ws_url,
                bots,
                secret=server.secret,
                room=server.room.room_id,
                stop=stop,
                progress=say,
            )
            if bots > 0
            else stop.wait(),
            name="demo-bots",
        )
        reporter = asyncio.create_task(_report(status, status_every_s, say), name="demo-status")
        audience = (
            asyncio.create_task(run_audience(server, say), name="demo-audience")
            if server.turns is not None
            else None
        )
        stats: BotStats | None = None
        try:
            await asyncio.wait({crowd}, timeout=seconds if seconds > 0 else None)
        finally:
            # Runs on Ctrl-C too: the bots leave before the server goes away.
            reporter.cancel()
            if audience is not None:
                audience.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await audience
            say(status.line())
            stop.set()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                result = await asyncio.wait_for(crowd, BOTS_STOP_TIMEOUT_S)
                stats = result if isinstance(result, BotStats) else None
            ran = time.monotonic() - started
            joined = f"; {stats.connected} bots had joined" if stats else ""
            say(f"demo: stopped after {ran:.1f} s{joined}")
