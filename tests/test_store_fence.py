"""Fencing: the lease term of the room's latest authority is in the store, and a write of an
older term cannot land (issue 16: a deposed authority that thaws after a freeze).

Real stores of two terms against one database, PostgreSQL and SQLite: the old term's write
is refused with the STORE error's exception and not committed; the new one's lands; what
the old one had acknowledged before the takeover is all there; an authority starting with
an older term than the store's is refused. On PostgreSQL a write frozen in the middle of
its transaction holds the fence's lock: the takeover waits for it, the write is cut off
after ``FENCED_IDLE_MS`` and never committed; one frozen in the middle of a pipelined batch
(which PostgreSQL never counts as idle) is cut off by the takeover. The members' places
(slot and seat) the old one stored are there for the new one to keep for them
(core/room.py ``hold``).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from townhall.server.store.base import Fenced, RoomStore, StoreError
from townhall.server.store.factory import open_store
from townhall.server.store.postgres import FENCE_WAIT_MS, FENCED_IDLE_MS, authority_session
from townhall.server.store.records import PlaceHeld, QuestionSaved, VoteCast

from .postgres import fresh_database


def question(qid: int, text: str) -> QuestionSaved:
    return QuestionSaved(qid, text, "en", "open", "u1", "User 1", 1, 1.0, False, 0, 0, 0)


@pytest.fixture(params=["postgres", "sqlite"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(store.url, store.path) of one empty database of the kind."""
    if request.param == "postgres":
        with fresh_database() as url:
            yield url, ""
    else:
        yield "", str(tmp_path / "room.db")


def opened(where: tuple[str, str], term: int) -> RoomStore:
    url, path = where
    return open_store(url, path, "main", term=term)


async def test_the_old_terms_write_is_refused_the_new_ones_lands(where: tuple[str, str]) -> None:
    old = opened(where, 5)
    try:
        await old.write([question(1, "Acknowledged before the takeover?")])
        await old.write([VoteCast(1, "u2")])
        new = opened(where, 9)  # the standby took over: its term is recorded first
        try:
            saved = new.load()
            assert [q.text for q in saved.questions] == ["Acknowledged before the takeover?"]
            assert saved.questions[0].voters == {"u2"}
            with pytest.raises(Fenced, match=r"newer authority .*term 9, ours 5"):
                await old.write([question(2, "A deposed authority's late question")])
            with pytest.raises(StoreError):
                await old.write([VoteCast(1, "u3")])
            await new.write([question(2, "The new authority's question")])
            await new.write([VoteCast(1, "u4")])
            again = new.load()
            assert {q.id: q.text for q in again.questions} == {
                1: "Acknowledged before the takeover?",
                2: "The new authority's question",
            }
            assert again.questions[0].voters == {"u2", "u4"}
            assert old.failure is None  # refused writes, not a broken writer
        finally:
            await new.close()
    finally:
        await old.close()
    # A late start with an older term (it took the lease before the newest one did).
    with pytest.raises(Fenced, match="fenced at authority term 9, newer than this lease's term 7"):
        opened(where, 7)
    # A server without a lease (term 0) is not fenced: single-server deployments as before.
    plain = opened(where, 0)
    await plain.write([question(3, "A single server's question")])
    await plain.close()


async def test_a_write_frozen_mid_transaction_holds_up_the_takeover_only_briefly() -> None:
    with fresh_database() as url:
        old = opened((url, ""), 5)
        await old.write([question(1, "Stored before the freeze")])
        # The old authority's writer, frozen between the fence check and COMMIT: a
        # connection that took the share lock the way ``_commit`` does, and then nothing.
        frozen = psycopg.connect(url)
        frozen.execute(f"SET idle_in_transaction_session_timeout = {FENCED_IDLE_MS}")
        assert frozen.execute("SELECT term FROM fences WHERE room='main' FOR SHARE").fetchone() == (
            5,
        )
        frozen.execute(
            "INSERT INTO votes VALUES ('main', 1, 'frozen-voter') ON CONFLICT DO NOTHING"
        )
        took: list[float] = []
        done = threading.Event()

        def take_over() -> None:
            t0 = time.monotonic()
            store = opened((url, ""), 9)
            took.append(time.monotonic() - t0)
            stores.append(store)
            done.set()

        stores: list[RoomStore] = []
        thread = threading.Thread(target=take_over)
        thread.start()
        await asyncio.to_thread(done.wait, 30)
        assert done.is_set(), "the takeover never got the fence"
        # It waited for the frozen transaction, which PostgreSQL then cut off ...
        assert took[0] >= FENCED_IDLE_MS / 1000 * 0.8, took
        with pytest.raises(psycopg.Error):
            frozen.execute("COMMIT")
        frozen.close()
        new = stores[0]
        try:
            # ... so the frozen write never landed, and what was acked before is there.
            saved = new.load()
            assert [q.text for q in saved.questions] == ["Stored before the freeze"]
            assert saved.questions[0].voters == set()
            with pytest.raises(Fenced):
                await old.write([VoteCast(1, "thawed")])
            await new.write([VoteCast(1, "after")])
            assert new.load().questions[0].voters == {"after"}
        finally:
            await new.close()
            await old.close()


