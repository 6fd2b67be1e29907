"""Loading scene files: parse, check against the schema, expand seats, check the geometry.

Every problem found is collected so an author can fix a file in one pass;
``load_scene`` and ``parse_scene`` raise the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from . import semantics
from .build import build_camera, build_entrance, build_layout, build_stage, build_zone
from .errors import SceneError, pointer
from .geometry import placements
from .jsondoc import json_hazards, read_json
from .model import Layout, Scene, Seat, Section, seat_id
from .schema import schema_errors

_HALLS = Path(__file__).resolve().parent / "halls"


def default_scene_path() -> Path:
    """The hall shipped with the package (package data, so it works from a wheel)."""
    return _HALLS / "default-hall.json"


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene file; raise the first SceneError found."""
    return parse_scene(read_json(path), str(path))


def parse_scene(data: object, source: str) -> Scene:
    """Validate already-parsed JSON (dicts, lists, str, int, float, bool, None)."""
    scene, errors = compile_scene(data, source)
    if errors:
        raise errors[0]
    assert scene is not None
    return scene


def validate_scene(data: object, source: str = "<scene>") -> list[SceneError]:
    """Every problem with already-parsed scene JSON; empty when it loads."""
    return compile_scene(data, source)[1]


def validate_scene_file(path: str | Path) -> list[SceneError]:
    """Every problem with a scene file, including unreadable or invalid JSON."""
    try:
        data = read_json(path)
    except SceneError as exc:
        return [exc]
    return validate_scene(data, str(path))


def compile_scene(data: object, source: str) -> tuple[Scene | None, list[SceneError]]:
    """The scene and no errors, or None and every error found.

    Geometry is only checked once the document matches the schema, since the
    checks rely on its types.
    """
    errors = json_hazards(data, source) + schema_errors(data, source)
    if errors:
        return None, errors
    doc = cast(dict[str, Any], data)
    stage = build_stage(doc["stage"])
    entrances = tuple(build_entrance(e) for e in doc["entrances"])
    zones = tuple(build_zone(z) for z in doc.get("zones", []))
    camera = build_camera(doc["spectator_camera"])

    errors += semantics.duplicate_ids(doc, source)
    errors += semantics.clone_mark_on_stage(stage, source)
    errors += semantics.zone_boxes(zones, source)
    errors += semantics.camera_aim(camera, source)

    layouts: list[Layout] = []
    for i, raw in enumerate(doc["sections"]):
        layout, layout_errors = build_layout(
            raw["layout"], source, pointer("sections", i, "layout")
        )
        errors += layout_errors
        if layout is not None:
            layouts.append(layout)
    if len(layouts) < len(doc["sections"]):
        return None, errors  # seats cannot be placed, so nothing below can be checked

    cap_errors = semantics.seat_cap([sum(lay.seats_per_row) for lay in layouts], source)
    if cap_errors:
        return None, errors + cap_errors  # expanding would be the harm the cap prevents

    sections, seats, section_of = _expand(doc["sections"], layouts)
    errors += semantics.overlapping_seats(seats, section_of, source)
    errors += semantics.seats_in_stage(seats, section_of, stage, source)
    if errors:
        return None, errors
    scene = Scene(
        name=doc["name"],
        stage=stage,
        sections=tuple(sections),
        seats=tuple(seats),
        entrances=entrances,
        zones=zones,
        spectator_camera=camera,
    )
    return scene, []


def _expand(
    raw_sections: list[dict[str, Any]], layouts: list[Layout]
) -> tuple[list[Section], list[Seat], list[int]]:
    """Seats in wire order, plus the index of each seat's section in the file."""
    sections: list[Section] = []
    seats: list[Seat] = []
    section_of: list[int] = []
    for i, (raw, layout) in enumerate(zip(raw_sections, layouts, strict=True)):
        first = len(seats)
        sid = raw["id"]
        for p in placements(layout):
            seat = Seat(
                index=len(seats),
                id=seat_id(sid, p.row, p.number),
                section=sid,
                row=p.row,
                number=p.number,
                position=p.position,
                yaw_deg=p.yaw_deg,
            )
            seats.append(seat)
            section_of.append(i)
        sections.append(Section(sid, raw["name"], layout, first, len(seats) - first))
    return sections, seats, section_of
