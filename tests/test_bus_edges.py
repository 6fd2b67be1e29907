"""Edges fed by the room over NATS: real processes (an authority, two edges) on the real bus.

NATS with JetStream runs on 127.0.0.1:4222 on every development and CI machine of this
project. Each test uses a room id of its own, so its subjects and stream are its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import nats
import nats.js.errors
import pytest

from townhall.plugin.client import RoomClient
from townhall.protocol.messages import Ask, Keyframe, Message, QuestionChanged, Vote
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.bus import Subjects

from .conftest import SECRET, TokenMaker, http_get
from .natsserver import NatsServer
from .waiting import eventually

CLI = [sys.executable, "-m", "townhall.server.ops.cli"]
NATS_URL = "nats://127.0.0.1:4222"
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
START_TIMEOUT_S = 60.0  # a busy machine imports the server slowly
READ_POLL_S = 0.1  # how often ``until`` reads a status over HTTP


@dataclass
class Proc:
    """A townhall process and the URL it printed."""

    process: asyncio.subprocess.Process
    url: str
    lines: list[str] = field(default_factory=list)


async def start(config: Path, role: str, marker: str) -> Proc:
    process = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(config), "--role", role, "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    lines: list[str] = []

    async def url() -> str:
        assert process.stdout is not None
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError(f"{role} exited: {''.join(lines)}")
            lines.append(line)
            if marker in line:
                return line.rsplit(" ", 1)[-1].strip()

    try:
        found = await asyncio.wait_for(url(), START_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        said = "".join(lines)[-2000:] or "nothing\n"
        raise AssertionError(
            f"{role} printed no {marker.strip()!r} within {START_TIMEOUT_S:.0f} s; it said:\n{said}"
        ) from None
    proc = Proc(process, found, lines)

    async def drain() -> None:  # keep reading so a full pipe never blocks the process
        assert process.stdout is not None
        while line := await process.stdout.readline():
            lines.append(line.decode())

    asyncio.get_running_loop().create_task(drain())
    return proc


async def start_together(*starts: tuple[Path, str, str]) -> list[Proc]:
    """``start(config, role, marker)`` for each, side by side (each process spends a second
    or more importing); if one fails, those that started are stopped and its error raised."""
    started = await asyncio.gather(*(start(*spec) for spec in starts), return_exceptions=True)
    procs = [p for p in started if isinstance(p, Proc)]
    failed = [e for e in started if isinstance(e, BaseException)]
    if failed:
        for proc in procs:
            await stop(proc)
        raise failed[0]
    return procs


async def stop(proc: Proc) -> None:
    if proc.process.returncode is None:
        proc.process.terminate()
        try:
            await asyncio.wait_for(proc.process.wait(), 20)
        except TimeoutError:
            proc.process.kill()
            await proc.process.wait()


@dataclass
class Deployment:
    room: str
    authority: Proc
    edges: list[Proc]

    @property
    def http(self) -> str:
        return self.authority.url.replace("ws", "http", 1).removesuffix("/ws")


@contextlib.asynccontextmanager
async def deployed(tmp_path: Path, edges: int) -> AsyncIterator[Deployment]:
    """An authority and ``edges`` edges, each a process of its own, in a room of its own."""
    room = f"t{uuid.uuid4().hex[:10]}"
    config = tmp_path / "townhall.toml"
    config.write_text(
        f'[server]\nroom = "{room}"\nhost = "127.0.0.1"\n'
        f'[auth]\nsecret = "{SECRET}"\n'
        f'[store]\npath = "{tmp_path / "townhall.db"}"\n'
        "[clone]\nenabled = false\n"
        f'[bus]\nurl = "{NATS_URL}"\nedge_timeout_s = 2.0\nreplay_s = 30.0\ndeployment = "{room}"\n'
        '[log]\nformat = "text"\n'
    )
    authority = await start(config, "authority", "WebSocket ")
    procs: list[Proc] = []
    try:
        procs = await start_together(*[(config, "edge", " serving room ")] * edges)
        yield Deployment(room, authority, procs)
    finally:
        for proc in [*procs, authority]:
            await stop(proc)
        nc = await nats.connect(NATS_URL)  # the shared NATS server keeps no stream of ours
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(Subjects.of(room).stream)
        await nc.close()


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """Two edges: for what crosses from one edge to the other, or outlives one of them."""
    async with deployed(tmp_path, edges=2) as both:
        yield both


@pytest.fixture
async def one_edge(tmp_path: Path) -> AsyncIterator[Deployment]:
    """One edge, for what happens at an edge and its room: each townhall process costs a
    second or more of CPU to start (its imports), and a second edge would only look on."""
    async with deployed(tmp_path, edges=1) as single:
        yield single


def board(seen: list[Message]) -> dict[int, int]:
    """Question id -> votes, as the client's messages left it."""
    out: dict[int, int] = {}
    for m in seen:
        if isinstance(m, QuestionChanged):
            out[m.question.id] = m.question.votes
        elif isinstance(m, Keyframe):
            out.update((q.id, q.votes) for q in m.questions)
    return out


