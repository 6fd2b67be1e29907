"""The decision every backend makes before answering: decline, or go ahead with material.

Order matters. First the keyword floor (:class:`Policy`: unmistakable sensitive words,
injection patterns, de-obfuscated; a word of two meanings such as "burnout" escalates
too, unless the judge is sure the question is harmless: cross-validated on the examples,
a harmless intent of at least 0.9 with risk under 0.1 took 2 of 461 held-out escalating
examples for harmless, which is why only those words, not the whole floor, may be
overruled), then the judge, the intent classifier
(:mod:`.intent`): a question that is likely sensitive, a request for a commitment or an
injection escalates whatever material exists. Sensitive means both readings of the
question agree (whole, and without its frame words); the whole reading's risk counts in
full only once the content shows some evidence (``EVIDENCE_FLOOR``), so a sensitive shape
around a harmless subject ("will there be a quiz night again?") is not escalated. A
question of middling risk escalates unless an approved statement covers it well (a
paraphrased sensitive question is rarely covered by the leader's statements; an ordinary
one with a word in common with sensitive ones usually is); a question whose content
alone reads sensitive is never waved through as merely off-topic. Then the language (no
material in it: declined and recorded, unless the judge found some risk in it: then
escalated, since no statement could cover it; a question about the clone in a
disclosure-only language of the persona, such as the sample's
Russian, is answered in it from the disclosure), a
question about the clone itself (answered from the disclosure), then retrieval (nothing
fits well enough: a knowledge gap; a question with some risk, or most likely off
topic, that a statement fits only weakly: a knowledge gap too, never a loosely related
statement). Declining produces the escalation record for the
sink and the honest sentences the audience hears, in the question's language.
"""

from __future__ import annotations

from dataclasses import dataclass

from townhall.server.clone.brain.answer import AnswerPart, Escalation, EscalationSink, deliver
from townhall.server.clone.brain.intent import CLASSIFIED_LANGUAGES, Intent, IntentClassifier
from townhall.server.clone.brain.language import detect_language
from townhall.server.clone.brain.policy import (
    BACKEND_ERROR,
    COMMITMENT_REQUEST,
    GENERATED_VIOLATION,
    INJECTION,
    LANGUAGE_UNSUPPORTED,
    NO_MATERIAL,
    SENSITIVE_TOPIC,
    Policy,
)
from townhall.server.clone.brain.retrieval import Retrieval, Retriever
from townhall.server.clone.persona import Persona

MAX_QUESTION_CHARS = 4000
#: Escalate whatever the material when the escalating intents are this likely together.
RISK_CERTAIN = 0.8
#: Escalate from this risk on, unless a statement covers the whole question.
RISK_HIGH = 0.6
#: The whole question's risk (its shape with its content) is judged by the thresholds
#: above only once its content alone is at least this likely sensitive; below it, the
#: shape alone is no evidence and only the risk both readings agree on counts.
EVIDENCE_FLOOR = 0.2
FULLY_COVERED = 0.95
#: A question whose content alone is this likely sensitive is never "plainly about
#: something else": an unknown word ("маржа на контрактах") may make the whole reading
#: lean off-topic, but what it asks about is a sensitive matter.
CONTENT_SENSITIVE = 0.5
#: Escalate from this risk on, unless a statement covers the question at least ``COVERED``.
RISK_LOW = 0.25
COVERED = 0.6
#: From this risk on, a statement must cover the question at least ``COVERED`` to be said;
#: a weaker fit is a knowledge gap. Chosen on the train part of the judgment set: once the
#: examples held more harmless questions with words of two meanings, their risk fell below
#: the former 0.1 and a weak fit ("a fire alarm test in the office" to the statement on
#: offices) would have been said; once a sensitive verdict needed evidence in the
#: question's content too (:mod:`.intent`), below the former 0.05, then 0.03; back to 0.05
#: once the classifier was regularised more (its probabilities less extreme: at 0.03, seven
#: answerable questions of the train part became gaps; at 0.08 the fire alarm test is
#: answered with the statement on offices).
RISK_SOME = 0.05
#: A question most likely off-topic is answered only when a statement covers this much of
#: it: one shared word ("laptop", "learn", "office") is not an answer.
OFF_TOPIC_COVERED = 0.8
#: A word of two meanings matched by the keyword floor is overruled only when a harmless
#: intent is at least this likely (and the risk below ``RISK_SOME``).
HARMLESS_SURE = 0.9

_REASON_FOR_INTENT = {
    "sensitive": f"{SENSITIVE_TOPIC}:intent",
    "commitment": COMMITMENT_REQUEST,
    "injection": INJECTION,
}

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
    """Answer from ``retrieval.hits``, in ``language`` (the question's).

    ``about_clone``: the question is about the clone itself; the answer starts with the
    persona's disclosure (``retrieval`` may then be empty).
    """

    language: str
    retrieval: Retrieval
    about_clone: bool = False


