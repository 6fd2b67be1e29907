"""The embedded brain: approved answers verbatim, honest escalations, fast first sentence."""

from __future__ import annotations

import pytest

from townhall.server.clone.brain import (
    AnswerPart,
    Brain,
    BrainError,
    EmbeddedBrain,
    Escalation,
    make_brain,
)
from townhall.server.clone.brain.sentences import split_sentences
from townhall.server.clone.persona import Persona, load_persona, sample_persona_path


@pytest.fixture(scope="module")
def persona() -> Persona:
    return load_persona(sample_persona_path())


async def collect(brain: Brain, question: str, **kw: str) -> list[AnswerPart]:
    return [p async for p in brain.stream(question, **kw)]


async def test_answers_with_approved_statement_sentence_by_sentence(persona: Persona) -> None:
    brain = EmbeddedBrain(persona)
    parts = await collect(brain, "Is remote work here to stay?")
    s10 = persona.statement("S10")
    assert s10 is not None
    first = [p for p in parts if p.sources == ("S10",)]
    assert [p.text for p in first] == split_sentences(s10.text)
    assert len(first) == 2
    assert all(p.label == "approved" and p.language == "en" for p in parts)
    assert len({p.sources for p in parts}) <= 2  # one or two statements


async def test_second_statement_when_it_fits_nearly_as_well(persona: Persona) -> None:
    question = "What's our overall strategy this year?"
    parts = await collect(EmbeddedBrain(persona), question)
    assert list(dict.fromkeys(p.sources[0] for p in parts)) == ["S01", "S02"]
    single = await collect(EmbeddedBrain(persona, max_statements=1), question)
    assert {p.sources for p in single} == {("S01",)}
    # A runner-up well behind the best is left out.
    parts = await collect(EmbeddedBrain(persona), "How did the first quarter go?")
    assert {p.sources for p in parts} == {("S38",)}


async def test_ukrainian_question_gets_ukrainian_answer(persona: Persona) -> None:
    parts = await collect(EmbeddedBrain(persona), "Яка наша стратегія на цей рік?")
    assert parts[0].sources == ("U06",)
    assert all(p.language == "uk" and p.label == "approved" for p in parts)
    assert parts[0].text.startswith("Наша стратегія")


async def test_ukrainian_question_with_only_english_material(persona: Persona) -> None:
    recorded: list[Escalation] = []
    parts = await collect(
        EmbeddedBrain(persona, on_escalation=recorded.append), "Коли вийде мобільний застосунок?"
    )
    note, *rest = parts
    assert note.language == "uk" and note.label == "approved"
    assert note.text == persona.message("uk", "other_language")
    assert note.sources == ("S06",)
    assert rest and all(p.language == "en" and p.sources == ("S06",) for p in rest)
    assert rest[0].text.startswith("The mobile app")
    assert recorded == []


async def test_unsupported_language_says_so_in_every_persona_language(persona: Persona) -> None:
    recorded: list[Escalation] = []
    brain = EmbeddedBrain(persona, on_escalation=recorded.append)
    parts = await collect(brain, "Какая у нас стратегия на этот год?")
    assert [(p.language, p.label) for p in parts] == [("en", "escalated"), ("uk", "escalated")]
    assert parts[0].text == persona.message("en", "language_unsupported")
    assert "англійською або українською" in parts[1].text
    (esc,) = recorded
    assert esc.reason == "language_unsupported" and esc.language == "ru"
    parts = await collect(brain, "Wie ist unsere Strategie für dieses Jahr?")
    assert recorded[-1].language == "de" and len(parts) == 2


async def test_language_override(persona: Persona) -> None:
    recorded: list[Escalation] = []
    brain = EmbeddedBrain(persona, on_escalation=recorded.append)
    parts = await collect(brain, "Is remote work here to stay?", language="fr")
    assert recorded[-1].reason == "language_unsupported" and len(parts) == 2


async def test_no_material_escalates_honestly(persona: Persona) -> None:
    recorded: list[Escalation] = []
    brain = EmbeddedBrain(persona, on_escalation=recorded.append)
    (part,) = await collect(brain, "What's the capital of Australia?")
    assert part.label == "escalated" and part.text == persona.message("en", "no_material")
    (uk,) = await collect(brain, "Яка погода в Києві?")
    assert uk.language == "uk" and uk.text == persona.message("uk", "no_material")
    assert [e.reason for e in recorded] == ["no_material", "no_material"]
    assert recorded[0].question == "What's the capital of Australia?"
    assert recorded[0].time > 0 and recorded[0].backend == "embedded"


async def test_async_sink_is_awaited_before_the_part_is_yielded(persona: Persona) -> None:
    recorded: list[Escalation] = []

    async def sink(e: Escalation) -> None:
        recorded.append(e)

    stream = EmbeddedBrain(persona, on_escalation=sink).stream("Will there be layoffs?")
    part = await anext(stream)
    assert part.label == "escalated"
    assert len(recorded) == 1  # recorded before anyone heard the escalation


async def test_a_failing_sink_is_not_silent(persona: Persona) -> None:
    def sink(e: Escalation) -> None:
        raise OSError("store down")

    with pytest.raises(OSError, match="store down"):
        await collect(EmbeddedBrain(persona, on_escalation=sink), "Will there be layoffs?")


@pytest.mark.parametrize(
    ("question", "error"), [("   ", "empty question"), ("x" * 5000, "too long")]
)
async def test_bad_questions_are_clear_errors(persona: Persona, question: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        await collect(EmbeddedBrain(persona), question)


def test_make_brain(persona: Persona) -> None:
    assert isinstance(make_brain("embedded", persona), EmbeddedBrain)
    assert isinstance(make_brain("", persona, max_statements=1), EmbeddedBrain)
    with pytest.raises(BrainError, match="unknown brain kind 'gpt'"):
        make_brain("gpt", persona)
    with pytest.raises(BrainError, match=r"unknown setting\(s\) for the embedded brain: model"):
        make_brain("embedded", persona, model="x")
    with pytest.raises(BrainError, match="needs a model"):
        make_brain("openai", persona, env={})
    with pytest.raises(BrainError, match="needs an API key"):
        make_brain("openai", persona, env={"TOWNHALL_BRAIN_MODEL": "m"})
    brain = make_brain(
        "openai",
        persona,
        env={
            "OPENAI_API_KEY": "k",
            "OPENAI_MODEL": "m",
            "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        },
    )
    assert type(brain).__name__ == "OpenAIBrain" and brain.model == "m"
    assert str(brain.client.base_url).startswith("http://127.0.0.1:9/v1")
