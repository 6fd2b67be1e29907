"""Failover with the real processes: two authorities of one room (one standing by), an edge,
clients asking and voting through the edge, PostgreSQL for the record, and a nats-server
of the test's own (the lease bucket's TTL is ours, and NATS itself gets restarted).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import nats
import psycopg
import pytest
import websockets

from townhall.plugin.bots import run_bots
from townhall.plugin.client import RoomClient
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import (
    Ack,
    Ask,
    Keyframe,
    Message,
    QuestionChanged,
    StageEnd,
    Vote,
    Welcome,
)
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.bus import Subjects

from .conftest import SECRET, TokenMaker
from .natsserver import NATS_SERVER, NatsServer, nats_server
from .postgres import fresh_database
from .test_bus_edges import Proc, health, start, stop, until
from .waiting import eventually, round_trip

pytestmark = [
    pytest.mark.skipif(not Path(NATS_SERVER).exists(), reason="needs nats-server"),
    pytest.mark.xdist_group("failover"),  # several processes each: not two such tests at once
]

# The default: an authority whose event loop stalls for half of it (the clone's work on a
# loaded machine, seen at 3 s) steps down, which would fail these tests for nothing.
LEASE_TTL_S = 5.0
# The default: at 2 s a starved edge (the suite beside bench/capacity.py) was taken for
# dead with its clients still on it, before the kill these tests are about.
EDGE_TIMEOUT_S = 5.0
# Issue 16: a standby takes over within 10 s of the active one dying. That figure is
# bench/failover.py's (README, "Failover time": 4.5 to 6 s); here, beside a busy suite, the
# standby must have taken over well within the lease's TTL more (once 10.2 s at load 8).
TAKEOVER_S = 10.0
# Where a test asserts no timing: the standby's room build (the store, the clone) may take
# many seconds on a machine as busy as CI's.
UNTIMED_TAKEOVER_S = 60.0
PING_WAIT_S = 2.0  # for one Pong, before sending another Ping (the first may have been lost)


@dataclass
class Deployment:
    room: str
    config: Path
    nats: NatsServer
    database: str
    procs: list[Proc]

    async def start(self, role: str, marker: str) -> Proc:
        proc = await start(self.config, role, marker)
        self.procs.append(proc)
        return proc


def http_of(proc: Proc) -> str:
    """The base URL a process serves /healthz on (from its WebSocket or standby line)."""
    url = proc.url.removesuffix("/ws")
    return url.replace("ws", "http", 1) if url.startswith("ws") else url


async def health_or_none(url: str) -> dict[str, object]:
    """/healthz, or an empty status while the port is between two servers (stepping down)."""
    try:
        return await health(url)
    except OSError:
        return {}


@contextlib.contextmanager
def postgres() -> Iterator[str]:
    try:
        with fresh_database() as url:
            yield url
    except psycopg.OperationalError as exc:  # pragma: no cover - the machine's setup
        raise AssertionError(f"PostgreSQL on 127.0.0.1:5432 must run (.ci/run): {exc}") from exc


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    room = f"f{uuid.uuid4().hex[:10]}"
    async with nats_server(tmp_path) as nats:
        with postgres() as database:
            config = tmp_path / "townhall.toml"
            config.write_text(
                f'[server]\nroom = "{room}"\nhost = "127.0.0.1"\n'
                f'[auth]\nsecret = "{SECRET}"\n'
                f'[store]\nurl = "{database}"\n'
                '[qa]\nmode = "auto"\nvotes_per_s = 1000\nquestions_per_minute = 6000\n'
                "[clone]\npause_s = 0.1\n"
                f'[bus]\nurl = "{nats.url}"\nedge_timeout_s = {EDGE_TIMEOUT_S}\nreplay_s = 30.0\n'
                f"lease_ttl_s = {LEASE_TTL_S}\n"
                '[log]\nformat = "text"\n'
            )
            deployment = Deployment(room, config, nats, database, [])
            try:
                yield deployment
            finally:
                for n, proc in enumerate(deployment.procs):
                    await stop(proc)
                    (tmp_path / f"proc{n}.log").write_text("".join(proc.lines))


def stored(database: str, room: str) -> tuple[dict[int, str], set[tuple[int, str]], dict[int, str]]:
    """Questions (id -> text), votes (question, voter) and answers (id -> text) in the store."""
    with psycopg.connect(database) as db:
        questions = dict(db.execute("SELECT id, text FROM questions WHERE room=%s", (room,)))
        votes = set(db.execute("SELECT question_id, voter FROM votes WHERE room=%s", (room,)))
        answers = dict(db.execute("SELECT id, text FROM answers WHERE room=%s", (room,)))
    return (
        {int(k): v for k, v in questions.items()},
        {(int(q), v) for q, v in votes},
        {int(k): v for k, v in answers.items()},
    )


@dataclass
class Chatter:
    """A client asking and voting through an edge, remembering what was acknowledged."""

    client: RoomClient
    user: str
    seen: list[Message]
    n: int

    async def run(self, questions: dict[int, str], votes: set[tuple[int, str]]) -> None:
        ref = 0
        pending: dict[int, tuple[str, object]] = {}
        read = 0
        with contextlib.suppress(Exception):
            while True:
                ref += 1
                if ref % 3 == 1 and ref < 3 * 6:  # at most 6 asks each: all fit a keyframe
                    text = f"Question {self.n}-{ref}: what is the plan for team {self.n}{ref}?"
                    pending[ref] = ("ask", text)
                    await self.client.send(Ask(ref, text))
                elif questions:
                    qid = sorted(questions)[ref % len(questions)]
                    pending[ref] = ("vote", qid)
                    await self.client.send(Vote(ref, qid))
                for m in self.seen[read:]:
                    if isinstance(m, Ack) and m.ref in pending:
                        kind, value = pending.pop(m.ref)
                        if kind == "ask":
                            questions[m.id] = str(value)
                        else:
                            votes.add((m.id, self.user))
                read = len(self.seen)
                await asyncio.sleep(0.02)  # the pace of a chatting client, not a wait


async def taking_over(standby: Proc, timeout: float) -> None:
    """Until the standby serves the room (its WebSocket line after its standby lines); on
    timeout the failure shows what the standby printed (CI keeps no log files)."""
    try:
        await eventually(
            lambda: any("WebSocket " in line for line in standby.lines[2:]),
            timeout,
            "the standby serving the room",
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it printed:\n{''.join(standby.lines)}") from None


async def answered(client: RoomClient) -> bool:
    """Whether the room answers a Ping the client sends now (through its edge, over the bus).
    A Ping sent while the edge or the authority is still away from NATS is lost, as is
    anything a client sends in that pause (core NATS keeps nothing for a subscriber not
    back yet): each call sends a new one."""
    try:
        await round_trip(client, timeout=PING_WAIT_S)
    except TimeoutError:
        return False
    return True


async def rejoin(client: RoomClient, timeout: float) -> Welcome:
    """Reconnect (resuming if the room can) until an edge lets the client in again."""
    welcomed: list[Welcome] = []
    refused: list[BaseException] = []

    async def let_in() -> bool:
        try:
            welcomed.append(await client.reconnect())
        except Exception as exc:
            refused.append(exc)
        return bool(welcomed)

    try:
        await eventually(let_in, timeout, "an edge to let the client in again", poll=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {refused[-1:]}") from None
    return welcomed[0]


async def test_kill_9_of_the_active_authority_the_standby_takes_over_and_nothing_acked_is_lost(
    deployment: Deployment, token: TokenMaker
) -> None:
    room = deployment.room
    first = await deployment.start("authority", "WebSocket ")
    second = await deployment.start("authority", "standby for room")
    edge = await deployment.start("edge", " serving room ")
    active = await health(http_of(first))
    assert active["lease"] == "active" and active["term"], active
    waiting = await health(http_of(second))
    assert waiting["lease"] == "standby" and waiting["active"] == http_of(first), waiting

    questions: dict[int, str] = {}
    votes: set[tuple[int, str]] = set()
    chatters: list[Chatter] = []
    for n in range(3):
        seen: list[Message] = []
        user = f"user{n}"
        client = RoomClient(edge.url, token(user, "spectator", room=room), on_message=seen.append)
        await client.connect()
        chatters.append(Chatter(client, user, seen, n))
    tasks = [asyncio.create_task(c.run(questions, votes)) for c in chatters]

    def answers_seen() -> dict[int, str]:
        return {m.answer: m.text for c in chatters for m in c.seen if isinstance(m, StageEnd)}

    try:
        try:
            await eventually(
                lambda: len(questions) >= 6 and len(votes) >= 6 and answers_seen(),
                90,
                "questions, votes and a whole answer acknowledged through the edge",
            )
        except AssertionError as exc:  # what had come, and what the authorities said
            raise AssertionError(
                f"{exc}: {len(questions)} questions, {len(votes)} votes, "
                f"{len(answers_seen())} answers; the active authority printed:\n"
                f"{''.join(first.lines[-20:])}the standby printed:\n{''.join(second.lines[-20:])}"
            ) from None
        first.process.send_signal(signal.SIGKILL)  # mid-traffic: requests in flight unacked
        killed = time.monotonic()
        await first.process.wait()
        await taking_over(second, TAKEOVER_S + LEASE_TTL_S)
        took = time.monotonic() - killed
        assert took < TAKEOVER_S + LEASE_TTL_S, f"the standby took {took:.1f} s"
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        acked_questions, acked_votes = dict(questions), set(votes)
        acked_answers = answers_seen()

        # 0 acknowledged questions, votes or answers lost: the store has every one of them.
        in_questions, in_votes, in_answers = stored(deployment.database, room)
        for qid, text in acked_questions.items():
            assert in_questions.get(qid) == text, qid
        assert acked_votes <= in_votes
        for aid, text in acked_answers.items():
            assert in_answers.get(aid) == text, aid

        # The edge follows the new authority (a new term) and its clients rejoin, through
        # the same edge, and see the room again: every acknowledged open question.
        for c in chatters:
            await asyncio.wait_for(c.client.wait_closed(), 30)
            assert c.client.close_code == 1012, c.client.close_reason
            c.seen.clear()
            await rejoin(c.client, 30)
        now_active = await health(http_of(second))
        assert now_active["lease"] == "active", now_active
        assert now_active["term"] > active["term"]  # type: ignore[operator]
        await until(
            lambda: health(http_of(edge)),
            lambda h: h["term"] == now_active["term"] and h["authority_changes"] == 1,
            "the edge on the new authority's term",
        )
        seen0 = chatters[0].seen
        await eventually(lambda: any(isinstance(m, Keyframe) for m in seen0), 20, "a keyframe")
        keyframe = next(m for m in seen0 if isinstance(m, Keyframe))
        board = {q.id: q for q in keyframe.questions}
        with psycopg.connect(deployment.database) as db:
            answered = {
                int(qid)
                for (qid,) in db.execute(
                    "SELECT id FROM questions WHERE room=%s AND state IN ('answered', 'escalated')",
                    (room,),
                )
            }
        assert set(acked_questions) - answered <= set(board), "an acked question not shown"
        voted: dict[int, int] = {}
        for qid, _ in acked_votes:
            voted[qid] = voted.get(qid, 0) + 1
        for qid, n in voted.items():
            if qid in board:
                assert board[qid].votes >= n, (qid, board[qid].votes, n)

        # The room is live again through the edge: a new question reaches the others. Around
        # a failover a client may be told to reconnect (1012) once more (the new authority
        # closes connections it never knew as the edge moves to its term: seen once beside
        # a busy test suite); it comes back as every client does, and at most twice.
        asker, watcher = chatters[0], chatters[1]
        for attempt in range(3):
            for c in (asker, watcher):
                if c.client.closed:
                    assert c.client.close_code == 1012 and attempt < 2, c.client.close_reason
                    await rejoin(c.client, 30)
            ref = 9000 + attempt
            try:
                await asker.client.send(Ask(ref, "Is the room back after the failover?"))
            except websockets.ConnectionClosed:
                continue

            def acked_or_closed(ref: int = ref) -> bool:
                return asker.client.closed or any(
                    isinstance(m, Ack) and m.ref == ref for m in asker.seen
                )

            await eventually(acked_or_closed, 20, "acked")
            if asker.client.closed:
                continue
            await eventually(
                lambda: any(
                    isinstance(m, QuestionChanged)
                    and m.question.text.startswith("Is the room back")
                    for m in watcher.seen
                ),
                20,
                "the new question on another client's board",
            )
            break
        else:
            raise AssertionError("closed with 1012 three times in a row after the failover")

        # The killed authority, started again, stands by behind the new one.
        again = await deployment.start("authority", "standby for room")
        await until(
            lambda: health_or_none(http_of(again)),
            lambda h: h.get("lease") == "standby" and h["active"] == http_of(second),
            "the restarted authority standing by",
        )
        assert (await health(http_of(second)))["lease"] == "active"
    finally:
        for t in tasks:
            t.cancel()
        for c in chatters:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.client.close(), 5)


def stored_places(database: str, room: str) -> set[int]:
    """The seats of the places the store holds for the room's members."""
    with psycopg.connect(database) as db:
        return {
            int(seat) for (seat,) in db.execute("SELECT seat FROM places WHERE room=%s", (room,))
        }


