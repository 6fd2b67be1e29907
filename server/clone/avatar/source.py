"""Which model the stage shows: the persona's own VRM if it names one, else the one built
from its appearance. Built models are kept in memory by their cache key, so a process
builds each appearance once (about 0.2 s), off the event loop when served."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from .appearance import Appearance
from .build import build_avatar, cache_key

log = logging.getLogger("townhall.avatar")

_built: dict[str, bytes] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class AvatarModel:
    """A VRM model ready to serve."""

    data: bytes
    source: str  # "persona" (the persona's own file) or "built" (from its appearance)
    name: str


def built_model(appearance: Appearance, name: str) -> bytes:
    key = cache_key(appearance, name)
    with _lock:
        data = _built.get(key)
        if data is None:
            data = _built[key] = build_avatar(appearance, name)
        return data


def model_for_persona(persona_dir: str | Path | None) -> AvatarModel:
    """The model of a persona directory (None or "": the bundled sample). A persona that does
    not load gives the default appearance, with a warning: the stage still has someone."""
    from townhall.server.clone.persona import PersonaError, load_persona, sample_persona_path

    directory = Path(persona_dir) if persona_dir else sample_persona_path()
    try:
        persona = load_persona(directory)
    except PersonaError as err:
        log.warning(
            "persona %s does not load (%d problems): default avatar", directory, len(err.issues)
        )
        return AvatarModel(built_model(Appearance(), "Avatar"), "built", "Avatar")
    if persona.avatar_vrm is not None:
        return AvatarModel(persona.avatar_vrm.read_bytes(), "persona", persona.name)
    return AvatarModel(built_model(persona.appearance, persona.name), "built", persona.name)