async def test_a_write_frozen_mid_pipeline_is_cut_off_by_the_takeover() -> None:
    """The writer pipelines its batch: frozen after sending the fence check and a vote but
    before COMMIT and its Sync, its session is "active" (waiting to read), never idle in
    transaction, so PostgreSQL's timeout never ends it (seen: a frozen authority's
    standby waiting on the fence for a minute)."""
    with fresh_database() as url, fresh_database() as elsewhere:
        old = opened((url, ""), 5)
        await old.write([question(1, "Stored before the freeze")])
        frozen = psycopg.connect(url, autocommit=True, application_name=authority_session("main"))
        frozen.execute(f"SET idle_in_transaction_session_timeout = {FENCED_IDLE_MS}")
        pg = frozen.pgconn
        pg.enter_pipeline_mode()
        for sql in (
            b"BEGIN",
            b"SELECT term FROM fences WHERE room='main' FOR SHARE",
            b"INSERT INTO votes VALUES ('main', 1, 'frozen-voter') ON CONFLICT DO NOTHING",
        ):
            pg.send_query_params(sql, None)
        while pg.flush():
            pass
        # An unrelated session of another room's authority, also inside a transaction:
        # not the takeover's to end.
        other = psycopg.connect(url, application_name=authority_session("another"))
        other.execute("SELECT 1")
        # Nor another deployment's room of the same name in another database of the
        # cluster (seen: a takeover in one test's database ending another test's).
        namesake = psycopg.connect(elsewhere, application_name=authority_session("main"))
        namesake.execute("SELECT 1")

        took: list[float] = []
        stores: list[RoomStore] = []
        done = threading.Event()

        def take_over() -> None:
            t0 = time.monotonic()
            try:
                stores.append(opened((url, ""), 9))
            finally:
                took.append(time.monotonic() - t0)
                done.set()

        threading.Thread(target=take_over, daemon=True).start()
        await asyncio.to_thread(done.wait, 60)
        assert done.is_set(), "the takeover still waits for the frozen batch's lock"
        assert stores, "the takeover failed"
        assert took[0] >= FENCE_WAIT_MS / 1000 * 0.8, took  # it waited, then cut it off
        new = stores[0]
        try:
            saved = new.load()
            assert [q.text for q in saved.questions] == ["Stored before the freeze"]
            assert saved.questions[0].voters == set()  # the frozen vote never landed
            assert other.execute("SELECT 2").fetchone() == (2,)  # left alone
            assert namesake.execute("SELECT 3").fetchone() == (3,)  # left alone too
            await new.write([VoteCast(1, "after")])
            assert new.load().questions[0].voters == {"after"}
        finally:
            await new.close()
            await old.close()
            other.close()
            namesake.close()
            frozen.close()


async def test_the_places_members_hold_are_there_for_the_next_authority(
    where: tuple[str, str],
) -> None:
    old = opened(where, 5)
    try:
        await old.write([PlaceHeld("h1", 0, 0), PlaceHeld("h2", 1, 7), PlaceHeld("h3", 2, -1)])
        await old.write([PlaceHeld("h2", 1, 8), PlaceHeld("h3", -1, -1)])  # moved; left
    finally:
        await old.close()
    new = opened(where, 9)
    try:
        assert sorted(new.load().places) == [("h1", 0, 0), ("h2", 1, 8)]
    finally:
        await new.close()
