"""Immutable scene objects the server and the headset plugin share.

Coordinates are right-handed meters with +Y up; the audience faces -Z toward
the stage. Yaw is in degrees about +Y, 0 facing -Z, positive counter-clockwise
seen from above (glTF / OpenXR convention).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

Vec3 = tuple[float, float, float]
ZoneKind = Literal["stage", "seating", "aisle", "lobby", "camera"]

# Seat indexes travel as uint16; 0xFFFF stays free as a "no seat" sentinel.
MAX_SEATS = 65_535
# Two seat floor points closer than this cannot both hold an avatar.
MIN_SEAT_GAP = 0.3


def seat_id(section: str, row: int, number: int) -> str:
    """Human seat label, e.g. ``"A-3-12"`` (section, 1-based row, 1-based number)."""
    return f"{section}-{row}-{number}"


def parse_seat_id(text: str) -> tuple[str, int, int]:
    """Split a seat label into (section, row, number); ValueError if malformed."""
    section, row, number = text.rsplit("-", 2)
    if not section or "-" in section:
        raise ValueError(f"malformed seat id {text!r}")
    r, n = int(row), int(number)
    if r < 1 or n < 1 or seat_id(section, r, n) != text:
        raise ValueError(f"malformed seat id {text!r}")
    return section, r, n


def box_contains(lo: Vec3, hi: Vec3, p: Vec3, tolerance: float = 1e-6) -> bool:
    """Closed-box test: a point on a face counts as inside."""
    return all(a - tolerance <= v <= b + tolerance for a, v, b in zip(lo, p, hi, strict=True))


@dataclass(frozen=True, slots=True)
class CloneMark:
    """Where the clone stands on stage and which way it faces."""

    position: Vec3
    yaw_deg: float


@dataclass(frozen=True, slots=True)
class Stage:
    """The axis-aligned volume reserved for the stage; no seat may be inside it."""

    center: Vec3
    size: Vec3
    clone_mark: CloneMark

    @property
    def min(self) -> Vec3:
        return _offset(self.center, self.size, -0.5)

    @property
    def max(self) -> Vec3:
        return _offset(self.center, self.size, 0.5)

    def contains(self, p: Vec3) -> bool:
        return box_contains(self.min, self.max, p)


@dataclass(frozen=True, slots=True)
class GridLayout:
    """Straight rows, centred on ``origin`` (floor point of the front row's middle)."""

    rows: int
    seats_per_row: tuple[int, ...]
    row_spacing: float
    seat_spacing: float
    rise_per_row: float
    origin: Vec3
    yaw_deg: float
    kind: Literal["grid"] = "grid"


@dataclass(frozen=True, slots=True)
class ArcLayout:
    """Concentric rows around ``center``; every seat faces the centre.

    ``seats_per_row`` is resolved: rows the file left to fill hold as many
    seats as fit between ``start_deg`` and ``end_deg``.
    """

    rows: int
    seats_per_row: tuple[int, ...]
    row_spacing: float
    seat_spacing: float
    rise_per_row: float
    center: Vec3
    radius: float
    start_deg: float
    end_deg: float
    kind: Literal["arc"] = "arc"


Layout = GridLayout | ArcLayout


@dataclass(frozen=True, slots=True)
class Section:
    """A named block of seats; its seats are ``scene.seats[first_seat:][:seat_count]``."""

    id: str
    name: str
    layout: Layout
    first_seat: int
    seat_count: int


@dataclass(frozen=True, slots=True)
class Seat:
    """One seat; ``index`` is its stable wire number, ``position`` its floor point."""

    index: int
    id: str
    section: str
    row: int
    number: int
    position: Vec3
    yaw_deg: float


@dataclass(frozen=True, slots=True)
class Entrance:
    """Where an arriving avatar appears before walking to its seat."""

    id: str
    name: str
    position: Vec3
    yaw_deg: float


@dataclass(frozen=True, slots=True)
class Zone:
    """A named axis-aligned box, e.g. for audio regions or moderation tools."""

    id: str
    name: str
    kind: ZoneKind
    min: Vec3
    max: Vec3

    def contains(self, p: Vec3) -> bool:
        return box_contains(self.min, self.max, p)


@dataclass(frozen=True, slots=True)
class SpectatorCamera:
    """The browser viewer's starting camera; ``fov_deg`` is vertical."""

    position: Vec3
    look_at: Vec3
    fov_deg: float


@dataclass(frozen=True)
class Scene:
    """A validated hall with every seat expanded, in stable wire order."""

    name: str
    stage: Stage
    sections: tuple[Section, ...]
    seats: tuple[Seat, ...]
    entrances: tuple[Entrance, ...]
    zones: tuple[Zone, ...]
    spectator_camera: SpectatorCamera
    seat_index: Mapping[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        index = MappingProxyType({seat.id: seat.index for seat in self.seats})
        object.__setattr__(self, "seat_index", index)

    def seat_by_id(self, seat_id: str) -> Seat:
        """The seat labelled ``seat_id``; KeyError if there is none."""
        return self.seats[self.seat_index[seat_id]]


def _offset(center: Vec3, size: Vec3, k: float) -> Vec3:
    return (center[0] + k * size[0], center[1] + k * size[1], center[2] + k * size[2])