def places(client: RoomClient, prefix: str) -> dict[str, tuple[int, int]]:
    """user id -> (slot, seat) of the attendees present whose id starts with ``prefix``, as
    ``client``'s copy of the room has them (away ones left out)."""
    return {
        p.user_id: (p.slot, p.seat)
        for p in client.state.participants.values()
        if p.user_id.startswith(prefix) and not p.flags & 0x02
    }


def forged(token: str, user: str) -> str:
    """A resume token rewritten to name ``user``, its signature kept (so it no longer fits)."""
    _, payload, mac = token.split(".")
    body = msgspec.json.decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["u"] = user
    new = base64.urlsafe_b64encode(msgspec.json.encode(body)).rstrip(b"=").decode()
    return f"r1.{new}.{mac}"


async def resume_as(url: str, bearer: str, welcome: Welcome) -> RoomClient:
    """A client that joins (through the edge, once it lets anyone in) presenting ``welcome``'s
    resume token as its own."""
    client = RoomClient(url, bearer)
    client.welcome = welcome
    await rejoin(client, 30)
    return client


async def test_after_a_failover_attendees_keep_their_seats_and_a_forged_resume_gets_none(
    deployment: Deployment, token: TokenMaker
) -> None:
    room = deployment.room
    first = await deployment.start("authority", "WebSocket ")
    second = await deployment.start("authority", "standby for room")
    edge = await deployment.start("edge", " serving room ")
    # An attendee on the plugin's client library, and two bots (plugin/bots.py).
    seen: list[Message] = []
    alice = RoomClient(edge.url, token("alice", room=room), on_message=seen.append)
    before = await alice.connect()
    stop = asyncio.Event()
    bots = asyncio.create_task(
        run_bots(edge.url, 2, secret=SECRET, room=room, pose_hz=5, stop=stop, progress=None)
    )
    intruders: list[RoomClient] = []
    try:
        await eventually(lambda: len(places(alice, "bot-")) == 2, 30, "both bots seated")
        bots_before = places(alice, "bot-")
        ours = {(before.slot, before.seat), *bots_before.values()}
        assert len({seat for _, seat in ours}) == 3
        # Places are written as they change, not before the Welcome: wait for the three
        # (a place taken in the last moments before a crash is only in its resume token).
        await eventually(
            lambda: stored_places(deployment.database, room) == {seat for _, seat in ours},
            30,
            "the three places in the store",
        )

        first.process.send_signal(signal.SIGKILL)
        await first.process.wait()
        await taking_over(second, UNTIMED_TAKEOVER_S)
        await asyncio.wait_for(alice.wait_closed(), 30)
        assert alice.close_code == 1012, alice.close_reason

        # Before alice is back: Mallory presents alice's own resume token, Trudy one forged
        # from it. Each joins afresh with the reason, in none of the places the new authority
        # keeps for the attendees of the old one (from the store).
        mallory = await resume_as(edge.url, token("mallory", room=room), before)
        intruders.append(mallory)
        trudy_welcome = msgspec.structs.replace(before, resume=forged(before.resume, "trudy"))
        trudy = await resume_as(edge.url, token("trudy", room=room), trudy_welcome)
        intruders.append(trudy)
        for client, why in ((mallory, "someone else's"), (trudy, "signature is wrong")):
            welcome = client.welcome
            assert welcome is not None and not welcome.resumed

            def refusals(client: RoomClient = client) -> list[str]:
                return [e.reason for e in client.errors if e.code == ErrorCode.RESUME_FAILED]

            await eventually(refusals, 20, "RESUME_FAILED right after the Welcome")
            assert why in refusals()[0], refusals()
            assert (welcome.slot, welcome.seat) not in ours
            assert welcome.seat not in {seat for _, seat in ours}

        # Alice comes back: the same slot and seat, resumed, no refusal.
        errors = len(alice.errors)
        seen.clear()
        again = await rejoin(alice, 30)
        assert again.resumed, alice.errors[errors:]
        assert (again.slot, again.seat, again.user_id) == (before.slot, before.seat, "alice")
        assert not [e for e in alice.errors[errors:] if e.code == ErrorCode.RESUME_FAILED]
        # The bots come back by themselves, to their own seats (as the new authority's
        # keyframe, and the events after it, show them).
        await eventually(lambda: any(isinstance(m, Keyframe) for m in seen), 20, "a keyframe")
        await eventually(
            lambda: places(alice, "bot-") == bots_before, 60, "the bots back in their seats"
        )
        stop.set()
        stats = await asyncio.wait_for(bots, 30)
        assert stats.reconnects == 2 and "RESUME_FAILED" not in stats.errors, stats
    finally:
        stop.set()
        if not bots.done():
            bots.cancel()
        await asyncio.gather(bots, return_exceptions=True)
        for c in [alice, *intruders]:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 5)


