"""Load bots: many simulated attendees, each a real RoomClient on its own WebSocket.

One shared ticker drives every bot: it evaluates all headsets in one numpy pass,
then writes each bot's pose to its socket. That is far cheaper than a task and a
timer per bot, so one process can seat hundreds of bots next to the server on a
small machine. Joins ramp up in batches so the server is not stampeded, and a
dropped bot comes back on its own, resuming its seat; one whose first join failed for a
reason that passes (a full server, a timeout) keeps trying, so a demo seats every bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.protocol import State

from townhall.protocol.errors import ErrorCode
from townhall.protocol.limits import POSE_BYTES
from townhall.server.gateway.tokens import issue_token

from .client import JoinRejected, RoomClient
from .headset_sim import HandSchedule, HeadsetBatch, SimulatedHeadset

Progress = Callable[[str], None]

TOKEN_TTL_S = 8 * 3600  # re-minted on every reconnect, so a long run never outlives it
SEND_BACKLOG_BYTES = 16 * 1024  # above this a bot skips poses instead of blocking the ticker
BACKOFF_S = (0.5, 10.0)  # first and longest wait before a reconnect attempt
CLOSE_TIMEOUT_S = 10.0
JOIN_TIMEOUT_S = 15.0  # RoomClient.connect waits for Welcome without a limit of its own
CONNECT_FAILED = "CONNECT_FAILED"  # not a protocol code: the socket or handshake failed

# Refusals that another attempt cannot fix; anything else is retried with backoff.
FINAL_CODES = frozenset(
    {
        ErrorCode.AUTH_INVALID,
        ErrorCode.BAD_TOKEN,
        ErrorCode.WRONG_ROOM,
        ErrorCode.VERSION_UNSUPPORTED,
        ErrorCode.BANNED,
        ErrorCode.REPLACED,
    }
)


@dataclass
class BotStats:
    """What a bot run did, summed over all bots."""

    connected: int = 0  # bots that joined at least once
    poses_sent: int = 0
    poses_skipped: int = 0  # not sent because the bot's socket was backed up
    hands_raised: int = 0
    messages_received: int = 0
    reconnects: int = 0
    moves: int = 0  # reconnects that went to another edge (Welcome's list) than before
    errors: list[str] = field(default_factory=list)  # distinct error codes, first seen first
    error_counts: dict[str, int] = field(default_factory=dict)

    def count_error(self, code: str) -> bool:
        """Count one error; True if this code is new (worth telling the user once)."""
        new = code not in self.error_counts
        self.error_counts[code] = self.error_counts.get(code, 0) + 1
        if new:
            self.errors.append(code)
        return new


@dataclass(eq=False)
class _Bot:
    index: int
    client: RoomClient
    headset: SimulatedHeadset
    up: bool = False  # joined and sending
    hand_sent: bool = False  # the hand state the server last heard from us
    errors_seen: int = 0  # how many of client.errors are already counted
    gave_up: bool = False  # refused for a reason another attempt cannot fix
    joined_once: bool = False  # a drop resumes the seat; a failed first join joins afresh


def _code_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return f"CODE_{code}"


class _BotRun:
    """The state of one ``run_bots`` call: bots, ticker, reconnects, stats."""

    def __init__(
        self,
        url: str,
        count: int,
        secret: str,
        room: str,
        pose_hz: float,
        seed: int,
        batch: int,
        hands: tuple[tuple[float, float], tuple[float, float]],
        progress: Progress | None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.room = room
        self.seed = seed
        self.batch = max(1, batch)
        self.pose_hz = pose_hz
        self.progress = progress
        self.stats = BotStats()
        self.stopping = False
        self.random = random.Random(seed)  # backoff jitter only
        self.bots = [
            _Bot(i, RoomClient(url, client_info="townhall-bot/0.1"), self.headset(i, hands))
            for i in range(count)
        ]
        self.headsets = HeadsetBatch([b.headset for b in self.bots])
        self.epoch = time.monotonic()
        self._reconnecting: set[asyncio.Task[None]] = set()

    def headset(
        self, i: int, hands: tuple[tuple[float, float], tuple[float, float]]
    ) -> SimulatedHeadset:
        seed = self.seed * 1_000_003 + i  # distinct per bot and per run seed
        return SimulatedHeadset(seed, HandSchedule(seed, *hands))

    def say(self, line: str) -> None:
        if self.progress is not None:
            self.progress(line)

    def token(self, i: int) -> str:
        return issue_token(
            self.secret,
            user_id=f"bot-{self.seed}-{i}",
            name=f"Bot {i + 1}",
            role="attendee",
            room=self.room,
            ttl_s=TOKEN_TTL_S,
        )

    # ------------------------------------------------------------ joining

    async def ramp(self) -> None:
        """Join all bots, a batch at a time; stop early if a whole batch is refused. Once
        some have joined, a bot whose first join failed for a reason another attempt may
        fix (a full room, a timeout) keeps trying with backoff, as a dropped one does."""
        total = len(self.bots)
        tried = 0
        for start in range(0, total, self.batch):
            group = self.bots[start : start + self.batch]
            results = await asyncio.gather(*(self.join(b) for b in group))
            tried += len(group)
            self.say(f"bots: {self.stats.connected}/{total} seated")
            if not any(results):
                left = total - start - len(group)
                if left:
                    self.say(f"bots: a whole batch failed to join; not starting the other {left}")
                break
        if self.stats.connected and not self.stopping:
            for bot in self.bots[:tried]:
                if not bot.up and not bot.gave_up:
                    self.come_back(bot)

    async def join(self, bot: _Bot) -> bool:
        bot.client.token = self.token(bot.index)
        try:
            welcome = await asyncio.wait_for(bot.client.connect(), JOIN_TIMEOUT_S)
        except JoinRejected as exc:
            self.refused(exc)
            bot.gave_up = ErrorCode(exc.error.code) in FINAL_CODES
            return False
        except (OSError, TimeoutError, WebSocketException, RuntimeError) as exc:
            if self.stats.count_error(CONNECT_FAILED):
                self.say(f"bots: cannot connect to {self.url}: {exc}")
            return False
        if welcome.pose_hz < self.pose_hz:
            self.say(f"bots: the room asks for {welcome.pose_hz} poses/s; sending at that rate")
            self.pose_hz = float(welcome.pose_hz)
        self.stats.connected += 1
        bot.up = bot.joined_once = True
        return True

    def refused(self, exc: JoinRejected) -> None:
        code = _code_name(exc.error.code)
        if self.stats.count_error(code):
            self.say(f"bots: join refused: {code}: {exc.error.reason}")

    # ------------------------------------------------------------ ticking

    async def ticker(self) -> None:
        """Send every live bot's pose at the pose rate; skip ticks rather than burst."""
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            period = 1.0 / self.pose_hz
            deadline += period
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -5 * period:
                deadline = loop.time()  # far behind: the server's rate limit would bite
            await self.tick(time.monotonic() - self.epoch)

    async def tick(self, t: float) -> None:
        poses = self.headsets.encoded_at(t)
        for bot in self.bots:
            self.collect_errors(bot)
            if not bot.up:
                continue
            client = bot.client
            conn = client.connection
            if client.closed or conn is None or conn.state is not State.OPEN:
                self.dropped(bot)
                continue
            if conn.transport.get_write_buffer_size() > SEND_BACKLOG_BYTES:
                self.stats.poses_skipped += 1
                continue
            i = bot.index * POSE_BYTES
            try:
                await client.send_pose(poses[i : i + POSE_BYTES], bot.headset.flags_at(t))
                self.stats.poses_sent += 1
                raised = bot.headset.hand_raised_at(t)
                if raised != bot.hand_sent:
                    await client.raise_hand(raised)
                    bot.hand_sent = raised
                    self.stats.hands_raised += raised
            except ConnectionClosed:
                self.dropped(bot)

    def collect_errors(self, bot: _Bot) -> None:
        errors = bot.client.errors
        while bot.errors_seen < len(errors):
            err = errors[bot.errors_seen]
            bot.errors_seen += 1
            code = _code_name(err.code)
            if self.stats.count_error(code):
                self.say(f"bots: server sent {code}: {err.reason}")

    # ------------------------------------------------------------ reconnecting

    def dropped(self, bot: _Bot) -> None:
        if not bot.up:
            return
        bot.up = False
        if self.stopping:
            return
        if (bot.client.close_code or 0) - 4000 in FINAL_CODES:
            bot.gave_up = True
            return
        self.come_back(bot)

    def come_back(self, bot: _Bot) -> None:
        task = asyncio.create_task(self.reconnect(bot), name=f"bot-{bot.index}-reconnect")
        self._reconnecting.add(task)
        task.add_done_callback(self._reconnecting.discard)

    async def reconnect(self, bot: _Bot) -> None:
        """Come back after a drop (resuming the seat) or after a failed first join (joining
        afresh), backing off (with jitter) while it fails."""
        delay = BACKOFF_S[0]
        first_join = not bot.joined_once
        while not self.stopping:
            await asyncio.sleep(delay * self.random.uniform(0.5, 1.5))
            if first_join:
                if await self.join(bot):
                    self.all_up()
                    return
                if bot.gave_up:
                    return
                delay = min(BACKOFF_S[1], delay * 2)
                continue
            bot.client.token = self.token(bot.index)
            moves_before = bot.client.moves
            try:
                await asyncio.wait_for(bot.client.reconnect(), JOIN_TIMEOUT_S)
            except JoinRejected as exc:
                self.refused(exc)
                if ErrorCode(exc.error.code) in FINAL_CODES:
                    bot.gave_up = True
                    return
            except (OSError, TimeoutError, WebSocketException, RuntimeError):
                self.stats.count_error(CONNECT_FAILED)
            else:
                bot.hand_sent = False  # the server lowers the hand of a dropped attendee
                bot.up = True
                self.stats.reconnects += 1
                self.stats.moves += bot.client.moves - moves_before
                self.all_up()
                return
            delay = min(BACKOFF_S[1], delay * 2)

    def all_up(self) -> None:
        """Say so once every bot is up (or has given up): once per storm, not per bot."""
        if all(b.up or b.gave_up for b in self.bots):
            self.say(
                f"bots: all {len(self.bots)} up again; {self.stats.reconnects} "
                f"reconnects so far, {self.stats.moves} to another edge"
            )

    # ------------------------------------------------------------ stopping

    async def shutdown(self) -> None:
        """Stop sending, then leave (freeing seats) or close every connection."""
        self.stopping = True
        for task in list(self._reconnecting):
            task.cancel()
        await asyncio.gather(*self._reconnecting, return_exceptions=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*(self.close(b) for b in self.bots), return_exceptions=True),
                CLOSE_TIMEOUT_S,
            )
        for bot in self.bots:
            self.collect_errors(bot)
            self.stats.messages_received += bot.client.received

    async def close(self, bot: _Bot) -> None:
        client = bot.client
        conn = client.connection
        if conn is None:
            return
        if conn.state is State.OPEN:
            with contextlib.suppress(ConnectionClosed):
                await client.leave()
                return
        await client.close()