async def joined(url: str, token: str) -> tuple[RoomClient, list[Message]]:
    seen: list[Message] = []
    client = RoomClient(url, token, on_message=seen.append, timeout_s=30)
    await client.connect()
    return client, seen


async def health(url: str) -> dict[str, object]:
    status, _, body = await asyncio.to_thread(http_get, url + "/healthz")
    assert status == 200, body
    data: dict[str, object] = json.loads(body)
    return data


async def until(
    read: Callable[[], Awaitable[dict[str, object]]],
    done: Callable[[dict[str, object]], object],
    what: str,
    timeout: float = 30.0,
) -> None:
    """``eventually`` for a status read over HTTP: poll ``read`` until ``done`` says so.

    Every read is a new HTTP connection and a /healthz the server builds: at ``eventually``'s
    default 20 ms, 50 a second (a few percent of a core, the test's and the server's, for as
    long as the wait lasts); every ``READ_POLL_S`` is soon enough for what these waits see
    (an edge timing out in seconds, a standby taking over)."""
    status: list[dict[str, object]] = []

    async def reads_done() -> object:
        status[:] = [await read()]
        return done(status[0])

    try:
        await eventually(reads_done, timeout, what, poll=READ_POLL_S)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {status}") from None


async def test_clients_on_two_edges_share_one_room_and_outlive_an_edge(
    deployment: Deployment, token: TokenMaker
) -> None:
    edge_a, edge_b = deployment.edges
    room = deployment.room
    alice, seen_a = await joined(edge_a.url, token("alice", "attendee", room=room))
    bob, seen_b = await joined(edge_b.url, token("bob", "attendee", room=room))
    try:
        await alice.send(Ask(1, "Will the new office open in spring?"))
        await eventually(lambda: board(seen_b), 20, "the question on B's board")
        ((qid, votes),) = board(seen_b).items()  # the asker's own vote counts
        await bob.send(Vote(2, qid))
        await eventually(lambda: board(seen_a).get(qid) == votes + 1, 20, "B's vote seen on A")
        # Each edge holds its own client; the authority holds none of them itself.
        info = await health(deployment.http)
        assert info["edges"] == 2 and info["edge_clients"] == 2

        edge_a.process.send_signal(signal.SIGKILL)
        await edge_a.process.wait()
        # The authority notices the silent edge (bus.edge_timeout_s) and alice leaves.
        await until(
            lambda: health(deployment.http), lambda h: h["edge_clients"] == 1, "A's client gone"
        )
        assert (await health(deployment.http))["edges"] == 1
        # Edge B and the room carry on: a new question from bob reaches bob through B.
        await bob.send(Ask(3, "Is there parking for bicycles?"))
        await eventually(lambda: len(board(seen_b)) == 2, 20, "the room still answers B")
        assert not bob.closed
        carol, seen_c = await joined(edge_b.url, token("carol", "spectator", room=room))
        await eventually(lambda: len(board(seen_c)) == 2, 20, "a newcomer on B gets the board")
        await carol.close()
        # With the authority gone, B does not serve a frozen room: its clients are told to go.
        deployment.authority.process.send_signal(signal.SIGKILL)
        await asyncio.wait_for(bob.wait_closed(), 30)
        assert bob.close_code == 1012, bob.close_reason
    finally:
        for client in (alice, bob):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)


