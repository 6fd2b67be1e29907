"""The clone's per-question and per-frame compute: the budgets the tests used to time.

Wall-clock figures depend on how busy the machine is, so they live here, not in tests/:

- ``brain_first_part_*_ms``: the embedded brain, question in to its first AnswerPart, over
  every question of the brain tests' sets, three times (target: median < 10 ms, p95 < 25
  ms; the whole first audio has 150 ms);
- ``policy_ms_per_question``: the policy's check of a question (target < 5 ms);
- ``retrieval_ms_per_question``: the retriever's find over the on- and off-topic sets
  (target < 5 ms);
- ``animator_idle_ms_per_s`` / ``animator_speech_ms_per_s``: the face animator making one
  second of frames, best of seven (target < 5 ms each).

    python bench/compute.py

Prints one JSON object as its last line.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the tests' question sets

from tests.test_brain_policy import ALL_ESCALATING
from tests.test_brain_retrieval import OFF_TOPIC, ON_TOPIC
from tests.test_face_animator import MARK, SENTENCE, utterance
from townhall.server.clone.brain import EmbeddedBrain, Policy
from townhall.server.clone.brain.retrieval import Retriever
from townhall.server.clone.face.animator import Animator
from townhall.server.clone.persona import load_persona, sample_persona_path


async def first_parts(brain: EmbeddedBrain, questions: list[str]) -> list[float]:
    timings = []
    for question in questions:
        start = time.perf_counter()
        stream = brain.stream(question)
        await anext(stream)
        timings.append((time.perf_counter() - start) * 1000)
        await stream.aclose()  # type: ignore[attr-defined]
    return timings


def per_call_ms(calls: list[Any]) -> float:
    start = time.perf_counter()
    for call in calls:
        call()
    return (time.perf_counter() - start) * 1000 / len(calls)


def animator_ms() -> tuple[float, float]:
    anim = Animator(seed=5, clone_position=MARK)
    u = utterance(SENTENCE)
    anim.frames_for(u, 0.0, None, (1.0, 1.2, 5.0))  # warm up
    idle = speech = math.inf
    for k in range(7):
        t0 = time.perf_counter()
        anim.frames_for(None, 10.0 + k, 1.0)
        idle = min(idle, time.perf_counter() - t0)
        t0 = time.perf_counter()
        anim.frames_for(u, 20.0 + 5 * k, 1.0, (1.0, 1.2, 5.0))
        speech = min(speech, time.perf_counter() - t0)
    return idle * 1000, speech * 1000


def main() -> None:
    persona = load_persona(sample_persona_path())
    questions = (
        [q for _, q, _ in ON_TOPIC] + [q for _, q in OFF_TOPIC] + [q for q, _ in ALL_ESCALATING]
    )
    timings = asyncio.run(first_parts(EmbeddedBrain(persona), questions * 3))
    policy = Policy.for_persona(persona)
    retriever = Retriever.from_persona(persona)
    idle, speech = animator_ms()
    out = {
        "brain_first_part_median_ms": round(statistics.median(timings), 3),
        "brain_first_part_p95_ms": round(statistics.quantiles(timings, n=20)[-1], 3),
        "brain_first_part_max_ms": round(max(timings), 3),
        "brain_questions": len(timings),
        "policy_ms_per_question": round(
            per_call_ms([lambda q=q: policy.check_question(q) for q, _ in ALL_ESCALATING * 5]), 3
        ),
        "retrieval_ms_per_question": round(
            per_call_ms(
                [lambda q=q, lang=lang: retriever.find(q, lang) for lang, q, _ in ON_TOPIC]
                + [lambda q=q, lang=lang: retriever.find(q, lang) for lang, q in OFF_TOPIC]
            ),
            3,
        ),
        "animator_idle_ms_per_s": round(idle, 3),
        "animator_speech_ms_per_s": round(speech, 3),
        "targets": {
            "brain_first_part_median_ms": 10,
            "brain_first_part_p95_ms": 25,
            "policy_ms_per_question": 5,
            "retrieval_ms_per_question": 5,
            "animator_ms_per_s": 5,
        },
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
