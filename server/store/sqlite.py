"""Durable room records in SQLite (WAL): questions, votes, moderation, answers, escalations.

Writes go through one writer thread that commits whatever is queued as one
transaction (group commit): thousands of votes a second cost a few fsyncs, and
each caller's future resolves only after its rows are committed, so the server
acknowledges nothing that a kill -9 could lose.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from townhall.server.core.qa import Question

Op = tuple[str, Sequence[Any]]

SCHEMA = """
CREATE TABLE IF NOT EXISTS questions (
    room TEXT NOT NULL, id INTEGER NOT NULL, text TEXT NOT NULL, language TEXT NOT NULL,
    state TEXT NOT NULL, asker_id TEXT NOT NULL, asker_name TEXT NOT NULL,
    asker_slot INTEGER NOT NULL, created REAL NOT NULL, pinned INTEGER NOT NULL,
    rank INTEGER NOT NULL, merged_into INTEGER NOT NULL, answer_id INTEGER NOT NULL,
    PRIMARY KEY (room, id));
CREATE TABLE IF NOT EXISTS votes (
    room TEXT NOT NULL, question_id INTEGER NOT NULL, voter TEXT NOT NULL,
    PRIMARY KEY (room, question_id, voter));
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, time REAL NOT NULL,
    actor_id TEXT NOT NULL, actor_role TEXT NOT NULL, action TEXT NOT NULL,
    question_id INTEGER NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    room TEXT NOT NULL, id INTEGER NOT NULL, question_id INTEGER NOT NULL, text TEXT NOT NULL,
    label TEXT NOT NULL, sources TEXT NOT NULL, language TEXT NOT NULL, started REAL NOT NULL,
    ended REAL NOT NULL, outcome TEXT NOT NULL, PRIMARY KEY (room, id));
CREATE TABLE IF NOT EXISTS escalations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL, time REAL NOT NULL,
    question_id INTEGER NOT NULL, question TEXT NOT NULL, reason TEXT NOT NULL,
    language TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', said TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS settings (
    room TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (room, key));
"""


class StoreError(RuntimeError):
    """The database could not be opened or written."""


def connect(path: str, synchronous: str = "FULL") -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    return conn


class Store:
    """One room's durable records; ``await store.write(ops)`` returns once committed."""

    def __init__(self, path: str, room: str, synchronous: str = "FULL") -> None:
        self.path = path
        self.room = room
        try:
            self._conn = connect(path, synchronous)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        self._queue: queue.SimpleQueue[tuple[list[Op], asyncio.Future[None]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._writer, name="store-writer", daemon=True)
        self._thread.start()
        self.commits = 0

    # ------------------------------------------------------------ writing

    def write(self, ops: list[Op]) -> asyncio.Future[None]:
        """Queue rows for the next group commit; the future resolves when they are durable."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put((ops, future))
        return future

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while True:  # take everything already waiting: one transaction for all
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            error: Exception | None = None
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                for ops, _ in batch:
                    for sql, params in ops:
                        self._conn.execute(sql, params)
                self._conn.execute("COMMIT")
                self.commits += 1
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                error = StoreError(f"database write failed: {exc}")
            for _, future in batch:
                loop = future.get_loop()
                loop.call_soon_threadsafe(_settle, future, error)

    async def close(self) -> None:
        self._queue.put(None)
        await asyncio.to_thread(self._thread.join)
        self._conn.close()

    # ------------------------------------------------------------ rows

    def question_op(self, q: Question) -> Op:
        return (
            "INSERT OR REPLACE INTO questions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                self.room, q.id, q.text, q.language, q.state, q.asker_id, q.asker_name,
                q.asker_slot, q.created, int(q.pinned), q.rank, q.merged_into, q.answer_id,
            ),
        )  # fmt: skip

    def vote_ops(self, q: Question, voters: Iterable[str], up: bool = True) -> list[Op]:
        if up:
            sql = "INSERT OR IGNORE INTO votes VALUES (?,?,?)"
        else:
            sql = "DELETE FROM votes WHERE room=? AND question_id=? AND voter=?"
        return [(sql, (self.room, q.id, v)) for v in voters]

    def action_op(
        self, now: float, actor_id: str, role: str, action: str, question_id: int, detail: str
    ) -> Op:
        return (
            "INSERT INTO actions (room, time, actor_id, actor_role, action, question_id, detail)"
            " VALUES (?,?,?,?,?,?,?)",
            (self.room, now, actor_id, role, action, question_id, detail),
        )

    def answer_op(
        self,
        answer_id: int,
        question_id: int,
        text: str,
        label: str,
        sources: Sequence[str],
        language: str,
        started: float,
        ended: float,
        outcome: str,
    ) -> Op:
        return (
            "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                self.room, answer_id, question_id, text, label, json.dumps(list(sources)),
                language, started, ended, outcome,
            ),
        )  # fmt: skip

    def escalation_op(
        self,
        now: float,
        question_id: int,
        question: str,
        reason: str,
        language: str,
        detail: str = "",
        said: str = "",
    ) -> Op:
        """``detail``: what triggered it; ``said``: what the clone had said before it stopped."""
        return (
            "INSERT INTO escalations"
            " (room, time, question_id, question, reason, language, detail, said)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (self.room, now, question_id, question, reason, language, detail, said),
        )

    def setting_op(self, key: str, value: str) -> Op:
        return ("INSERT OR REPLACE INTO settings VALUES (?,?,?)", (self.room, key, value))

    # ------------------------------------------------------------ reading (startup, export)

    def load_questions(self) -> list[Question]:
        reader = connect(self.path)
        try:
            voters: dict[int, set[str]] = {}
            for qid, voter in reader.execute(
                "SELECT question_id, voter FROM votes WHERE room=?", (self.room,)
            ):
                voters.setdefault(qid, set()).add(voter)
            out = []
            for row in reader.execute(
                "SELECT id, text, language, state, asker_id, asker_name, asker_slot, created,"
                " pinned, rank, merged_into, answer_id FROM questions WHERE room=? ORDER BY id",
                (self.room,),
            ):
                qid, text, lang, state, aid, aname, aslot, created, pinned, rank, merged, ans = row
                out.append(
                    Question(
                        qid, text, lang, aid, aname, aslot, created, state,
                        voters.get(qid, set()), bool(pinned), rank, merged, ans,
                    )
                )  # fmt: skip
            return out
        finally:
            reader.close()

    def load_settings(self) -> dict[str, str]:
        reader = connect(self.path)
        try:
            rows = reader.execute("SELECT key, value FROM settings WHERE room=?", (self.room,))
            return dict(rows.fetchall())
        finally:
            reader.close()

    def max_answer_id(self) -> int:
        reader = connect(self.path)
        try:
            row = reader.execute("SELECT MAX(id) FROM answers WHERE room=?", (self.room,))
            value = row.fetchone()[0]
            return int(value or 0)
        finally:
            reader.close()


def _settle(future: asyncio.Future[None], error: Exception | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
