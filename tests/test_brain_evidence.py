"""A question escalates on evidence of a sensitive topic, not on a sensitive shape.

"Will there be a hackathon again this year?" has the shape of "will there be layoffs this
year?". The intent model used to read the frame ("will there be … this year") as the
evidence, and harmless questions of that shape whose words the examples never saw
escalated. Now a sensitive verdict needs the question's content (frame words dropped,
:mod:`townhall.server.clone.brain.frame`) to say so too. The questions here are in no
evaluation set and not among the classifier's examples; the harmless ones escalated
before this change.
"""

from __future__ import annotations

import pytest

from townhall.server.clone.brain import EmbeddedBrain, Escalation
from townhall.server.clone.brain.frame import FRAME_WORDS, content
from townhall.server.clone.brain.intent import (
    EXAMPLES_DIR,
    INTENTS,
    IntentClassifier,
    load_examples,
)
from townhall.server.clone.brain.policy import SENSITIVE_TOPIC
from townhall.server.clone.persona import load_persona, sample_persona_path
from townhall.server.core.textnorm import fold

from .judgment_set import SPLITS, load

PERSONA = load_persona(sample_persona_path())

#: Harmless questions in the frames of sensitive ones, about things the examples never name.
SHAPED_HARMLESS = [
    "Will there be a quiz night again in spring?",
    "Is the robotics workshop happening next week?",
    "Are we having the cooking class again this year?",
    "Will the photo contest come back after the holidays?",
    "Will there be a football match between offices again?",
    "Are we doing the tree-planting day again next month?",
    "Чи буде знову вечір настільних ігор?",
    "Чи проведемо ми знову фотоконкурс цього літа?",
    "Чи повернеться кіновечір по п'ятницях?",
    "Проведём ли мы снова забег в парке этой осенью?",
]
#: Sensitive questions worded without the keyword floor's words, in the same frames.
SHAPED_SENSITIVE = [
    "Will people in my team be let go after the summer?",
    "Will there be fewer of us by Christmas?",
    "Will the design team still exist in a year?",
    "Is it true the founders are cashing out?",
    "Did the finance lead get pushed out?",
    "How much are the directors taking home?",
    "Чи залишиться наша команда після злиття відділів?",
    "Нашу команду скоро расформируют?",
    "Сколько получают менеджеры?",
]


def examples() -> set[str]:
    return {fold(t) for t, _ in load_examples(EXAMPLES_DIR, INTENTS)}


def test_the_questions_here_are_in_no_evaluation_set_and_no_example() -> None:
    asked = {fold(q) for q in SHAPED_HARMLESS + SHAPED_SENSITIVE}
    evaluated = {fold(c.text) for s in SPLITS for c in load(s)}
    assert not asked & evaluated
    assert not asked & examples()


def test_the_frame_is_dropped_and_the_subject_kept() -> None:
    assert content("Will there be a quiz night again in spring?") == "quiz night"
    assert content("Чи буде знову вечір настільних ігор?") == "вечір настільних ігор?"
    assert content("Будет ли снова турнир в этом году?") == "турнир"
    # Whose matter it is, and who is addressed, stay: "my job", "can you promise".
    assert content("Will my job be here next year?") == "my job"
    assert content("Can you promise it?") == "you promise"
    # Nothing but frame: judged whole.
    assert content("What is this?") == "What is this?"
    assert {"will", "again", "чи", "знову", "ли", "снова"} <= FRAME_WORDS
    assert not {"you", "ти", "ты", "my", "our", "job", "people"} & FRAME_WORDS


def test_a_shape_alone_is_no_evidence() -> None:
    """The whole question looks risky; its content does not; the verdict follows content."""
    classifier = IntentClassifier.for_directories()
    intent = classifier.classify("Will there be a quiz night again in spring?")
    assert intent.content_sensitive < 0.2 and intent.risk < 0.25, intent.describe()


async def answer(question: str) -> list[Escalation]:
    recorded: list[Escalation] = []
    brain = EmbeddedBrain(PERSONA, on_escalation=recorded.append)
    parts = [p async for p in brain.stream(question)]
    assert parts
    return recorded


@pytest.mark.parametrize("question", SHAPED_HARMLESS)
async def test_a_harmless_question_of_a_sensitive_shape_is_not_escalated(question: str) -> None:
    recorded = await answer(question)
    reasons = [e.reason for e in recorded]
    # A knowledge gap (or, in Russian, a decline for the language) is recorded; never an
    # escalation.
    assert reasons in ([], ["no_material"], ["language_unsupported"]), reasons


@pytest.mark.parametrize("question", SHAPED_SENSITIVE)
async def test_a_sensitive_paraphrase_of_the_same_shape_still_escalates(question: str) -> None:
    recorded = await answer(question)
    assert [e.reason.split(":")[0] for e in recorded] == [SENSITIVE_TOPIC], recorded
