"""Clients move to another edge when theirs dies: real processes on the real bus.

NATS with JetStream on 127.0.0.1:4222, one authority (the clone speaking) and two edges,
each a process of its own. Welcome lists the live edges; ``kill -9`` of the edge holding
clients sends them, by themselves, to the other one, where they resume: the same seat,
every sequenced event once and in order, and the clone's speech still to be heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.js.errors
import pytest

from townhall.plugin.bots import run_bots
from townhall.plugin.client import RoomClient
from townhall.protocol.messages import (
    Ask,
    Keyframe,
    Message,
    StageEnd,
    StagePacket,
    StageStart,
    Welcome,
)
from townhall.server.fanout.bus import Subjects
from townhall.server.fanout.bus_room import usable_edge_url
from townhall.server.fanout.edge_server import EdgeServer
from townhall.server.gateway.http import PAGE_CSP, page_csp

from .conftest import SECRET, TokenMaker, make_settings
from .test_bus_edges import (
    NATS_URL,
    Deployment,
    Proc,
    health,
    start,
    start_together,
    stop,
    until,
)
from .waiting import eventually

MOVE_LIMIT_S = 5.0  # issue 16: a dead edge's clients are on another edge within this


def edge_config(
    tmp_path: Path, room: str, clone: bool, allowed_origins: str = "", deployment: str = ""
) -> Path:
    config = tmp_path / "townhall.toml"
    config.write_text(
        f'[server]\nroom = "{room}"\nhost = "127.0.0.1"\nallowed_origins = "{allowed_origins}"\n'
        f'[auth]\nsecret = "{SECRET}"\n'
        f'[store]\npath = "{tmp_path / "townhall.db"}"\n'
        '[qa]\nmode = "auto"\n'
        f"[clone]\nenabled = {'true' if clone else 'false'}\npause_s = 0.1\n"
        f'[bus]\nurl = "{NATS_URL}"\nedge_timeout_s = 2.0\nreplay_s = 30.0\n'
        # each test a deployment of its own on the shared NATS: it hears only its own edges
        f'deployment = "{deployment or room}"\n'
        '[log]\nformat = "text"\n'
    )
    return config


@contextlib.asynccontextmanager
async def deployed(
    tmp_path: Path, clone: bool, allowed_origins: str = ""
) -> AsyncIterator[Deployment]:
    """An authority (its clone answering questions, if ``clone``) and two edges."""
    room = f"m{uuid.uuid4().hex[:10]}"
    config = edge_config(tmp_path, room, clone, allowed_origins)
    authority = await start(config, "authority", "WebSocket ")
    edges: list[Proc] = []
    try:
        edges = await start_together(*[(config, "edge", " serving room ")] * 2)
        yield Deployment(room, authority, edges)
    finally:
        for proc in [*edges, authority]:
            await stop(proc)
        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(Subjects.of(room).stream)
        await nc.close()


@pytest.fixture
async def quiet(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path, clone=False) as deployment:
        yield deployment


@pytest.fixture
async def speaking(tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployed(tmp_path, clone=True) as deployment:
        yield deployment


def edge_urls(healthz: dict[str, object]) -> set[str]:
    """The edges an authority's /healthz lists (those its Welcomes carry)."""
    urls = healthz["edge_urls"]
    assert isinstance(urls, list)
    return {str(u) for u in urls}


def sequenced(seen: list[Message]) -> list[int]:
    """The sequence numbers of the sequenced events a client applied, in arrival order."""
    return [m.seq for m in seen if hasattr(m, "seq") and not isinstance(m, Welcome | Keyframe)]


async def test_welcome_lists_the_live_edges(quiet: Deployment, token: TokenMaker) -> None:
    deployment = quiet
    urls = {edge.url for edge in deployment.edges}
    await until(lambda: health(deployment.http), lambda h: edge_urls(h) == urls, "both edges")
    client = RoomClient(deployment.edges[0].url, token("ann", room=deployment.room), timeout_s=30)
    welcome = await client.connect()
    try:
        assert set(welcome.edges) == urls
        assert client.candidates()[-1] == deployment.edges[0].url  # the others first
    finally:
        await client.close()
    # A dead edge leaves the list once the authority has noticed (bus.edge_timeout_s).
    deployment.edges[1].process.send_signal(signal.SIGKILL)
    await deployment.edges[1].process.wait()
    await until(
        lambda: health(deployment.http),
        lambda h: edge_urls(h) == {deployment.edges[0].url},
        "the dead edge off the list",
    )
    again = RoomClient(deployment.edges[0].url, token("bea", room=deployment.room), timeout_s=30)
    assert (await again.connect()).edges == [deployment.edges[0].url]
    await again.close()


