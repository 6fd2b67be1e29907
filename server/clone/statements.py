"""Approved statements as the store keeps them, turned into what the brain answers from.

The store holds every version of every statement (``records.StatementVersion``); the brain
needs the persona's current, usable ones. :class:`LiveBrain` wraps a brain and, before each
answer, swaps in the newest versions it was told about that are neither retired nor past
their review-by date, so a running server answers from a change without a restart and an
expired statement falls silent on the day after its review-by date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from townhall.server.clone.brain.answer import AnswerPart
from townhall.server.clone.brain.gate import Gate
from townhall.server.clone.brain.retrieval import Retriever
from townhall.server.clone.persona import Persona, Statement
from townhall.server.store.records import StatementVersion

IMPORT_AUTHOR = "persona import"


def version_of(persona: str, s: Statement, author: str = IMPORT_AUTHOR) -> StatementVersion:
    """A persona folder's statement as the first version in the store."""
    return StatementVersion(
        persona, s.id, 1, s.topic, s.text, s.language, s.date.isoformat(), s.tags, author,
        time.time(), s.review_by.isoformat() if s.review_by else "", s.translations,
    )  # fmt: skip


def statement_of(v: StatementVersion) -> Statement:
    review_by = dt.date.fromisoformat(v.review_by) if v.review_by else None
    return Statement(
        v.id, v.topic, dt.date.fromisoformat(v.date), v.text, v.language, v.tags,
        f"store:{v.id}@{v.version}", review_by, v.translations,
    )  # fmt: skip


def usable(versions: Iterable[StatementVersion], today: str) -> list[StatementVersion]:
    """Not retired and not past review-by (``today`` as YYYY-MM-DD)."""
    return [v for v in versions if not v.retired and (not v.review_by or v.review_by >= today)]


def today_utc() -> str:
    return dt.datetime.now(dt.UTC).date().isoformat()


class LiveBrain:
    """A brain whose statements follow the store (see the module docstring)."""

    def __init__(
        self,
        brain: Any,
        versions: Iterable[StatementVersion],
        today: Callable[[], str] = today_utc,
    ) -> None:
        self.brain = brain
        self.today = today
        self._versions = {v.id: v for v in versions}
        self._in_use: tuple[tuple[str, int], ...] | None = None
        self._refresh()

    @property
    def backend(self) -> str:
        return str(getattr(self.brain, "backend", "embedded"))

    def update(self, versions: Iterable[StatementVersion]) -> None:
        """Newer versions from the store; used from the next answer on."""
        for v in versions:
            old = self._versions.get(v.id)
            if old is None or old.version <= v.version:
                self._versions[v.id] = v

    def _refresh(self) -> None:
        current = sorted(usable(self._versions.values(), self.today()), key=lambda v: v.id)
        key = tuple((v.id, v.version) for v in current)
        if key == self._in_use:
            return
        self._in_use = key
        use_statements(self.brain, tuple(statement_of(v) for v in current))

    async def stream(
        self, question: str, *, language: str | None = None
    ) -> AsyncIterator[AnswerPart]:
        self._refresh()
        async for part in self.brain.stream(question, language=language):
            yield part

    async def aclose(self) -> None:
        close = getattr(self.brain, "aclose", None)
        if close is not None:
            await close()


def use_statements(brain: Any, statements: tuple[Statement, ...]) -> None:
    """Rebuild a brain's retrieval over ``statements``, keeping its policy and classifier."""
    persona: Persona = dataclasses.replace(brain.persona, statements=statements)
    retriever = Retriever.from_persona(persona)
    gate = Gate(persona, brain.policy, retriever, classifier=brain.gate.classifier)
    for target in (brain, getattr(brain, "fallback", None)):
        if target is not None:
            target.persona, target.retriever, target.gate = persona, retriever, gate
