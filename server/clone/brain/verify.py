"""Verifying one generated sentence against the statements it cites, before it is spoken.

A model may cite a statement and still say something else. So each cited sentence is
held to what those statements say: every number (digits or words, en/uk/ru), date, name
and place in it must occur in them (:mod:`.facts`); in the statements' own language most
of its content words must come from them (a sentence that says something new is not
backed, however it is worded); and a classifier trained on examples of commitments
(promises, guarantees, new rules, announced decisions, in any wording) against the
persona's approved statements and neutral sentences catches a sentence that commits the
leader. Facts and grounding cut the sentence; a commitment stops the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from townhall.server.clone.brain.facts import dates, known_words, name_known, names, numbers
from townhall.server.clone.brain.intent import EXAMPLES_DIR, IntentClassifier, load_examples
from townhall.server.clone.brain.sentences import split_sentences
from townhall.server.clone.brain.text import content_words, stem
from townhall.server.clone.persona import Persona, Statement

SENTENCE_LABELS = ("commitment", "statement")
SENTENCE_EXAMPLES = EXAMPLES_DIR / "sentences"
#: A sentence is a commitment from this probability on.
COMMITMENT_AT = 0.5
#: At least this share of a sentence's content words must occur in its cited statements.
GROUNDED_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Finding:
    """Why a sentence may not be spoken; ``stop``: the answer stops (else it is cut)."""

    detail: str
    stop: bool = False


class SentenceVerifier:
    """Checks drafted sentences of one persona against their cited statements."""

    def __init__(self, persona: Persona) -> None:
        self.persona = persona
        self._always_known = known_words(f"{persona.name} {persona.company}")
        self.commitments = commitment_classifier(
            tuple(s.text for s in persona.statements),
            str(persona.path / "intents" / "sentences") if persona.path else "",
        )

    def check(self, sentence: str, cited: Sequence[Statement], language: str) -> Finding | None:
        """``None`` when the sentence may be spoken (a commitment is the graver finding)."""
        return self.commitment(sentence) or self.unsupported(sentence, cited, language)

    def commitment(self, sentence: str) -> Finding | None:
        """The sentence commits the leader to something (the classifier's judgment)."""
        intent = self.commitments.classify(sentence)
        if intent.probabilities.get("commitment", 0.0) >= COMMITMENT_AT:
            return Finding(f"commitment ({intent.describe()})", stop=True)
        return None

    def unsupported(
        self, sentence: str, cited: Sequence[Statement], language: str
    ) -> Finding | None:
        """A number, date, name or place, or most of the words, not in the cited statements."""
        source = " ".join(s.text for s in cited)
        new_numbers = numbers(sentence) - numbers(source)
        if new_numbers:
            return Finding(f"number {', '.join(sorted(new_numbers))} not in {_ids(cited)}")
        new_dates = dates(sentence) - dates(source)
        if new_dates:
            return Finding(f"date {', '.join(sorted(new_dates))} not in {_ids(cited)}")
        known = known_words(source) | self._always_known
        new_names = sorted(n for n in names(sentence) if not name_known(n, known))
        if new_names:
            return Finding(f"name {', '.join(new_names)} not in {_ids(cited)}")
        if all(s.language == language for s in cited):
            share = grounded_share(sentence, source)
            if share < GROUNDED_SHARE:
                return Finding(f"only {share:.0%} of its words are in {_ids(cited)}")
        return None


def grounded_share(sentence: str, source: str) -> float:
    """The share of the sentence's content words whose stem occurs in the source."""
    mine = [stem(w) for w in content_words(sentence)]
    if not mine:
        return 1.0
    theirs = {stem(w) for w in content_words(source)}
    prefixes = {w[:5] for w in theirs if len(w) >= 5}

    def backed(word: str) -> bool:
        return word in theirs or (len(word) >= 5 and word[:5] in prefixes) or word.isdigit()

    return sum(1 for w in mine if backed(w)) / len(mine)


def _ids(cited: Sequence[Statement]) -> str:
    return ", ".join(s.id for s in cited) or "no statement"


@lru_cache(maxsize=8)
def commitment_classifier(approved: tuple[str, ...], persona_dir: str) -> IntentClassifier:
    """Commitments against neutral sentences and the persona's approved sentences."""
    examples = load_examples(SENTENCE_EXAMPLES, SENTENCE_LABELS)
    if persona_dir:
        examples.extend(load_examples(Path(persona_dir), SENTENCE_LABELS))
    examples.extend((s, "statement") for text in approved for s in split_sentences(text))
    return IntentClassifier.train(examples, SENTENCE_LABELS)