class Gate:
    """Policy, language and retrieval checks shared by every brain."""

    def __init__(
        self,
        persona: Persona,
        policy: Policy,
        retriever: Retriever,
        classifier: IntentClassifier | None = None,
    ) -> None:
        self.persona = persona
        self.policy = policy
        self.retriever = retriever
        extra = (persona.path / "intents",) if persona.path is not None else ()
        self.classifier = classifier or IntentClassifier.for_directories(*extra)

    def decide(
        self, question: str, language: str | None = None, *, limit: int = 3
    ) -> Decline | Proceed:
        text = validate_question(question)
        lang = language or detect_language(text, default=self.persona.default_language)
        verdict = self.policy.check_question(text)
        intent = None
        if verdict is not None and verdict.soft and lang in CLASSIFIED_LANGUAGES:
            intent = self.classifier.classify(text)
            if not _confidently_harmless(intent):
                return Decline(verdict.reason, f"{verdict.detail}; {intent.describe()}", lang)
        elif verdict is not None:
            return Decline(verdict.reason, verdict.detail, lang)
        if intent is None and lang in CLASSIFIED_LANGUAGES:
            intent = self.classifier.classify(text)
        if intent is not None and self._escalates(intent, text, lang):
            detail = f"intent: {intent.describe()}"
            return Decline(_REASON_FOR_INTENT[intent.escalating], detail, lang)
        if lang not in self.persona.languages:
            if (
                intent is not None
                and intent.name == "about_clone"
                and intent.risk < RISK_LOW
                and self.persona.speaks_about_itself_in(lang)
            ):
                # A disclosure-only language: what the clone is, said in it; nothing else.
                return Proceed(lang, Retrieval((), lang), about_clone=True)
            return Decline(LANGUAGE_UNSUPPORTED, f"question detected as {lang!r}", lang)
        retrieval = self.retriever.find(text, lang, limit=limit)
        if intent is not None and intent.name == "about_clone":
            return Proceed(lang, _about_clone(retrieval), about_clone=True)
        if (
            intent is not None
            and intent.name == "off_topic"
            and not _covered(retrieval, OFF_TOPIC_COVERED)
        ):
            return Decline(NO_MATERIAL, f"off topic ({intent.describe()})", lang)
        if not retrieval.hits:
            return Decline(NO_MATERIAL, "no approved statement fits well enough", lang)
        if intent is not None and intent.risk >= RISK_SOME and not _covered(retrieval):
            # The safe fallback: a weak fit is no answer to a question with any risk in it.
            detail = f"weak fit ({retrieval.hits[0].confidence:.2f}) for {intent.describe()}"
            return Decline(NO_MATERIAL, detail, lang)
        return Proceed(lang, retrieval)

    def _escalates(self, intent: Intent, text: str, language: str) -> bool:
        """Likely enough sensitive, a commitment or an injection (see the module docstring)."""
        if intent.risk >= RISK_CERTAIN:
            return True
        # The whole question's risk counts once its content shows evidence of a sensitive
        # topic; without it, a sensitive shape is no evidence (:mod:`.intent`).
        evidence = intent.content_sensitive >= EVIDENCE_FLOOR
        risk = max(intent.risk, intent.shape_risk) if evidence else intent.risk
        if risk >= RISK_HIGH:
            return not _covered(self.retriever.find(text, language), FULLY_COVERED)
        if risk < RISK_LOW:
            return False
        if language not in self.persona.languages:
            # No statement can cover it: a question of some risk in a language without
            # material is the leader's to see (escalated), not merely declined for its
            # language; but when the risk is a sensitive shape with nothing sensitive in
            # what it asks about, it is declined like any other question in that language.
            return intent.escalating != "sensitive" or evidence
        # Plainly about something else: a gap or the disclosure, not a secret. Asking what
        # the clone was told not to say is about the clone *and* an injection: escalates;
        # so does a question whose content alone reads sensitive.
        other = intent.probabilities.get(intent.name, 0.0)
        injection = intent.probabilities.get("injection", 0.0)
        plain = injection < 0.25 and intent.content_sensitive < CONTENT_SENSITIVE
        if intent.name in ("off_topic", "about_clone") and other > risk and plain:
            return False
        return not _covered(self.retriever.find(text, language))

    def decline_parts(
        self, reason: str, language: str, *, midway: bool = False
    ) -> list[AnswerPart]:
        """What the audience hears instead of an answer, in the question's language.

        In a language the persona has no material in, it says so in each of its languages;
        ``midway`` (part of an answer was said): that it stops there.
        """
        key = "stopped" if midway else _MESSAGE_FOR_REASON.get(reason, "escalated")
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
        return self.decline_parts(reason, language, midway=bool(partial_answer))


def _confidently_harmless(intent: Intent) -> bool:
    """The judge overrules a word of two meanings ("burnout from on-call") only when it is
    sure: a harmless intent at least :data:`HARMLESS_SURE` likely, and almost no risk."""
    harmless = intent.name not in _REASON_FOR_INTENT
    sure = intent.probabilities.get(intent.name, 0.0) >= HARMLESS_SURE
    return harmless and sure and intent.risk < RISK_SOME


def _covered(retrieval: Retrieval, share: float = COVERED) -> bool:
    """An approved statement covers ``share`` of the question (in any persona language)."""
    return bool(retrieval.hits) and retrieval.hits[0].confidence >= share


def _about_clone(retrieval: Retrieval) -> Retrieval:
    """The leader's own statement about the clone (tagged ``clone``), if it was found."""
    hits = tuple(h for h in retrieval.hits if "clone" in h.statement.tags)
    return Retrieval(hits[:1], retrieval.language, retrieval.cross_language)


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
