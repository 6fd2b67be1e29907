"""What the clone says about itself: the persona's ``[disclosure.about]`` lines that fit.

Asked "who trains you?", the clone should answer that, not recite everything it could say
about itself. Which intent a question has is the classifier's job; this only picks, among
the persona's few truthful lines about the clone, those that share a content word with the
question (by the stem's first letters), and the first line (whether it is real) when none does.
"""

from __future__ import annotations

from townhall.server.clone.brain.text import content_words, stem
from townhall.server.clone.persona import Persona

ROOT = 5
SHORTEST = 4
#: Russian function words (the shared stop words are English and Ukrainian): "что" or
#: "ты" in a question says nothing about which line about the clone answers it.
_FUNCTION_WORDS = frozenset(
    "что ты вы тебя тебе вас вам это как кто ли да нет не и а но на по у меня мне мы ещё "
    "есть был была было или".split()
)


def about_clone_lines(persona: Persona, question: str, language: str) -> list[str]:
    """The persona's lines about the clone in ``language`` that fit ``question``."""
    lines = persona.about_clone_for(language)
    if not lines:
        return []
    asked = _roots(question)
    fitting = [text for key, text in lines if _meet(asked, _roots(f"{key} {text}"))]
    return fitting or [lines[0][1]]


def _roots(text: str) -> set[str]:
    """Stems cut to ``ROOT`` letters, so "записуєш" meets "записується" (the stemmer's
    endings differ between persons of a Ukrainian verb)."""
    return {stem(w)[:ROOT] for w in content_words(text, _FUNCTION_WORDS)}


def _meet(asked: set[str], told: set[str]) -> bool:
    """A root in common, or one the start of the other (at least ``SHORTEST`` letters:
    Russian "ошибаешься" stems to "ошиба", "ошибаться" to "ошиб")."""
    return bool(asked & told) or any(
        a.startswith(t) or t.startswith(a)
        for a in asked
        for t in told
        if min(len(a), len(t)) >= SHORTEST
    )
