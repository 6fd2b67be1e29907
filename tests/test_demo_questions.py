"""The sample persona's own demo questions: the ones it covers are answered from its
statements, cited; the ones it must not answer are not.

``questions.txt`` marks its runs with ``# [answered]`` and ``# [declined]``. Three covered
demo questions once escalated or ended as knowledge gaps (culture, learning, engineering),
and "How did the last quarter go overall?" escalated as if it asked for unpublished numbers.
"""

from __future__ import annotations

import pytest

from townhall.server.clone.brain import AnswerPart, EmbeddedBrain
from townhall.server.clone.persona import Persona, load_persona, sample_persona_path


def demo_questions() -> list[tuple[str, str]]:
    """(question, "answered" or "declined") in file order."""
    text = (sample_persona_path() / "questions.txt").read_text(encoding="utf-8")
    out: list[tuple[str, str]] = []
    mark = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line in ("# [answered]", "# [declined]"):
            mark = line[3:-1]
        elif line and not line.startswith("#"):
            assert mark, f"demo question before any [answered]/[declined] mark: {line!r}"
            out.append((line, mark))
    return out


QUESTIONS = demo_questions()


@pytest.fixture(scope="module")
def persona() -> Persona:
    return load_persona(sample_persona_path())


def test_both_kinds_are_present() -> None:
    kinds = [kind for _, kind in QUESTIONS]
    assert kinds.count("answered") >= 10 and kinds.count("declined") >= 3


@pytest.mark.parametrize("question", [q for q, k in QUESTIONS if k == "answered"])
async def test_covered_demo_question_is_answered_from_statements(
    persona: Persona, question: str
) -> None:
    brain = EmbeddedBrain(persona)
    parts: list[AnswerPart] = [p async for p in brain.stream(question)]
    assert parts
    assert all(p.label == "approved" for p in parts), [(p.label, p.text) for p in parts]
    for part in parts:
        assert part.sources, part.text
        for sid in part.sources:
            statement = persona.statement(sid)
            assert statement is not None, sid
    # Every sentence spoken is a sentence of a cited statement (or the cross-language note).
    cited = " ".join(
        s.text for p in parts for sid in p.sources if (s := persona.statement(sid)) is not None
    )
    spoken = [p for p in parts if p.text in cited]
    assert len(spoken) >= len(parts) - 1


@pytest.mark.parametrize("question", [q for q, k in QUESTIONS if k == "declined"])
async def test_declined_demo_question_is_not_answered(persona: Persona, question: str) -> None:
    brain = EmbeddedBrain(persona)
    parts = [p async for p in brain.stream(question)]
    assert parts and all(p.label == "escalated" and not p.sources for p in parts)
