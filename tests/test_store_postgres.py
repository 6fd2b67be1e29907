"""PostgreSQL's own side of the store: versioned migrations (from an empty database, from the
previous version, two servers at once, a newer schema refused) and one-line errors for a
URL that is wrong or a server that is not there."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import psycopg
import pytest

from townhall.server.store import postgres
from townhall.server.store.base import StoreError
from townhall.server.store.factory import open_store
from townhall.server.store.postgres import LATEST, MIGRATIONS, PostgresStore, migrate
from townhall.server.store.records import SettingSaved

from .postgres import fresh_database


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    return {name for (name,) in rows}


async def test_an_empty_database_gets_every_migration_once(url: str) -> None:
    assert tables(url) == set()
    store = PostgresStore(url, "main")
    await store.close()
    assert versions(url) == [n for n, _ in MIGRATIONS] == list(range(1, LATEST + 1))
    assert {"questions", "votes", "actions", "answers", "settings", "statements"} <= tables(url)
    again = PostgresStore(url, "main")  # a restart applies nothing more
    await again.close()
    assert versions(url) == list(range(1, LATEST + 1))


async def test_a_database_of_the_previous_version_is_migrated_and_keeps_its_rows(
    url: str,
) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        assert migrate(conn, upto=LATEST - 1) == LATEST - 1
        # A row the previous release wrote: no actor_name column yet.
        columns = "room, time, actor_id, actor_role, action, question_id, detail"
        conn.execute(
            f"INSERT INTO actions ({columns}) VALUES"
            " ('main', 1.5, 'm', 'moderator', 'control:event', 0, 'start')"
        )
    store = PostgresStore(url, "main")
    assert versions(url)[-1] == LATEST
    assert store.load_phase_moves() == [(1.5, "start")]
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT actor_name FROM actions").fetchall() == [("",)]
    await store.close()


async def test_two_servers_starting_at_once_migrate_once(url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def start() -> None:
        barrier.wait()
        try:
            stores.append(PostgresStore(url, "main"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        await asyncio.to_thread(t.join)
    assert errors == [] and len(stores) == 3
    assert versions(url) == list(range(1, LATEST + 1))
    salts = {s.load_settings()["attendance:salt"] for s in stores}
    assert len(salts) == 1  # the first to store a salt wins; the others read it
    for s in stores:
        await s.close()


async def test_a_schema_newer_than_this_townhall_is_refused(url: str) -> None:
    store = PostgresStore(url, "main")
    await store.close()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO schema_version VALUES (%s, 0)", (LATEST + 1,))
    with pytest.raises(StoreError, match=f"version {LATEST + 1}, newer.*upgrade townhall"):
        PostgresStore(url, "main")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_unreachable_server_is_one_line_without_the_password() -> None:
    url = f"postgresql://townhall:hunter2@127.0.0.1:{free_port()}/record"
    with pytest.raises(StoreError) as caught:
        open_store(url, "", "main")
    message = str(caught.value)
    assert message.startswith("cannot open database postgresql://townhall@127.0.0.1:")
    assert "Connection refused" in message
    assert "\n" not in message and "hunter2" not in message


def test_a_database_that_does_not_exist_is_one_line(url: str) -> None:
    missing = url.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(StoreError, match=r"cannot open database .*no_such_database_here.*exist"):
        open_store(missing, "", "main")


def test_a_url_that_is_not_postgresql_is_refused() -> None:
    with pytest.raises(StoreError, match="must start with postgresql://"):
        open_store("mysql://root@127.0.0.1/townhall", "", "main")
    with pytest.raises(StoreError, match="cannot open database"):
        open_store("postgresql://127.0.0.1:notaport/x", "", "main")
    assert postgres.where("postgresql://a:secret@h:5/d") == "postgresql://a@h:5/d"


async def test_a_dropped_connection_fails_only_the_write_in_flight(url: str) -> None:
    store = PostgresStore(url, "main")
    await store.write([SettingSaved("before", "1")])
    with psycopg.connect(url, autocommit=True) as admin:  # the server ends our sessions
        ended = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    assert len(ended) == 2  # the writer's and the reader's
    with pytest.raises(StoreError, match="database write failed"):
        await store.write([SettingSaved("lost", "1")])  # never acknowledged
    await store.write([SettingSaved("after", "1")])  # a new connection
    settings = store.load_settings()  # the reader reconnects too
    assert settings["before"] == settings["after"] == "1" and "lost" not in settings
    await store.close()
