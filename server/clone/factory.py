"""Build the clone from its settings: persona, brain, voice, face, and the parts of a turn."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from townhall.scenes import Scene
from townhall.server.clone.disclosure import DisclosureSchedule
from townhall.server.clone.persona import load_persona, sample_persona_path
from townhall.server.clone.statements import LiveBrain
from townhall.server.clone.turn import Clone
from townhall.server.core.counters import Counters
from townhall.server.ops.config import CloneSettings
from townhall.server.store.records import EscalationRecorded, Record, StatementVersion


@dataclass
class BuiltClone:
    clone: Clone
    detect_language: Callable[[str], str]
    avatar_vrm: Path | None
    brain: LiveBrain


def build_clone(
    settings: CloneSettings,
    scene: Scene,
    counters: Counters,
    clock: Callable[[], int],
    lead_us: int,
    write: Callable[[Sequence[Record]], Awaitable[None]],
    question_on_stage: Callable[[], int],
    versions: Sequence[StatementVersion] | None = None,
    escalated: Callable[[EscalationRecorded], None] | None = None,
) -> BuiltClone:
    """The clone for a room; ``write`` stores an escalation before the clone says so, then
    ``escalated`` hands it to the leader's inbox. ``versions``: the statements as the store
    keeps them (None: the persona folder's)."""
    from townhall.server.clone.brain import make_brain
    from townhall.server.clone.brain.answer import Escalation
    from townhall.server.clone.brain.language import detect_language
    from townhall.server.clone.face.animator import Animator
    from townhall.server.clone.voice.backend import make_voice
    from townhall.server.clone.voice.opus import OpusEncoder

    persona = load_persona(settings.persona or sample_persona_path())
    api_key = settings.openai_api_key or os.environ.get("OPENAI_API_KEY", "")

    async def record_escalation(escalation: Escalation) -> None:
        """Every escalation is stored for the human leader before the clone says so."""
        record = EscalationRecorded(
            escalation.time,
            question_on_stage(),
            escalation.question,
            escalation.reason,
            escalation.language,
            escalation.detail,
            escalation.partial_answer,
        )
        await write([record])
        if escalated is not None:
            escalated(record)

    openai: dict[str, Any] = {"base_url": settings.openai_base_url or None, "api_key": api_key}
    brain_settings: dict[str, Any] = {}
    if settings.brain == "openai":
        brain_settings = {**openai, "model": settings.openai_model}
        if settings.guard != "none":
            brain_settings |= {
                "guard": settings.guard,
                "guard_model": settings.guard_model,
                "guard_timeout_s": settings.guard_timeout_s,
            }
    inner = make_brain(settings.brain, persona, on_escalation=record_escalation, **brain_settings)
    if versions is None:
        from townhall.server.clone.statements import version_of

        versions = [version_of(persona.id, s) for s in persona.statements]
    brain = LiveBrain(inner, versions)
    if settings.voice == "openai":
        voice = make_voice(
            "openai",
            **openai,
            model=settings.openai_speech_model,
            voice=settings.openai_voice or persona.voice.openai_voice,
        )
    else:
        voice = make_voice("embedded", rate_wpm=persona.voice.rate_wpm, pitch=persona.voice.pitch)
    mark = scene.stage.clone_mark
    audience = [(s.position[0], s.position[1] + 1.2, s.position[2]) for s in scene.seats[::97]]
    animator = Animator(
        fps=settings.fps,
        clone_position=mark.position,
        clone_yaw_deg=mark.yaw_deg,
        audience=audience,
    )
    schedule = DisclosureSchedule(round(settings.disclosure_pause_s * 1e6))
    clone = Clone(
        brain,
        voice,
        animator,
        OpusEncoder,
        persona.disclosure_for,
        counters,
        clock,
        lead_us,
        schedule,
    )
    return BuiltClone(clone, detect_language, persona.avatar_vrm, brain)
