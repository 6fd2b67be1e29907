"""Rules a JSON Schema cannot express: unique ids, room for every seat, a sane stage."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product
from typing import Any

from .errors import SceneError, pointer
from .model import MAX_SEATS, MIN_SEAT_GAP, Seat, SpectatorCamera, Stage, Vec3, Zone

# A hall whose seats collide everywhere is reported after this many pairs;
# counting further would only cost time (a dense cell makes the scan quadratic).
MAX_OVERLAPS_COUNTED = 1000


def duplicate_ids(doc: dict[str, Any], source: str) -> list[SceneError]:
    """Section, entrance and zone ids must be unique within their own list."""
    errors: list[SceneError] = []
    for key, what in (("sections", "section"), ("entrances", "entrance"), ("zones", "zone")):
        first: dict[str, int] = {}
        for i, item in enumerate(doc.get(key, [])):
            ident = item["id"]
            if ident in first:
                reason = (
                    f"duplicate {what} id {ident!r} (first at {pointer(key, first[ident], 'id')})"
                )
                errors.append(SceneError(source, pointer(key, i, "id"), reason))
            else:
                first[ident] = i
    return errors


def seat_cap(counts: Sequence[int], source: str) -> list[SceneError]:
    """Seat indexes are uint16 on the wire; name the section that crosses the cap."""
    total = sum(counts)
    if total <= MAX_SEATS:
        return []
    running = 0
    for i, count in enumerate(counts):
        running += count
        if running > MAX_SEATS:
            reason = (
                f"too many seats: the scene has {total:,} seats and the cap of {MAX_SEATS:,} "
                f"(uint16 seat index) is passed in this section"
            )
            return [SceneError(source, pointer("sections", i), reason)]
    raise AssertionError("unreachable")  # pragma: no cover


def clone_mark_on_stage(stage: Stage, source: str) -> list[SceneError]:
    mark = stage.clone_mark.position
    if stage.contains(mark):
        return []
    reason = (
        f"clone mark {_fmt(mark)} is outside the stage box {_fmt(stage.min)}..{_fmt(stage.max)}"
    )
    return [SceneError(source, pointer("stage", "clone_mark", "position"), reason)]


def zone_boxes(zones: Sequence[Zone], source: str) -> list[SceneError]:
    errors: list[SceneError] = []
    for i, zone in enumerate(zones):
        bad = [axis for axis, lo, hi in zip("xyz", zone.min, zone.max, strict=True) if hi < lo]
        if bad:
            reason = f"max is below min on axis {', '.join(bad)}"
            errors.append(SceneError(source, pointer("zones", i, "max"), reason))
    return errors


def camera_aim(camera: SpectatorCamera, source: str) -> list[SceneError]:
    if math.dist(camera.position, camera.look_at) > 1e-6:
        return []
    reason = "look_at must differ from position"
    return [SceneError(source, pointer("spectator_camera", "look_at"), reason)]


def seats_in_stage(
    seats: Sequence[Seat], section_of: Sequence[int], stage: Stage, source: str
) -> list[SceneError]:
    """One error per section with seats inside the stage volume."""
    found: dict[int, list[Seat]] = {}
    for seat, section in zip(seats, section_of, strict=True):
        if stage.contains(seat.position):
            found.setdefault(section, []).append(seat)
    errors = []
    for section, inside in sorted(found.items()):
        first = inside[0]
        at = _fmt(first.position)
        reason = f"{len(inside)} seat(s) inside the stage box, first {first.id} at {at}"
        errors.append(SceneError(source, pointer("sections", section, "layout"), reason))
    return errors


@dataclass
class _Overlap:
    a: Seat
    b: Seat
    distance: float
    count: int = 1


def overlapping_seats(
    seats: Sequence[Seat], section_of: Sequence[int], source: str
) -> list[SceneError]:
    """Seats closer than MIN_SEAT_GAP, grouped by the layout field to blame.

    A spatial hash with MIN_SEAT_GAP cells keeps this linear for sane halls.
    """
    cell = MIN_SEAT_GAP
    limit = MIN_SEAT_GAP - 1e-6  # seats exactly MIN_SEAT_GAP apart are fine
    grid: dict[tuple[int, int, int], list[int]] = {}
    groups: dict[tuple[int, int, str], _Overlap] = {}
    counted = 0
    for i, seat in enumerate(seats):
        key = _cell(seat.position, cell)
        for near in product(
            (key[0] - 1, key[0], key[0] + 1),
            (key[1] - 1, key[1], key[1] + 1),
            (key[2] - 1, key[2], key[2] + 1),
        ):
            for j in grid.get(near, ()):
                d = math.dist(seat.position, seats[j].position)
                if d >= limit:
                    continue
                group = _blame(seats[j], seat, section_of[j], section_of[i])
                if group in groups:
                    groups[group].count += 1
                else:
                    groups[group] = _Overlap(seats[j], seat, d)
                counted += 1
                if counted >= MAX_OVERLAPS_COUNTED:
                    return _overlap_errors(groups, source, capped=True)
        grid.setdefault(key, []).append(i)
    return _overlap_errors(groups, source, capped=False)


def _cell(p: Vec3, size: float) -> tuple[int, int, int]:
    return (math.floor(p[0] / size), math.floor(p[1] / size), math.floor(p[2] / size))


def _blame(a: Seat, b: Seat, section_a: int, section_b: int) -> tuple[int, int, str]:
    if section_a != section_b:
        return (section_a, section_b, "")
    return (section_a, section_b, "seat_spacing" if a.row == b.row else "row_spacing")


def _overlap_errors(
    groups: dict[tuple[int, int, str], _Overlap], source: str, *, capped: bool
) -> list[SceneError]:
    errors = []
    for (_, section_b, field), o in groups.items():
        where = (
            pointer("sections", section_b, "layout", field)
            if field
            else pointer("sections", section_b)
        )
        reason = (
            f"seats {o.a.id} and {o.b.id} are {o.distance:.2f} m apart, "
            f"closer than {MIN_SEAT_GAP:.2f} m"
        )
        if o.count > 1:
            more = "at least " if capped else ""
            reason += f"; {more}{o.count} overlapping pairs in all"
        errors.append(SceneError(source, where, reason))
    return errors


def _fmt(v: Sequence[float]) -> str:
    return "(" + ", ".join(f"{c:g}" for c in v) + ")"
