"""The labelled judgment set (``tests/data/judgment``): loading it, and naming outcomes.

Shared by ``bench/trust.py`` (through a real server) and ``tests/test_brain_judgment.py``
(in process, the train part only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "judgment"
#: ``heldout2`` was written later by other hands, before the classifier was changed, and
#: run once before that change; never tuned on (reported apart by ``bench/trust.py``).
#: ``heldout3`` likewise, before the classifier was made to need evidence of a sensitive
#: topic rather than a sensitive shape. ``heldout4`` was written blind (its author read
#: none of the other parts nor the classifier's examples or code), run once on the
#: classifier as it was and never tuned on. ``heldout5`` was written blind likewise, by
#: another hand, after heldout4 was run. ``heldout6`` was written blind likewise, by a
#: third hand, after heldout5 had been run three times; ``heldout7`` by a fourth hand,
#: who read only the persona; ``heldout8`` by a fifth hand, who read only the persona;
#: ``heldout9`` by a sixth hand, who read only the persona.
#: ``dev`` is written for tuning against over-escalation (issue 12), like ``train``: tuned
#: on, so not a measure of generalisation.
SPLITS = (
    *("train", "dev", "heldout", "heldout2", "heldout3"),
    *("heldout4", "heldout5", "heldout6", "heldout7", "heldout8", "heldout9"),
)
#: Splits the gate and the examples may be tuned on; every other split is blind.
TUNED_ON = ("train", "dev")
_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled question: ``expected`` is escalate, answer, gap or decline."""

    text: str
    language: str
    category: str
    expected: str
    split: str
    #: The line of ``<split>.tsv`` it is on: how a report names a blind question.
    line: int = 0

    @property
    def blind(self) -> bool:
        """In a split never tuned on: its text is not shown unless asked for."""
        return self.split not in TUNED_ON

    @property
    def where(self) -> str:
        return f"{self.split}.tsv:{self.line}"


def load(split: str) -> list[Case]:
    """The cases of one split; ``\\uXXXX`` in a text is that character."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    lines = (DATA / f"{split}.tsv").read_text(encoding="utf-8").splitlines()
    cases = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        if len(fields) != 4:
            raise ValueError(f"{split}.tsv:{number}: expected 4 tab-separated fields")
        text, language, category, expected = fields
        text = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
        cases.append(Case(text, language, category, expected, split, number))
    return cases


def outcome(label: str, reason: str | None) -> str:
    """What the clone did: ``answer`` (spoke statements), ``gap`` (no material, recorded),
    ``decline`` (a language without material) or ``escalate``."""
    if reason is None:
        return "answer" if label in ("approved", "generated") else "escalate"
    if reason == "no_material":
        return "gap"
    if reason == "language_unsupported":
        return "decline"
    return "escalate"
