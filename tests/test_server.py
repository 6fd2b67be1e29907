"""The server over real sockets on 127.0.0.1: HTTP routes, join, roles, crowd, resume."""

from __future__ import annotations

import asyncio
from pathlib import Path

import msgpack
import pytest
from websockets.asyncio.client import connect

from townhall.plugin.client import JoinRejected, RoomClient
from townhall.protocol import codec, quant
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import (
    CrowdFar,
    CrowdNear,
    Error,
    HandChanged,
    Join,
    Joined,
    Keyframe,
    Message,
    Pose,
    Welcome,
)
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, http_get, make_settings
from .waiting import eventually


def pose_bytes(head_y: float = 1.25, yaw_quat: tuple[float, ...] = (0, 0, 0, 1)) -> bytes:
    pos = [[[0.0, head_y, 0.0], [-0.2, 0.9, -0.3], [0.2, 1.7, -0.1]]]
    rot = [[list(yaw_quat), [0, 0, 0, 1], [0, 0, 0, 1]]]
    return quant.encode_poses(pos, rot).tobytes()


async def test_http_routes(server: TownhallServer) -> None:
    status, ctype, body = await asyncio.to_thread(http_get, server.url + "/healthz")
    assert status == 200 and ctype == "application/json" and '"status": "ok"' in body
    status, ctype, body = await asyncio.to_thread(http_get, server.url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    assert 'townhall_connections{role="attendee"} 0' in body
    for name in (
        "messages_in_total",
        "bytes_out_total",
        "frames_dropped_total",
        "tick_lag_seconds",
    ):
        assert f"townhall_{name} " in body
    status, _, body = await asyncio.to_thread(http_get, server.url + "/scene.json")
    assert status == 200 and '"sections"' in body
    assert (await asyncio.to_thread(http_get, server.url + "/nope"))[0] == 404
    assert (await asyncio.to_thread(http_get, server.url + "/ws"))[0] == 426


async def test_join_gets_welcome_seat_and_keyframe(
    server: TownhallServer, token: TokenMaker
) -> None:
    client = RoomClient(server.ws_url, token("alice", name="Alice"))
    welcome = await client.connect()
    assert (welcome.role, welcome.name, welcome.user_id) == ("attendee", "Alice", "alice")
    assert welcome.seat >= 0 and not welcome.resumed
    await eventually(lambda: client.state.has_keyframe)
    assert welcome.slot in client.state.participants
    await client.close()


async def test_others_see_join_hand_and_poses(server: TownhallServer, token: TokenMaker) -> None:
    a = RoomClient(server.ws_url, token("a"))
    b = RoomClient(server.ws_url, token("b"))
    wa = await a.connect()
    wb = await b.connect()
    assert (
        server.authority.crowd.cell_of_slot[wa.slot] == server.authority.crowd.cell_of_slot[wb.slot]
    )
    await eventually(lambda: wb.slot in a.state.participants)
    await a.raise_hand(True)
    await eventually(lambda: b.state.hands.get(wa.slot) is True)
    distinct = pose_bytes(head_y=1.375)
    await a.send_pose(distinct, int(quant.PoseFlag.RIGHT_TRACKED))

    def b_sees_pose() -> bool:
        if not b.state.near:
            return False
        crowd = quant.decode_crowd(b.state.near)
        rows = list(crowd.slots)
        return wa.slot in rows and abs(crowd.pos[rows.index(wa.slot)][0][1] - 1.375) < 0.001

    await eventually(b_sees_pose)
    crowd = quant.decode_crowd(b.state.near)
    i = list(crowd.slots).index(wa.slot)
    assert crowd.flags[i] & quant.PoseFlag.HAND_RAISED
    await eventually(lambda: wa.slot in b.state.far)
    await a.close()
    await b.close()


async def test_spectator_may_not_send_poses(server: TownhallServer, token: TokenMaker) -> None:
    c = RoomClient(server.ws_url, token("s", role="spectator"))
    w = await c.connect()
    assert w.seat == -1
    await c.send_pose(pose_bytes())
    await eventually(lambda: bool(c.errors))
    assert c.errors[0].code == ErrorCode.NOT_ALLOWED and c.errors[0].about == Pose.TYPE
    assert not c.closed
    await c.close()


async def test_anonymous_spectator(server: TownhallServer) -> None:
    c = RoomClient(server.ws_url, "")
    w = await c.connect()
    assert w.role == "spectator" and w.user_id.startswith("anon-")
    await c.close()


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"room": "elsewhere"}, ErrorCode.WRONG_ROOM),
        ({"ttl": -1}, ErrorCode.AUTH_EXPIRED),
    ],
)
async def test_bad_tokens_are_refused_with_code_and_close(
    server: TownhallServer, token: TokenMaker, kwargs: dict[str, object], code: ErrorCode
) -> None:
    if kwargs.get("ttl") == -1:
        import time

        from townhall.server.gateway.tokens import issue_token

        from .conftest import SECRET

        tok = issue_token(
            SECRET,
            user_id="x",
            name="x",
            role="attendee",
            room="main",
            ttl_s=1,
            now=time.time() - 5,
        )
    else:
        tok = token("x", **kwargs)
    c = RoomClient(server.ws_url, tok)
    with pytest.raises(JoinRejected) as info:
        await c.connect()
    assert info.value.error.code == code and info.value.error.fatal
    assert c.connection is not None and c.connection.close_code == code.close_code


