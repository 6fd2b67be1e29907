"""Crowd frames: interest cells, the far rotation, and the downstream budget at 2,000 seats."""

from __future__ import annotations

import numpy as np

from townhall.protocol import codec, quant
from townhall.protocol.messages import CrowdFar, CrowdNear
from townhall.scenes import default_scene_path, load_scene
from townhall.server.core.crowd import Crowd, assign_cells
from townhall.server.fanout.framing import frame_binary

SCENE = load_scene(default_scene_path())


def seated_crowd(n: int, crowd_hz: int = 10, far_refresh_s: float = 8.0) -> Crowd:
    crowd = Crowd(assign_cells(SCENE.seats, 2, 6), crowd_hz, far_refresh_s)
    for slot in range(n):
        crowd.add(slot, slot)
    return crowd


def moving_pose(rng: np.random.Generator) -> bytes:
    pos = np.array([[[0, 1.2, 0], [-0.2, 0.7, -0.3], [0.2, 0.7, -0.3]]]) + rng.normal(
        0, 0.05, (1, 3, 3)
    )
    rot = rng.normal(0, 1, (1, 3, 4))
    return quant.encode_poses(pos, rot / np.linalg.norm(rot, axis=2, keepdims=True)).tobytes()


def test_cells_group_neighbouring_seats() -> None:
    cells = assign_cells(SCENE.seats, 2, 6)
    sizes = np.bincount(cells)
    assert sizes.max() <= 12
    first = SCENE.seats[0]
    same = [s for s, c in zip(SCENE.seats, cells, strict=True) if c == cells[0]]
    assert all(s.section == first.section and abs(s.row - first.row) <= 1 for s in same)


def test_far_rotation_covers_everyone_in_refresh_period() -> None:
    crowd = seated_crowd(2000)
    seen: set[int] = set()
    for _ in range(80):  # 8 s at 10 Hz
        frame = codec.decode_server(crowd.far_frame(0) or b"")
        assert isinstance(frame, CrowdFar)
        seen.update(int(s) for s in quant.decode_coarse(frame.records).slots)
    assert seen == set(range(2000))


def test_near_frames_only_for_changed_cells() -> None:
    crowd = seated_crowd(100)
    crowd.near_frames(0)
    assert crowd.near_frames(1) == {}
    rng = np.random.default_rng(1)
    crowd.set_pose(5, moving_pose(rng), 6)
    frames = crowd.near_frames(2)
    assert list(frames) == [crowd.cell_of_slot[5]]
    message = codec.decode_server(frames[crowd.cell_of_slot[5]])
    assert isinstance(message, CrowdNear)
    slots = list(quant.decode_crowd(message.records).slots)
    assert 5 in slots and all(crowd.cell_of_slot[s] == crowd.cell_of_slot[5] for s in slots)


def test_hand_flag_is_the_rooms_not_the_clients() -> None:
    crowd = seated_crowd(3)
    rng = np.random.default_rng(2)
    crowd.set_pose(1, moving_pose(rng), 0xFF)  # client claims every bit
    assert not crowd.records[1]["flags"] & quant.PoseFlag.HAND_RAISED
    crowd.set_hand(1, True)
    crowd.set_pose(1, moving_pose(rng), 0)
    assert crowd.records[1]["flags"] & quant.PoseFlag.HAND_RAISED


def test_downstream_under_64_kbit_with_2000_seated_and_moving() -> None:
    """Every attendee's crowd bytes (framed) over 10 s of ticks, everyone moving every tick."""
    n, hz, seconds = 2000, 10, 10
    crowd = seated_crowd(n, crowd_hz=hz)
    rng = np.random.default_rng(3)
    poses = [moving_pose(rng) for _ in range(64)]
    per_client = np.zeros(n)
    cells = np.array([crowd.cell_of_slot[s] for s in range(n)])
    for tick in range(hz * seconds):
        for slot in range(n):
            crowd.set_pose(slot, poses[(slot + tick) % 64], 6)
        near = {cell: len(frame_binary(p)) for cell, p in crowd.near_frames(tick).items()}
        far = len(frame_binary(crowd.far_frame(tick) or b""))
        per_client += np.array([near.get(int(c), 0) for c in cells]) + far
    kbps = per_client * 8 / seconds / 1000
    assert kbps.max() < 64, f"worst attendee downstream {kbps.max():.1f} kbit/s"
    assert kbps.min() > 10  # they do get the crowd
