"""Durable room records in SQLite (WAL): questions, votes, moderation, answers, escalations.

The room hands over records (``store.records``); this module alone knows their SQL.
Writes go through one writer thread that commits whatever is queued as one
transaction (group commit): thousands of votes a second cost a few fsyncs, and
each caller's future resolves only after its rows are committed, so the server
acknowledges nothing that a kill -9 could lose.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from townhall.server.core.qa import Question
from townhall.server.store.base import BAN_PREFIX as BAN_PREFIX
from townhall.server.store.base import MUTE_PREFIX as MUTE_PREFIX
from townhall.server.store.base import SALT_KEY as SALT_KEY
from townhall.server.store.base import Saved as Saved
from townhall.server.store.base import StoreError as StoreError
from townhall.server.store.base import fence_refused, fenced, saved_from
from townhall.server.store.base import pack_packets as pack_packets
from townhall.server.store.base import pseudonym as pseudonym
from townhall.server.store.base import unpack_packets as unpack_packets
from townhall.server.store.records import (
    ActionRecorded,
    AnswerMedia,
    AnswerRecorded,
    Attended,
    EscalationRecorded,
    InboxResolved,
    PlaceHeld,
    QuestionSaved,
    Record,
    SettingSaved,
    StatementVersion,
    UserBanned,
    UserMuted,
    VoteCast,
    VoteWithdrawn,
)
from townhall.server.store.writer import GroupWriter, Op


def room_salt(conn: sqlite3.Connection, room: str) -> str:
    """The room's attendance salt, made on first use."""
    row = conn.execute(
        "SELECT value FROM settings WHERE room=? AND key=?", (room, SALT_KEY)
    ).fetchone()
    if row is not None:
        return str(row[0])
    salt = secrets.token_hex(16)
    conn.execute("INSERT OR IGNORE INTO settings VALUES (?,?,?)", (room, SALT_KEY, salt))
    return str(
        conn.execute(
            "SELECT value FROM settings WHERE room=? AND key=?", (room, SALT_KEY)
        ).fetchone()[0]
    )


# The first release's schema; later ones are the numbered MIGRATIONS below.
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
CREATE TABLE IF NOT EXISTS attendance (
    room TEXT NOT NULL, session TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL,
    role TEXT NOT NULL, client TEXT NOT NULL, joined REAL NOT NULL, left REAL NOT NULL,
    hashed INTEGER NOT NULL, PRIMARY KEY (room, session));
CREATE TABLE IF NOT EXISTS statements (
    persona TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, topic TEXT NOT NULL,
    text TEXT NOT NULL, language TEXT NOT NULL, date TEXT NOT NULL, tags TEXT NOT NULL,
    author TEXT NOT NULL, approved REAL NOT NULL, review_by TEXT NOT NULL,
    translations TEXT NOT NULL, supersedes TEXT NOT NULL, retired INTEGER NOT NULL,
    PRIMARY KEY (persona, id, version));
CREATE TABLE IF NOT EXISTS answer_media (
    room TEXT NOT NULL, answer_id INTEGER NOT NULL, packets BLOB NOT NULL,
    PRIMARY KEY (room, answer_id));
CREATE TABLE IF NOT EXISTS inbox (
    room TEXT NOT NULL, question_id INTEGER NOT NULL, time REAL NOT NULL, action TEXT NOT NULL,
    text TEXT NOT NULL, actor_id TEXT NOT NULL, answer_id INTEGER NOT NULL,
    PRIMARY KEY (room, question_id));
CREATE TABLE IF NOT EXISTS settings (
    room TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (room, key));
