"""The default brain: offline, answers only with approved statements, verbatim.

Nothing is generated, so nothing needs checking after the fact: the answer is the best
fitting statement (and a second one when it fits almost as well), sentence by sentence,
labelled ``approved`` with its id. Everything else is an honest escalation. Retrieval
and policy take well under a millisecond, which keeps the time to first audio inside
the budget.

A question in one of the persona's languages with material only in another language
(a Ukrainian question about the mobile app, which Dana only spoke about in English)
gets a fixed honest note in the question's language, then her words in the original
language, labelled ``approved`` with that language, so the voice speaks each part in
its own language. Translating would be generating, which this backend never does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from townhall.server.clone.brain.about import about_clone_lines
from townhall.server.clone.brain.answer import AnswerPart, EscalationSink
from townhall.server.clone.brain.gate import Decline, Gate, Proceed
from townhall.server.clone.brain.policy import Policy
from townhall.server.clone.brain.retrieval import Hit, Retriever
from townhall.server.clone.brain.sentences import split_sentences
from townhall.server.clone.persona import Persona

#: A second statement is added when it scores at least this share of the best one.
SECOND_STATEMENT_RATIO = 0.8


class EmbeddedBrain:
    """Retrieval over approved statements; answers ``approved`` or ``escalated``."""

    backend = "embedded"

    def __init__(
        self,
        persona: Persona,
        retriever: Retriever | None = None,
        policy: Policy | None = None,
        *,
        on_escalation: EscalationSink | None = None,
        max_statements: int = 2,
    ) -> None:
        if max_statements < 1:
            raise ValueError("max_statements must be at least 1")
        self.persona = persona
        self.retriever = retriever or Retriever.from_persona(persona)
        self.policy = policy or Policy.for_persona(persona)
        self.gate = Gate(persona, self.policy, self.retriever)
        self.on_escalation = on_escalation
        self.max_statements = max_statements

    async def stream(
        self, question: str, *, language: str | None = None
    ) -> AsyncIterator[AnswerPart]:
        decision = self.gate.decide(question, language)
        if isinstance(decision, Decline):
            parts = await self.gate.escalate(
                self.on_escalation,
                question,
                decision.reason,
                decision.language,
                detail=decision.detail,
                backend=self.backend,
            )
        else:
            parts = self.answer_parts(decision, question)
        for part in parts:
            yield part

    async def aclose(self) -> None:
        """Nothing to release; here so every brain can be closed the same way."""

    def answer_parts(self, decision: Proceed, question: str = "") -> list[AnswerPart]:
        """The approved answer for a decision to proceed (also the OpenAI brain's fallback)."""
        parts: list[AnswerPart] = []
        if decision.about_clone:
            # Questions about the clone get the truth first: the persona's disclosure, then
            # its answers about the clone ([disclosure.about]: real? trained? recording?).
            lang = decision.language
            said = [self.persona.disclosure_for(lang)]
            said += about_clone_lines(self.persona, question, lang)
            parts.extend(
                AnswerPart(s, "approved", ("disclosure",), lang)
                for text in said
                for s in split_sentences(text)
            )
            if not decision.retrieval.hits:
                return parts
        hits = self.choose(decision.retrieval.hits)
        if decision.retrieval.cross_language:
            note = self.persona.message(decision.language, "other_language")
            ids = tuple(h.statement.id for h in hits)
            parts.append(AnswerPart(note, "approved", ids, decision.language))
        for hit in hits:
            statement = hit.statement
            parts.extend(
                AnswerPart(sentence, "approved", (statement.id,), statement.language)
                for sentence in split_sentences(statement.text)
            )
        return parts

    def choose(self, hits: tuple[Hit, ...]) -> list[Hit]:
        """The best hit, plus runners-up (up to ``max_statements``) on the same topic that
        score nearly as well: never fragments of unrelated statements stitched together
        ("can I use my learning budget?" once got the learning budget *and* "support is
        where we learn")."""
        chosen = [hits[0]]
        for hit in hits[1 : self.max_statements]:
            same_topic = hit.statement.topic == hits[0].statement.topic
            if same_topic and hit.score >= SECOND_STATEMENT_RATIO * hits[0].score:
                chosen.append(hit)
        return chosen
