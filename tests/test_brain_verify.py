"""Each generated sentence is held to the statements it cites (issue 12, item 5)."""

from __future__ import annotations

import pytest

from townhall.server.clone.brain.facts import dates, names, numbers
from townhall.server.clone.brain.verify import SentenceVerifier, grounded_share
from townhall.server.clone.persona import Persona, Statement, load_persona, sample_persona_path


@pytest.fixture(scope="module")
def persona() -> Persona:
    return load_persona(sample_persona_path())


@pytest.fixture(scope="module")
def verifier(persona: Persona) -> SentenceVerifier:
    return SentenceVerifier(persona)


def cited(persona: Persona, *ids: str) -> list[Statement]:
    found = [persona.statement(i) for i in ids]
    assert all(found)
    return [s for s in found if s is not None]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Salaries go up by ten percent", {"n:10", "%"}),
        ("a 10% raise", {"n:10", "%"}),
        ("About a third of the company", {"n:3"}),
        ("Зарплати підвищать на двадцять відсотків", {"n:20", "%"}),
        ("Около трети команды переедет", {"n:3"}),
        ("Двенадцать миллионов выручки", {"n:12", "n:1e6"}),
        ("12,000 people and 3.5 days", {"n:12000", "n:3.5"}),
        ("We work together as one team", set()),
    ],
)
def test_numbers_in_digits_or_words_in_three_languages(text: str, expected: set[str]) -> None:
    assert numbers(text) == expected


def test_the_same_number_in_another_language_or_form_matches() -> None:
    assert numbers("the second half of the year") == numbers("другу половину року")
    assert numbers("ten") == numbers("10") == numbers("десяти")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It starts in September", {"month:9"}),
        ("з першого березня", {"month:3"}),
        ("с понедельника", {"day:1"}),
        ("We will look at it again next quarter", {"next:quarter"}),
        ("наступного тижня", {"next:week"}),
        ("Results for Q3", {"q:3"}),
        ("You may ask anything", set()),
        ("from May on", {"month:5"}),
    ],
)
def test_dates(text: str, expected: set[str]) -> None:
    assert dates(text) == expected


def test_names_are_capitalised_words_inside_a_sentence_in_latin_letters() -> None:
    assert names("We are opening a hub in Warsaw for Olena") == {"w*rs*w", "*l*n*"}
    assert names("Offices are places to collaborate. I think so.") == set()


@pytest.mark.parametrize(
    ("ids", "language", "sentence", "finding"),
    [
        (("S10",), "en", "About a third of the company will move teams.", "number"),
        (("S10",), "en", "Salaries go up by ten percent in spring.", "number"),
        (("U01",), "uk", "Зарплати підвищать на двадцять відсотків.", "number"),
        (("S10",), "en", "The new policy takes effect in September.", "date"),
        (("S10",), "en", "We are in talks with Orion about the future.", "name"),
        (("S10",), "en", "We are opening a new hub in Warsaw for the teams.", "name"),
        (("U01",), "uk", "Переїзд очолить Олена Коваленко.", "name"),
        (("S10",), "en", "Attendance will be tracked by a new badge system.", "only"),
    ],
)
def test_facts_not_in_the_cited_statements_cut_the_sentence(
    persona: Persona,
    verifier: SentenceVerifier,
    ids: tuple[str, ...],
    language: str,
    sentence: str,
    finding: str,
) -> None:
    result = verifier.unsupported(sentence, cited(persona, *ids), language)
    assert result is not None and result.detail.startswith(finding) and not result.stop


@pytest.mark.parametrize(
    "sentence",
    [
        "We will never ask anyone back to the office, full stop.",
        "From Monday, cameras must be on in every meeting.",
        "Your position here is secure, you can count on it.",
        "Ніхто й ніколи не змусить вас повертатися до офісу.",
    ],
)
def test_commitments_are_caught_by_the_classifier_without_the_word_promise(
    persona: Persona, verifier: SentenceVerifier, sentence: str
) -> None:
    finding = verifier.commitment(sentence)
    assert finding is not None and finding.stop


@pytest.mark.parametrize(
    ("ids", "language", "sentence"),
    [
        (("S10",), "en", "We're remote-first, and we are staying that way."),
        (("S10",), "en", "Where you work matters much less than how well we work together."),
        (("S11",), "en", "Teams choose their own office days."),
        (("U02",), "uk", "Наш офіс у Львові — місце для спільної роботи."),
        (("S06",), "uk", "Мобільний застосунок заплановано на другу половину року."),
        (("S01",), "en", "This year our strategy is to win the mid-market."),
    ],
)
def test_faithful_retellings_pass(
    persona: Persona, verifier: SentenceVerifier, ids: tuple[str, ...], language: str, sentence: str
) -> None:
    assert verifier.check(sentence, cited(persona, *ids), language) is None


def test_grounding_counts_content_words_of_the_source() -> None:
    source = "Offices are places to collaborate, not places to be counted."
    assert grounded_share("Offices are for collaborating.", source) == 1.0
    assert grounded_share("Offices will get free lunch daily.", source) < 0.5