async def test_a_nats_restart_is_a_pause_for_the_authority_its_edge_and_their_clients(
    deployment: Deployment, token: TokenMaker
) -> None:
    room = deployment.room
    # A lease long enough to outlive the restart, and an edge patient enough for it.
    text = deployment.config.read_text()
    text = text.replace(f"lease_ttl_s = {LEASE_TTL_S}", "lease_ttl_s = 10.0")
    text = text.replace(f"edge_timeout_s = {EDGE_TIMEOUT_S}", "edge_timeout_s = 8.0")
    assert "edge_timeout_s = 8.0" in text
    deployment.config.write_text(text)
    authority = await deployment.start("authority", "WebSocket ")
    edge = await deployment.start("edge", " serving room ")
    seen: list[Message] = []
    client = RoomClient(edge.url, token("nat", "spectator", room=room), on_message=seen.append)
    await client.connect()
    try:
        await client.send(Ask(1, "Will the bus come back after a restart?"))
        await eventually(lambda: any(isinstance(m, Ack) for m in seen), 30, "the first ack")

        await deployment.nats.restart()

        # Both reconnect by themselves: the room hears the edge's client and answers it.
        # Not judged by the edge's tick number: a fresh edge may have written no tick yet,
        # and ticks it read before the restart then look like ticks after it (the question
        # went out while the authority was still away, and was lost).
        await eventually(lambda: answered(client), 30, "the room answering after the restart")
        # Ticks flow to the edge again (its consumer of the stream made again).
        before = await health(http_of(edge))
        await until(
            lambda: health(http_of(edge)),
            lambda h: h["last_tick"] > before["last_tick"] + 20,  # type: ignore[operator]
            "ticks reaching the edge after the restart",
        )
        await client.send(Ask(2, "And does a question asked afterwards arrive?"))
        await eventually(
            lambda: any(isinstance(m, Ack) and m.ref == 2 for m in seen), 30, "the second ack"
        )
        await eventually(
            lambda: any(
                isinstance(m, QuestionChanged) and m.question.text.startswith("And does")
                for m in seen
            ),
            30,
            "the second question on the board",
        )
        assert not client.closed, (client.close_code, client.close_reason)
        status = await health(http_of(authority))
        assert status["lease"] == "active" and status["term"] and status["edges"] == 1, status
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 5)


