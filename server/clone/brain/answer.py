"""What a brain produces: answer parts, one sentence each, and escalation records.

A brain is an async iterator of :class:`AnswerPart` so the voice can start speaking the
first sentence while the rest is still being found or generated. Every part says where
its words come from (``label`` and ``sources``), which is what captions, the moderator's
console and the after-event review show. When the clone declines to answer, an
:class:`Escalation` goes to the ``on_escalation`` sink (the caller persists it) *before*
the part that tells the audience so is yielded.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from townhall.protocol.messages import Label as Label  # the one vocabulary, re-exported


@dataclass(frozen=True, slots=True)
class AnswerPart:
    """One sentence of an answer.

    ``approved``: the leader's approved words verbatim (or a fixed honest note about
    them); ``generated``: written by a model from the statements in ``sources``;
    ``escalated``: the clone declines and says the question was passed on.
    ``language`` is the language of ``text`` (what the voice should speak it in).
    """

    text: str
    label: Label
    sources: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class Escalation:
    """A question the clone did not answer (or stopped answering), for the human leader.

    ``reason`` is a code: ``sensitive_topic:<topic>``, ``injection``,
    ``commitment_request``, ``no_material``, ``language_unsupported``,
    ``generated_violation`` or ``backend_error``; ``detail`` says what triggered it.
    """

    question: str
    reason: str
    language: str
    time: float = field(default_factory=time.time)
    detail: str = ""
    backend: str = "embedded"
    sources: tuple[str, ...] = ()
    partial_answer: str = ""


EscalationSink = Callable[[Escalation], Awaitable[None] | None]


class Brain(Protocol):
    """Answers a question as a stream of sentences."""

    def stream(self, question: str, *, language: str | None = None) -> AsyncIterator[AnswerPart]:
        """Parts of the answer, one sentence each; ``language`` overrides detection."""
        ...


class BrainError(ValueError):
    """A brain cannot be built from the settings given."""


async def deliver(sink: EscalationSink | None, escalation: Escalation) -> None:
    """Hand an escalation to the sink, sync or async. Errors propagate: not recorded is loud."""
    if sink is None:
        return
    result = sink(escalation)
    if inspect.isawaitable(result):
        await result
