"""The one normaliser: invisible characters removed (not spaced), look-alikes and
leetspeak folded; the Q&A queue and the brain read questions the same way."""

from __future__ import annotations

import pytest

from townhall.server.clone.brain import Policy
from townhall.server.clone.brain.text import words
from townhall.server.core.qa import QaQueue, normalise
from townhall.server.core.textnorm import clean, fold


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("bo\u200bnu\u00adses", "bonuses"),
        ("sal\u2060ary\ufeff review", "salary review"),
        ("a\u202eb", "ab"),  # bidi override
        ("two\tlines\nhere", "two lines here"),
        ("  spaced   out  ", "spaced out"),
    ],
)
def test_clean_removes_invisible_characters_instead_of_spacing_them(text: str, shown: str) -> None:
    assert clean(text) == shown
    assert normalise(text) == shown  # the queue's normaliser is the same one


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("l4y0ffs in Q3", "layoffs in q3"),
        ("s@lary", "salary"),
        ("b\u043enus", "bonus"),  # Cyrillic о
        ("lay\u03bfffs", "layoffs"),  # Greek omicron
        ("3арплату", "зарплату"),
        ("зв1льнення", "звільнення"),
        ("ЗВIЛЬНЕННЯ", "звільнення"),  # Latin I
        ("l.a.y.o.f.f.s", "layoffs"),
        ("B-O-N-U-S-E-S", "bonuses"),
        ("w i l l   t h e r e", "will there"),
        ("Чи будуть с к о р о ч е н н я?", "чи будуть скорочення?"),
    ],
)
def test_fold_undoes_look_alikes_leetspeak_and_spelling_out(text: str, folded: str) -> None:
    assert fold(text) == folded


@pytest.mark.parametrize("text", ["99.9% uptime", "Q3 and Q4", "version 2.5.1", "24/7 support"])
def test_fold_leaves_numbers_alone(text: str) -> None:
    assert fold(text) == text.casefold()


def test_a_queued_question_reaches_the_brain_whole() -> None:
    queue = QaQueue()
    question, _ = queue.submit(
        "Will there be bo\u200bnu\u200bses?", asker_id="a", asker_name="A", now=0.0
    )
    stored = question.text
    assert stored == "Will there be bonuses?"
    assert "bonuses" in words(stored)
    assert Policy().check_question(stored) is not None
