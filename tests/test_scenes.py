"""Scene files: the default hall, the layout geometry and every kind of error."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from townhall.scenes import (
    MAX_SEATS,
    ArcLayout,
    GridLayout,
    Scene,
    SceneError,
    check_scene_file,
    default_scene_path,
    load_scene,
    parse_scene,
    parse_seat_id,
    scene_schema,
    seat_id,
    validate_scene,
    validate_scene_file,
)

SCENES_DIR = Path(__file__).resolve().parent.parent / "scenes"


def facing(yaw_deg: float) -> tuple[float, float]:
    """(x, z) of the direction a yaw faces, written out from the stated convention:
    0 faces -Z, positive turns counter-clockwise seen from above (toward -X)."""
    r = math.radians(yaw_deg)
    return (-math.sin(r), -math.cos(r))


def minimal() -> dict[str, Any]:
    """A small valid hall: stage box x -5..5, y 0..2, z -8..-2; one 2x3 grid."""
    return {
        "format": "townhall.scene/1",
        "name": "Test Hall",
        "stage": {"center": [0, 1, -5], "size": [10, 2, 6], "clone_mark": {"position": [0, 2, -4]}},
        "sections": [
            {
                "id": "A",
                "name": "Front",
                "layout": {"kind": "grid", "origin": [0, 0, 2], "rows": 2, "seats_per_row": 3},
            }
        ],
        "entrances": [{"id": "door", "name": "Door", "position": [0, 0, 10]}],
        "spectator_camera": {"position": [0, 3, 12], "look_at": [0, 1, -4]},
    }


def errors_of(doc: object) -> list[tuple[str, str]]:
    return [(e.pointer, e.reason) for e in validate_scene(doc, "t.json")]


def only_error(doc: object) -> SceneError:
    errors = validate_scene(doc, "t.json")
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


@pytest.fixture(scope="module")
def hall() -> Scene:
    return load_scene(default_scene_path())


# --- the default hall ---------------------------------------------------------


def test_default_hall_is_package_data_and_matches_schema() -> None:
    path = default_scene_path()
    assert path == SCENES_DIR / "halls" / "default-hall.json"
    schema = json.loads((SCENES_DIR / "schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert scene_schema() == schema
    jsonschema.validate(json.loads(path.read_text()), schema)
    assert validate_scene_file(path) == []


def test_default_hall_has_at_least_2000_unique_seats(hall: Scene) -> None:
    assert len(hall.seats) >= 2000
    assert len(hall.seats) <= MAX_SEATS
    assert len({s.id for s in hall.seats}) == len(hall.seats)
    assert [s.index for s in hall.seats] == list(range(len(hall.seats)))
    assert len(hall.sections) >= 3
    assert len({s.name for s in hall.sections}) == len(hall.sections)
    assert sum(s.seat_count for s in hall.sections) == len(hall.seats)
    assert hall.entrances and hall.zones


def test_default_hall_seats_do_not_overlap(hall: Scene) -> None:
    # Brute force, independent of the loader's spatial hash.
    p = np.array([s.position for s in hall.seats])
    closest = np.inf
    for i in range(0, len(p), 512):
        d = np.linalg.norm(p[i : i + 512, None, :] - p[None, :, :], axis=2)
        rows = np.arange(i, min(i + 512, len(p)))
        d[rows - i, rows] = np.inf
        closest = min(closest, float(d.min()))
    assert closest >= 0.3


def test_default_hall_seats_face_the_clone(hall: Scene) -> None:
    mark = hall.stage.clone_mark.position
    worst = 0.0
    for seat in hall.seats:
        fx, fz = facing(seat.yaw_deg)
        tx, tz = mark[0] - seat.position[0], mark[2] - seat.position[2]
        cos = (fx * tx + fz * tz) / math.hypot(tx, tz)
        worst = max(worst, math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    assert worst < 30, f"a seat faces {worst:.1f} degrees away from the clone"


def test_default_hall_geometry_is_consistent(hall: Scene) -> None:
    stage = hall.stage
    assert stage.contains(stage.clone_mark.position)
    # The clone faces the audience, which sits toward +Z.
    assert facing(stage.clone_mark.yaw_deg)[1] > 0.99
    seating = [z for z in hall.zones if z.kind == "seating"]
    for seat in hall.seats:
        assert not stage.contains(seat.position), seat.id
        assert any(z.contains(seat.position) for z in seating), seat.id
    for entrance in hall.entrances:
        assert not stage.contains(entrance.position)


def test_seat_ids_round_trip(hall: Scene) -> None:
    for seat in hall.seats:
        assert seat.id == f"{seat.section}-{seat.row}-{seat.number}"
        assert seat_id(seat.section, seat.row, seat.number) == seat.id
        assert parse_seat_id(seat.id) == (seat.section, seat.row, seat.number)
        assert hall.seat_by_id(seat.id) is seat
        assert hall.seat_index[seat.id] == seat.index
    with pytest.raises(KeyError):
        hall.seat_by_id("ZZ-1-1")


@pytest.mark.parametrize("bad", ["A-1", "A-0-1", "A-1-x", "-1-1", "A-01-1", "A-B-1-1", ""])
def test_malformed_seat_ids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_seat_id(bad)


def test_seat_order_is_stable(hall: Scene) -> None:
    again = load_scene(default_scene_path())
    assert again.seats == hall.seats
    # Sections in file order, rows front to back, seats numbered 1..n.
    doc = json.loads(default_scene_path().read_text())
    assert [s.id for s in hall.sections] == [s["id"] for s in doc["sections"]]
    for section in hall.sections:
        seats = hall.seats[section.first_seat : section.first_seat + section.seat_count]
        assert {s.section for s in seats} == {section.id}
        keys = [(s.row, s.number) for s in seats]
        assert keys == sorted(keys)
        for row, count in enumerate(section.layout.seats_per_row, start=1):
            assert [s.number for s in seats if s.row == row] == list(range(1, count + 1))
    # Pinned: seat numbers are on the wire, so changing them must be deliberate.
    assert len(hall.seats) == 2413
    first, last = hall.seats[0], hall.seats[-1]
    assert (first.id, first.position, first.yaw_deg) == ("OL-1-1", (-5.4494, 0.0, 0.5432), -56.9684)
    assert (last.id, last.position, last.yaw_deg) == (
        "BR-12-32",
        (23.6624, 10.95, 17.0272),
        49.7563,
    )
    assert hall.seat_by_id("OC-1-1").index == 490


def test_seats_run_left_to_right_for_the_sitter(hall: Scene) -> None:
    for a, b in zip(hall.seats, hall.seats[1:], strict=False):
        if (a.section, a.row) != (b.section, b.row):
            continue
        fx, fz = facing(a.yaw_deg)
        right = (-fz, fx)  # forward turned clockwise seen from above
        step = (b.position[0] - a.position[0], b.position[2] - a.position[2])
        assert right[0] * step[0] + right[1] * step[1] > 0, (a.id, b.id)


# --- layouts and defaults -----------------------------------------------------


def test_grid_layout_geometry_and_defaults() -> None:
    scene = parse_scene(minimal(), "t.json")
    layout = scene.sections[0].layout
    assert isinstance(layout, GridLayout)
    assert (layout.row_spacing, layout.seat_spacing, layout.rise_per_row) == (0.95, 0.55, 0.0)
    assert scene.stage.clone_mark.yaw_deg == 180
    assert scene.spectator_camera.fov_deg == 60
    assert scene.zones == ()
    assert [s.id for s in scene.seats] == ["A-1-1", "A-1-2", "A-1-3", "A-2-1", "A-2-2", "A-2-3"]
    assert [s.position for s in scene.seats[:3]] == [
        (-0.55, 0.0, 2.0),
        (0.0, 0.0, 2.0),
        (0.55, 0.0, 2.0),
    ]
    assert scene.seats[3].position == (-0.55, 0.0, 2.95)  # second row is further back (+Z)
    assert {s.yaw_deg for s in scene.seats} == {0.0}


def test_rotated_grid_rises_and_faces_its_yaw() -> None:
    doc = minimal()
    doc["sections"][0]["layout"] = {
        "kind": "grid",
        "origin": [10, 1, 0],
        "yaw_deg": 90,
        "rows": 2,
        "seats_per_row": [1, 2],
        "row_spacing": 1,
        "seat_spacing": 0.5,
        "rise_per_row": 0.25,
    }
    seats = parse_scene(doc, "t.json").seats
    # Yaw 90 faces -X; the row behind is toward +X, the sitter's right toward -Z.
    assert [(s.id, s.position, s.yaw_deg) for s in seats] == [
        ("A-1-1", (10.0, 1.0, 0.0), 90.0),
        ("A-2-1", (11.0, 1.25, 0.25), 90.0),
        ("A-2-2", (11.0, 1.25, -0.25), 90.0),
    ]


def test_arc_fills_rows_and_faces_its_centre() -> None:
    doc = minimal()
    doc["sections"][0]["layout"] = {
        "kind": "arc",
        "center": [0, 0, -4],
        "radius": 5,
        "start_deg": -30,
        "end_deg": 30,
        "rows": 3,
        "seat_spacing": 0.6,
        "row_spacing": 1,
        "rise_per_row": 0.2,
    }
    scene = parse_scene(doc, "t.json")
    layout = scene.sections[0].layout
    assert isinstance(layout, ArcLayout)
    # Arcs of 5.24, 6.28 and 7.33 m at 0.6 m: floor(length / 0.6) + 1 seats.
    assert layout.seats_per_row == (9, 11, 13)
    for seat in scene.seats:
        radius = 5 + (seat.row - 1)
        dx, dz = seat.position[0], seat.position[2] + 4
        assert math.hypot(dx, dz) == pytest.approx(radius, abs=1e-3)
        assert seat.position[1] == pytest.approx(0.2 * (seat.row - 1))
        assert -30 - 1e-6 <= seat.yaw_deg <= 30 + 1e-6
        fx, fz = facing(seat.yaw_deg)
        assert (fx, fz) == pytest.approx((-dx / radius, -dz / radius), abs=1e-3)
    middle = scene.seat_by_id("A-1-5")
    assert middle.position == (0.0, 0.0, 1.0)
    assert middle.yaw_deg == 0.0
    assert scene.seat_by_id("A-1-1").position[0] < 0  # seat 1 on the sitter's left


def test_arc_with_explicit_counts_is_centred() -> None:
    doc = minimal()
    doc["sections"][0]["layout"] = {
        "kind": "arc",
        "center": [0, 0, -4],
        "radius": 5,
        "start_deg": -30,
        "end_deg": 30,
        "rows": 1,
        "seats_per_row": 2,
        "seat_spacing": 1,
    }
    a, b = parse_scene(doc, "t.json").seats
    assert a.position[0] == pytest.approx(-b.position[0])
    assert math.dist(a.position, b.position) == pytest.approx(2 * 5 * math.sin(0.1), abs=1e-3)


# --- errors -------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hall.json"
    path.write_text(text)
    return path


def test_bad_json_reports_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "format": "townhall.scene/1",\n  "name": "x"\n  "stage": {}\n}\n')
    with pytest.raises(SceneError) as caught:
        load_scene(path)
    err = caught.value
    assert (err.file, err.pointer, err.line, err.column) == (str(path), "", 4, 3)
    assert err.reason == "invalid JSON at line 4, column 3: Expecting ',' delimiter"
    assert str(err) == f"{path}: (root): {err.reason}"
    assert [str(e) for e in validate_scene_file(path)] == [str(err)]


def test_unreadable_file_is_a_scene_error(tmp_path: Path) -> None:
    with pytest.raises(SceneError, match="cannot read file"):
        load_scene(tmp_path / "missing.json")
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(SceneError, match="not UTF-8"):
        load_scene(path)


def test_duplicate_keys_and_non_finite_numbers_are_reported(tmp_path: Path) -> None:
    text = json.dumps(minimal()).replace('"rows": 2,', '"rows": 2, "rows": 3,')
    text = text.replace('"center": [0, 1, -5]', '"center": [0, NaN, -5]')
    errors = validate_scene_file(write(tmp_path, text))
    assert [(e.pointer, e.reason) for e in errors] == [
        ("/stage/center/1", "number must be finite, got nan"),
        ("/sections/0/layout/rows", "duplicate key 'rows'; keys must be unique"),
    ]


def test_scene_error_shape() -> None:
    err = SceneError("hall.json", "/sections/2/layout/rows", "must be >= 1, got 0")
    assert isinstance(err, ValueError)
    assert str(err) == "hall.json: /sections/2/layout/rows: must be >= 1, got 0"
    assert (err.file, err.pointer, err.reason) == (
        "hall.json",
        "/sections/2/layout/rows",
        "must be >= 1, got 0",
    )


@pytest.mark.parametrize(
    ("path", "pointer", "reason"),
    [
        (
            ("sections", 0, "layout", "rows"),
            "/sections/0/layout/rows",
            "required field 'rows' is missing",
        ),
        (("stage",), "/stage", "required field 'stage' is missing"),
        (("stage", "clone_mark"), "/stage/clone_mark", "required field 'clone_mark' is missing"),
        (
            ("sections", 0, "layout", "kind"),
            "/sections/0/layout/kind",
            "required field 'kind' is missing",
        ),
    ],
)
def test_missing_field(path: tuple[str | int, ...], pointer: str, reason: str) -> None:
    doc = minimal()
    parent: Any = doc
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    err = only_error(doc)
    assert (err.pointer, err.reason) == (pointer, reason)
    assert str(err) == f"t.json: {pointer}: {reason}"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2", "expected integer, got string"),
        (2.5, "expected integer, got number"),
        (True, "expected integer, got boolean"),
        (0, "must be >= 1, got 0"),
    ],
)
def test_wrong_type_or_range(value: object, reason: str) -> None:
    doc = minimal()
    doc["sections"][0]["layout"]["rows"] = value
    assert errors_of(doc) == [("/sections/0/layout/rows", reason)]


@pytest.mark.parametrize(
    ("mutate", "pointer", "reason"),
    [
        (
            lambda d: d["stage"].update(center=[0, 1]),
            "/stage/center",
            "expected exactly 3 items, got 2",
        ),
        (
            lambda d: d["stage"]["center"].__setitem__(2, "far"),
            "/stage/center/2",
            "expected number, got string",
        ),
        (
            lambda d: d["sections"][0]["layout"].update(seats_per_row="3"),
            "/sections/0/layout/seats_per_row",
            "expected integer or array, got string",
        ),
        (
            lambda d: d["sections"][0]["layout"].update(seats_per_row=[3, -1]),
            "/sections/0/layout/seats_per_row/1",
            "must be >= 1, got -1",
        ),
        (
            lambda d: d["sections"][0]["layout"].update(kind="circle"),
            "/sections/0/layout/kind",
            'must be one of "grid", "arc"; got "circle"',
        ),
        (
            lambda d: d["sections"][0]["layout"].update(rowz=3),
            "/sections/0/layout/rowz",
            "unknown field 'rowz'",
        ),
        (
            lambda d: d["sections"][0]["layout"].update(radius=3),  # an arc field on a grid
            "/sections/0/layout/radius",
            "unknown field 'radius'",
        ),
        (
            lambda d: d.update(format="townhall.scene/2"),
            "/format",
            'must be "townhall.scene/1", got "townhall.scene/2"',
        ),
        (
            lambda d: d["sections"][0].update(id="A-1"),
            "/sections/0/id",
            '"A-1" does not match the pattern ^[A-Za-z0-9_]{1,16}$',
        ),
        (
            lambda d: d["sections"][0]["layout"].update(seat_spacing=0),
            "/sections/0/layout/seat_spacing",
            "must be > 0, got 0",
        ),
        (lambda d: d.update(sections=[]), "/sections", "expected at least 1 items, got 0"),
    ],
)
def test_schema_violations_point_at_the_value(mutate: Any, pointer: str, reason: str) -> None:
    doc = minimal()
    mutate(doc)
    assert errors_of(doc) == [(pointer, reason)]


def test_document_must_be_an_object() -> None:
    assert errors_of([]) == [("", "expected object, got array")]


@pytest.mark.parametrize(
    ("key", "what", "item"),
    [
        (
            "sections",
            "section",
            {
                "id": "A",
                "name": "Back",
                "layout": {"kind": "grid", "origin": [0, 0, 9], "rows": 1, "seats_per_row": 1},
            },
        ),
        ("entrances", "entrance", {"id": "door", "name": "Other door", "position": [5, 0, 10]}),
        (
            "zones",
            "zone",
            {"id": "z", "name": "Z", "kind": "lobby", "min": [0, 0, 0], "max": [1, 1, 1]},
        ),
    ],
)
def test_duplicate_ids(key: str, what: str, item: dict[str, Any]) -> None:
    doc = minimal()
    if key == "zones":
        doc["zones"] = [copy.deepcopy(item)]
    doc[key].append(item)
    n = len(doc[key]) - 1
    assert errors_of(doc) == [
        (f"/{key}/{n}/id", f"duplicate {what} id {item['id']!r} (first at /{key}/0/id)")
    ]


def test_overlapping_seats_in_a_row_blame_seat_spacing() -> None:
    doc = minimal()
    doc["sections"][0]["layout"]["seat_spacing"] = 0.2
    assert errors_of(doc) == [
        (
            "/sections/0/layout/seat_spacing",
            "seats A-1-1 and A-1-2 are 0.20 m apart, closer than 0.30 m; "
            "4 overlapping pairs in all",
        )
    ]


def test_overlapping_rows_blame_row_spacing() -> None:
    doc = minimal()
    doc["sections"][0]["layout"].update(row_spacing=0.25, seats_per_row=1)
    assert errors_of(doc) == [
        (
            "/sections/0/layout/row_spacing",
            "seats A-1-1 and A-2-1 are 0.25 m apart, closer than 0.30 m",
        )
    ]
    doc["sections"][0]["layout"]["rise_per_row"] = 0.2  # sqrt(0.25^2 + 0.2^2) = 0.32
    assert errors_of(doc) == []


def test_seats_exactly_the_minimum_apart_are_fine() -> None:
    doc = minimal()
    doc["sections"][0]["layout"].update(seat_spacing=0.3, row_spacing=0.3)
    assert errors_of(doc) == []


def test_overlap_between_sections_points_at_the_later_section() -> None:
    doc = minimal()
    doc["sections"].append(
        {
            "id": "B",
            "name": "Late",
            "layout": {"kind": "grid", "origin": [0.6, 0, 2.1], "rows": 1, "seats_per_row": 1},
        }
    )
    assert errors_of(doc) == [
        ("/sections/1", "seats A-1-3 and B-1-1 are 0.11 m apart, closer than 0.30 m")
    ]


def test_seats_inside_the_stage() -> None:
    doc = minimal()
    doc["sections"][0]["layout"]["origin"] = [0, 0, -2.5]  # first row on the stage, second off it
    assert errors_of(doc) == [
        ("/sections/0/layout", "3 seat(s) inside the stage box, first A-1-1 at (-0.55, 0, -2.5)")
    ]


def test_clone_mark_outside_the_stage() -> None:
    doc = minimal()
    doc["stage"]["clone_mark"]["position"] = [0, 2, 1]
    assert errors_of(doc) == [
        (
            "/stage/clone_mark/position",
            "clone mark (0, 2, 1) is outside the stage box (-5, 0, -8)..(5, 2, -2)",
        )
    ]


def test_seat_cap_is_uint16() -> None:
    doc = minimal()
    doc["sections"][0]["layout"].update(rows=255, seats_per_row=257, origin=[0, 0, 10])
    assert MAX_SEATS == 255 * 257
    assert errors_of(doc) == []
    doc["sections"].append(
        {
            "id": "B",
            "name": "One too many",
            "layout": {"kind": "grid", "origin": [0, 0, 0], "rows": 1, "seats_per_row": 1},
        }
    )
    assert errors_of(doc) == [
        (
            "/sections/1",
            "too many seats: the scene has 65,536 seats and the cap of 65,535 (uint16 seat index) "
            "is passed in this section",
        )
    ]


def test_seat_cap_is_checked_before_expanding() -> None:
    doc = minimal()
    doc["sections"][0]["layout"] = {
        "kind": "arc",
        "center": [0, 0, -4],
        "radius": 1000,
        "start_deg": -180,
        "end_deg": 180,
        "rows": 1000,
        "seat_spacing": 0.001,
    }
    [(pointer, reason)] = errors_of(doc)
    assert pointer == "/sections/0"
    assert reason.startswith("too many seats")


@pytest.mark.parametrize(
    ("layout", "pointer", "reason"),
    [
        (
            {"start_deg": 10, "end_deg": -10},
            "/end_deg",
            "end_deg (-10) must be greater than start_deg (10)",
        ),
        (
            {"start_deg": -200, "end_deg": 200},
            "/end_deg",
            "the arc sweeps 400 degrees; at most 360",
        ),
        (
            {"seats_per_row": 50},
            "/seats_per_row",
            "row 1 asks for 50 seats but only 10 fit on its arc at 0.55 m spacing",
        ),
        (
            {"rows": 2, "seats_per_row": [5, 50]},
            "/seats_per_row/1",
            "row 2 asks for 50 seats but only 12 fit on its arc at 0.55 m spacing",
        ),
        ({"rows": 3, "seats_per_row": [5, 5]}, "/seats_per_row", "lists 2 rows but rows is 3"),
    ],
)
def test_arc_layout_errors(layout: dict[str, Any], pointer: str, reason: str) -> None:
    doc = minimal()
    doc["sections"][0]["layout"] = {
        "kind": "arc",
        "center": [0, 0, -4],
        "radius": 5,
        "start_deg": -30,
        "end_deg": 30,
        "rows": 1,
        **layout,
    }
    assert errors_of(doc) == [("/sections/0/layout" + pointer, reason)]


def test_zone_and_camera_checks() -> None:
    doc = minimal()
    doc["zones"] = [{"id": "z", "name": "Z", "kind": "aisle", "min": [0, 2, 0], "max": [1, 1, 0]}]
    doc["spectator_camera"]["look_at"] = doc["spectator_camera"]["position"]
    assert errors_of(doc) == [
        ("/zones/0/max", "max is below min on axis y"),
        ("/spectator_camera/look_at", "look_at must differ from position"),
    ]


def test_all_errors_are_collected_and_load_raises_the_first(tmp_path: Path) -> None:
    doc = minimal()
    doc["entrances"].append({"id": "door", "name": "Again", "position": [1, 0, 10]})
    doc["stage"]["clone_mark"]["position"] = [0, 9, -4]
    doc["sections"][0]["layout"]["seat_spacing"] = 0.1
    pointers = [p for p, _ in errors_of(doc)]
    assert pointers == [
        "/entrances/1/id",
        "/stage/clone_mark/position",
        "/sections/0/layout/seat_spacing",
    ]
    path = write(tmp_path, json.dumps(doc))
    with pytest.raises(SceneError) as caught:
        load_scene(path)
    assert caught.value.pointer == "/entrances/1/id"
    with pytest.raises(SceneError, match="/entrances/1/id"):
        parse_scene(doc, "t.json")


def test_several_schema_errors_are_all_reported() -> None:
    doc = minimal()
    doc["sections"][0]["layout"]["rows"] = "two"
    del doc["entrances"][0]["name"]
    doc["name"] = ""
    assert sorted(errors_of(doc)) == [
        ("/entrances/0/name", "required field 'name' is missing"),
        ("/name", "must not be empty"),
        ("/sections/0/layout/rows", "expected integer, got string"),
    ]


# --- check_scene_file ---------------------------------------------------------


def test_check_summarizes_a_good_file(hall: Scene) -> None:
    ok, text = check_scene_file(default_scene_path())
    assert ok
    assert f"name:       {hall.name}" in text
    assert f"sections:   {len(hall.sections)}" in text
    assert f"seats:      {len(hall.seats):,}" in text
    assert f"entrances:  {len(hall.entrances)}" in text
    assert f"zones:      {len(hall.zones)}" in text


def test_check_lists_every_error(tmp_path: Path) -> None:
    doc = minimal()
    doc["sections"][0]["layout"]["rows"] = 0
    doc["stage"]["size"] = [1, 1, -1]
    path = write(tmp_path, json.dumps(doc))
    ok, text = check_scene_file(path)
    assert not ok
    lines = text.splitlines()
    assert lines[0] == f"{path}: 2 errors"
    assert f"  {path}: /sections/0/layout/rows: must be >= 1, got 0" in lines
    assert f"  {path}: /stage/size/2: must be > 0, got -1" in lines

    ok, text = check_scene_file(write(tmp_path, "{"))
    assert not ok
    assert "invalid JSON at line 1, column 2" in text
