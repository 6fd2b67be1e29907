"""The room's store, the same tests on SQLite and on PostgreSQL (``open_room_store``): every
record written comes back, writes resolve only once committed, ids never repeat, rooms
sharing a database keep apart, and a write the database refuses fails its caller."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator

import pytest

from townhall.server.core.qa import QaQueue
from townhall.server.store.base import StoreError, StoreStopped
from townhall.server.store.records import (
    ActionRecorded,
    AnswerMedia,
    AnswerRecorded,
    EscalationRecorded,
    InboxResolved,
    SettingSaved,
    StatementVersion,
    UserBanned,
    UserMuted,
    VoteCast,
    VoteWithdrawn,
)

from .conftest import OpenStore


def version(sid: str, n: int, text: str, retired: bool = False) -> StatementVersion:
    return StatementVersion(
        "dana", sid, n, "strategy", text, "en", "2026-01-05", ("plan", "q1"), "comms", 10.0 + n,
        review_by="2027-01-01", translations=("uk",), supersedes="answer:3", retired=retired,
    )  # fmt: skip


async def test_questions_and_votes_round_trip_in_one_group_commit(
    open_room_store: OpenStore,
) -> None:
    store = open_room_store()
    q = QaQueue()
    question, _ = q.submit("What is our plan?", asker_id="u1", asker_name="Ann", now=1.0)
    q.vote(question.id, "u2")
    futures = [store.write([question.record()])]
    futures += [store.write([VoteCast(question.id, v)]) for v in sorted(question.voters)]
    futures.append(store.write([ActionRecorded(1.0, "m", "moderator", "approve", 1, "")]))
    await asyncio.gather(*futures)
    assert store.commits < len(futures)  # batched
    await store.close()
    again = open_room_store()
    loaded = again.load_questions()
    assert len(loaded) == 1
    (back,) = loaded
    assert (back.id, back.text, back.asker_name, back.voters) == (
        question.id,
        "What is our plan?",
        "Ann",
        {"u1", "u2"},
    )
    await again.close()


async def test_every_record_comes_back_as_written(open_room_store: OpenStore) -> None:
    store = open_room_store()
    answer = AnswerRecorded(4, 2, "We grow.", "generated", ("S01", "S02"), "en", 5.0, 9.5, "done")
    escalated = EscalationRecorded(6.0, 3, "Layoffs?", "sensitive", "en", "policy", "I will ask")
    later = EscalationRecorded(7.0, 3, "Layoffs?", "asked again", "en")
    resolved = InboxResolved(8.0, 3, "publish", "No layoffs planned.", "leader", 5)
    await store.write(
        [
            answer,
            escalated,
            later,
            resolved,
            AnswerMedia(4, (b"\x00opus", b"", b"anim\xff")),
            SettingSaved("qa:mode", "moderated"),
            UserBanned("troll"),
            UserMuted("loud", True),
            UserMuted("quiet", True),
            UserMuted("quiet", False),
            ActionRecorded(3.0, "m", "moderator", "control:event", 0, "start", "Mo"),
            ActionRecorded(4.0, "m", "moderator", "control:event", 0, "end", "Mo"),
            version("S01", 1, "We win the mid-market."),
            version("S01", 2, "We win Europe."),
            version("S02", 1, "Old.", retired=True),
        ]
    )
    assert store.load_answers() == [answer]
    assert store.load_answer(4) == (answer, "")
    assert store.load_answer(99) is None
    assert store.load_media(4) == (b"\x00opus", b"", b"anim\xff")
    assert store.load_media(5) == ()
    assert store.load_inbox() == [(later, resolved)]  # the latest escalation per question
    assert store.load_phase_moves() == [(3.0, "start"), (4.0, "end")]
    saved = store.load()
    assert saved.settings == {"qa:mode": "moderated"}
    assert (saved.banned, saved.muted) == ({"troll"}, {"loud"})
    assert saved.max_answer_id == 4 and saved.max_question_id == 3
    assert [v.text for v in store.load_statements("dana")] == ["We win Europe.", "Old."]
    assert store.load_statements("dana")[1].retired
    assert [v.version for v in store.load_all_statements("dana")] == [1, 2, 1]
    assert store.statement_history("dana", "S01") == [
        version("S01", 1, "We win the mid-market."),
        version("S01", 2, "We win Europe."),
    ]
    assert store.load_statements("other") == []
    await store.close()


async def test_new_ids_start_after_every_id_a_stored_row_mentions(
    open_room_store: OpenStore,
) -> None:
    store = open_room_store()
    await store.write([VoteCast(7, "u1")])  # a vote whose question row was lost
    await store.write([ActionRecorded(1.0, "m", "moderator", "reject", 9, "")])
    await store.write([VoteWithdrawn(7, "u1")])
    await store.close()
    again = open_room_store()
    saved = again.load()
    assert saved.max_question_id == 9 and saved.max_answer_id == 0
    await again.close()


async def test_rooms_sharing_a_database_keep_apart(open_room_store: OpenStore) -> None:
    main, other = open_room_store("main"), open_room_store("other")
    q = QaQueue()
    question, _ = q.submit("Only in main?", asker_id="u1", asker_name="Ann", now=1.0)
    await main.write([question.record(), SettingSaved("qa:mode", "auto"), UserBanned("x")])
    assert [x.text for x in main.load_questions()] == ["Only in main?"]
    assert other.load_questions() == [] and other.load().settings == {}
    assert other.load().banned == set() and other.load().max_question_id == 0
    await main.close()
    await other.close()


async def test_a_refused_write_fails_its_caller_and_the_rest_of_its_commit(
    open_room_store: OpenStore,
) -> None:
    store = open_room_store()
    first = InboxResolved(8.0, 3, "publish", "Yes.", "leader", 5)
    await store.write([first])
    with pytest.raises(StoreError):  # one answer per question: never overwritten
        await store.write([SettingSaved("k", "v"), InboxResolved(9.0, 3, "post", "No.", "x")])
    assert "k" not in store.load_settings()  # nothing of the refused transaction
    await store.write([SettingSaved("k", "v")])  # and the store goes on
    assert store.load_settings()["k"] == "v"
    assert store.load_inbox() == []  # no escalation: an answer alone is not listed
    await store.close()


async def test_a_statement_version_is_written_once(open_room_store: OpenStore) -> None:
    store = open_room_store()
    store.write_now([version("S01", 1, "First.")])
    with pytest.raises(StoreError):
        await store.write([version("S01", 1, "Overwritten?")])
    assert [v.text for v in store.load_all_statements("dana")] == ["First."]
    await store.close()


def stop_the_writer(store: object) -> tuple[threading.Event, threading.Event]:
    """Make the store's writer fail with a fault that is no database error (a bug, say) in
    the middle of a transaction: once ``release`` is set, after telling ``started`` it holds
    a batch, it writes that batch's first rows and then raises."""
    started, release = threading.Event(), threading.Event()
    commit = store._writer.commit  # type: ignore[attr-defined]

    def broken(batch: list[list[object]]) -> None:
        started.set()
        release.wait()

        def ops() -> Iterator[object]:
            yield from batch[0]
            raise ZeroDivisionError("a fault in the writer")

        commit([ops()])

    store._writer.commit = broken  # type: ignore[attr-defined]
    return started, release


