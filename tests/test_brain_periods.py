"""Periods and figures in retrieval: a statement about another quarter or year, or one
without a number for a question after a figure, is never the answer."""

from __future__ import annotations

import pytest

from townhall.server.clone.brain import EmbeddedBrain
from townhall.server.clone.brain.figures import asks_for_figure, states_figure
from townhall.server.clone.brain.periods import mismatch, periods
from townhall.server.clone.brain.retrieval import Retriever
from townhall.server.clone.persona import Persona, load_persona, sample_persona_path


@pytest.fixture(scope="module")
def persona() -> Persona:
    return load_persona(sample_persona_path())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How was Q2?", {("quarter", 2)}),
        ("What happened in the third quarter of 2024?", {("quarter", 3), ("year", 2024)}),
        ("Як пройшов другий квартал?", {("quarter", 2)}),
        ("Що було у 3-му кварталі?", {("quarter", 3)}),
        ("Как прошёл четвёртый квартал?", {("quarter", 4)}),
        ("Что было во втором квартале?", {("quarter", 2)}),
        ("Plans for the second half of the year", {("half", 2)}),
        ("Як минуло перше півріччя?", {("half", 1)}),
        ("Every quarter we stop a project.", set()),
        ("FY2025 results", {("year", 2025)}),
    ],
)
def test_periods_named(text: str, expected: set[tuple[str, int]]) -> None:
    assert periods(text) == expected


def test_mismatch_rules() -> None:
    q2 = frozenset({("quarter", 2)})
    assert mismatch(q2, frozenset({("quarter", 1)}))
    assert not mismatch(q2, frozenset({("quarter", 2), ("quarter", 1)}))
    # A quarter must be named by the statement; "every quarter" says nothing about Q2.
    assert mismatch(q2, frozenset())
    # Years only clash: "this year" statements carry no number.
    y = frozenset({("year", 2025)})
    assert not mismatch(y, frozenset())
    assert mismatch(y, frozenset({("year", 2024)}))
    assert not mismatch(frozenset(), frozenset({("quarter", 1)}))


@pytest.mark.parametrize(
    "question",
    [
        "How did the fourth quarter go?",
        "Tell me about our results in Q3.",
        "Як пройшов третій квартал?",
        "Как прошёл третий квартал?",
    ],
)
def test_statement_about_another_quarter_does_not_fit(persona: Persona, question: str) -> None:
    retriever = Retriever.from_persona(persona)
    lang = "uk" if "Як" in question else "ru" if "Как" in question else "en"
    # Only the first and second quarters have statements: nothing fits a later one.
    assert retriever.find(question, lang).ids == ()


def test_the_asked_quarter_fits(persona: Persona) -> None:
    retriever = Retriever.from_persona(persona)
    assert retriever.find("How did the second quarter go?", "en").ids[:1] == ("S39",)
    assert retriever.find("How did the first quarter go?", "en").ids[:1] == ("S38",)


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("What exactly did we earn?", True),
        ("What percentage of customers renewed?", True),
        ("Скільки точно ми заробили?", True),
        ("Сколько мы заработали в цифрах?", True),
        ("How much runway do we have?", False),
        ("Яка точна виручка?", True),
        ("How did the quarter go?", False),
        ("What is our strategy?", False),
    ],
)
def test_asks_for_figure(text: str, asks: bool) -> None:
    assert asks_for_figure(text) is asks


def test_states_figure() -> None:
    assert states_figure("four learning days a year")
    assert states_figure("99.9% uptime")
    assert states_figure("чотири дні навчання")
    assert not states_figure("The second quarter was mixed.")


def test_figure_question_needs_a_statement_with_a_number(persona: Persona) -> None:
    retriever = Retriever.from_persona(persona)
    # The second-quarter statement says how it went, not how much was sold.
    assert retriever.find("How much exactly did we sell in the second quarter?", "en").ids == ()
    assert retriever.find("How did the second quarter go?", "en").ids[:1] == ("S39",)
    # A number the statement states is an answer.
    assert retriever.find("How many learning days do we get?", "en").ids[:1] == ("S25",)


@pytest.mark.parametrize(
    "question",
    [
        "What exactly did we earn in the second quarter?",
        "What percentage did sales grow in the first quarter?",
        "Яка точна сума продажів у першому кварталі?",
        "How did the third quarter go?",
        "Як минув четвертий квартал?",
    ],
)
async def test_figure_or_other_period_is_never_answered_with_a_statement(
    persona: Persona, question: str
) -> None:
    brain = EmbeddedBrain(persona)
    parts = [p async for p in brain.stream(question)]
    assert parts and all(p.label == "escalated" for p in parts), [(p.label, p.text) for p in parts]