async def run_bots(
    url: str,
    count: int,
    *,
    secret: str,
    room: str,
    seconds: float = 0,
    pose_hz: float = 20,
    seed: int = 1,
    progress: Progress | None = print,
    batch: int = 50,
    hand_every_s: tuple[float, float] = (30.0, 90.0),
    hand_up_s: tuple[float, float] = (2.0, 6.0),
    stop: asyncio.Event | None = None,
) -> BotStats:
    """Seat ``count`` simulated attendees and keep them moving.

    Runs for ``seconds`` from the call (0: until cancelled or ``stop`` is set),
    then leaves cleanly and returns the stats. Join refusals and server errors
    are reported through ``progress`` once per error code, not once per bot.
    """
    if count < 0 or pose_hz <= 0:
        raise ValueError("count must be >= 0 and pose_hz > 0")
    hands = (hand_every_s, hand_up_s)
    run = _BotRun(url, count, secret, room, pose_hz, seed, batch, hands, progress)
    stop = stop or asyncio.Event()
    ticker = asyncio.create_task(run.ticker(), name="bots-ticker")
    ramp = asyncio.create_task(run.ramp(), name="bots-ramp")
    stopped = asyncio.create_task(stop.wait(), name="bots-stop")
    deadline = run.epoch + seconds if seconds > 0 else None
    try:
        waiting = {ramp, stopped, ticker}
        while not stopped.done() and not ticker.done():
            if ramp.done():
                waiting.discard(ramp)
                if not run.stats.connected:
                    break
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait(waiting, timeout=left, return_when="FIRST_COMPLETED")
            if not done:
                break  # time is up
    finally:
        for task in (ramp, stopped, ticker):
            task.cancel()
        await asyncio.gather(ramp, stopped, return_exceptions=True)
        crashed = await asyncio.gather(ticker, return_exceptions=True)
        await run.shutdown()
        s = run.stats
        run.say(
            f"bots: done: {s.connected} joined, {s.poses_sent} poses sent, "
            f"{s.messages_received} messages received, {s.reconnects} reconnects"
            f" ({s.moves} to another edge)" + (f", errors {s.error_counts}" if s.errors else "")
        )
    if isinstance(crashed[0], Exception):
        raise crashed[0]  # a bug in the ticker must not pass for a quiet run
    return run.stats