async def test_a_writer_that_dies_fails_every_pending_and_later_write_and_says_so_once(
    open_room_store: OpenStore, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_room_store()
    await store.write([SettingSaved("before", "1")])
    assert store.failure is None
    started, release = stop_the_writer(store)
    held = store.write([SettingSaved("held", "1")])
    await asyncio.to_thread(started.wait)  # the writer holds that batch
    queued = [store.write([SettingSaved(f"queued{n}", "1")]) for n in range(3)]
    release.set()
    for future in [held, *queued]:
        with pytest.raises(StoreStopped, match="ZeroDivisionError: a fault in the writer"):
            await asyncio.wait_for(future, 20)  # an answer, not a hang
    for n in range(3):
        with pytest.raises(StoreStopped):
            await asyncio.wait_for(store.write([SettingSaved(f"later{n}", "1")]), 20)
    assert store.failure is not None and "ZeroDivisionError" in store.failure
    stopped = [r for r in caplog.records if r.getMessage().startswith("store writer stopped")]
    assert len(stopped) == 1 and stopped[0].levelno == logging.CRITICAL
    assert set(store.load_settings()) & {"held", "queued0", "later0"} == set()
    assert store.load_settings()["before"] == "1"
    again = open_room_store()  # the broken transaction was rolled back: nothing stays locked
    await asyncio.wait_for(again.write([SettingSaved("after", "1")]), 20)
    assert again.load_settings()["after"] == "1"
    await asyncio.wait_for(store.close(), 20)
    await again.close()