async def test_kill_9_an_edge_its_clients_resume_on_another_mid_answer(
    speaking: Deployment, token: TokenMaker
) -> None:
    edge_a, edge_b = speaking.edges
    room = speaking.room
    await until(lambda: health(speaking.http), lambda h: len(edge_urls(h)) == 2, "both edges")
    seen: dict[str, list[Message]] = {"ann": [], "sam": []}
    clients = {
        "ann": RoomClient(edge_a.url, token("ann", room=room), on_message=seen["ann"].append),
        "sam": RoomClient(
            edge_a.url, token("sam", "spectator", room=room), on_message=seen["sam"].append
        ),
    }
    first = {name: await c.connect() for name, c in clients.items()}
    # A question (the clone answers it) and the answer under way before the edge dies.
    await clients["ann"].send(Ask(1, "When does the new office in Lviv open?"))
    await eventually(
        lambda: all(any(isinstance(m, StagePacket) for m in s) for s in seen.values()),
        90,
        "the clone speaking to both clients",
    )
    assert not any(isinstance(m, StageEnd) for m in seen["ann"]), "the answer ended too soon"

    edge_a.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await edge_a.process.wait()
    for c in clients.values():
        await asyncio.wait_for(c.wait_closed(), MOVE_LIMIT_S)
    welcomes = await asyncio.gather(*(c.reconnect() for c in clients.values()))
    moved_in = time.monotonic() - killed_at
    assert moved_in < MOVE_LIMIT_S, f"moved in {moved_in:.1f} s"

    for (name, c), welcome in zip(clients.items(), welcomes, strict=True):
        assert c.url == edge_b.url and c.moves == 1, name
        assert welcome.resumed, name
        assert (welcome.slot, welcome.seat) == (first[name].slot, first[name].seat), name
    # The answer goes on to its end through edge B.
    await eventually(
        lambda: all(any(isinstance(m, StageEnd) for m in s) for s in seen.values()),
        90,
        "the answer's end through edge B",
    )
    for name, messages in seen.items():
        # Every sequenced event once, in order, without a gap: no keyframe was needed.
        seqs = sequenced(messages)
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), (name, seqs)
        assert sum(isinstance(m, Keyframe) for m in messages) == 1, name  # the first join's
        assert not clients[name].state.needs_keyframe
        # The speech still to be heard when the client came back, all of it (a packet may come
        # twice, SPEC §5: players keep the first): packets are 40 ms each on the media clock,
        # numbered on, so their times give the ones due.
        resumed_at = next(m for m in messages if isinstance(m, Welcome) and m.resumed)
        start = next(m for m in messages if isinstance(m, StageStart))
        packets = [m for m in messages if isinstance(m, StagePacket) and m.answer == start.answer]
        indices = [p.index for p in packets]
        step = packets[0].duration_us
        base = packets[0].media_time_us - packets[0].index * step
        due = [
            i
            for i in range(min(indices), max(indices) + 1)
            if base + (i + 1) * step > resumed_at.server_time_us
        ]
        assert due and set(due) <= set(indices), (name, sorted(set(due) - set(indices)))
        after = messages.index(resumed_at)
        assert any(isinstance(m, StagePacket) for m in messages[after:]), name
    for c in clients.values():
        await c.close()


async def test_bots_move_to_another_edge_when_theirs_dies(quiet: Deployment) -> None:
    edge_a, edge_b = quiet.edges
    http_b = edge_b.url.replace("ws", "http", 1).removesuffix("/ws")
    await until(lambda: health(quiet.http), lambda h: len(edge_urls(h)) == 2, "both edges")
    stop_bots = asyncio.Event()
    said: list[str] = []
    bots = asyncio.create_task(
        run_bots(
            edge_a.url, 6, secret=SECRET, room=quiet.room, stop=stop_bots, progress=said.append
        )
    )
    try:
        # Every bot welcomed (not only connected: one killed before its Welcome never joined).
        await eventually(lambda: "bots: 6/6 seated" in said, 30, "6 bots seated")
        await until(lambda: health(quiet.http), lambda h: h["edge_clients"] == 6, "6 bots in")
        edge_a.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await edge_a.process.wait()
        # The bots' own word that every one of them is welcomed again (a socket B counts may
        # still wait for its Welcome), then B's that it holds all six.
        await eventually(
            lambda: any(line.startswith("bots: all 6 up again") for line in said),
            MOVE_LIMIT_S,
            "every bot back",
        )
        assert time.monotonic() - killed_at < MOVE_LIMIT_S
        await until(lambda: health(http_b), lambda h: h["connections"] == 6, "the bots on B")
    finally:
        stop_bots.set()
        stats = await bots
    assert stats.connected == 6 and stats.reconnects == 6 and stats.moves == 6
    assert not stats.errors or set(stats.errors) <= {"CONNECT_FAILED"}, stats.error_counts


@pytest.mark.parametrize(
    ("url", "usable"),
    [
        ("ws://127.0.0.1:8801/ws", True),
        ("wss://edge-2.example.com/ws", True),
        ("ws://[::1]:8801/ws", True),
        ("http://127.0.0.1:8801/ws", False),  # not a WebSocket URL
        ("ws:///ws", False),  # no host
        ("ws://a:99999/ws", False),  # no such port
        ("ws://a b/ws", False),
        ("ws://é.example/ws", False),
        ("ws://" + "a" * 300 + "/ws", False),
    ],
)
def test_an_edge_announces_only_a_url_a_client_could_open(url: str, usable: bool) -> None:
    assert usable_edge_url(url) is usable


def test_watch_may_connect_to_the_edges_it_lists_and_nowhere_else() -> None:
    csp = page_csp(["ws://127.0.0.1:8801/ws", "wss://e.example/ws", "ws://x'y/ws", "http://a/ws"])
    connect = next(d for d in csp.split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self' ws://127.0.0.1:8801 wss://e.example"
    assert page_csp([]) == PAGE_CSP and "connect-src 'self';" in PAGE_CSP


@pytest.mark.parametrize(
    ("host", "public_url", "announced"),
    [
        ("127.0.0.1", "", "ws://127.0.0.1:8801/ws"),
        ("0.0.0.0", "", ""),  # a wildcard names no address a client could use
        ("::", "", ""),
        ("0.0.0.0", "https://edge-1.example.com", "wss://edge-1.example.com/ws"),
    ],
)
def test_an_edge_announces_its_public_url_or_none(
    tmp_path: Path, host: str, public_url: str, announced: str
) -> None:
    settings = make_settings(tmp_path, server={"host": host, "public_url": public_url})
    edge = EdgeServer(settings)
    edge.port = 8801
    assert edge.announced_url() == announced
