"""The optional guard model (``clone.guard = "openai"``), with the real ``openai`` client
against the local fake API: it judges the question before and each sentence after, and
fails closed on a bad verdict, an error or a timeout."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from townhall.server.clone.brain import BrainError, Escalation, make_brain
from townhall.server.clone.brain.guard import GUARD_FLAGGED, GUARD_UNAVAILABLE, parse_verdict
from townhall.server.clone.brain.openai_brain import OpenAIBrain
from townhall.server.clone.persona import Persona, load_persona, sample_persona_path

from .fake_openai import FakeOpenAI

REMOTE_Q = "How do we think about remote work?"
ANSWER = ("We are staying remote-first [S10]. ", "Teams choose their own office days [S11].")


@pytest.fixture(scope="module")
def persona() -> Persona:
    return load_persona(sample_persona_path())


def router(judge: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], Iterator[str]]:
    """The brain's model says :data:`ANSWER`; the guard model's verdict comes from ``judge``."""

    def chat(body: dict[str, Any]) -> Iterator[str]:
        if body["model"] == "guard-model":
            yield judge(body)
        else:
            yield from ANSWER

    return chat


def guarded(data: dict[str, Any]) -> str:
    return str(data.get("sentence") or data.get("question"))


def judged(body: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(body["messages"][1]["content"]))


def build(persona: Persona, api: FakeOpenAI, recorded: list[Escalation], **kw: Any) -> OpenAIBrain:
    brain = make_brain(
        "openai",
        persona,
        on_escalation=recorded.append,
        base_url=api.base_url,
        api_key=api.api_key,
        model="brain-model",
        guard="openai",
        guard_model="guard-model",
        **kw,
    )
    assert isinstance(brain, OpenAIBrain) and brain.guard is not None
    return brain


async def ask(brain: OpenAIBrain, question: str = REMOTE_Q) -> list[tuple[str, str]]:
    try:
        return [(p.label, p.text) async for p in brain.stream(question)]
    finally:
        await brain.aclose()


def guard_calls(api: FakeOpenAI) -> list[dict[str, Any]]:
    return [judged(b) for kind, b in api.requests if kind == "chat" and b["model"] == "guard-model"]


async def test_a_safe_verdict_lets_the_question_and_every_sentence_through(
    persona: Persona,
) -> None:
    recorded: list[Escalation] = []
    with FakeOpenAI(chat=router(lambda body: "safe")) as api:
        parts = await ask(build(persona, api, recorded))
        calls = guard_calls(api)
    assert parts == [
        ("generated", "We are staying remote-first."),
        ("generated", "Teams choose their own office days."),
    ]
    assert [guarded(c) for c in calls] == [REMOTE_Q, *(t for _, t in parts)]
    assert recorded == []


async def test_an_unsafe_question_escalates_before_the_brain_model_is_asked(
    persona: Persona,
) -> None:
    recorded: list[Escalation] = []
    # Worded so that the classifier lets it through; the guard catches it.
    with FakeOpenAI(chat=router(lambda body: "unsafe\nS1")) as api:
        parts = await ask(build(persona, api, recorded))
        models = [b["model"] for kind, b in api.requests if kind == "chat"]
    assert parts == [("escalated", persona.message("en", "escalated"))]
    assert models == ["guard-model"]
    (esc,) = recorded
    assert esc.reason == GUARD_FLAGGED and "S1" in esc.detail


async def test_an_unsafe_sentence_is_not_spoken_and_the_answer_stops(persona: Persona) -> None:
    recorded: list[Escalation] = []

    def judge(body: dict[str, Any]) -> str:
        return "unsafe\nU2" if "office days" in guarded(judged(body)) else "safe"

    with FakeOpenAI(chat=router(judge)) as api:
        parts = await ask(build(persona, api, recorded))
    assert parts == [
        ("generated", "We are staying remote-first."),
        ("escalated", persona.message("en", "stopped")),
    ]
    (esc,) = recorded
    assert esc.reason == GUARD_FLAGGED and "office days" in esc.detail
    assert esc.partial_answer == "We are staying remote-first."


async def test_the_guard_sees_the_cited_statements(persona: Persona) -> None:
    recorded: list[Escalation] = []
    with FakeOpenAI(chat=router(lambda body: "safe")) as api:
        await ask(build(persona, api, recorded))
        bodies = [b for kind, b in api.requests if b["model"] == "guard-model"]
    s10 = persona.statement("S10")
    assert s10 is not None and s10.text in bodies[1]["messages"][0]["content"]
    assert "Offices are places" not in bodies[1]["messages"][0]["content"]  # S11: not cited


@pytest.mark.parametrize("verdict", ["", "maybe", "I think it is fine", "SAFE-ish"])
async def test_no_clear_verdict_fails_closed(persona: Persona, verdict: str) -> None:
    recorded: list[Escalation] = []
    with FakeOpenAI(chat=router(lambda body: verdict)) as api:
        parts = await ask(build(persona, api, recorded))
    assert [label for label, _ in parts] == ["escalated"]
    assert recorded[0].reason == GUARD_FLAGGED


async def test_a_guard_error_fails_closed(persona: Persona) -> None:
    recorded: list[Escalation] = []
    with FakeOpenAI(chat=router(lambda body: "safe")) as api:
        brain = build(persona, api, recorded)
        assert brain.guard is not None
        brain.guard.client = brain.guard.client.with_options(api_key="wrong-key")  # 401
        parts = await ask(brain)
    assert [label for label, _ in parts] == ["escalated"]
    (esc,) = recorded
    assert esc.reason == GUARD_UNAVAILABLE and "401" in esc.detail


async def test_a_guard_timeout_fails_closed(persona: Persona) -> None:
    recorded: list[Escalation] = []
    release = threading.Event()

    def judge(body: dict[str, Any]) -> str:
        release.wait(30)  # answers only after the test is over
        return "safe"

    try:
        with FakeOpenAI(chat=router(judge)) as api:
            parts = await ask(build(persona, api, recorded, guard_timeout_s=0.2))
            release.set()
    finally:
        release.set()
    assert [label for label, _ in parts] == ["escalated"]
    (esc,) = recorded
    assert esc.reason == GUARD_UNAVAILABLE and "Timeout" in esc.detail


@pytest.mark.parametrize(
    ("text", "safe"),
    [("safe", True), ("Safe.", True), ("unsafe\nS1,S3", False), ("unsafe", False), ("", False)],
)
def test_parse_verdict(text: str, safe: bool) -> None:
    assert parse_verdict(text).safe is safe


def test_guard_settings_are_checked(persona: Persona) -> None:
    common: dict[str, Any] = {"base_url": "http://127.0.0.1:9/v1", "api_key": "k", "model": "m"}
    with pytest.raises(BrainError, match="unknown guard"):
        make_brain("openai", persona, guard="llamaguard", **common)
    with pytest.raises(BrainError, match="guard_timeout_s"):
        make_brain("openai", persona, guard="openai", guard_timeout_s=-1, **common)
    with pytest.raises(BrainError, match="unknown setting"):
        make_brain("embedded", persona, guard="openai")
    brain = make_brain("openai", persona, **common)
    assert isinstance(brain, OpenAIBrain) and brain.guard is None
