"""`townhall scene check FILE`: a one-screen verdict on a scene file."""

from __future__ import annotations

from pathlib import Path

from .errors import SceneError
from .jsondoc import read_json
from .loader import compile_scene
from .model import Scene


def check_scene_file(path: str | Path) -> tuple[bool, str]:
    """(True, summary) if the file loads, else (False, every error, one a line)."""
    source = str(path)
    try:
        scene, errors = compile_scene(read_json(path), source)
    except SceneError as exc:
        scene, errors = None, [exc]
    if errors or scene is None:
        noun = "error" if len(errors) == 1 else "errors"
        lines = [f"{source}: {len(errors)} {noun}", *(f"  {e}" for e in errors)]
        return False, "\n".join(lines)
    return True, summarize(scene, source)


def summarize(scene: Scene, source: str) -> str:
    """What an operator wants to confirm before the doors open."""
    lines = [
        f"{source}: OK",
        f"  name:       {scene.name}",
        f"  sections:   {len(scene.sections)}",
        *(
            f"    {s.id:<16} {s.seat_count:>6,} seats  {s.layout.rows:>4} rows  {s.name}"
            for s in scene.sections
        ),
        f"  seats:      {len(scene.seats):,}",
        f"  entrances:  {len(scene.entrances)}",
        f"  zones:      {len(scene.zones)}",
    ]
    return "\n".join(lines)
