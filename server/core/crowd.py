"""Crowd state and its per-tick frames under a downstream budget.

Attendees are grouped into interest cells (a few rows by a few seats). Everyone
in a cell gets the cell's full poses every crowd tick; everyone gets a coarse
slice of the whole crowd, rotating so each attendee is refreshed every
``far_refresh_s``. Both frames are built once per tick and shared by all their
recipients, so the per-client cost is one buffer write.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from townhall.protocol import codec, quant
from townhall.protocol.messages import CrowdFar, CrowdNear

FLAG_HAND_RAISED = 0x01
CLIENT_FLAG_MASK = 0xFE  # bits the client reports (tracking, speaking); hand is the room's


# A seated person at rest: head 1.2 m above the seat's floor point, hands in the lap.
_NEUTRAL_POS = np.array([[[0.0, 1.2, 0.0], [-0.2, 0.6, -0.25], [0.2, 0.6, -0.25]]])
_NEUTRAL_ROT = np.tile(np.array([0.0, 0.0, 0.0, 1.0]), (1, 3, 1))
NEUTRAL_POSE = quant.encode_poses(_NEUTRAL_POS, _NEUTRAL_ROT)[0]


def coarse_records(records: np.ndarray) -> bytes:
    """Coarse records (slot, yaw, pitch, flags, hand height) from crowd records."""
    pos, rot = quant.decode_poses(records["pose"])
    flags = records["flags"]
    yaw, pitch, height = quant.coarse_from_poses(flags, pos, rot)
    return quant.encode_coarse(records["slot"], flags, yaw, pitch, height)


class SeatLike(Protocol):
    @property
    def section(self) -> str: ...
    @property
    def row(self) -> int: ...
    @property
    def number(self) -> int: ...


def assign_cells(seats: Sequence[SeatLike], rows: int, per_row: int) -> list[int]:
    """Cell id of every seat: seats in the same block of ``rows`` x ``per_row`` share one."""
    ids: dict[tuple[str, int, int], int] = {}
    cells = []
    for seat in seats:
        key = (seat.section, (seat.row - 1) // rows, (seat.number - 1) // per_row)
        cells.append(ids.setdefault(key, len(ids)))
    return cells


class Crowd:
    """Latest pose of every seated attendee, by slot, and the frames built from them."""

    def __init__(
        self,
        seat_cells: list[int],
        crowd_hz: int,
        far_refresh_s: float,
        capacity: int = 65536,
    ) -> None:
        self.seat_cells = seat_cells
        self.records = np.zeros(capacity, dtype=quant.CROWD_DTYPE)
        self.records["slot"] = np.arange(capacity, dtype=np.uint16)
        # A byte view of the same memory: a pose write is one slice copy, not a numpy call.
        self._bytes = memoryview(self.records.view(np.uint8).reshape(-1).data)
        self._size = quant.CROWD_DTYPE.itemsize
        self.cell_of_slot: dict[int, int] = {}
        self._cell_array = np.full(capacity, -1, dtype=np.int32)  # cell_of_slot for numpy
        self.members: dict[int, list[int]] = {}  # cell -> slots
        self._order: list[int] = []  # slots in the far rotation
        self._cursor = 0
        self._dirty: set[int] = set()
        self._per_frame_share = 1.0 / max(1.0, crowd_hz * far_refresh_s)

    def add(self, slot: int, seat: int) -> int:
        """Seat an attendee's slot; returns its cell."""
        self.remove(slot)
        cell = self.seat_cells[seat]
        self.cell_of_slot[slot] = cell
        self._cell_array[slot] = cell
        self.members.setdefault(cell, []).append(slot)
        self._order.append(slot)
        rec = self.records[slot]
        rec["flags"] = 0
        rec["pose"] = NEUTRAL_POSE
        self._dirty.add(cell)
        return cell

    def remove(self, slot: int) -> None:
        cell = self.cell_of_slot.pop(slot, None)
        if cell is None:
            return
        self._cell_array[slot] = -1
        self.members[cell].remove(slot)
        if not self.members[cell]:
            del self.members[cell]
        self._order.remove(slot)
        self._dirty.add(cell)

    def set_pose(self, slot: int, pose: bytes, client_flags: int) -> None:
        cell = self.cell_of_slot.get(slot)
        if cell is None:
            return
        at = slot * self._size + 2  # after the uint16 slot: flags byte, then the 30-byte pose
        buf = self._bytes
        buf[at] = (buf[at] & FLAG_HAND_RAISED) | (client_flags & CLIENT_FLAG_MASK)
        buf[at + 1 : at + 1 + len(pose)] = pose
        self._dirty.add(cell)

    def set_poses(self, slots: bytes, flags: bytes, poses: bytes) -> int:
        """Many validated poses at once (from a fan-out worker); returns how many landed.

        Latest wins: a slot twice in one batch keeps its later pose. Slots no longer
        seated (left meanwhile) are skipped.
        """
        slot_arr = np.frombuffer(slots, dtype="<u2").astype(np.int64)
        cells = self._cell_array[slot_arr]
        seated = cells >= 0
        if not seated.all():
            slot_arr, cells = slot_arr[seated], cells[seated]
            flag_arr = np.frombuffer(flags, dtype=np.uint8)[seated]
            pose_arr = np.frombuffer(poses, dtype=quant.POSE_DTYPE)[seated]
        else:
            flag_arr = np.frombuffer(flags, dtype=np.uint8)
            pose_arr = np.frombuffer(poses, dtype=quant.POSE_DTYPE)
        records = self.records
        records["flags"][slot_arr] = (records["flags"][slot_arr] & FLAG_HAND_RAISED) | (
            flag_arr & CLIENT_FLAG_MASK
        )
        records["pose"][slot_arr] = pose_arr
        self._dirty.update(np.unique(cells).tolist())
        return len(slot_arr)

    def set_hand(self, slot: int, raised: bool) -> None:
        if slot not in self.cell_of_slot:
            return
        rec = self.records[slot]
        flags = int(rec["flags"])
        rec["flags"] = (flags | FLAG_HAND_RAISED) if raised else (flags & ~FLAG_HAND_RAISED)
        self._dirty.add(self.cell_of_slot[slot])

    def near_frames(self, now_us: int) -> dict[int, bytes]:
        """Encoded CrowdNear for every cell whose poses changed since the last call."""
        frames = {}
        for cell in self._dirty:
            slots = self.members.get(cell)
            if not slots:
                continue
            records = self.records[np.asarray(slots, dtype=np.int64)].tobytes()
            frames[cell] = codec.encode(CrowdNear(now_us, records))
        self._dirty.clear()
        return frames

    def far_frame(self, now_us: int) -> bytes | None:
        """Encoded CrowdFar with the next slice of the rotation, or None if the hall is empty."""
        total = len(self._order)
        if not total:
            return None
        count = max(1, math.ceil(total * self._per_frame_share))
        start = self._cursor % total
        picked = self._order[start : start + count]
        if len(picked) < count:
            picked += self._order[: count - len(picked)]
        self._cursor = (start + count) % total
        return codec.encode(CrowdFar(now_us, self._coarse(picked)))

    def coarse_all(self) -> bytes:
        """Coarse records of every seated attendee (for keyframes)."""
        return self._coarse(self._order)

    def _coarse(self, slots: list[int]) -> bytes:
        if not slots:
            return b""
        return coarse_records(self.records[np.asarray(slots, dtype=np.int64)])
