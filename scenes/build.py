"""Turning a schema-valid scene document into model objects, applying defaults.

Layouts are resolved here because an arc's seat counts depend on its geometry;
the layout checks the schema cannot express live next to that resolution.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from .errors import SceneError, pointer
from .geometry import arc_capacity, arc_row_radius
from .model import (
    ArcLayout,
    CloneMark,
    Entrance,
    GridLayout,
    Layout,
    SpectatorCamera,
    Stage,
    Vec3,
    Zone,
)

# Defaults, mirrored in schema.json and FORMAT.md.
ROW_SPACING = 0.95
SEAT_SPACING = 0.55
CLONE_YAW = 180.0  # the clone faces the audience (+Z)
FOV_DEG = 60.0

Json = dict[str, Any]


def vec3(raw: list[float]) -> Vec3:
    return (float(raw[0]), float(raw[1]), float(raw[2]))


def build_stage(raw: Json) -> Stage:
    mark = raw["clone_mark"]
    return Stage(
        center=vec3(raw["center"]),
        size=vec3(raw["size"]),
        clone_mark=CloneMark(vec3(mark["position"]), float(mark.get("yaw_deg", CLONE_YAW))),
    )


def build_entrance(raw: Json) -> Entrance:
    return Entrance(raw["id"], raw["name"], vec3(raw["position"]), float(raw.get("yaw_deg", 0.0)))


def build_zone(raw: Json) -> Zone:
    return Zone(raw["id"], raw["name"], raw["kind"], vec3(raw["min"]), vec3(raw["max"]))


def build_camera(raw: Json) -> SpectatorCamera:
    return SpectatorCamera(
        vec3(raw["position"]), vec3(raw["look_at"]), float(raw.get("fov_deg", FOV_DEG))
    )


def build_layout(raw: Json, source: str, at: str) -> tuple[Layout | None, list[SceneError]]:
    """Resolve one section's layout, or explain why it cannot be laid out.

    ``at`` is the JSON pointer of the layout object.
    """
    rows = int(raw["rows"])
    counts_raw = raw.get("seats_per_row")
    if isinstance(counts_raw, list) and len(counts_raw) != rows:
        reason = f"lists {len(counts_raw)} rows but rows is {rows}"
        return None, [SceneError(source, at + pointer("seats_per_row"), reason)]
    common: Json = {
        "rows": rows,
        "row_spacing": float(raw.get("row_spacing", ROW_SPACING)),
        "seat_spacing": float(raw.get("seat_spacing", SEAT_SPACING)),
        "rise_per_row": float(raw.get("rise_per_row", 0.0)),
    }
    if raw["kind"] == "grid":
        counts = _counts(raw["seats_per_row"], rows)  # required for grids
        origin = vec3(raw["origin"])
        yaw = float(raw.get("yaw_deg", 0.0))
        return GridLayout(seats_per_row=counts, origin=origin, yaw_deg=yaw, **common), []
    return _arc_layout(raw, common, counts_raw, source, at)


def _arc_layout(
    raw: Json, common: Json, counts_raw: Any, source: str, at: str
) -> tuple[Layout | None, list[SceneError]]:
    start, end = float(raw["start_deg"]), float(raw["end_deg"])
    if end <= start:
        reason = f"end_deg ({end:g}) must be greater than start_deg ({start:g})"
        return None, [SceneError(source, at + pointer("end_deg"), reason)]
    if end - start > 360:
        reason = f"the arc sweeps {end - start:g} degrees; at most 360"
        return None, [SceneError(source, at + pointer("end_deg"), reason)]
    layout = ArcLayout(
        seats_per_row=(),
        center=vec3(raw["center"]),
        radius=float(raw["radius"]),
        start_deg=start,
        end_deg=end,
        **common,
    )
    spacing = layout.seat_spacing
    capacity = [
        arc_capacity(arc_row_radius(layout, row), start, end, spacing)
        for row in range(1, layout.rows + 1)
    ]
    if counts_raw is None:
        counts = tuple(capacity)
    else:
        counts = _counts(counts_raw, layout.rows)
        errors: list[SceneError] = []
        for row, (want, fit) in enumerate(zip(counts, capacity, strict=True), start=1):
            if want > fit:
                where = at + pointer("seats_per_row")
                if isinstance(counts_raw, list):
                    where += pointer(row - 1)
                reason = (
                    f"row {row} asks for {want} seats but only {fit} fit on its arc "
                    f"at {spacing:g} m spacing"
                )
                errors.append(SceneError(source, where, reason))
                if not isinstance(counts_raw, list):
                    break  # one count for every row: the first row that overflows says it all
        if errors:
            return None, errors
    return replace(layout, seats_per_row=counts), []


def _counts(raw: int | list[int], rows: int) -> tuple[int, ...]:
    if isinstance(raw, list):
        return tuple(int(n) for n in raw)
    return (int(raw),) * rows
