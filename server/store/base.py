"""What every store of room records offers the server: the interface SQLite and PostgreSQL share.

The room hands over records (``store.records``) and awaits their commit; at start and in
/studio it reads them back. ``RoomStore`` spells that out so the server never knows which
database it talks to; ``store.factory.open_store`` picks one from ``store.url``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from townhall.server.core.qa import Question
from townhall.server.store.records import (
    AnswerRecorded,
    EscalationRecorded,
    InboxResolved,
    Record,
    StatementVersion,
)

BAN_PREFIX = "ban:"  # bans live in the settings table, one row per banned user
MUTE_PREFIX = "mute:"  # and mutes, one row per muted user (deleted when unmuted)
SALT_KEY = "attendance:salt"  # the room's secret for pseudonymous attendance ids


class StoreError(RuntimeError):
    """The database could not be opened or written."""


class StoreStopped(StoreError):
    """The store's writer has stopped on a fault: no write can be stored until a restart."""


class Fenced(StoreError):
    """A newer authority of the room has recorded its lease term in the store: this one's
    writes (and a start with an older term) are refused, so a deposed authority that
    thaws after a freeze cannot overwrite what the new one does."""


def fenced(term: int, stored: int | None) -> Fenced:
    if stored is None:
        return Fenced(f"the room's store has no authority term (ours is {term}): write refused")
    return Fenced(
        f"a newer authority of the room holds the store (term {stored}, ours {term}): write refused"
    )


def fence_refused(term: int, stored: int) -> Fenced:
    """Taking over with an older term than the store's (a late start, or a lease bucket
    that was deleted and made again, which restarts the terms)."""
    return Fenced(
        f"the room's store is fenced at authority term {stored}, newer than this lease's "
        f"term {term}: another authority took over later (if the NATS lease bucket was "
        "deleted, delete the room's row in the store's fences table)"
    )


@dataclass(frozen=True)
class Saved:
    """A room's durable state as loaded at startup."""

    questions: list[Question]
    settings: dict[str, str]
    banned: set[str]
    max_answer_id: int
    max_question_id: int
    muted: set[str] = field(default_factory=set)
    places: list[tuple[str, int, int]] = field(default_factory=list)  # holder, slot, seat


class RoomStore(Protocol):
    """One room's durable records. ``write`` resolves only after the commit (never before:
    the server acknowledges on it); ids are the store's, so the ``max_*_id`` reads cover
    every row that mentions one and a new id never repeats an old one."""

    room: str

    @property
    def commits(self) -> int:
        """Transactions committed so far (a group commit takes many writes)."""

    @property
    def failure(self) -> str | None:
        """Why the store can take no more writes (None: it can)."""

    def write(self, records: Sequence[Record]) -> asyncio.Future[None]: ...

    async def close(self) -> None: ...

    def load(self) -> Saved: ...

    def load_questions(self) -> list[Question]: ...

    def load_settings(self) -> dict[str, str]: ...

    def max_question_id(self) -> int: ...

    def max_answer_id(self) -> int: ...

    def load_places(self) -> list[tuple[str, int, int]]: ...

    def load_media(self, answer_id: int) -> tuple[bytes, ...]: ...

    def load_inbox(self) -> list[tuple[EscalationRecorded, InboxResolved | None]]: ...

    def load_answer(self, answer_id: int) -> tuple[AnswerRecorded, str] | None: ...

    def load_phase_moves(self) -> list[tuple[float, str]]: ...

    def load_answers(self) -> list[AnswerRecorded]: ...

    def load_statements(self, persona: str) -> list[StatementVersion]: ...

    def load_all_statements(self, persona: str) -> list[StatementVersion]: ...

    def statement_history(self, persona: str, statement_id: str) -> list[StatementVersion]: ...

    def write_now(self, records: Sequence[StatementVersion]) -> None: ...


def saved_from(store: RoomStore) -> Saved:
    """Everything a room needs back after a restart, from any store."""
    settings = store.load_settings()
    bans = {k[len(BAN_PREFIX) :] for k in settings if k.startswith(BAN_PREFIX)}
    mutes = {k[len(MUTE_PREFIX) :] for k in settings if k.startswith(MUTE_PREFIX)}
    skip = (BAN_PREFIX, MUTE_PREFIX, "attendance:")
    plain = {k: v for k, v in settings.items() if not k.startswith(skip)}
    return Saved(
        store.load_questions(),
        plain,
        bans,
        store.max_answer_id(),
        store.max_question_id(),
        mutes,
        store.load_places(),
    )


def pseudonym(salt: str, user_id: str) -> str:
    """A stable id that does not reveal the user's: HMAC-SHA256 keyed by the room's salt."""
    digest = hmac.new(salt.encode(), user_id.encode(), hashlib.sha256).hexdigest()
    return f"anon-{digest[:16]}"


def pack_packets(packets: Sequence[bytes]) -> bytes:
    """Payloads as one blob: each a 4-byte big-endian length, then its bytes."""
    return b"".join(len(p).to_bytes(4, "big") + p for p in packets)


def unpack_packets(blob: bytes) -> tuple[bytes, ...]:
    out, i = [], 0
    while i + 4 <= len(blob):
        n = int.from_bytes(blob[i : i + 4], "big")
        out.append(bytes(blob[i + 4 : i + 4 + n]))
        i += 4 + n
    return tuple(out)


def settle(future: asyncio.Future[None], error: Exception | None) -> None:
    """Resolve a write's future on its loop (called there by the writer thread)."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