async def test_garbage_on_the_room_subjects_does_not_end_an_edge(
    one_edge: Deployment, token: TokenMaker
) -> None:
    deployment = one_edge
    room = deployment.room
    subjects = Subjects.of(room)
    edge = deployment.edges[0]
    client, seen = await joined(edge.url, token("dana", "attendee", room=room))
    nc = await nats.connect(NATS_URL)
    try:
        garbage: list[bytes] = [
            b"",
            b"\x00\x00\x00\x05hello",  # a length prefix over bytes that are no msgpack
            b"\xff" * 64,
            ipc.pack(ipc.Send(999_999, [b"\x01"]))[:-1],  # one byte short
            ipc.pack(ipc.Gone(1)),  # room-bound, on a room -> edge subject
            ipc.pack(ipc.Adopt(424242, 0, "attendee", 0, [b"not for anyone"])),
        ]
        for data in garbage:
            for subject in (subjects.ticks, subjects.crowd, subjects.live):
                await nc.publish(subject, data)
        await nc.flush()
        edge_http = edge.url.replace("ws", "http", 1).removesuffix("/ws")
        await until(
            lambda: health(edge_http),
            lambda h: h["bus_dropped"] >= 2 * len(garbage),  # type: ignore[operator]
            "the edge dropping the garbage",
        )
        # Garbage as if from an edge: the authority drops it too, and what decodes but is
        # not that edge's to say: a client it does not hold, poses for seats not its own.
        forged = [
            *garbage,
            ipc.pack(ipc.Inbound([(5, b"\x01\x02")])),
            ipc.pack(ipc.PoseBatch(b"\x00\x00", b"\x00", bytes(30), 32)),
            ipc.pack(ipc.PoseBatch(b"\x00\x00", b"", b"", 0)),  # lengths that disagree
        ]
        for data in forged:
            await nc.publish(subjects.inbound("forged"), data)
        await nc.flush()
        await until(
            lambda: health(deployment.http),
            # All but the Gone: one for a client that edge never had is simply ignored.
            lambda h: h["bus_dropped"] >= len(forged) - 1,  # type: ignore[operator]
            "the authority dropping the garbage",
        )
        # Both still serve: a question from the client on this edge comes back to it.
        await client.send(Ask(1, "Does the canteen open earlier in winter?"))
        await eventually(lambda: board(seen), 20, "the board through the edge after garbage")
        assert edge.process.returncode is None and deployment.authority.process.returncode is None
    finally:
        await nc.close()
        await client.close()


async def test_a_tick_gap_at_an_edge_brings_its_clients_a_keyframe(
    one_edge: Deployment, token: TokenMaker
) -> None:
    room = one_edge.room
    (edge,) = one_edge.edges
    client, seen = await joined(edge.url, token("erin", "attendee", room=room))
    nc = await nats.connect(NATS_URL)
    edge_http = edge.url.replace("ws", "http", 1).removesuffix("/ws")
    try:
        await until(lambda: health(edge_http), lambda h: h["last_tick"], "the edge ticking")
        keyframes = sum(isinstance(m, Keyframe) for m in seen)
        # A tick numbered far ahead, as if the edge had missed many: it must not go on
        # silently but ask the room for its state, which its clients then get. (It carries
        # the authority's lease term: one of another term is another authority's.)
        term = (await health(edge_http))["term"]
        assert isinstance(term, int) and term > 0
        ahead = ipc.Tick(10**9, 0, [], {}, b"", [], 0, [], [], term)
        await nc.publish(Subjects.of(room).ticks, ipc.pack(ahead))
        await nc.flush()
        await eventually(
            lambda: sum(isinstance(m, Keyframe) for m in seen) > keyframes, 20, "a keyframe"
        )
        info = await health(edge_http)
        assert info["tick_gaps"] >= 1, "".join(edge.lines)  # type: ignore[operator]
        # The room's own ticks (numbered from where they were) are written again afterwards.
        await client.send(Ask(1, "When is the next town hall?"))
        await eventually(lambda: board(seen), 20, "the board after the gap")
    finally:
        await nc.close()
        await client.close()


