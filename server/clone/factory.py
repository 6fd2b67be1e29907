"""Build the clone for a server from its settings: persona, brain, voice, face, director."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

from townhall.server.clone.director import Director
from townhall.server.clone.persona import load_persona, sample_persona_path

if TYPE_CHECKING:
    from townhall.server.app import TownhallServer


def build_director(server: TownhallServer) -> Director:
    from townhall.server.clone.brain import make_brain
    from townhall.server.clone.brain.answer import Escalation
    from townhall.server.clone.brain.language import detect_language
    from townhall.server.clone.face.animator import Animator
    from townhall.server.clone.voice.backend import make_voice
    from townhall.server.clone.voice.opus import OpusEncoder

    settings = server.settings.clone
    persona = load_persona(settings.persona or sample_persona_path())
    api_key = settings.openai_api_key or os.environ.get("OPENAI_API_KEY", "")
    director: Director | None = None

    async def record_escalation(escalation: Escalation) -> None:
        """Every escalation is stored for the human leader before the clone says so."""
        question = director.question if director is not None else None
        qid = question.id if question is not None else 0
        store = server.qa.store
        op = store.escalation_op(
            escalation.time or time.time(),
            qid,
            escalation.question,
            escalation.reason,
            escalation.language,
            escalation.detail,
            escalation.partial_answer,
        )
        await store.write([op])

    openai: dict[str, Any] = {
        "base_url": settings.openai_base_url or None,
        "api_key": api_key,
    }
    brain_settings: dict[str, Any] = {}
    if settings.brain == "openai":
        brain_settings = {**openai, "model": settings.openai_model}
    brain = make_brain(settings.brain, persona, on_escalation=record_escalation, **brain_settings)
    if settings.voice == "openai":
        voice = make_voice(
            "openai",
            **openai,
            model=settings.openai_speech_model,
            voice=settings.openai_voice or persona.voice.openai_voice,
        )
    else:
        voice = make_voice("embedded", rate_wpm=persona.voice.rate_wpm, pitch=persona.voice.pitch)
    mark = server.scene.stage.clone_mark
    audience = [
        (s.position[0], s.position[1] + 1.2, s.position[2]) for s in server.scene.seats[::97]
    ]
    animator = Animator(
        fps=settings.fps,
        clone_position=mark.position,
        clone_yaw_deg=mark.yaw_deg,
        audience=audience,
    )
    server.detect_language = detect_language
    director = Director(
        server,
        brain,
        voice,
        animator,
        OpusEncoder,
        persona.disclosure_for,
        pause_s=settings.pause_s,
    )
    return director