async def test_a_frozen_authority_is_deposed_and_never_acts_as_the_room_beside_the_new_one(
    deployment: Deployment, token: TokenMaker
) -> None:
    room = deployment.room
    # No timing asserted here: a longer lease, so a loaded machine causes no extra failover.
    text = deployment.config.read_text()
    deployment.config.write_text(text.replace(f"lease_ttl_s = {LEASE_TTL_S}", "lease_ttl_s = 6.0"))
    first = await deployment.start("authority", "WebSocket ")
    second = await deployment.start("authority", "standby for room")
    edge = await deployment.start("edge", " serving room ")
    seen: list[Message] = []
    client = RoomClient(edge.url, token("fay", "spectator", room=room), on_message=seen.append)
    await client.connect()
    try:
        old_term = (await health(http_of(first)))["term"]
        await until(lambda: health(http_of(edge)), lambda h: h["term"] == old_term, "edge fed")
        # Frozen (a stalled VM, a pause): it cannot renew, so the standby takes over ...
        first.process.send_signal(signal.SIGSTOP)
        await taking_over(second, UNTIMED_TAKEOVER_S)
        await asyncio.wait_for(client.wait_closed(), 30)
        assert client.close_code == 1012, client.close_reason
        seen.clear()
        await rejoin(client, 30)
        new_term = (await health(http_of(second)))["term"]
        assert new_term > old_term  # type: ignore[operator]
        # ... and thawed, the old one finds its lease gone: it stands by, it sends the
        # edge nothing (the edge stays on the new term and does not shed its clients).
        first.process.send_signal(signal.SIGCONT)
        await until(
            lambda: health_or_none(http_of(first)),
            lambda h: h.get("lease") == "standby" and h["active"] == http_of(second),
            "the thawed authority standing by",
        )
        assert any("lease lost" in line for line in first.lines), "".join(first.lines)
        status = await health(http_of(edge))
        assert status["term"] == new_term and status["authority_changes"] == 1, status
        # A deposed authority's late tick (forged here: its term, numbered on) is dropped.
        nc = await nats.connect(deployment.nats.url)
        try:
            late = ipc.Tick(10**6, 0, [], {}, b"", [], 0, [], [], old_term)  # type: ignore[arg-type]
            await nc.publish(Subjects.of(room).ticks, ipc.pack(late))
            await nc.flush()
        finally:
            await nc.close()
        await until(
            lambda: health(http_of(edge)),
            lambda h: h["bus_dropped"] > status["bus_dropped"],  # type: ignore[operator]
            "the edge dropping the deposed term's tick",
        )
        await client.send(Ask(1, "Who answers after the freeze?"))
        await eventually(lambda: any(isinstance(m, Ack) for m in seen), 30, "acked by the new one")
        assert not client.closed and (await health(http_of(edge)))["authority_changes"] == 1
    finally:
        if first.process.returncode is None:
            first.process.send_signal(signal.SIGCONT)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 5)


def test_serve_role_authority_without_nats_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "townhall.toml"
    # Refused on every attempt: it gives up after bus.connect_timeout_s (1 s, not 10).
    config.write_text('[bus]\nurl = "nats://127.0.0.1:1"\nconnect_timeout_s = 1.0\n')
    result = subprocess.run(
        [sys.executable, "-m", "townhall.server.ops.cli", "serve", "--config", str(config),
         "--role", "authority", "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert (
        last == "townhall: cannot reach NATS at nats://127.0.0.1:1: [Errno 111] Connection refused"
    )
    assert "Traceback" not in result.stderr