"""


def connect(path: str, synchronous: str = "FULL") -> sqlite3.Connection:
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA busy_timeout=5000")
    migrate(conn)
    return conn


def _first_schema(conn: sqlite3.Connection) -> None:
    for statement in SCHEMA.split(";"):  # not executescript: it would commit midway
        if statement.strip():
            conn.execute(statement)


def _add_actor_name(conn: sqlite3.Connection) -> None:
    # IF NOT EXISTS, by hand: a database from before versioning may have the column.
    if "actor_name" not in {row[1] for row in conn.execute("PRAGMA table_info(actions)")}:
        conn.execute("ALTER TABLE actions ADD COLUMN actor_name TEXT NOT NULL DEFAULT ''")


def _add_fences(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS fences (room TEXT PRIMARY KEY, term INTEGER NOT NULL)")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS places (room TEXT NOT NULL, holder TEXT NOT NULL,"
        " slot INTEGER NOT NULL, seat INTEGER NOT NULL, PRIMARY KEY (room, holder))"
    )


# Numbered migrations, as in store.postgres: the schema_version table lists those applied,
# each once, in order; a new one is appended, never edited. A database made before
# versioning lists none, so each step finds what is already there and leaves it.
MIGRATIONS: tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...] = (
    (1, _first_schema),
    (2, _add_actor_name),
    # The lease term of the room's latest authority, checked by every write, and the members'
    # places (slot and seat), which an authority taking over holds for them.
    (3, _add_fences),
)
LATEST = MIGRATIONS[-1][0]


def schema_version(conn: sqlite3.Connection) -> int:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'"
    ).fetchone()
    if found is None:
        return 0
    return int(conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, upto: int = LATEST) -> int:
    """Apply the migrations after the database's version, up to ``upto``, in one transaction
    (a failed one leaves the old version); the version now."""
    current = schema_version(conn)
    if current > LATEST:
        raise StoreError(
            f"the database's schema is version {current}, newer than this townhall knows"
            f" ({LATEST}): upgrade townhall"
        )
    if current >= upto:
        return current
    conn.execute("BEGIN IMMEDIATE")  # another process migrating waits here, then finds it done
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied REAL NOT NULL)"
        )
        current = schema_version(conn)
        for number, step in MIGRATIONS:
            if current < number <= upto:
                step(conn)
                conn.execute("INSERT INTO schema_version VALUES (?, ?)", (number, time.time()))
                current = number
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current


class Store:
    """One room's durable records; ``await store.write(ops)`` returns once committed."""

    def __init__(
        self,
        path: str,
        room: str,
        synchronous: str = "FULL",
        anonymous_attendance: bool = False,
        term: int = 0,
    ) -> None:
        self.path = path
        self.room = room
        self.anonymous_attendance = anonymous_attendance
        self.term = term  # the authority's lease term: its writes land only while current
        try:
            self._conn = connect(path, synchronous)
            if term:
                self._fence()
            self._salt = room_salt(self._conn, room)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open database {path}: {exc}") from exc
        self._sql: dict[type[Any], Callable[[Any], Op]] = {
            QuestionSaved: self._question,
            VoteCast: self._vote,
            VoteWithdrawn: self._unvote,
            ActionRecorded: self._action,
            AnswerRecorded: self._answer,
            EscalationRecorded: self._escalation,
            SettingSaved: self._setting,
            UserBanned: self._ban,
            Attended: self._attended,
            UserMuted: self._mute,
            StatementVersion: _statement_row,
            InboxResolved: self._resolved,
            AnswerMedia: self._media,
            PlaceHeld: self._place,
        }
        self._writer = GroupWriter(self._commit)

    def _fence(self) -> None:
        """Record our term as the room's (before anything is loaded or served), unless a
        newer one is there; the write lock makes an old authority's write wait or fail."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO fences VALUES (?, ?) ON CONFLICT (room) DO UPDATE"
                " SET term = excluded.term WHERE term < excluded.term",
                (self.room, self.term),
            )
            stored = int(
                conn.execute("SELECT term FROM fences WHERE room=?", (self.room,)).fetchone()[0]
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.close()
            raise
        if stored != self.term:
            conn.close()
            raise fence_refused(self.term, stored)

    def _check_fence(self, conn: sqlite3.Connection) -> None:
        """Inside the write's transaction (it holds the write lock): still our term?"""
        row = conn.execute("SELECT term FROM fences WHERE room=?", (self.room,)).fetchone()
        if row is None or int(row[0]) != self.term:
            raise fenced(self.term, None if row is None else int(row[0]))

    # ------------------------------------------------------------ writing

    @property
    def commits(self) -> int:
        return self._writer.commits

    @property
    def failure(self) -> str | None:
        return self._writer.failure

    def write(self, records: Sequence[Record]) -> asyncio.Future[None]:
        """Queue records for the next group commit; the future resolves when they are durable."""
        return self._writer.write([self._sql[type(r)](r) for r in records])

    def _commit(self, batch: Sequence[Sequence[Op]]) -> None:
        """One transaction for the whole batch (on the writer thread)."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if self.term:
                self._check_fence(conn)
            for ops in batch:
                for sql, params in ops:
                    conn.execute(sql, params)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # whatever went wrong, the write lock is let go
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"database write failed: {exc}") from exc
            raise

    async def close(self) -> None:
        await self._writer.close()
        self._conn.close()

    # ------------------------------------------------------------ records as rows

    def _question(self, q: QuestionSaved) -> Op:
        return (
            "INSERT OR REPLACE INTO questions VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                self.room, q.id, q.text, q.language, q.state, q.asker_id, q.asker_name,
                q.asker_slot, q.created, int(q.pinned), q.rank, q.merged_into, q.answer_id,
            ),
        )  # fmt: skip

    def _vote(self, v: VoteCast) -> Op:
        return ("INSERT OR IGNORE INTO votes VALUES (?,?,?)", (self.room, v.question_id, v.voter))

    def _place(self, p: PlaceHeld) -> Op:
        if p.slot < 0:
            return ("DELETE FROM places WHERE room=? AND holder=?", (self.room, p.holder))
        return (
            "INSERT OR REPLACE INTO places VALUES (?,?,?,?)",
            (self.room, p.holder, p.slot, p.seat),
        )

    def _unvote(self, v: VoteWithdrawn) -> Op:
        return (
            "DELETE FROM votes WHERE room=? AND question_id=? AND voter=?",
            (self.room, v.question_id, v.voter),
        )

    def _action(self, a: ActionRecorded) -> Op:
        return (
            "INSERT INTO actions"
            " (room, time, actor_id, actor_role, action, question_id, detail, actor_name)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (
                self.room,
                a.time,
                a.actor_id,
                a.actor_role,
                a.action,
                a.question_id,
                a.detail,
                a.actor_name,
            ),
        )

    def _answer(self, a: AnswerRecorded) -> Op:
        return (
            "INSERT OR REPLACE INTO answers VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                self.room, a.answer_id, a.question_id, a.text, a.label, json.dumps(list(a.sources)),
                a.language, a.started, a.ended, a.outcome,
            ),
        )  # fmt: skip

    def _escalation(self, e: EscalationRecorded) -> Op:
        return (
            "INSERT INTO escalations"
            " (room, time, question_id, question, reason, language, detail, said)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (self.room, e.time, e.question_id, e.question, e.reason, e.language, e.detail, e.said),
        )

    def _media(self, m: AnswerMedia) -> Op:
        packed = pack_packets(m.packets)
        return (
            "INSERT OR REPLACE INTO answer_media VALUES (?,?,?)",
            (self.room, m.answer_id, packed),
        )

    def load_media(self, answer_id: int) -> tuple[bytes, ...]:
        """An answer's StagePacket payloads as sent (empty: none kept)."""
        reader = connect(self.path)
        try:
            row = reader.execute(
                "SELECT packets FROM answer_media WHERE room=? AND answer_id=?",
                (self.room, answer_id),
            ).fetchone()
            return unpack_packets(row[0]) if row else ()
        finally:
            reader.close()

    def _resolved(self, r: InboxResolved) -> Op:
        # A plain INSERT: a second answer to one question fails the commit, never overwrites.
        return (
            "INSERT INTO inbox VALUES (?,?,?,?,?,?,?)",
            (self.room, r.question_id, r.time, r.action, r.text, r.actor_id, r.answer_id),
        )

    def _setting(self, s: SettingSaved) -> Op:
        return ("INSERT OR REPLACE INTO settings VALUES (?,?,?)", (self.room, s.key, s.value))

    def _ban(self, b: UserBanned) -> Op:
        return self._setting(SettingSaved(BAN_PREFIX + b.user_id, "1"))

    def _attended(self, a: Attended) -> Op:
        user, name, hashed = a.user_id, a.name, 0
        if self.anonymous_attendance:  # no name and no user id is ever written
            user, name, hashed = pseudonym(self._salt, a.user_id), "", 1
        return (
            "INSERT OR REPLACE INTO attendance VALUES (?,?,?,?,?,?,?,?,?)",
            (self.room, a.session, user, name, a.role, a.client, a.joined, a.left, hashed),
        )

    def _mute(self, m: UserMuted) -> Op:
        if m.muted:
            return self._setting(SettingSaved(MUTE_PREFIX + m.user_id, "1"))
        return (
            "DELETE FROM settings WHERE room=? AND key=?",
            (self.room, MUTE_PREFIX + m.user_id),
        )

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

    def load(self) -> Saved:
        """Everything a room needs back after a restart."""
        return saved_from(self)

    def load_places(self) -> list[tuple[str, int, int]]:
        reader = connect(self.path)
        try:
            rows = reader.execute(
                "SELECT holder, slot, seat FROM places WHERE room=?", (self.room,)
            ).fetchall()
            return [(str(h), int(slot), int(seat)) for h, slot, seat in rows]
        finally:
            reader.close()

    def load_settings(self) -> dict[str, str]:
        reader = connect(self.path)
        try:
            rows = reader.execute("SELECT key, value FROM settings WHERE room=?", (self.room,))
            return dict(rows.fetchall())
        finally:
            reader.close()

    def max_question_id(self) -> int:
        """The highest question id any row mentions: new ids start after it, so an id is
        never given twice, not even one whose question row was lost but a vote was not."""
        reader = connect(self.path)
        try:
            ids = [
                reader.execute(f"SELECT MAX({column}) FROM {table} WHERE room=?", (self.room,))
                for table, column in (
                    ("questions", "id"),
                    ("votes", "question_id"),
                    ("answers", "question_id"),
                    ("actions", "question_id"),
                    ("escalations", "question_id"),
                )
            ]
            return max(int(row.fetchone()[0] or 0) for row in ids)
        finally:
            reader.close()

    def max_answer_id(self) -> int:
        reader = connect(self.path)
        try:
            # An answer cut short by a crash has no row yet, but its question names its id.
            room = (self.room,)
            answers = reader.execute("SELECT MAX(id) FROM answers WHERE room=?", room)
            taken = reader.execute("SELECT MAX(answer_id) FROM questions WHERE room=?", room)
            return max(int(answers.fetchone()[0] or 0), int(taken.fetchone()[0] or 0))
        finally:
            reader.close()

    # ------------------------------------------------------------ studio reads

    def load_statements(self, persona: str) -> list[StatementVersion]:
        """The newest version of every statement of ``persona`` (retired ones included)."""
        return load_statements(self.path, persona)

    def load_all_statements(self, persona: str) -> list[StatementVersion]:
        return load_all_statements(self.path, persona)

    def statement_history(self, persona: str, statement_id: str) -> list[StatementVersion]:
        return statement_history(self.path, persona, statement_id)

    def write_now(self, records: Sequence[StatementVersion]) -> None:
        """Statement versions committed at once (the persona's seed at start, before any
        write is queued)."""
        write_now(self.path, records)

    def load_inbox(self) -> list[tuple[EscalationRecorded, InboxResolved | None]]:
        """Every escalation of the room (the latest per question) and how it was resolved."""
        reader = connect(self.path)
        try:
            resolved = {
                row[1]: InboxResolved(row[0], row[1], row[2], row[3], row[4], row[5])
                for row in reader.execute(
                    "SELECT time, question_id, action, text, actor_id, answer_id FROM inbox"
                    " WHERE room=?",
                    (self.room,),
                )
            }
            latest: dict[int, EscalationRecorded] = {}
            for row in reader.execute(
                "SELECT time, question_id, question, reason, language, detail, said"
                " FROM escalations WHERE room=? ORDER BY seq",
                (self.room,),
            ):
                latest[row[1]] = EscalationRecorded(*row)
            return [(e, resolved.get(qid)) for qid, e in sorted(latest.items())]
        finally:
            reader.close()

    def load_answer(self, answer_id: int) -> tuple[AnswerRecorded, str] | None:
        """One answer and the text of the question it answered (None: no such answer)."""
        reader = connect(self.path)
        try:
            row = reader.execute(
                "SELECT a.id, a.question_id, a.text, a.label, a.sources, a.language, a.started,"
                " a.ended, a.outcome, COALESCE(q.text, '') FROM answers a LEFT JOIN questions q"
                " ON q.room=a.room AND q.id=a.question_id WHERE a.room=? AND a.id=?",
                (self.room, answer_id),
            ).fetchone()
        finally:
            reader.close()
        if row is None:
            return None
        aid, qid, text, label, src, lang, st, en, out, question = row
        answer = AnswerRecorded(aid, qid, text, label, tuple(json.loads(src)), lang, st, en, out)
        return answer, str(question)

    def load_phase_moves(self) -> list[tuple[float, str]]:
        """The event's lifecycle moves (time, open/start/hold/resume/end), from the audit."""
        reader = connect(self.path)
        try:
            return [
                (float(t), str(d))
                for t, d in reader.execute(
                    "SELECT time, detail FROM actions WHERE room=? AND action='control:event'"
                    " ORDER BY seq",
                    (self.room,),
                )
            ]
        finally:
            reader.close()

    def load_answers(self) -> list[AnswerRecorded]:
        reader = connect(self.path)
        try:
            return [
                AnswerRecorded(aid, qid, text, label, tuple(json.loads(src)), lang, st, en, out)
                for aid, qid, text, label, src, lang, st, en, out in reader.execute(
                    "SELECT id, question_id, text, label, sources, language, started, ended,"
                    " outcome FROM answers WHERE room=? ORDER BY id",
                    (self.room,),
                )
            ]
        finally:
            reader.close()


