"""The clone says it is an AI, aloud, and speaks people's words under their own labels.

Through a real server (websockets on 127.0.0.1, SQLite, the embedded brain and voice):
the first answer of the session and the first after a pause open with the spoken
disclosure (the captions say it before anything else); questions about the clone are
answered from the persona's ``[disclosure]``; an edit in review is spoken under
``moderator`` (a moderator's) or ``leader`` (an operator's), and the transcript says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from townhall.protocol.messages import Ack, Draft, Review, StageEnd, StageStart
from townhall.server.app import TownhallServer
from townhall.server.clone.brain import make_brain
from townhall.server.clone.disclosure import DisclosureSchedule
from townhall.server.clone.persona import load_persona, sample_persona_path
from townhall.server.ops.transcript import export

from .conftest import TokenMaker, make_settings
from .test_clone_stage import Viewer, ask_and_approve, fast_persona, wait_answer, words
from .waiting import eventually

PERSONA = load_persona(sample_persona_path())
DISCLOSURE_EN = PERSONA.disclosure_for("en")
DISCLOSURE_UK = PERSONA.disclosure_for("uk")


def settings(tmp_path: Path, disclosure_pause_s: float, **qa: Any):  # type: ignore[no-untyped-def]
    """The clone speaks fast (``fast_persona``): what it says and when it discloses is the
    point here, not its pace; whole answers take under half the real time."""
    clone = {"enabled": True, "pause_s": 0.2, "disclosure_pause_s": disclosure_pause_s}
    clone["persona"] = fast_persona(tmp_path)
    return make_settings(tmp_path, clone=clone, qa={"mode": "moderated", **qa})


def caption_words(viewer: Viewer, answer: int) -> list[str]:
    return words(" ".join(c.text for p in viewer.packets(answer) for c in p.captions))


def opens_with_disclosure(viewer: Viewer, start: StageStart, disclosure: str) -> bool:
    """The first words heard of the answer are the disclosure (captions are what is said)."""
    said = caption_words(viewer, start.answer)
    return said[: len(words(disclosure))] == words(disclosure)


def test_schedule_discloses_first_and_after_a_pause_only() -> None:
    schedule = DisclosureSchedule(pause_us=5_000_000)
    assert schedule.due(0)  # nothing said yet this session
    schedule.spoke_until(10_000_000)
    assert not schedule.due(12_000_000)  # 2 s of silence
    assert schedule.due(15_000_000)  # 5 s of silence
    schedule.spoke_until(9_000_000)  # an earlier end never moves it back
    assert not schedule.due(14_000_000)
    schedule.spoke_until(30_000_000)  # an answer planned to 30 s ...
    schedule.cut(12_000_000)  # ... stopped at 12 s: the silence starts then
    assert schedule.due(17_000_000) and not schedule.due(16_000_000)
    schedule.cut(20_000_000)  # a cut after the speech ended changes nothing
    assert schedule.due(17_000_000)
    assert DisclosureSchedule(0).due(0)
    with pytest.raises(ValueError, match="pause"):
        DisclosureSchedule(-1)


async def test_first_answer_and_the_first_after_a_pause_open_with_the_spoken_disclosure(
    tmp_path: Path, token: TokenMaker
) -> None:
    # A long pause setting: only the session's first answer discloses.
    async with TownhallServer(settings(tmp_path / "a", disclosure_pause_s=600)) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator"))
        moderator = Viewer(srv.ws_url, token("mod", role="moderator"))
        await spectator.connect()
        await moderator.connect()
        first = await ask_and_approve(spectator, moderator, "How do we think about remote work?")
        start1, end1 = await wait_answer(spectator, first)
        assert opens_with_disclosure(spectator, start1, DISCLOSURE_EN)
        assert end1.text.startswith(DISCLOSURE_EN) and start1.disclosure == DISCLOSURE_EN
        assert start1.label == "approved" and start1.sources  # the answer keeps its label
        second = await ask_and_approve(spectator, moderator, "What is our approach to security?")
        start2, end2 = await wait_answer(spectator, second)
        assert not opens_with_disclosure(spectator, start2, DISCLOSURE_EN)
        assert DISCLOSURE_EN not in end2.text and start2.disclosure == DISCLOSURE_EN
        # A question in Ukrainian, before the pause is over: answered, not disclosed again.
        third = await ask_and_approve(spectator, moderator, "Як ми ставимося до віддаленої роботи?")
        start3, end3 = await wait_answer(spectator, third)
        assert start3.language == "uk" and DISCLOSURE_UK not in end3.text
        await spectator.client.close()
        await moderator.client.close()
    # A pause setting shorter than the pause between answers: every answer discloses, in
    # its own language.
    async with TownhallServer(settings(tmp_path / "b", disclosure_pause_s=0.1)) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator"))
        moderator = Viewer(srv.ws_url, token("mod", role="moderator"))
        await spectator.connect()
        await moderator.connect()
        first = await ask_and_approve(spectator, moderator, "How do we think about remote work?")
        start1, _ = await wait_answer(spectator, first)
        assert opens_with_disclosure(spectator, start1, DISCLOSURE_EN)
        second = await ask_and_approve(
            spectator, moderator, "Як ми ставимося до віддаленої роботи?"
        )
        start2, end2 = await wait_answer(spectator, second)
        assert start2.language == "uk"
        assert opens_with_disclosure(spectator, start2, DISCLOSURE_UK)
        assert end2.text.startswith(DISCLOSURE_UK)
        await spectator.client.close()
        await moderator.client.close()


async def test_questions_about_the_clone_are_answered_from_the_persona_disclosure() -> None:
    brain = make_brain("embedded", PERSONA)
    about = {lang: dict(PERSONA.about_clone_for(lang)) for lang in ("en", "uk", "ru")}
    keys = {"real", "training", "recording", "mistakes", "limits"}
    assert set(about["en"]) == set(about["uk"]) == set(about["ru"]) == keys
    for question, lang, key in (
        ("Are you real?", "en", "real"),
        ("Who trains you?", "en", "training"),
        ("Do you record me?", "en", "recording"),
        ("Хто тебе навчає?", "uk", "training"),
        ("Ти записуєш мене?", "uk", "recording"),
    ):
        parts = [p async for p in brain.stream(question)]
        said = " ".join(p.text for p in parts)
        assert said.startswith(PERSONA.disclosure_for(lang)), (question, said)
        assert about[lang][key] in said, (question, said)  # the line that answers it
        others = [text for k, text in about[lang].items() if k != key]
        assert not any(text in said for text in others), (question, said)  # and only it
        facts = [p for p in parts if "disclosure" in p.sources]
        assert facts and all(p.label == "approved" and p.language == lang for p in facts)
    # Russian, which the sample persona has no statements in but a disclosure: answered in
    # Russian from [disclosure.about.ru]; any other Russian question is declined politely,
    # in the persona's languages.
    parts = [p async for p in brain.stream("Ты настоящая? Кто тебя обучает?")]
    assert parts and all(p.label == "approved" and p.language == "ru" for p in parts)
    assert " ".join(p.text for p in parts).startswith(PERSONA.disclosure_for("ru"))
    parts = [p async for p in brain.stream("Какие у нас приоритеты на этот год?")]
    assert [p.label for p in parts] == ["escalated", "escalated"]
    assert [p.language for p in parts] == ["en", "uk"]


async def test_a_question_about_the_clone_is_disclosed_once_not_twice(
    tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(settings(tmp_path, disclosure_pause_s=600)) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator"))
        moderator = Viewer(srv.ws_url, token("mod", role="moderator"))
        await spectator.connect()
        await moderator.connect()
        qid = await ask_and_approve(spectator, moderator, "Are you real?")
        start, end = await wait_answer(spectator, qid)
        assert end.text.count(DISCLOSURE_EN) == 1 and end.text.startswith(DISCLOSURE_EN)
        assert start.label == "approved" and "disclosure" in start.sources
        await spectator.client.close()
        await moderator.client.close()


async def test_edits_are_spoken_under_their_authors_label_everywhere(
    tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(settings(tmp_path, disclosure_pause_s=600, review=True)) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator"))
        moderator = Viewer(srv.ws_url, token("mod", role="moderator", name="Maria Lind"))
        operator = Viewer(srv.ws_url, token("op", role="operator", name="Dana's office"))
        for v in (spectator, moderator, operator):
            await v.connect()
        # An escalated draft, spoken in the moderator's words: "moderator", never "escalated".
        escalated = await ask_and_approve(spectator, moderator, "Will there be layoffs this year?")
        await eventually(lambda: any(d.question == escalated for d in moderator.of(Draft)), 30)
        draft = next(d for d in moderator.of(Draft) if d.question == escalated)
        assert draft.label == "escalated"
        written = "We will share the plan for next year at the all-hands on Friday."
        ok = await moderator.request(lambda r: Review(r, draft.answer, "edit", written))
        assert isinstance(ok, Ack)
        start, end = await wait_answer(spectator, escalated)
        assert (start.label, end.label, start.sources, end.sources) == (
            "moderator", "moderator", [], [],
        )  # fmt: skip
        assert {p.label for p in spectator.packets(start.answer)} == {"moderator"}
        assert end.text.endswith(written)
        # An operator's edit of an approved draft: "leader", the leader's own words.
        approved = await ask_and_approve(spectator, moderator, "How do we think about remote work?")
        await eventually(lambda: any(d.question == approved for d in operator.of(Draft)), 30)
        draft = next(d for d in operator.of(Draft) if d.question == approved)
        own = "I trust you to choose where you do your best work."
        assert isinstance(
            await operator.request(lambda r: Review(r, draft.answer, "edit", own)), Ack
        )
        start, end = await wait_answer(spectator, approved)
        assert (start.label, end.label, end.text) == ("leader", "leader", own)
        assert {p.label for p in spectator.packets(start.answer)} == {"leader"}
        ends = [e for e in moderator.of(StageEnd) if e.answer == start.answer]
        assert ends and ends[0].label == "leader"
        for v in (spectator, moderator, operator):
            await v.client.close()
    data = json.loads(export(tmp_path / "townhall.db", "main", "json"))
    answers = {e["question_id"]: e for e in data["entries"] if e["kind"] == "answer"}
    assert answers[escalated]["label"] == "moderator" and answers[approved]["label"] == "leader"
    md = export(tmp_path / "townhall.db", "main", "md")
    assert f"**Answer to {escalated}** [written by the moderators; done]" in md
    assert f"**Answer to {approved}** [the leader's own words; done]" in md
    vtt = export(tmp_path / "townhall.db", "main", "vtt")
    assert f"[the leader's own words] {own}" in vtt


def test_disclosure_about_lines_are_checked_like_the_rest_of_the_persona(tmp_path: Path) -> None:
    import shutil

    from townhall.server.clone.persona import PersonaError

    target = tmp_path / "leader"
    shutil.copytree(sample_persona_path(), target)
    toml = (target / "persona.toml").read_text(encoding="utf-8")
    toml = toml.replace("[disclosure.about.uk]\nreal = ", "[disclosure.about.uk]\nreal_ = ", 1)
    toml = toml.replace('training = "Nobody trains me', '"Bad Key" = "Nobody trains me', 1)
    toml = toml.replace('recording = "Yes, this town hall', 'recording = """ """\nx = "Yes', 1)
    toml += '\n[disclosure.about.fr]\nreal = "Je suis un logiciel."\n'
    (target / "persona.toml").write_text(toml, encoding="utf-8")
    with pytest.raises(PersonaError) as caught:
        load_persona(target)
    issues = {str(i) for i in caught.value.issues}
    assert (
        "persona.toml: disclosure.about.en.Bad Key: key must be lowercase letters, digits, - or _"
        in issues
    )
    assert "persona.toml: disclosure.about.en.recording: must be a non-empty string" in issues
    assert (
        "persona.toml: disclosure.about.fr: unknown language 'fr' (persona languages: en, uk)"
        in issues
    )
    assert (
        "persona.toml: disclosure.about.uk.real: missing (every language answers the same)"
        in issues
    )
    assert (
        "persona.toml: disclosure.about.en.real_: missing (every language answers the same)"
        in issues
    )
    # Without [disclosure.about] a persona is still valid: about the clone, the disclosure.
    plain = tmp_path / "plain"
    shutil.copytree(sample_persona_path(), plain)
    text = (plain / "persona.toml").read_text(encoding="utf-8")
    start = text.index("[disclosure.about.en]")
    text = text[:start] + text[text.index("[escalation]") :]
    # (a disclosure-only language needs its [disclosure.about] lines: it goes too)
    text = "\n".join(line for line in text.splitlines() if not line.startswith("ru = "))
    (plain / "persona.toml").write_text(text + "\n", encoding="utf-8")
    assert load_persona(plain).about_clone_for("en") == ()