async def test_a_guest_is_one_person_across_edges(deployment: Deployment) -> None:
    """A browser's guest cookie (set by the authority's /watch) reaches the room through an
    edge, which forwards it unverified: the room verifies it, so the same browser is the
    same guest at either edge (per-guest limits and bans hold), a forged one is nobody."""
    from .test_people import guest_cookie

    cookie = await asyncio.to_thread(guest_cookie, deployment.http)
    users = []
    for edge in deployment.edges:  # a reload that lands on the other edge
        client = RoomClient(edge.url, headers={"Cookie": f"theme=dark; {cookie}"}, timeout_s=30)
        welcome = await client.connect()
        users.append(welcome.user_id)
        await client.close()
    assert users[0].startswith("guest-") and users[0] == users[1]
    assert users[0] == f"guest-{cookie.split('=', 1)[1].split('.')[0]}"
    forged = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
    other = RoomClient(deployment.edges[0].url, headers={"Cookie": forged}, timeout_s=30)
    welcome = await other.connect()
    assert welcome.user_id != users[0]  # a one-time guest, never someone else
    await other.close()


def test_serve_role_edge_without_nats_is_one_line(tmp_path: Path) -> None:
    import subprocess

    config = tmp_path / "townhall.toml"
    # Refused on every attempt: it gives up after bus.connect_timeout_s (1 s, not 10).
    config.write_text('[bus]\nurl = "nats://127.0.0.1:1"\nconnect_timeout_s = 1.0\n')
    result = subprocess.run(
        [*CLI, "serve", "--config", str(config), "--role", "edge", "--port", "0"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    refused = "[Errno 111] Connection refused"
    assert last == f"townhall: cannot reach NATS at nats://127.0.0.1:1: {refused}"
    assert "Traceback" not in result.stderr


def test_bus_settings_are_checked(tmp_path: Path) -> None:
    from townhall.server.ops.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"bus\.url must be nats://"):
        load_settings(None, env={"TOWNHALL_BUS_URL": "http://127.0.0.1:4222"})
    with pytest.raises(ConfigError, match=r"bus\.user and bus\.password are set together"):
        load_settings(None, env={"TOWNHALL_BUS_USER": "edge"})
    with pytest.raises(ConfigError, match=r"server\.role must be all, authority, edge or media"):
        load_settings(None, env={"TOWNHALL_SERVER_ROLE": "relay"})
    settings = load_settings(None, env={"TOWNHALL_BUS_USER": "e", "TOWNHALL_BUS_PASSWORD": "p"})
    assert settings.bus.user == "e"


@pytest.fixture
async def nats_with_users(tmp_path: Path) -> AsyncIterator[str]:
    """A nats-server of this test's own (JetStream, user and password), on a free port."""
    server = NatsServer(
        tmp_path,
        'authorization { users: [ { user: "edge", password: "s3cret-bus" } ] }\n',
        user="edge",
        password="s3cret-bus",
    )
    try:
        await server.start()
        yield server.url
    finally:
        await server.stop()


@pytest.mark.skipif(not Path(NATS_SERVER).exists(), reason="needs nats-server")
async def test_edges_authenticate_to_the_bus(nats_with_users: str, tmp_path: Path) -> None:
    config = tmp_path / "townhall.toml"
    base = f'[server]\nroom = "auth"\n[log]\nformat = "text"\n[bus]\nurl = "{nats_with_users}"\n'
    # Refused on every attempt: it gives up after bus.connect_timeout_s (2 s, not 10).
    # A password no message would contain: the hint itself says "wrong bus.user/bus.password".
    config.write_text(base + 'user = "edge"\npassword = "pw-7f3a9c"\nconnect_timeout_s = 2.0\n')
    refused = await asyncio.create_subprocess_exec(
        *CLI, "serve", "--config", str(config), "--role", "edge", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    _, err = await asyncio.wait_for(refused.communicate(), 90)
    last = err.decode().strip().splitlines()[-1]
    assert refused.returncode == 2, err.decode()
    assert last.startswith(f"townhall: cannot reach NATS at {nats_with_users}: ")
    # NATS's own reason; or, when the client read the close before it every time, the hint.
    assert "authorization violation" in last.lower() or "wrong bus.user/bus.password" in last
    assert "pw-7f3a9c" not in err.decode()  # the password is never printed
    config.write_text(base + 'user = "edge"\npassword = "s3cret-bus"\n')
    edge = await start(config, "edge", " serving room ")
    try:
        status = await health(edge.url.replace("ws", "http", 1).removesuffix("/ws"))
        assert status["role"] == "edge" and status["room"] == "auth"
    finally:
        await stop(edge)
