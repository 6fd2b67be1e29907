"""Several rooms, one edge: real processes on the real bus (issue 16, item 2).

NATS with JetStream on 127.0.0.1:4222; two authorities, one per room ("east" and
"west", each its own lease key and tick stream; their records in one PostgreSQL, or each in
a SQLite file of its own), and one edge whose own room (``server.room``)
is east. A client's token names its room; the edge links west on its first west client.
Each room's clients see only their own room; a room with no authority is refused
(ROOM_UNAVAILABLE) and leaves nothing at the edge; ``kill -9`` of one room's authority
leaves the other untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import msgspec
import nats
import nats.js.errors
import pytest

from townhall.plugin.bots import run_bots
from townhall.plugin.client import JoinRejected, RoomClient
from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ask, Join, Message, Ping, QuestionChanged
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.bus import Subjects, presence, presence_message
from townhall.server.fanout.edge_rooms import room_of
from townhall.server.fanout.lease import BUCKET, Holder, holder_of
from townhall.server.gateway.tokens import issue_token

from .conftest import SECRET, TokenMaker
from .postgres import fresh_database
from .test_bus_edges import (
    NATS_URL,
    Proc,
    health,
    joined,
    start,
    start_together,
    stop,
    until,
)
from .test_edge_moves import MOVE_LIMIT_S, edge_config
from .test_failover import stored
from .waiting import eventually

IDLE_S = 1.5  # the edge's bus.edge_idle_s: a room with no client is dropped soon
MAX_ROOMS = 2  # the edge's bus.edge_max_rooms: east and west, no third


@dataclass
class Rooms:
    east: str
    west: str
    authorities: dict[str, Proc]
    edge: Proc
    deployment: str

    def http(self, room: str) -> str:
        return self.authorities[room].url.replace("ws", "http", 1).removesuffix("/ws")

    @property
    def edge_http(self) -> str:
        return self.edge.url.replace("ws", "http", 1).removesuffix("/ws")

    async def edge_rooms(self) -> dict[str, dict[str, object]]:
        rooms = (await health(self.edge_http))["rooms"]
        assert isinstance(rooms, dict)
        return rooms


def room_config(
    folder: Path,
    room: str,
    deployment: str,
    allowed_origins: str = "",
    store_url: str = "",
    **bus: object,
) -> Path:
    """``edge_config`` of test_edge_moves in a folder of its own (its own SQLite store, or
    ``store_url``), in ``deployment`` (``bus.deployment``), plus ``bus`` settings."""
    folder.mkdir()
    text = edge_config(
        folder, room, clone=False, allowed_origins=allowed_origins, deployment=deployment
    ).read_text()
    extra = "".join(f"{key} = {value!r}\n" for key, value in bus.items())
    text = text.replace("[bus]\n", f"[bus]\n{extra}", 1)
    if store_url:
        text = text.replace("[store]\n", f'[store]\nurl = "{store_url}"\n', 1)
    config = folder / "townhall.toml"
    config.write_text(text)
    return config


@contextlib.asynccontextmanager
async def two_rooms(
    tmp_path: Path, allowed_origins: str = "", store_url: str = "", west_authority: bool = True
) -> AsyncIterator[Rooms]:
    """Authorities of rooms east and west (each its own SQLite file, or both their rows in
    the PostgreSQL of ``store_url``), and one edge whose own room is east. Without
    ``west_authority``, west has none (``authorities`` holds east's only): for a test of
    east and the edge alone, which saves a process's start (a second or more of CPU)."""
    tag = uuid.uuid4().hex[:8]
    east, west = f"east-{tag}", f"west-{tag}"
    deployment = f"d-{tag}"  # on the shared NATS, these processes hear only each other
    procs: list[Proc] = []
    try:
        configs = {
            room: room_config(tmp_path / room, room, deployment, store_url=store_url)
            for room in (east, west)
        }
        edge_config_path = room_config(
            tmp_path / "edge",
            east,
            deployment,
            allowed_origins,
            edge_idle_s=IDLE_S,
            edge_max_rooms=MAX_ROOMS,
        )
        # East first (it migrates a shared store), then west beside the edge (which links
        # west only when a west client comes).
        authorities = {east: await start(configs[east], "authority", "WebSocket ")}
        procs.append(authorities[east])
        if west_authority:
            authorities[west], edge = await start_together(
                (configs[west], "authority", "WebSocket "),
                (edge_config_path, "edge", " serving room "),
            )
            procs += [authorities[west], edge]
        else:
            edge = await start(edge_config_path, "edge", " serving room ")
            procs.append(edge)
        yield Rooms(east, west, authorities, edge, deployment)
    finally:
        for proc in reversed(procs):
            await stop(proc)
        nc = await nats.connect(NATS_URL)
        for room in (east, west):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(Subjects.of(room).stream)
        await nc.close()


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    async with two_rooms(tmp_path) as deployment:
        yield deployment


@pytest.fixture
async def east_only(tmp_path: Path) -> AsyncIterator[Rooms]:
    """``rooms`` without west's authority: the edge and east's, all a test of them needs."""
    async with two_rooms(tmp_path, west_authority=False) as deployment:
        yield deployment


@pytest.fixture
async def shared_store(tmp_path: Path) -> AsyncIterator[tuple[Rooms, str]]:
    """``rooms`` with both authorities' records in one PostgreSQL database."""
    with fresh_database() as database:
        async with two_rooms(tmp_path, store_url=database) as deployment:
            yield deployment, database


def texts(seen: list[Message]) -> set[str]:
    return {m.question.text for m in seen if isinstance(m, QuestionChanged)}


async def test_one_edge_serves_two_rooms_and_each_sees_only_its_own(
    shared_store: tuple[Rooms, str], token: TokenMaker
) -> None:
    rooms, database = shared_store
    east, west = rooms.east, rooms.west
    # Two authorities on one NATS, each the holder of its own room's lease (its own term).
    nc = await nats.connect(NATS_URL)
    holders = {room: await holder_of(nc, room) for room in (east, west)}
    await nc.close()
    assert all(holders.values()) and len({h.id for h in holders.values() if h}) == 2, holders
    for room in (east, west):
        status = await health(rooms.http(room))
        assert status["lease"] == "active" and status["room"] == room, status
    ada, ada_seen = await joined(rooms.edge.url, token("ada", room=east))
    bob, bob_seen = await joined(rooms.edge.url, token("bob", room=east))
    cyd, cyd_seen = await joined(rooms.edge.url, token("cyd", room=west))
    assert ada.welcome is not None and ada.welcome.room == east
    assert cyd.welcome is not None and cyd.welcome.room == west
    # One edge, both rooms linked; each authority holds its own clients only.
    linked = await rooms.edge_rooms()
    assert {r: v["connections"] for r, v in linked.items()} == {east: 2, west: 1}
    await until(lambda: health(rooms.http(east)), lambda h: h["edge_clients"] == 2, "east: 2")
    await until(lambda: health(rooms.http(west)), lambda h: h["edge_clients"] == 1, "west: 1")

    await ada.send(Ask(1, "When does the east office open?"))
    await cyd.send(Ask(1, "Is the west car park free?"))
    await eventually(lambda: "When does the east office open?" in texts(bob_seen), 20, "east Q")
    await eventually(lambda: "Is the west car park free?" in texts(cyd_seen), 20, "west Q")
    await eventually(lambda: texts(ada_seen) == texts(bob_seen), 20, "east boards agree")

    def only_own(client: RoomClient, users: set[str], slots: set[int]) -> bool:
        present = {p.user_id for p in client.state.participants.values()}
        return present == users and set(client.state.far) == slots

    east_slots = {ada.welcome.slot, bob.welcome.slot}
    await eventually(lambda: only_own(ada, {"ada", "bob"}, east_slots), 20, "east's crowd")
    await eventually(lambda: only_own(cyd, {"cyd"}, {cyd.welcome.slot}), 20, "west's crowd")
    # Boards, people and crowd stay apart: nothing of one room reached the other's clients.
    assert texts(ada_seen) == texts(bob_seen) == {"When does the east office open?"}
    assert texts(cyd_seen) == {"Is the west car park free?"}
    # One PostgreSQL for both rooms: each question stored under its own room.
    assert set(stored(database, east)[0].values()) == {"When does the east office open?"}
    assert set(stored(database, west)[0].values()) == {"Is the west car park free?"}
    for client in (ada, bob, cyd):
        await client.close()


async def test_a_room_without_an_authority_is_refused_and_leaves_nothing(
    east_only: Rooms, token: TokenMaker
) -> None:
    rooms = east_only
    nowhere = f"nowhere-{uuid.uuid4().hex[:8]}"
    client = RoomClient(rooms.edge.url, token("eve", room=nowhere), timeout_s=30)
    with pytest.raises(JoinRejected) as refused:
        await client.connect()
    assert refused.value.error.code == ErrorCode.ROOM_UNAVAILABLE and refused.value.error.fatal
    assert f"no authority serves room {nowhere!r}" in refused.value.error.reason
    assert client.connection is not None
    assert client.connection.close_code == ErrorCode.ROOM_UNAVAILABLE.close_code
    status = await health(rooms.edge_http)
    assert nowhere not in status["rooms"] and status["rooms_refused"] == 1  # type: ignore[operator]
    nc = await nats.connect(NATS_URL)  # no stream made for it either
    with pytest.raises(nats.js.errors.NotFoundError):
        await nc.jetstream().stream_info(Subjects.of(nowhere).stream)
    await nc.close()
    # A room id that cannot name subjects goes to the edge's own room, whose authority
    # answers WRONG_ROOM: the edge subscribed to nothing for it.
    bogus = RoomClient(rooms.edge.url, token("eve", room="east.>"), timeout_s=30)
    with pytest.raises(JoinRejected) as wrong:
        await bogus.connect()
    assert wrong.value.error.code == ErrorCode.WRONG_ROOM
    assert set(await rooms.edge_rooms()) == {rooms.east}
    # A room whose lease someone holds but which sends no tick (its authority hung, say):
    # the edge links it, waits bus.edge_timeout_s, refuses, and lets go of it again.
    silent = f"silent-{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(NATS_URL)
    try:
        kv = await nc.jetstream().key_value(BUCKET)
        await kv.create(silent, Holder("hung", "ws://127.0.0.1:9/ws", 0.0).encode())
        hung = RoomClient(rooms.edge.url, token("eve", room=silent), timeout_s=30)
        with pytest.raises(JoinRejected) as quiet:
            await hung.connect()
        assert quiet.value.error.code == ErrorCode.ROOM_UNAVAILABLE
        assert f"room {silent!r} sent nothing in 2 s" in quiet.value.error.reason
        assert set(await rooms.edge_rooms()) == {rooms.east}
        await kv.delete(silent)
    finally:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(Subjects.of(silent).stream)
        await nc.close()


async def test_an_idle_room_is_dropped_and_the_edge_holds_at_most_its_limit(
    rooms: Rooms, token: TokenMaker, tmp_path: Path
) -> None:
    cyd, _ = await joined(rooms.edge.url, token("cyd", room=rooms.west))
    assert set(await rooms.edge_rooms()) == {rooms.east, rooms.west}
    # A third room, with an authority of its own: one room more than the edge may hold.
    third = f"north-{uuid.uuid4().hex[:8]}"
    north = await start(
        room_config(tmp_path / third, third, rooms.deployment), "authority", "WebSocket "
    )
    try:
        refused = RoomClient(rooms.edge.url, token("dan", room=third), timeout_s=30)
        with pytest.raises(JoinRejected) as full:
            await refused.connect()
        assert full.value.error.code == ErrorCode.ROOM_UNAVAILABLE
        assert f"as many rooms as it may ({MAX_ROOMS})" in full.value.error.reason
        # A client moving on (the plugin's reconnect) whose Welcome lists this full edge
        # tries it, is refused ROOM_UNAVAILABLE, and goes on to the next edge, which has
        # room for north: it resumes there.
        other = await start(
            room_config(tmp_path / "edge2", rooms.east, rooms.deployment), "edge", " serving room "
        )
        try:
            eli, _ = await joined(other.url, token("eli", room=third))
            assert eli.welcome is not None
            eli.welcome = msgspec.structs.replace(eli.welcome, edges=[rooms.edge.url])
            await eli.close()
            welcome = await eli.reconnect()
            assert welcome.resumed and eli.url == other.url
            await eli.close()
        finally:
            await stop(other)
        # West's last client leaves: west is dropped after bus.edge_idle_s, east (the
        # edge's own room) stays, and north now fits.
        await cyd.close()
        await until(rooms.edge_rooms, lambda r: set(r) == {rooms.east}, "west dropped", timeout=30)
        dan, _ = await joined(rooms.edge.url, token("dan", room=third))
        assert dan.welcome is not None and dan.welcome.room == third
        await dan.close()
    finally:
        await stop(north)
        nc = await nats.connect(NATS_URL)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await nc.jetstream().delete_stream(Subjects.of(third).stream)
        await nc.close()


async def test_kill_9_of_one_rooms_authority_leaves_the_other_room_on_the_edge_untouched(
    rooms: Rooms, token: TokenMaker
) -> None:
    east, west = rooms.east, rooms.west
    ada, ada_seen = await joined(rooms.edge.url, token("ada", room=east))
    cyd, _ = await joined(rooms.edge.url, token("cyd", room=west))
    rooms.authorities[west].process.send_signal(signal.SIGKILL)
    await rooms.authorities[west].process.wait()
    # West's client is shed (1012: its room is silent), and a new one is refused.
    await asyncio.wait_for(cyd.wait_closed(), 30)
    assert cyd.close_code == 1012
    late = RoomClient(rooms.edge.url, token("cyd", room=west), timeout_s=30)
    with pytest.raises(JoinRejected) as refused:
        await late.connect()
    assert refused.value.error.code == ErrorCode.ROOM_UNAVAILABLE
    # East goes on through the same edge: its client still connected, asking and answered.
    assert not ada.closed
    await ada.send(Ask(1, "Is the east canteen open today?"))
    await eventually(lambda: "Is the east canteen open today?" in texts(ada_seen), 20, "east Q")
    new, _ = await joined(rooms.edge.url, token("bob", room=east))
    assert new.welcome is not None and new.welcome.room == east
    for client in (ada, new):
        await client.close()


async def test_a_rooms_clients_move_to_an_edge_that_never_served_that_room(
    rooms: Rooms, token: TokenMaker, tmp_path: Path
) -> None:
    """Welcome names every live edge of the deployment, not only those serving the room now:
    west's clients are all on one edge, and when it dies they go on at another edge, which
    links west on their arrival."""
    config = room_config(tmp_path / "edge-b", rooms.east, rooms.deployment, edge_idle_s=IDLE_S)
    edge_b = await start(config, "edge", " serving room ")
    try:
        await until(
            lambda: health(rooms.http(rooms.west)),
            lambda h: edge_b.url in cast(list[str], h["deployment_edges"]),
            "edge B's presence at west's authority",
        )
        assert rooms.west not in await rooms_of(edge_b)  # B never served west
        client = RoomClient(rooms.edge.url, token("wes", room=rooms.west), timeout_s=30)
        first = await client.connect()
        assert set(first.edges) == {rooms.edge.url, edge_b.url}
        assert first.edges[0] == rooms.edge.url  # the edges serving west come first
        rooms.edge.process.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        await rooms.edge.process.wait()
        await asyncio.wait_for(client.wait_closed(), MOVE_LIMIT_S)
        welcome = await client.reconnect()
        moved_in = time.monotonic() - killed_at
        assert moved_in < MOVE_LIMIT_S, f"moved in {moved_in:.1f} s"
        assert client.url == edge_b.url and welcome.resumed
        assert (welcome.slot, welcome.seat) == (first.slot, first.seat)
        assert rooms.west in await rooms_of(edge_b)
        await client.close()
    finally:
        await stop(edge_b)


async def rooms_of(edge: Proc) -> dict[str, object]:
    found = (await health(edge.url.replace("ws", "http", 1).removesuffix("/ws")))["rooms"]
    assert isinstance(found, dict)
    return found


async def test_bots_join_a_room_that_is_not_the_edges_own(rooms: Rooms) -> None:
    stop_bots = asyncio.Event()
    said: list[str] = []
    bots = asyncio.create_task(
        run_bots(
            rooms.edge.url, 4, secret=SECRET, room=rooms.west, stop=stop_bots, progress=said.append
        )
    )
    try:
        await eventually(lambda: "bots: 4/4 seated" in said, 30, "4 bots seated")
        await until(lambda: health(rooms.http(rooms.west)), lambda h: h["edge_clients"] == 4, "4")
        assert (await health(rooms.http(rooms.east)))["edge_clients"] == 0
    finally:
        stop_bots.set()
        stats = await bots
    assert stats.connected == 4 and not stats.errors, stats.error_counts


def _join(token: str) -> bytes:
    return codec.encode(Join(1, 1, token))


def test_the_room_of_a_connection_is_its_join_tokens_room() -> None:
    def token(room: str) -> str:
        return issue_token(SECRET, user_id="u", name="U", role="attendee", room=room, ttl_s=60)

    assert room_of(_join(token("west")), "east") == "west"
    assert room_of(_join(issue_token("another-secret-" * 3, user_id="u", name="U", role="attendee",
                                     room="west", ttl_s=60)), "east") == "west"  # fmt: skip
    # Whatever names no usable room goes to the edge's own, whose authority answers it.
    assert room_of(_join(""), "east") == "east"  # an anonymous spectator
    assert room_of(_join("not a token"), "east") == "east"
    assert room_of(_join(token("a.b")), "east") == "east"  # no subject token
    assert room_of(_join(token("edges")), "east") == "east"  # taken by the bus itself
    assert room_of(_join(token("x" * 65)), "east") == "east"
    assert room_of(codec.encode(Ping(0)), "east") == "east"  # not a Join
    assert room_of(b"\xc1garbage", "east") == "east"
    assert room_of("a text frame", "east") == "east"


async def test_forged_presence_is_dropped_and_names_no_page_origin(east_only: Rooms) -> None:
    rooms = east_only
    east_http = rooms.http(rooms.east)
    await until(
        lambda: health(east_http),
        # (other tests' edges on the shared NATS may be listed too: they are live edges)
        lambda h: rooms.edge.url in h["deployment_edges"],  # type: ignore[operator]
        "east's authority knows the edge by its presence",
    )
    before = (await health(east_http))["bus_dropped"]
    forged = [
        b"\xff" * 16,  # no seam message
        ipc.pack(ipc.Gone(1)),  # not a Stats
        presence_message("http://evil.example/ws"),  # not a WebSocket URL
        presence_message("ws://evil example/ws"),
        presence_message(""),
    ]
    nc = await nats.connect(NATS_URL)
    try:
        for data in forged:
            await nc.publish(presence(rooms.deployment, "forged"), data)
        await nc.flush()
    finally:
        await nc.close()
    await until(
        lambda: health(east_http),
        lambda h: h["bus_dropped"] >= before + len(forged),  # type: ignore[operator]
        "the authority dropping the forged presence",
    )
    status = await health(east_http)
    listed = status["deployment_edges"]
    assert isinstance(listed, list) and rooms.edge.url in listed, status
    assert not any("evil" in url for url in listed), status
    policy = await asyncio.to_thread(_policy, f"{east_http}/watch")
    assert "evil" not in policy and rooms.edge.url.removesuffix("/ws") in policy, policy


def _policy(url: str) -> str:
    """The Content-Security-Policy a page is served with."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        return str(resp.headers["Content-Security-Policy"])


def test_a_room_is_silent_only_when_no_tick_waits_unread() -> None:
    """An edge whose own loop was held up (thousands of handshakes on a busy machine) reads
    its ticks late: ticks waiting in the subscription mean it is behind, not that the room
    is gone, so its clients are not shed (seen in bench/edges.py at 6,000 clients)."""
    from types import SimpleNamespace

    from townhall.server.fanout.edge_rooms import RoomLink as Link

    edge = SimpleNamespace(last_tick=41, last_tick_at=100.0)
    ticks = SimpleNamespace(pending_msgs=0)
    link = Link(Subjects.of("east"), edge, on_bus=None, pinned=False, ticks=ticks)  # type: ignore[arg-type]
    assert not link.silent(now=101.0, timeout_s=2.0)  # heard from lately
    assert link.silent(now=103.0, timeout_s=2.0)  # nothing for longer than the timeout
    ticks.pending_msgs = 7
    assert not link.silent(now=103.0, timeout_s=2.0)  # ticks came, not yet read
    edge.last_tick = 0
    assert not link.silent(now=500.0, timeout_s=2.0)  # never fed: not judged here
