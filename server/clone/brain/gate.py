"""The decision every backend makes before answering: decline, or go ahead with material.

Order matters: the policy looks at the question first (an injection or a sensitive topic
escalates whatever material exists), then the language (no material in it), then
retrieval (nothing fits well enough). Declining produces the escalation record for the
sink and the honest sentences the audience hears, in the question's language.
"""

from __future__ import annotations

from dataclasses import dataclass

from townhall.server.clone.brain.answer import AnswerPart, Escalation, EscalationSink, deliver
from townhall.server.clone.brain.language import detect_language
from townhall.server.clone.brain.policy import (
    BACKEND_ERROR,
    GENERATED_VIOLATION,
    LANGUAGE_UNSUPPORTED,
    NO_MATERIAL,
    Policy,
)
from townhall.server.clone.brain.retrieval import Retrieval, Retriever
from townhall.server.clone.persona import Persona

MAX_QUESTION_CHARS = 4000

# Which of the persona's messages answers which reason (anything else: "escalated").
_MESSAGE_FOR_REASON = {
    NO_MATERIAL: "no_material",
    GENERATED_VIOLATION: "stopped",
    BACKEND_ERROR: "stopped",
    LANGUAGE_UNSUPPORTED: "language_unsupported",
}


@dataclass(frozen=True, slots=True)
class Decline:
    """Do not answer: why, and the question's language."""

    reason: str
    detail: str
    language: str


@dataclass(frozen=True, slots=True)
class Proceed:
    """Answer from ``retrieval.hits``, in ``language`` (the question's)."""

    language: str
    retrieval: Retrieval


class Gate:
    """Policy, language and retrieval checks shared by every brain."""

    def __init__(self, persona: Persona, policy: Policy, retriever: Retriever) -> None:
        self.persona = persona
        self.policy = policy
        self.retriever = retriever

    def decide(
        self, question: str, language: str | None = None, *, limit: int = 3
    ) -> Decline | Proceed:
        text = validate_question(question)
        lang = language or detect_language(text, default=self.persona.default_language)
        verdict = self.policy.check_question(text)
        if verdict is not None:
            return Decline(verdict.reason, verdict.detail, lang)
        if lang not in self.persona.languages:
            return Decline(LANGUAGE_UNSUPPORTED, f"question detected as {lang!r}", lang)
        retrieval = self.retriever.find(text, lang, limit=limit)
        if not retrieval.hits:
            return Decline(NO_MATERIAL, "no approved statement fits well enough", lang)
        return Proceed(lang, retrieval)

    def decline_parts(self, reason: str, language: str) -> list[AnswerPart]:
        """What the audience hears instead of an answer, in the question's language.

        In a language the persona has no material in, it says so in each of its languages.
        """
        key = _MESSAGE_FOR_REASON.get(reason, "escalated")
        if reason == LANGUAGE_UNSUPPORTED or language not in self.persona.languages:
            langs = self.persona.languages
        else:
            langs = (language,)
        return [
            AnswerPart(self.persona.message(lang, key), "escalated", (), lang) for lang in langs
        ]

    async def escalate(
        self,
        sink: EscalationSink | None,
        question: str,
        reason: str,
        language: str,
        *,
        detail: str = "",
        backend: str = "embedded",
        sources: tuple[str, ...] = (),
        partial_answer: str = "",
    ) -> list[AnswerPart]:
        """Record the escalation through the sink, then return the parts to say."""
        record = Escalation(
            question=question,
            reason=reason,
            language=language,
            detail=detail,
            backend=backend,
            sources=sources,
            partial_answer=partial_answer,
        )
        await deliver(sink, record)
        return self.decline_parts(reason, language)


def validate_question(question: str) -> str:
    """The question stripped; a clear error for what no brain should be asked."""
    if not isinstance(question, str):
        raise TypeError(f"question must be a string, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise ValueError("empty question")
    if len(text) > MAX_QUESTION_CHARS:
        raise ValueError(f"question too long ({len(text)} characters, max {MAX_QUESTION_CHARS})")
    return text