async def test_forged_token_is_invalid(server: TownhallServer, token: TokenMaker) -> None:
    head, body, _sig = token("x").split(".")
    c = RoomClient(server.ws_url, f"{head}.{body}.AAAA")
    with pytest.raises(JoinRejected) as info:
        await c.connect()
    assert info.value.error.code == ErrorCode.AUTH_INVALID


async def test_version_and_first_message_rules(server: TownhallServer, token: TokenMaker) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(codec.encode(Join(7, 9, token("v"))))
        err = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
        assert isinstance(err, Error) and err.code == ErrorCode.VERSION_UNSUPPORTED
        await ws.wait_closed()
        assert ws.close_code == ErrorCode.VERSION_UNSUPPORTED.close_code
    async with connect(server.ws_url) as ws:
        await ws.send(msgpack.packb([2, 5]))
        err = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
        assert isinstance(err, Error) and err.code == ErrorCode.NOT_JOINED


async def test_join_timeout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, limits={"join_timeout_s": 0.2})
    async with TownhallServer(settings) as srv, connect(srv.ws_url) as ws:
        err = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
        assert isinstance(err, Error) and err.code == ErrorCode.JOIN_TIMEOUT
        await ws.wait_closed()


async def test_resume_returns_same_seat_and_replays(
    server: TownhallServer, token: TokenMaker
) -> None:
    a = RoomClient(server.ws_url, token("a"))
    first = await a.connect()
    await eventually(lambda: a.state.has_keyframe)
    seq_before = a.state.seq
    # Drop the connection abruptly, then let others change the room meanwhile.
    assert a.connection is not None
    a.connection.transport.abort()
    await eventually(lambda: a.closed)
    b = RoomClient(server.ws_url, token("b"))
    wb = await b.connect()
    await b.raise_hand(True)
    await eventually(lambda: server.room.log.last_seq >= seq_before + 2)
    again = await a.connect(resume=True)
    assert again.resumed and again.seat == first.seat and again.slot == first.slot
    await eventually(lambda: a.state.hands.get(wb.slot) is True)
    assert wb.slot in a.state.participants
    await a.close()
    await b.close()


async def test_second_login_replaces_first(server: TownhallServer, token: TokenMaker) -> None:
    one = RoomClient(server.ws_url, token("same"))
    w1 = await one.connect()
    two = RoomClient(server.ws_url, token("same"))
    w2 = await two.connect()
    await one.wait_closed()
    assert one.close_code == ErrorCode.REPLACED.close_code
    assert w2.seat == w1.seat
    assert not two.closed
    await two.close()


async def test_leave_frees_the_member(server: TownhallServer, token: TokenMaker) -> None:
    a = RoomClient(server.ws_url, token("a"))
    b = RoomClient(server.ws_url, token("b"))
    wa = await a.connect()
    await b.connect()
    await eventually(lambda: wa.slot in b.state.participants)
    await a.leave()
    await eventually(lambda: wa.slot not in b.state.participants)
    assert wa.slot not in server.room.members
    await b.close()


async def test_messages_seen_by_raw_decoder_are_catalog_messages(
    server: TownhallServer, token: TokenMaker
) -> None:
    seen: list[Message] = []
    c = RoomClient(server.ws_url, token("obs"), on_message=seen.append)
    await c.connect()
    d = RoomClient(server.ws_url, token("mover"))
    await d.connect()
    await d.send_pose(pose_bytes())
    # A crowd frame from before d joined may come first: wait for both.
    await eventually(
        lambda: (
            any(isinstance(m, CrowdFar) for m in seen) and any(isinstance(m, Joined) for m in seen)
        )
    )
    kinds = {type(m) for m in seen}
    assert {Welcome, Keyframe, Joined, CrowdFar} <= kinds
    assert all(
        isinstance(m, (Welcome, Keyframe, Joined, CrowdFar, CrowdNear, HandChanged)) for m in seen
    )
    await c.close()
    await d.close()


async def test_shutdown_tells_clients_why(tmp_path: Path, token: TokenMaker) -> None:
    srv = TownhallServer(make_settings(tmp_path))
    await srv.start()
    c = RoomClient(srv.ws_url, token("a"))
    await c.connect()
    await srv.stop()
    await c.wait_closed()
    assert c.close_code == ErrorCode.SERVER_SHUTDOWN.close_code
    assert c.errors[-1].code == ErrorCode.SERVER_SHUTDOWN and c.errors[-1].fatal
