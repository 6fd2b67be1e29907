"""Simulated headsets, load bots against a real server, and the demo command."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from pathlib import Path

import numpy as np
import pytest

from townhall.plugin.bots import run_bots
from townhall.plugin.client import RoomClient
from townhall.plugin.headset_sim import (
    RAISE_S,
    HandSchedule,
    HeadsetBatch,
    SimulatedHeadset,
)
from townhall.protocol import quant
from townhall.protocol.messages import CrowdFar, CrowdNear, HandChanged, Message
from townhall.server.app import TownhallServer
from townhall.server.core.crowd import NEUTRAL_POSE
from townhall.server.gateway.tokens import verify_token
from townhall.server.ops.demo import run_demo

from .conftest import SECRET, TokenMaker, make_settings
from .waiting import eventually


def bot_members(server: TownhallServer) -> list[int]:
    return [s for s, m in server.room.members.items() if m.identity.user_id.startswith("bot-")]


# ---------------------------------------------------------------- the simulated headset


def test_headset_is_deterministic_per_seed() -> None:
    a, b, other = SimulatedHeadset(7), SimulatedHeadset(7), SimulatedHeadset(8)
    for t in (0.0, 1.5, 42.0, 300.25):
        pa, ra = a.pose_at(t)
        pb, rb = b.pose_at(t)
        assert np.array_equal(pa, pb) and np.array_equal(ra, rb)
        assert a.encoded_pose_at(t) == b.encoded_pose_at(t)
    assert not np.allclose(a.pose_at(10.0)[0], other.pose_at(10.0)[0])
    # The schedule does not depend on the order it is asked in.
    late_first = SimulatedHeadset(7)
    late_first.hand_raised_at(500.0)
    assert late_first.hand_events(0, 500) == a.hand_events(0, 500)


def test_headset_motion_stays_in_range_and_moves() -> None:
    h = SimulatedHeadset(3)
    ts = np.arange(0.0, 600.0, 0.25)
    poses = [h.pose_at(float(t)) for t in ts]
    pos = np.array([p for p, _ in poses])
    rot = np.array([r for _, r in poses])
    assert pos.shape == (len(ts), 3, 3) and rot.shape == (len(ts), 3, 4)
    assert np.allclose(np.linalg.norm(rot, axis=2), 1.0, atol=1e-9)
    head_y = pos[:, 0, 1]
    assert head_y.min() > 1.13 and head_y.max() < 1.27
    assert 0.002 < head_y.max() - head_y.min() < 0.03  # breathing, not bouncing
    yaw, pitch = quant.head_yaw_pitch(rot[:, 0])
    assert np.abs(yaw).max() <= 60.01 and yaw.max() - yaw.min() > 60
    assert np.abs(pitch).max() <= 20.01 and pitch.max() - pitch.min() > 15
    assert np.abs(np.diff(yaw)).max() < 8.5  # smooth: at most ~33 degrees a second
    assert all(h.flags_at(float(t)) == 6 for t in ts[:10])  # both hands tracked
    assert not h.flags_at(0.0) & quant.PoseFlag.HAND_RAISED


def test_hand_goes_up_on_schedule() -> None:
    h = SimulatedHeadset(11)
    events = h.hand_events(0.0, 600.0)
    assert events and [up for _, up in events] == [True, False] * (len(events) // 2)
    starts = [t for t, up in events if up]
    ends = [t for t, up in events if not up]
    assert all(30 <= b - a <= 90 for a, b in itertools.pairwise(starts))
    assert all(2 <= e - s <= 6 for s, e in zip(starts, ends, strict=False))
    start, end = starts[0], ends[0]
    assert not h.hand_raised_at(start - 0.01) and h.hand_raised_at(start + 0.01)
    pos, _ = h.pose_at(start + RAISE_S + 0.1)
    assert pos[2, 1] > pos[0, 1] + 0.3  # right hand well above the head
    for t in (start - 1.0, end + RAISE_S + 0.1):
        pos, _ = h.pose_at(t)
        assert pos[1, 1] < 0.8 and pos[2, 1] < 0.8  # both hands in the lap
    fast = HandSchedule(1, every_s=(0.3, 1.0), up_s=(0.5, 1.0))
    assert len(fast.events(0, 10)) >= 10
    with pytest.raises(ValueError):
        HandSchedule(1, every_s=(5.0, 1.0))


def test_batch_matches_single_headsets_and_encodes() -> None:
    headsets = [SimulatedHeadset(s) for s in range(5)]
    batch = HeadsetBatch(headsets)
    pos, rot = batch.poses_at(17.3)
    blob = batch.encoded_at(17.3)
    assert len(blob) == 5 * quant.POSE_DTYPE.itemsize == 150
    for i, h in enumerate(headsets):
        p, r = h.pose_at(17.3)
        assert np.allclose(p, pos[i]) and np.allclose(r, rot[i])
        assert blob[30 * i : 30 * i + 30] == h.encoded_pose_at(17.3)
    back, _ = quant.decode_poses(blob)
    assert np.allclose(back, pos, atol=0.0006)


# ---------------------------------------------------------------- bots on a real server


# Bots reconnect after a back-off and three start at once: on a busy machine (the suite beside
# bench/capacity.py) that took longer than eventually()'s default 10 s.
BUSY_S = 30.0


def _heads_turning(near: list[tuple[int, bytes]], slots: list[int]) -> tuple[float, bool]:
    """From the observer's cell neighbours: how far a bot's head has turned at most (yaw
    range, radians), and whether a raised hand was seen above a head."""
    heads: dict[int, list[float]] = {}
    hand_above_head = False
    for _, records in list(near):
        crowd = quant.decode_crowd(records)
        yaw, _ = quant.head_yaw_pitch(crowd.rot[:, 0])
        for i, slot in enumerate(crowd.slots.tolist()):
            if slot in slots:
                heads.setdefault(slot, []).append(float(yaw[i]))
                assert 1.1 < crowd.pos[i, 0, 1] < 1.3
                hand_above_head |= bool(crowd.pos[i, 2, 1] > crowd.pos[i, 0, 1] + 0.2)
    turned = max((max(v) - min(v) for v in heads.values()), default=0.0)
    return turned, hand_above_head


async def test_bots_sit_move_and_raise_hands(server: TownhallServer, token: TokenMaker) -> None:
    """Thirty bots sit, move, turn their heads and raise hands, then leave when told to.

    They run until the test has seen all of it, not for a fixed time: beside a busy, slow
    machine seating the thirty took longer than the 3 s they used to run, and they left
    before the last were seated."""
    near: list[tuple[int, bytes]] = []
    raised: set[int] = set()
    far: set[int] = set()

    def watch(message: Message) -> None:
        if isinstance(message, CrowdNear):
            near.append((message.server_time_us, message.records))
        elif isinstance(message, CrowdFar):
            far.update(quant.decode_coarse(message.records).slots.tolist())
        elif isinstance(message, HandChanged) and message.raised:
            raised.add(message.slot)

    observer = RoomClient(server.ws_url, token("observer"), on_message=watch)
    await observer.connect()
    lines: list[str] = []
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(
        run_bots(
            server.ws_url,
            30,
            secret=SECRET,
            room="main",
            stop=stop,
            batch=10,
            hand_every_s=(0.3, 1.0),
            hand_up_s=(0.5, 1.0),
            progress=lines.append,
        )
    )
    try:
        await eventually(lambda: len(bot_members(server)) == 30, BUSY_S, "30 bots seated")
        seats = [m.seat for m in server.room.members.values()]
        assert len(set(seats)) == 31 and min(seats) >= 0  # observer and bots, one seat each
        before = server.metrics.messages_in
        # ~20 poses/s per bot: two seconds' worth (hands are a few dozen messages at most).
        await eventually(lambda: server.metrics.messages_in - before > 30 * 20 * 2, BUSY_S)
        slots = bot_members(server)
        await eventually(
            lambda: all(
                server.authority.crowd.records[s]["pose"].tobytes() != NEUTRAL_POSE.tobytes()
                for s in slots
            ),
            BUSY_S,
        )
        await eventually(lambda: raised & set(slots), BUSY_S, "a bot raising a hand")
        # The coarse crowd rotates through everyone; the observer's neighbours turn their
        # heads over time and raise hands above them.
        await eventually(lambda: len(far & set(slots)) >= 10, BUSY_S, "the coarse crowd")

        def turned_and_raised() -> bool:
            turned, hand_above_head = _heads_turning(near, slots)
            return turned > 1.0 and hand_above_head

        await eventually(turned_and_raised, BUSY_S, "heads turning and hands above them", poll=0.25)
    finally:
        stop.set()
        stats = await task
    ran_s = time.monotonic() - started

    # A RATE_LIMITED notice only says poses bunched up after a stall (a loaded test machine
    # stalls); anything else is a fault.
    assert stats.connected == 30 and stats.reconnects == 0
    assert set(stats.errors) <= {"RATE_LIMITED"}, stats.errors
    # Never faster than 20 poses/s a bot over the time they ran (a bot behind by up to five
    # periods catches up).
    assert 30 * 20 * 1.5 <= stats.poses_sent <= 30 * (20 * ran_s + 5)
    assert stats.hands_raised > 0 and stats.messages_received > 30 * 20
    assert "bots: 30/30 seated" in lines and "bots: 10/30 seated" in lines
    assert bot_members(server) == []  # they left, freeing their seats
    turned, hand_above_head = _heads_turning(near, slots)
    assert turned > 1.0 and hand_above_head
    await observer.close()


async def test_dropped_bot_resumes_its_seat(server: TownhallServer) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_bots(server.ws_url, 3, secret=SECRET, room="main", stop=stop, progress=None)
    )
    sessions = server.fanout.sessions
    await eventually(
        lambda: len(sessions) == 3 and all(s.joined for s in sessions.values()), BUSY_S
    )
    victim = next(iter(sessions.values()))
    seat = server.room.members[victim.slot].seat
    # Every bot's pose moving means every bot has its Welcome (a bot poses only once up): a
    # bot dropped before that has failed to join, and one still joining when the test stops
    # is never counted as connected (a session is registered at connect and joined at
    # admit, a moment before its socket's owner writes the Welcome; on a busy machine the
    # third bot's Welcome once came after the victim had resumed).
    records = server.authority.crowd.records
    slots = [s.slot for s in sessions.values()]
    first = {slot: records[slot]["pose"].tobytes() for slot in slots}
    await eventually(
        lambda: all(records[slot]["pose"].tobytes() != first[slot] for slot in slots), BUSY_S
    )
    victim.abort()
    await eventually(lambda: server.metrics.resumes == 1, BUSY_S)
    await eventually(lambda: len(server.fanout.sessions) == 3, BUSY_S)
    assert server.room.members[victim.slot].seat == seat
    # The bot counts its reconnect once it has the server's answer, after which it poses
    # again: wait for its slot's pose to move, so stopping now cannot cut the reconnect short.
    last_pose = server.authority.crowd.records[victim.slot]["pose"].tobytes()
    await eventually(
        lambda: server.authority.crowd.records[victim.slot]["pose"].tobytes() != last_pose
    )
    stop.set()
    stats = await task
    assert stats.reconnects == 1 and stats.connected == 3


async def test_a_bot_refused_by_a_full_room_joins_once_a_place_frees(
    tmp_path: Path, token: TokenMaker
) -> None:
    """A first join that fails for a reason that passes (the server at its connection
    limit) is tried again with backoff, so a demo seats every bot it was asked for."""
    settings = make_settings(tmp_path, server={"max_connections": 3})
    async with TownhallServer(settings) as srv:
        person = RoomClient(srv.ws_url, token("person"))
        await person.connect()
        lines: list[str] = []
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_bots(srv.ws_url, 3, secret=SECRET, room="main", stop=stop, progress=lines.append)
        )
        # Past its connection limit the server answers the third bot's handshake with 503.
        await eventually(lambda: "bots: 2/3 seated" in lines, BUSY_S, str(lines))
        assert len(bot_members(srv)) == 2
        await person.leave()
        await eventually(lambda: len(bot_members(srv)) == 3, BUSY_S, str(lines))
        stop.set()
        stats = await task
    assert stats.connected == 3 and stats.reconnects == 0
    assert stats.error_counts.get("CONNECT_FAILED", 0) >= 1
    assert any(line.startswith("bots: all 3 up") for line in lines), lines


async def test_refused_join_is_reported_once(server: TownhallServer) -> None:
    lines: list[str] = []
    # It gives up at once instead of waiting out `seconds` (an hour: waiting would time out).
    stats = await asyncio.wait_for(
        run_bots(
            server.ws_url, 80, secret="not-the-secret-" + "y" * 32, room="main", seconds=3600,
            progress=lines.append,
        ),
        60,
    )  # fmt: skip
    assert stats.connected == 0 and stats.errors == ["AUTH_INVALID"]
    assert stats.error_counts == {"AUTH_INVALID": 50}  # the second batch never started
    refused = [line for line in lines if "refused" in line]
    assert len(refused) == 1 and "AUTH_INVALID" in refused[0]
    assert not server.room.members


# ---------------------------------------------------------------- the demo


async def test_demo_prints_urls_and_seats_bots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    await asyncio.wait_for(
        run_demo(make_settings(tmp_path), bots=20, seconds=3, status_every_s=1.0), 60
    )
    assert time.monotonic() - started >= 2.9  # it runs for the seconds it was given
    out = capsys.readouterr().out
    port = re.search(re.escape("http://127.0.0.1:") + r"(\d+)/", out)
    assert port, out
    base = f"127.0.0.1:{port.group(1)}"
    for url in (f"http://{base}/healthz", f"http://{base}/metrics", f"ws://{base}/ws"):
        assert url in out
    assert "townhall token --role spectator --name You" in out
    assert "bots: 20/20 seated" in out
    assert re.search(r"demo: 20 attendees seated, \d+ hands up, \d+ messages out/s", out)
    for role in ("spectator", "moderator"):
        page = {"spectator": "watch", "moderator": "moderate"}[role]
        tok = re.search(rf"/{page}\?token=(\S+)", out)
        assert tok and verify_token(SECRET, tok.group(1), "main").role == role
