"""Language by a real identifier: English is English even when it says "I", "my" or
"to"; Ukrainian and Russian are told apart; a language the persona lacks is declined."""

from __future__ import annotations

import pytest

from townhall.server.clone.brain import EmbeddedBrain, Escalation, detect_language
from townhall.server.clone.persona import load_persona, sample_persona_path


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Is it OK to do my learning days in a row?", "en"),  # was Polish
        ("Could my visa be a problem if I go to another team?", "en"),  # was Polish
        ("Can I paste customer data into an AI chatbot?", "en"),
        ("Що з remote work?", "uk"),
        ("Хто тебе створив?", "uk"),
        ("Кто тебя создал?", "ru"),
        ("Стоит ли мне искать другую работу?", "ru"),  # was Ukrainian
        ("Будут ли сокращения в киевской команде?", "ru"),  # was Ukrainian
        ("Чи буде премія?", "uk"),
        ("Wie denken wir über Remote-Arbeit?", "de"),
        ("Jak podchodzimy do pracy zdalnej?", "pl"),
        ("Quelle est notre stratégie pour cette année?", "fr"),
        ("How do w\u043erk h\u043eurs fit with time zones?", "en"),  # Cyrillic о inside
    ],
)
def test_detects_the_language_of_short_questions(text: str, language: str) -> None:
    assert detect_language(text) == language


async def test_a_harmless_russian_question_is_declined_and_recorded() -> None:
    persona = load_persona(sample_persona_path())
    recorded: list[Escalation] = []
    brain = EmbeddedBrain(persona, on_escalation=recorded.append)
    parts = [p async for p in brain.stream("Как у нас устроена удалённая работа?")]
    assert [e.reason for e in recorded] == ["language_unsupported"]
    assert recorded[0].language == "ru"
    assert all(p.label == "escalated" for p in parts)
