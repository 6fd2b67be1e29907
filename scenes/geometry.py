"""Yaw conventions and the expansion of section layouts into seat placements.

Seats are numbered left to right as seen by someone sitting in them, so seat 1
of every row is on the attendee's left.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

from .model import ArcLayout, GridLayout, Layout, Vec3

# Rounding keeps positions identical across platforms' libm and readable in logs.
_POSITION_DECIMALS = 4


class Placement(NamedTuple):
    """A seat's place inside its section before it gets a scene-wide index."""

    row: int  # 1-based, front to back
    number: int  # 1-based, left to right
    position: Vec3
    yaw_deg: float


def forward(yaw_deg: float) -> Vec3:
    """Unit vector a yaw faces: 0 -> -Z, 90 -> -X (counter-clockwise from above)."""
    r = math.radians(yaw_deg)
    return (-math.sin(r), 0.0, -math.cos(r))


def yaw_toward(src: Vec3, dst: Vec3) -> float:
    """Yaw that turns something at ``src`` to face ``dst`` in the floor plane."""
    return normalize_yaw(math.degrees(math.atan2(-(dst[0] - src[0]), -(dst[2] - src[2]))))


def normalize_yaw(yaw_deg: float) -> float:
    """Wrap into (-180, 180]."""
    y = math.fmod(yaw_deg, 360.0)
    if y <= -180.0:
        y += 360.0
    elif y > 180.0:
        y -= 360.0
    return y


def arc_capacity(radius: float, start_deg: float, end_deg: float, spacing: float) -> int:
    """How many seats fit on an arc at ``spacing`` meters, counting both ends."""
    length = radius * math.radians(end_deg - start_deg)
    return math.floor(length / spacing + 1e-9) + 1


def arc_row_radius(layout: ArcLayout, row: int) -> float:
    """Radius of a 1-based row."""
    return layout.radius + (row - 1) * layout.row_spacing


def placements(layout: Layout) -> Iterator[Placement]:
    """Seat placements in wire order: rows front to back, seats left to right."""
    if isinstance(layout, GridLayout):
        yield from _grid(layout)
    else:
        yield from _arc(layout)


def _grid(layout: GridLayout) -> Iterator[Placement]:
    r = math.radians(layout.yaw_deg)
    right = (math.cos(r), -math.sin(r))  # (x, z)
    back = (math.sin(r), math.cos(r))
    ox, oy, oz = layout.origin
    yaw = _round(normalize_yaw(layout.yaw_deg))
    for row, count in enumerate(layout.seats_per_row, start=1):
        depth = (row - 1) * layout.row_spacing
        y = oy + (row - 1) * layout.rise_per_row
        for number in range(1, count + 1):
            lateral = (number - 1 - (count - 1) / 2) * layout.seat_spacing
            x = ox + lateral * right[0] + depth * back[0]
            z = oz + lateral * right[1] + depth * back[1]
            yield Placement(row, number, _round_vec((x, y, z)), yaw)


def _arc(layout: ArcLayout) -> Iterator[Placement]:
    cx, cy, cz = layout.center
    middle = (layout.start_deg + layout.end_deg) / 2
    for row, count in enumerate(layout.seats_per_row, start=1):
        radius = arc_row_radius(layout, row)
        step = math.degrees(layout.seat_spacing / radius)
        y = cy + (row - 1) * layout.rise_per_row
        for number in range(1, count + 1):
            # The seat at angle a sits behind the centre along -forward(a), so
            # it faces the centre with yaw a, and a grows to the sitter's right.
            a = middle + (number - 1 - (count - 1) / 2) * step
            rad = math.radians(a)
            position = (cx + radius * math.sin(rad), y, cz + radius * math.cos(rad))
            yield Placement(row, number, _round_vec(position), _round(normalize_yaw(a)))


def _round(v: float) -> float:
    return round(v, _POSITION_DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _round_vec(v: Vec3) -> Vec3:
    return (_round(v[0]), _round(v[1]), _round(v[2]))
