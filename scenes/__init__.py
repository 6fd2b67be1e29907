"""townhall.scenes: the virtual hall as data.

A scene file (JSON, ``townhall.scene/1``, see FORMAT.md and schema.json)
describes a stage, seat sections as compact layouts, entrances, zones and the
spectator camera. The loader expands the layouts into seats in a stable order,
whose index is the seat number on the wire.
"""

from __future__ import annotations

from .check import check_scene_file
from .errors import SceneError
from .geometry import forward, yaw_toward
from .loader import (
    default_scene_path,
    load_scene,
    parse_scene,
    validate_scene,
    validate_scene_file,
)
from .model import (
    MAX_SEATS,
    MIN_SEAT_GAP,
    ArcLayout,
    CloneMark,
    Entrance,
    GridLayout,
    Layout,
    Scene,
    Seat,
    Section,
    SpectatorCamera,
    Stage,
    Zone,
    parse_seat_id,
    seat_id,
)
from .schema import scene_schema

__all__ = [
    "MAX_SEATS",
    "MIN_SEAT_GAP",
    "ArcLayout",
    "CloneMark",
    "Entrance",
    "GridLayout",
    "Layout",
    "Scene",
    "SceneError",
    "Seat",
    "Section",
    "SpectatorCamera",
    "Stage",
    "Zone",
    "check_scene_file",
    "default_scene_path",
    "forward",
    "load_scene",
    "parse_scene",
    "parse_seat_id",
    "scene_schema",
    "seat_id",
    "validate_scene",
    "validate_scene_file",
    "yaw_toward",
]
