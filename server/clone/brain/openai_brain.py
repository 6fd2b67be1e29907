"""The OpenAI-compatible brain: a streamed chat completion grounded on approved statements.

Any server that speaks the chat completions API works (``base_url``). The same gate as
the embedded brain runs first, so an injected or sensitive question, or one with no
fitting material, never reaches the model. The model sees only the retrieved statements
(with ids) and the question as quoted data. Its text is split into sentences as it
streams; each sentence has its citations stripped into ``sources`` (only ids it was
given) and passes the policy before it is yielded, so a sentence that breaks the rules is
never spoken: the answer stops there, with an escalation. A sentence that cites no
statement it was given, or is in another language than the answer, is dropped (never
credited to the statements); claims to be human or to be the leader stop the answer.
When more sentences were dropped than kept, or none is left, the question escalates.
With a guard model (:mod:`.guard`), the question and then each sentence that passed are
also judged by it before anything is said; it fails closed.

If the API fails (HTTP error, refused connection, timeout) before anything was said, the
embedded brain's approved answer is given instead, so the audience still gets an answer;
if it fails mid-answer, the clone says it stops there and the question is escalated
(``backend_error``). Failures are logged and counted in ``fallbacks``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, cast

import openai

from townhall.server.clone.brain.answer import AnswerPart, EscalationSink
from townhall.server.clone.brain.citations import extract_citations
from townhall.server.clone.brain.embedded import EmbeddedBrain
from townhall.server.clone.brain.gate import Decline, Gate, Proceed
from townhall.server.clone.brain.guard import OpenAIGuard
from townhall.server.clone.brain.language import detect_language
from townhall.server.clone.brain.policy import (
    BACKEND_ERROR,
    GENERATED_VIOLATION,
    NO_MATERIAL,
    Policy,
    Verdict,
)
from townhall.server.clone.brain.prompt import ESCALATE_MARKER, chat_messages
from townhall.server.clone.brain.retrieval import Retriever
from townhall.server.clone.brain.sentences import SentenceSplitter
from townhall.server.clone.brain.verify import SentenceVerifier
from townhall.server.clone.persona import Persona, Statement

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

log = logging.getLogger(__name__)

# A generated sentence claiming to be a person, or the leader, is never spoken.
_HUMAN_CLAIM_RE = re.compile(
    r"\b(i am|i'm|im)( really| actually)? (not (an? )?(ai|bot|clone|machine|program)\b|"
    r"(an? )?(real|human|living) (person|human|being)|human\b|the real\b|dana\b)|"
    r"\bthis is( really)? dana\b|\bnot an? (ai|bot|clone)\b|"
    r"\bя( справді)? (не (бот|клон|ші|машина|програма)|(справжня|жива) (людина|дана)|дана\b)|"
    r"\bце( справді)? (я, )?дана\b",
    re.IGNORECASE,
)


class _Dropped:
    """A generated sentence that is not spoken (uncited, or in another language)."""

    def __init__(self, why: str) -> None:
        self.why = why


class OpenAIBrain:
    """Generated answers (``generated``, with sources) from an OpenAI-compatible API."""

    backend = "openai"

    def __init__(
        self,
        base_url: str | None,
        api_key: str,
        model: str,
        persona: Persona,
        retriever: Retriever | None = None,
        *,
        policy: Policy | None = None,
        on_escalation: EscalationSink | None = None,
        fallback: EmbeddedBrain | None = None,
        timeout_s: float = 20.0,
        max_retries: int = 0,
        temperature: float = 0.3,
        max_tokens: int = 400,
        max_statements: int = 4,
        client: openai.AsyncOpenAI | None = None,
        guard: OpenAIGuard | None = None,
    ) -> None:
        if not model:
            raise ValueError("model is required")
        self.persona = persona
        self.model = model
        self.retriever = retriever or Retriever.from_persona(persona)
        self.policy = policy or Policy.for_persona(persona)
        self.gate = Gate(persona, self.policy, self.retriever)
        self.verifier = SentenceVerifier(persona)
        self.on_escalation = on_escalation
        self.fallback = fallback or EmbeddedBrain(
            persona, self.retriever, self.policy, on_escalation=on_escalation
        )
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_statements = max_statements
        # Retries are off by default: on stage, an answer from the fallback now beats a
        # generated one after back-off.
        self.client = client or openai.AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=max_retries
        )
        self.guard = guard
        self.fallbacks = 0
        self.last_error: Exception | None = None

    async def aclose(self) -> None:
        await self.client.close()
        if self.guard is not None:
            await self.guard.aclose()

    async def stream(
        self, question: str, *, language: str | None = None
    ) -> AsyncIterator[AnswerPart]:
        decision = self.gate.decide(question, language, limit=self.max_statements)
        if isinstance(decision, Decline):
            for part in await self._escalate(
                question, decision.reason, decision.language, decision.detail
            ):
                yield part
            return
        if self.guard is not None:
            verdict = await self.guard.check_question(question)
            if not verdict.safe:
                for part in await self._escalate(
                    question, verdict.reason, decision.language, verdict.detail
                ):
                    yield part
                return
        if decision.about_clone:
            # About the clone: the disclosure and the leader's words, never generated.
            for part in self.fallback.answer_parts(decision, question):
                yield part
            return
        async for part in self._generate(question, decision):
            yield part

    async def _generate(self, question: str, decision: Proceed) -> AsyncIterator[AnswerPart]:
        statements = [h.statement for h in decision.retrieval.hits]
        allowed = tuple(s.id for s in statements)
        language = decision.language
        said: list[str] = []
        dropped: list[str] = []
        messages = chat_messages(self.persona, statements, question, language)
        try:
            stream = await self.client.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", messages),
                stream=True,
                temperature=self.temperature,
                max_tokens=self.max_tokens,
            )
            try:
                async with aclosing(_sentences(stream)) as sentences:
                    async for sentence in sentences:
                        part = self._check(sentence, statements, language)
                        if isinstance(part, _Dropped):
                            dropped.append(part.why)
                            if len(dropped) >= 2 and len(dropped) > len(said):
                                part = Verdict(
                                    GENERATED_VIOLATION,
                                    f"too little left: {len(dropped)} sentences dropped "
                                    f"({'; '.join(dropped)})",
                                )
                            else:
                                continue
                        if isinstance(part, AnswerPart):
                            part = await self._guard_sentence(question, part, statements)
                        if isinstance(part, Verdict):
                            for p in await self._stop(question, part, language, allowed, said):
                                yield p
                            return
                        if part is not None:
                            said.append(part.text)
                            yield part
            finally:
                await stream.close()
        except openai.APIError as err:
            self.fallbacks += 1
            self.last_error = err
            log.warning(
                "brain: %s failed (%s: %s); %s",
                self.model,
                type(err).__name__,
                err,
                "escalating the rest" if said else "answering from approved statements",
            )
            if said:
                verdict = Verdict(BACKEND_ERROR, f"{type(err).__name__}: {err}")
                for p in await self._stop(question, verdict, language, allowed, said):
                    yield p
            else:
                for p in self.fallback.answer_parts(decision):
                    yield p
            return
        if not said:
            verdict = (
                Verdict(GENERATED_VIOLATION, f"no verified sentence ({'; '.join(dropped)})")
                if dropped
                else Verdict(NO_MATERIAL, "the model returned no usable text")
            )
            for p in await self._stop(question, verdict, language, allowed, said):
                yield p

    def _check(
        self, sentence: str, given: list[Statement], language: str
    ) -> AnswerPart | Verdict | _Dropped | None:
        """A sentence ready to speak, a reason to stop, one to drop, or ``None`` (empty).

        Everything is checked against the statements the sentence cites, not all it was given.
        """
        if ESCALATE_MARKER in sentence.upper():
            return Verdict(NO_MATERIAL, "the model found nothing in the statements that answers")
        text, cited = extract_citations(sentence, tuple(s.id for s in given))
        if not any(c.isalnum() for c in text):
            return None
        sources = [s for s in given if s.id in cited]
        verdict = self.policy.check_generated(text, " ".join(s.text for s in sources))
        if verdict is not None:
            return Verdict(verdict.reason, f"{verdict.detail} in {text!r}")
        if _HUMAN_CLAIM_RE.search(text):
            return Verdict(GENERATED_VIOLATION, f"claims to be human or the leader in {text!r}")
        if not cited:
            # Citing nothing, or only ids it was never given: not backed by any statement.
            return _Dropped(f"uncited {text!r}")
        if len(text.split()) >= 3 and detect_language(text, default=language) != language:
            return _Dropped(f"not in {language}: {text!r}")
        finding = self.verifier.check(text, sources, language)
        if finding is not None and finding.stop:
            return Verdict(GENERATED_VIOLATION, f"{finding.detail} in {text!r}")
        if finding is not None:
            return _Dropped(f"{finding.detail}: {text!r}")
        return AnswerPart(text, "generated", cited, language)

    async def _guard_sentence(
        self, question: str, part: AnswerPart, statements: list[Statement]
    ) -> AnswerPart | Verdict:
        """The guard model's word on a sentence that passed every other check."""
        if self.guard is None:
            return part
        cited = [(s.id, s.text) for s in statements if s.id in part.sources]
        verdict = await self.guard.check_sentence(question, part.text, cited)
        if verdict.safe:
            return part
        return Verdict(verdict.reason, f"{verdict.detail} on {part.text!r}")

    async def _stop(
        self,
        question: str,
        verdict: Verdict,
        language: str,
        allowed: tuple[str, ...],
        said: list[str],
    ) -> list[AnswerPart]:
        return await self._escalate(
            question, verdict.reason, language, verdict.detail, allowed, " ".join(said)
        )

    async def _escalate(
        self,
        question: str,
        reason: str,
        language: str,
        detail: str,
        sources: tuple[str, ...] = (),
        partial: str = "",
    ) -> list[AnswerPart]:
        return await self.gate.escalate(
            self.on_escalation,
            question,
            reason,
            language,
            detail=detail,
            backend=self.backend,
            sources=sources,
            partial_answer=partial,
        )


async def _sentences(stream: AsyncIterable[Any]) -> AsyncGenerator[str, None]:
    """Complete sentences from streamed chat completion chunks, as soon as each ends."""
    splitter = SentenceSplitter()
    async for chunk in stream:
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            for sentence in splitter.feed(delta):
                yield sentence
    for sentence in splitter.flush():
        yield sentence