def _statement_row(v: StatementVersion) -> Op:
    # A plain INSERT: two saves of one version fail the second commit, never overwrite.
    return (
        "INSERT INTO statements VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (
            v.persona, v.id, v.version, v.topic, v.text, v.language, v.date,
            json.dumps(list(v.tags)), v.author, v.approved, v.review_by,
            json.dumps(list(v.translations)), v.supersedes, int(v.retired),
        ),
    )  # fmt: skip


def _statement_of(row: Sequence[Any]) -> StatementVersion:
    (persona, sid, version, topic, text, lang, date, tags, author, approved, review_by,
     translations, supersedes, retired) = row  # fmt: skip
    return StatementVersion(
        persona, sid, version, topic, text, lang, date, tuple(json.loads(tags)), author,
        approved, review_by, tuple(json.loads(translations)), supersedes, bool(retired),
    )  # fmt: skip


def load_statements(path: str, persona: str) -> list[StatementVersion]:
    """The newest version of every statement of ``persona``, by id."""
    reader = connect(path)
    try:
        rows = reader.execute(
            "SELECT s.* FROM statements s JOIN (SELECT id, MAX(version) v FROM statements"
            " WHERE persona=? GROUP BY id) m ON s.id=m.id AND s.version=m.v"
            " WHERE s.persona=? ORDER BY s.id",
            (persona, persona),
        )
        return [_statement_of(row) for row in rows]
    finally:
        reader.close()


def load_all_statements(path: str, persona: str) -> list[StatementVersion]:
    """Every version of every statement of ``persona``."""
    reader = connect(path)
    try:
        rows = reader.execute(
            "SELECT * FROM statements WHERE persona=? ORDER BY id, version", (persona,)
        )
        return [_statement_of(row) for row in rows]
    finally:
        reader.close()


def statement_history(path: str, persona: str, statement_id: str) -> list[StatementVersion]:
    """Every version of one statement, oldest first."""
    reader = connect(path)
    try:
        rows = reader.execute(
            "SELECT * FROM statements WHERE persona=? AND id=? ORDER BY version",
            (persona, statement_id),
        )
        return [_statement_of(row) for row in rows]
    finally:
        reader.close()


def write_now(path: str, records: Sequence[StatementVersion]) -> None:
    """Store statement versions at once, outside a running server (``persona import``)."""
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for record in records:
            conn.execute(*_statement_row(record))
        conn.execute("COMMIT")
    finally:
        conn.close()
