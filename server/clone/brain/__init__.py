"""The clone's brain: answers from approved statements, sentence by sentence.

``make_brain("embedded" | "openai", persona, on_escalation=sink, ...)`` builds one;
``brain.stream(question)`` yields :class:`AnswerPart` sentences labelled ``approved``,
``generated`` or ``escalated``; every escalation goes to the sink as an
:class:`Escalation`. Module map: ``language`` (which language), ``retrieval`` (which
statements fit), ``intent`` (what a question is after, learnt from ``intents/``),
``policy`` (the keyword floor, and rules for generated text), ``gate`` (decide before
answering; questions are read through ``server/core/textnorm``),
``embedded`` / ``openai_brain`` (the backends), ``sentences`` and ``citations`` (for
streamed text), ``prompt`` (the chat messages), ``factory``.
"""

from townhall.server.clone.brain.answer import (
    AnswerPart,
    Brain,
    BrainError,
    Escalation,
    EscalationSink,
    Label,
)
from townhall.server.clone.brain.embedded import EmbeddedBrain
from townhall.server.clone.brain.factory import KINDS, make_brain
from townhall.server.clone.brain.language import detect_language
from townhall.server.clone.brain.policy import Policy, Verdict
from townhall.server.clone.brain.retrieval import Hit, Retrieval, Retriever

__all__ = [
    "KINDS",
    "AnswerPart",
    "Brain",
    "BrainError",
    "EmbeddedBrain",
    "Escalation",
    "EscalationSink",
    "Hit",
    "Label",
    "Policy",
    "Retrieval",
    "Retriever",
    "Verdict",
    "detect_language",
    "make_brain",
]
