"""The leader's approved statements as the room keeps them: newest versions, optimistic saves.

Pure: the shell loads the newest version of every statement from the store at start and
stores what :meth:`StatementBook.save` returns. A save names the version it was based on;
if another save got there first, it is refused with CONFLICT and the current text, so two
operators editing one statement never overwrite each other silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.limits import MAX_STATEMENT_CHARS, MAX_TAGS, clip
from townhall.server.store.records import StatementVersion

ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
TOPIC_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,47}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class StatementBook:
    """The newest version of each statement of one persona."""

    def __init__(
        self, persona: str, languages: tuple[str, ...], versions: Iterable[StatementVersion]
    ) -> None:
        self.persona = persona
        self.languages = languages
        self.current: dict[str, StatementVersion] = {v.id: v for v in versions}

    def get(self, statement_id: str) -> StatementVersion:
        found = self.current.get(statement_id)
        if found is None:
            raise Refused(ErrorCode.NOT_FOUND, f"no statement {statement_id!r}")
        return found

    def next_id(self, prefix: str = "L") -> str:
        """A fresh id for a statement the studio creates (``L1``, ``L2``, ...)."""
        n = 1
        while f"{prefix}{n}" in self.current:
            n += 1
        return f"{prefix}{n}"

    def save(
        self,
        *,
        statement_id: str,
        base_version: int,
        topic: str,
        text: str,
        language: str,
        tags: tuple[str, ...],
        review_by: str,
        translations: tuple[str, ...],
        author: str,
        now: float,
        date: str,
        supersedes: str = "",
        retired: bool = False,
    ) -> StatementVersion:
        """The next version (``base_version`` 0: a new statement); kept in memory at once,
        so a second save based on the same version is refused even before the first is
        stored. Raises :class:`Refused` with a code and a reason."""
        old = self.current.get(statement_id)
        if base_version == 0 and old is not None:
            raise Refused(
                ErrorCode.CONFLICT,
                f"statement {statement_id!r} exists (version {old.version}); "
                f"its text now: {old.text}",
            )
        if base_version > 0 and old is None:
            raise Refused(ErrorCode.NOT_FOUND, f"no statement {statement_id!r}")
        if old is not None and old.version != base_version:
            reason = (
                f"statement {statement_id!r} was changed by {old.author}: it is at version "
                f"{old.version}, you edited version {base_version}; its text now: {old.text}"
            )
            raise Refused(ErrorCode.CONFLICT, clip(reason, 500))
        text = text.strip()
        check(statement_id, topic, text, language, tags, review_by, translations, self.languages)
        version = StatementVersion(
            self.persona, statement_id, (old.version if old else 0) + 1, topic, text, language,
            date, tags, author, now, review_by, translations, supersedes, retired,
        )  # fmt: skip
        self.current[statement_id] = version
        return version

    def undo(self, version: StatementVersion, previous: StatementVersion | None) -> None:
        """The store refused ``version``: the book goes back to ``previous``."""
        if self.current.get(version.id) == version:
            if previous is None:
                del self.current[version.id]
            else:
                self.current[version.id] = previous

    def search(self, query: str) -> list[StatementVersion]:
        """Statements whose id, topic, tags or text contain every word of ``query``."""
        words = query.lower().split()
        found = []
        for v in sorted(self.current.values(), key=lambda v: v.id):
            hay = " ".join((v.id, v.topic, " ".join(v.tags), v.text)).lower()
            if all(w in hay for w in words):
                found.append(v)
        return found


def check(
    statement_id: str,
    topic: str,
    text: str,
    language: str,
    tags: tuple[str, ...],
    review_by: str,
    translations: tuple[str, ...],
    languages: tuple[str, ...],
) -> None:
    """Refused (BAD_MESSAGE) with the first problem found in a statement's fields."""
    problem = ""
    if not ID_RE.match(statement_id):
        problem = f"id {statement_id!r}: a letter, then letters, digits, - or _ (max 32)"
    elif not TOPIC_RE.match(topic):
        problem = f"topic {topic!r}: lower-case letters, digits, - or _"
    elif not text:
        problem = "text is empty"
    elif len(text) > MAX_STATEMENT_CHARS:
        problem = f"text too long ({len(text)} characters, max {MAX_STATEMENT_CHARS})"
    elif language not in languages:
        problem = f"language {language!r} is not one of the persona's ({', '.join(languages)})"
    elif len(tags) > MAX_TAGS or not all(t.strip() for t in tags):
        problem = f"tags: up to {MAX_TAGS} non-empty words"
    elif review_by and not DATE_RE.match(review_by):
        problem = f"review_by {review_by!r} is not a date YYYY-MM-DD"
    elif not all(ID_RE.match(t) for t in translations):
        problem = "translations must be statement ids"
    if problem:
        raise Refused(ErrorCode.BAD_MESSAGE, problem)
