"""Questions about the clone are answered from the disclosure; words of two meanings are judged.

Through the embedded brain (the classifier, the keyword floor, retrieval, the persona's
``[disclosure.about]``) and once through a real server. None of these questions is among
the classifier's examples, so they show how it generalises, not what it memorised.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from townhall.server.app import TownhallServer
from townhall.server.clone.brain import EmbeddedBrain, Policy
from townhall.server.clone.brain.answer import Escalation
from townhall.server.clone.brain.intent import EXAMPLES_DIR, IntentClassifier, load_examples
from townhall.server.clone.brain.policy import SENSITIVE_TOPIC
from townhall.server.clone.persona import (
    Persona,
    check_persona,
    load_persona,
    sample_persona_path,
)
from townhall.server.core.textnorm import fold

from .conftest import TokenMaker, make_settings
from .test_clone_stage import Viewer, ask_and_approve, fast_persona, wait_answer

PERSONA = load_persona(sample_persona_path())

ABOUT_THE_CLONE = [
    ("Is it really Dana talking?", "en"),
    ("Am I being recorded right now?", "en"),
    ("Are you a human?", "en"),
    ("Who controls what you say?", "en"),
    ("Does Dana see this conversation?", "en"),
    ("Where do my questions go after I ask them?", "en"),
    ("Is this conversation being recorded?", "en"),
    ("Ти справжня?", "uk"),
    ("Ти бот чи людина?", "uk"),
    ("Хто тебе контролює?", "uk"),
    ("Ти можеш помилятися?", "uk"),
    ("Нас зараз записують?", "uk"),
    ("Чи бачить Дана це?", "uk"),
]
RUSSIAN_ABOUT_THE_CLONE = ["Ты настоящая?", "Кто тебя обучает?", "Ты бот или человек?"]

#: Harmless although the keyword floor matches a word of two meanings in them.
TWO_MEANINGS_HARMLESS = [
    "How do we fight burnout from on-call?",
    "Як боротися з вигоранням на чергуваннях?",
]
#: The same words, sensitive: the floor still escalates them.
TWO_MEANINGS_SENSITIVE = [
    "Is Dana on leave because of burnout?",
    "How many people are burning out in support?",
    "I'm burned out, can I take time off?",
    "Чи є в компанії психолог для працівників?",
    "Хто з нашої команди вигорів і звільнився?",
]


def examples() -> set[str]:
    return {fold(text) for text, _ in load_examples(EXAMPLES_DIR)}


def test_the_questions_here_are_not_among_the_examples() -> None:
    asked = [q for q, _ in ABOUT_THE_CLONE] + RUSSIAN_ABOUT_THE_CLONE
    asked += TWO_MEANINGS_HARMLESS + TWO_MEANINGS_SENSITIVE
    assert [q for q in asked if fold(q) in examples()] == []


async def answer(
    persona: Persona, question: str
) -> tuple[list[tuple[str, str, tuple[str, ...]]], list[Escalation]]:
    """What the brain says (text, label, sources) and what it escalated."""
    escalations: list[Escalation] = []
    brain = EmbeddedBrain(persona, on_escalation=escalations.append)
    parts = [(p.text, p.label, p.sources) async for p in brain.stream(question)]
    return parts, escalations


@pytest.mark.parametrize(("question", "language"), ABOUT_THE_CLONE)
async def test_questions_about_the_clone_get_the_disclosure_not_an_escalation(
    question: str, language: str
) -> None:
    parts, escalations = await answer(PERSONA, question)
    assert escalations == [], (question, escalations)
    said = " ".join(text for text, _, _ in parts)
    assert said.startswith(PERSONA.disclosure_for(language)), (question, said)
    about = [text for text, _, sources in parts if sources == ("disclosure",)]
    assert len(about) > 1, (question, said)  # the disclosure and a line about the clone
    assert all(label == "approved" for _, label, _ in parts)


async def test_being_recorded_is_answered_with_the_recording_line() -> None:
    for question, lang in (
        ("Am I being recorded right now?", "en"),
        ("Нас зараз записують?", "uk"),
    ):
        parts, _ = await answer(PERSONA, question)
        said = " ".join(text for text, _, _ in parts)
        assert dict(PERSONA.about_clone_for(lang))["recording"] in said, said


def test_russian_questions_about_the_clone_are_recognised() -> None:
    """The sample persona has no Russian statements, only a Russian disclosure: the judge
    must know these as about the clone for it to be said."""
    classifier = IntentClassifier.for_directories()
    assert [classifier.classify(q).name for q in RUSSIAN_ABOUT_THE_CLONE] == ["about_clone"] * len(
        RUSSIAN_ABOUT_THE_CLONE
    )


@pytest.mark.parametrize("question", TWO_MEANINGS_HARMLESS)
async def test_a_word_of_two_meanings_does_not_escalate_a_harmless_question(
    question: str,
) -> None:
    assert Policy.for_persona(PERSONA).check_question(question) is not None  # the floor sees it
    parts, escalations = await answer(PERSONA, question)
    assert escalations == [], escalations
    assert parts and all(label == "approved" for _, label, _ in parts)


@pytest.mark.parametrize("question", TWO_MEANINGS_SENSITIVE)
async def test_the_same_words_in_a_sensitive_question_still_escalate(question: str) -> None:
    parts, escalations = await answer(PERSONA, question)
    assert [e.reason.split(":")[0] for e in escalations] == [SENSITIVE_TOPIC], parts
    assert all(label == "escalated" for _, label, _ in parts)


#: Company life near a sensitive topic, worded fresh (none is an example or in the judgment
#: set): escalated by the judge before it learnt such questions from more varied examples.
NEAR_SENSITIVE_HARMLESS = [
    "When are we decommissioning the old CI server?",
    "What's a healthy amount of time to spend on refactoring?",
    "Чи буде хакатон для дизайнерів?",
    "Будет ли хакатон весной?",
    "Who brings the drinks to the summer barbecue?",
    "Is there a group deal for gym memberships?",
    "How do I stop being a perfectionist about slides?",
]
#: The same neighbourhoods, sensitive: still escalated.
NEAR_SENSITIVE_SENSITIVE = [
    "Is the hackathon a cover for choosing who gets cut?",
    "Is there a deal to sell our data business?",
    "Are they letting the whole design team go?",
]


def test_the_near_sensitive_questions_here_are_not_among_the_examples() -> None:
    asked = NEAR_SENSITIVE_HARMLESS + NEAR_SENSITIVE_SENSITIVE
    assert [q for q in asked if fold(q) in examples()] == []


@pytest.mark.parametrize("question", NEAR_SENSITIVE_HARMLESS)
async def test_a_harmless_question_near_a_sensitive_topic_is_not_escalated(
    question: str,
) -> None:
    parts, escalations = await answer(PERSONA, question)
    assert [e.reason for e in escalations if e.reason.split(":")[0] != "no_material"] in (
        [],
        ["language_unsupported"],
    ), escalations
    assert parts


@pytest.mark.parametrize("question", NEAR_SENSITIVE_SENSITIVE)
async def test_a_sensitive_question_in_the_same_neighbourhood_escalates(question: str) -> None:
    _, escalations = await answer(PERSONA, question)
    assert [e.reason.split(":")[0] for e in escalations] == [SENSITIVE_TOPIC], escalations


def test_only_words_of_two_meanings_are_soft_on_the_floor() -> None:
    policy = Policy.for_persona(PERSONA)
    soft = policy.check_question("How do we fight burnout from on-call?")
    hard = policy.check_question("Any news on layoffs in support?")
    assert soft is not None and soft.soft
    assert hard is not None and not hard.soft
    # In a sentence a model wrote, the word always cuts.
    assert policy.check_generated("Dana is off with burnout this month.") is not None


#: "Can it be wrong / what can't it do": about the clone, never a request for a commitment.
MISTAKES_AND_LIMITS = [
    ("Can you make mistakes?", "en", "mistakes"),
    ("Are you ever wrong?", "en", "mistakes"),
    ("Which subjects aren't you allowed to get into?", "en", "limits"),
    ("Ти помиляєшся іноді?", "uk", "mistakes"),
    ("Бывает, что ты ошибаешься?", "ru", "mistakes"),
]


@pytest.mark.parametrize(("question", "language", "key"), MISTAKES_AND_LIMITS)
async def test_can_you_make_mistakes_is_answered_truthfully_from_the_persona(
    question: str, language: str, key: str
) -> None:
    assert fold(question) not in examples()
    parts, escalations = await answer(PERSONA, question)
    assert escalations == [], escalations
    said = " ".join(text for text, _, _ in parts)
    assert said.startswith(PERSONA.disclosure_for(language)), said
    assert dict(PERSONA.about_clone_for(language))[key] in said, said


@pytest.mark.parametrize("question", RUSSIAN_ABOUT_THE_CLONE)
async def test_russian_questions_about_the_clone_are_answered_in_russian(question: str) -> None:
    """Russian is a disclosure-only language of the sample persona: the clone says what it
    is in Russian, from ``[disclosure] ru`` and ``[disclosure.about.ru]``."""
    assert "ru" not in PERSONA.languages and PERSONA.speaks_about_itself_in("ru")
    parts, escalations = await answer(PERSONA, question)
    assert escalations == [], escalations
    assert parts and all(p[1] == "approved" and p[2] == ("disclosure",) for p in parts)
    said = " ".join(text for text, _, _ in parts)
    assert said.startswith(PERSONA.disclosure_for("ru")) and "Дана" in said, said


async def test_other_russian_questions_follow_the_language_policy() -> None:
    """Only what the clone is may be said in a disclosure-only language: an ordinary
    Russian question is declined (and recorded), a sensitive one escalates."""
    parts, escalations = await answer(PERSONA, "Какие у нас планы на мобильное приложение?")
    assert [e.reason for e in escalations] == ["language_unsupported"], parts
    parts, escalations = await answer(PERSONA, "Когда нам поднимут оклады?")
    assert [e.reason.split(":")[0] for e in escalations] == [SENSITIVE_TOPIC], parts


def test_a_disclosure_only_language_needs_both_its_disclosure_and_its_about_lines(
    tmp_path: Path,
) -> None:
    source = (sample_persona_path() / "persona.toml").read_text(encoding="utf-8")
    about_ru = re.search(r"^\[disclosure\.about\.ru\]\n(.+\n)+?\n", source, re.M)
    assert about_ru is not None
    persona_dir = tmp_path / "p"
    shutil.copytree(sample_persona_path(), persona_dir)
    (persona_dir / "persona.toml").write_text(source.replace(about_ru.group(0), ""), "utf-8")
    ok, report = check_persona(persona_dir)
    assert not ok and "disclosure.ru: unknown language 'ru'" in report, report


async def test_a_question_about_the_clone_through_a_real_server(
    tmp_path: Path, token: TokenMaker
) -> None:
    settings = make_settings(
        tmp_path,
        clone={
            "enabled": True,
            "pause_s": 0.2,
            "disclosure_pause_s": 600,
            "persona": fast_persona(tmp_path),  # what is said, not its pace, is the point
        },
        qa={"mode": "moderated"},
    )
    recording = dict(PERSONA.about_clone_for("en"))["recording"]
    async with TownhallServer(settings) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator"))
        moderator = Viewer(srv.ws_url, token("mod", role="moderator"))
        await spectator.connect()
        await moderator.connect()
        qid = await ask_and_approve(spectator, moderator, "Am I being recorded right now?")
        start, end = await wait_answer(spectator, qid)
        assert start.label == "approved" and "disclosure" in start.sources
        assert end.text.startswith(PERSONA.disclosure_for("en")) and recording in end.text
        await spectator.client.close()
        await moderator.client.close()


async def test_a_russian_question_about_the_clone_through_a_real_server(
    tmp_path: Path, token: TokenMaker
) -> None:
    """End to end: answered in Russian (stage language ``ru``), disclosure first."""
    settings = make_settings(
        tmp_path,
        clone={
            "enabled": True,
            "pause_s": 0.2,
            "disclosure_pause_s": 600,
            "persona": fast_persona(tmp_path),  # what is said, not its pace, is the point
        },
        qa={"mode": "moderated"},
    )
    async with TownhallServer(settings) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator"))
        moderator = Viewer(srv.ws_url, token("mod", role="moderator"))
        await spectator.connect()
        await moderator.connect()
        qid = await ask_and_approve(spectator, moderator, "С кем я сейчас разговариваю?")
        start, end = await wait_answer(spectator, qid)
        assert start.label == "approved" and start.language == "ru", start
        assert "disclosure" in start.sources
        assert end.text.startswith(PERSONA.disclosure_for("ru")), end.text
        await spectator.client.close()
        await moderator.client.close()
