"""Thousands of random and mutated frames at a live server; honest clients notice nothing."""

from __future__ import annotations

import asyncio
import random

import msgpack
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from townhall.plugin.client import RoomClient
from townhall.protocol import codec, quant
from townhall.protocol.errors import ErrorCode
from townhall.protocol.limits import POSE_BYTES
from townhall.protocol.messages import Hand, Join, KeyframeRequest, Leave, Ping, Pose
from townhall.server.app import TownhallServer

from .conftest import TokenMaker
from .test_server import pose_bytes
from .waiting import eventually, round_trip

FRAMES = 6000


def valid_frames(tok: str) -> list[bytes]:
    return [
        codec.encode(Join(1, 1, tok)),
        codec.encode(Ping(123)),
        codec.encode(Pose(1, bytes(POSE_BYTES), 6)),
        codec.encode(Hand(True)),
        codec.encode(KeyframeRequest()),
        codec.encode(Leave()),
    ]


def mutate(rng: random.Random, frame: bytes) -> bytes | str:
    choice = rng.randrange(10)
    data = bytearray(frame)
    if choice == 0 and data:  # flip bits
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
        return bytes(data)
    if choice == 1:  # truncate
        return bytes(data[: rng.randrange(len(data) + 1)])
    if choice == 2:  # random bytes
        return rng.randbytes(rng.randint(0, 64))
    if choice == 3:  # random msgpack values of the right outer shape
        values = [None, True, -1, 2**40, 1.5, "x" * rng.randint(0, 20), b"\x00" * 3, [], {}]
        return msgpack.packb([rng.randint(-5, 300), *rng.choices(values, k=rng.randint(0, 6))])
    if choice == 4:  # oversized
        return b"\x91" + rng.randbytes(9000)
    if choice == 5:  # text frame
        return "hello"
    if choice == 6:  # deeply nested
        depth = rng.randint(10, 200)
        return b"\x91" * depth + b"\x01"
    if choice == 7:  # huge declared lengths
        return bytes([0xDD, 0xFF, 0xFF, 0xFF, 0xFF])
    if choice == 8:  # wrong type code on a valid body
        data[1] = rng.choice([0, 7, 63, 64, 66, 127, 200])
        return bytes(data)
    return frame  # sometimes valid: it has to be handled too


async def attack(url: str, tokens: list[str], seed: int, budget: int) -> int:
    rng = random.Random(seed)
    sent = 0
    n = 0
    while sent < budget:
        tok = tokens[n % len(tokens)]
        n += 1
        frames = valid_frames(tok)
        try:
            async with connect(url, max_size=None, max_queue=None, open_timeout=5) as ws:
                if rng.random() < 0.8:
                    await ws.send(frames[0])  # join first, to reach the post-join paths
                for _ in range(rng.randint(20, 200)):
                    await ws.send(mutate(rng, rng.choice(frames)))
                    sent += 1
                    if sent >= budget:
                        break
        except (ConnectionClosed, OSError, TimeoutError):
            pass
    return sent


async def test_fuzzing_leaves_honest_clients_untouched(
    server: TownhallServer, token: TokenMaker
) -> None:
    a = RoomClient(server.ws_url, token("honest-a"))
    b = RoomClient(server.ws_url, token("honest-b"))
    s = RoomClient(server.ws_url, token("honest-s", role="spectator"))
    wa = await a.connect()
    await b.connect()
    await s.connect()
    attacker_tokens = [token(f"evil-{i}") for i in range(4)] + [
        token("evil-s", role="spectator"),
        "",
    ]

    async def honest_traffic(stop: asyncio.Event) -> int:
        n = 0
        while not stop.is_set():
            await a.send_pose(pose_bytes(head_y=1.0 + (n % 50) / 100), 6)
            await b.send_pose(pose_bytes(), 6)
            n += 1
            await asyncio.sleep(0.05)
        return n

    stop = asyncio.Event()
    traffic = asyncio.create_task(honest_traffic(stop))
    sent = await asyncio.gather(
        *(attack(server.ws_url, attacker_tokens, seed, FRAMES // 3) for seed in range(3))
    )
    assert sum(sent) >= FRAMES
    # After the storm: honest poses still flow end to end.
    await a.send_pose(pose_bytes(head_y=1.444), 6)

    def b_sees_latest() -> bool:
        if not b.state.near:
            return False
        crowd = quant.decode_crowd(b.state.near)
        rows = list(crowd.slots)
        return wa.slot in rows and abs(crowd.pos[rows.index(wa.slot)][0][1] - 1.444) < 0.001

    stop.set()
    await traffic
    await eventually(b_sees_latest)
    for honest in (a, b, s):
        assert not honest.closed
        assert honest.errors == []
    # The room noticed and said why.
    errors = server.metrics.errors_sent
    for code in ("BAD_FRAME", "BAD_MESSAGE", "UNKNOWN_TYPE", "TOO_LARGE"):
        assert errors.get(code, 0) > 0, code
    assert server.metrics.tick_lag_max_s < 1.0
    assert server.metrics.tick_errors == 0
    # The evil attendees who joined are still just members; the room state is sane.
    assert all(m.seat != -1 or m.identity.role != "attendee" for m in server.room.members.values())
    for honest in (a, b, s):
        await honest.close()


async def test_flooding_client_is_closed_with_reason(
    server: TownhallServer, token: TokenMaker
) -> None:
    async with connect(server.ws_url) as ws:
        await ws.send(codec.encode(Join(1, 1, token("flood"))))
        codes: list[int] = []
        try:
            for _ in range(500):
                await ws.send(b"\xc1")
            while True:
                msg = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
                if hasattr(msg, "code"):
                    codes.append(msg.code)  # type: ignore[attr-defined]
        except ConnectionClosed:
            pass
        assert ws.close_code == ErrorCode.FLOODING.close_code
        assert ErrorCode.BAD_FRAME in codes and codes[-1] == ErrorCode.FLOODING


async def test_pose_rate_limit_tells_once_a_second(
    server: TownhallServer, token: TokenMaker
) -> None:
    c = RoomClient(server.ws_url, token("fast"))
    await c.connect()
    # A burst of 100 poses (within the general message burst of 120, far past the pose rate
    # and the 50-reject flooding limit): poses bunched up by a stall are dropped with one
    # notice a second, and the client is not closed.
    for _ in range(100):
        await c.send_pose(pose_bytes())
    await round_trip(c)  # every answer to those poses has arrived
    limited = [e for e in c.errors if e.code == ErrorCode.RATE_LIMITED]
    assert len(limited) == 1 and limited[0].about == Pose.TYPE
    assert not c.closed
    await c.close()


async def test_invalid_pose_is_rejected_and_crowd_stays_decodable(
    server: TownhallServer, token: TokenMaker
) -> None:
    evil = RoomClient(server.ws_url, token("evil"))
    good = RoomClient(server.ws_url, token("good"))
    await evil.connect()
    await good.connect()
    bad = bytearray(pose_bytes())
    bad[6:10] = (0xDFF7FDFF).to_bytes(4, "little")  # head rotation longer than unit length
    await evil.send_pose(bytes(bad), 6)
    await eventually(lambda: bool(evil.errors))
    assert evil.errors[0].code == ErrorCode.BAD_MESSAGE and evil.errors[0].about == Pose.TYPE
    frames_before = good.state.crowd_frames
    await eventually(lambda: good.state.crowd_frames >= frames_before + 3)
    quant.decode_crowd(good.state.near)
    assert server.metrics.tick_errors == 0
    await evil.close()
    await good.close()
