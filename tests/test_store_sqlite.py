"""SQLite's versioned migrations: from an empty file, from the previous version, from a
database made before versioning (its tables already there), and a newer schema refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from townhall.server.store.base import StoreError
from townhall.server.store.sqlite import LATEST, MIGRATIONS, SCHEMA, Store, migrate


def versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as db:
        return [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY 1")]


async def test_an_empty_file_gets_every_migration_once(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await Store(str(path), "main").close()
    assert versions(path) == [n for n, _ in MIGRATIONS] == list(range(1, LATEST + 1))
    await Store(str(path), "main").close()  # a restart applies nothing more
    assert versions(path) == list(range(1, LATEST + 1))


async def test_a_database_of_the_previous_version_is_migrated_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    db = sqlite3.connect(path, isolation_level=None)
    assert migrate(db, upto=LATEST - 1) == LATEST - 1
    db.execute(
        "INSERT INTO actions (room, time, actor_id, actor_role, action, question_id, detail)"
        " VALUES ('main', 1.5, 'm', 'moderator', 'control:event', 0, 'start')"
    )
    db.close()
    store = Store(str(path), "main")
    assert versions(path)[-1] == LATEST
    assert store.load_phase_moves() == [(1.5, "start")]
    with sqlite3.connect(path) as check:
        assert check.execute("SELECT actor_name FROM actions").fetchall() == [("",)]
    await store.close()


async def test_a_database_from_before_versioning_is_taken_as_it_is(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)  # the tables, and the column migration 2 adds, already there
    db.execute("ALTER TABLE actions ADD COLUMN actor_name TEXT NOT NULL DEFAULT ''")
    db.execute("INSERT INTO settings VALUES ('main', 'qa:mode', 'moderated')")
    db.commit()
    db.close()
    store = Store(str(path), "main")
    assert versions(path) == list(range(1, LATEST + 1))
    assert store.load().settings == {"qa:mode": "moderated"}
    await store.close()


async def test_a_schema_newer_than_this_townhall_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await Store(str(path), "main").close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_version VALUES (?, 0)", (LATEST + 1,))
    with pytest.raises(StoreError, match=f"version {LATEST + 1}, newer.*upgrade townhall"):
        Store(str(path), "main")
