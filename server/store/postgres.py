"""Durable room records in PostgreSQL (``store.url = "postgresql://..."``): the same records as
``store.sqlite``, for a room whose record must outlive one machine.

The same shape as the SQLite store, on psycopg 3's synchronous API: one writer thread commits
whatever is queued as one transaction (group commit) and resolves each caller's future only
after COMMIT has returned, so the server acknowledges nothing a crash could lose. Reads (at
start, from /studio) share a second connection behind a lock. The schema is versioned: the
``schema_version`` table names the migrations applied, and the numbered ``MIGRATIONS`` not
yet applied run on open, under an advisory lock so two servers starting at once take turns.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from townhall.server.core.qa import Question
from townhall.server.store.base import (
    BAN_PREFIX,
    MUTE_PREFIX,
    SALT_KEY,
    Saved,
    StoreError,
    fence_refused,
    fenced,
    pack_packets,
    pseudonym,
    saved_from,
    unpack_packets,
)
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

log = logging.getLogger("townhall.store")

CONNECT_TIMEOUT_S = 5
# An authority's writer left inside a transaction this long (a process frozen mid-commit)
# is cut off by PostgreSQL, so its lock on the fence cannot hold up a standby's takeover.
FENCED_IDLE_MS = 2000
# ... but PostgreSQL counts a session as idle only once it has read a Sync: a writer frozen
# in the middle of a pipelined batch (statements sent, COMMIT not yet) stays "active" and
# keeps its lock for as long as it is frozen. A takeover that waited this long for the
# fence cuts such sessions off itself (:meth:`PostgresStore._cut_off_stuck_authorities`).
FENCE_WAIT_MS = FENCED_IDLE_MS + 1000
FENCE_ATTEMPTS = 5
# pg_advisory_xact_lock key for migrations: any constant, the same in every townhall.
MIGRATION_LOCK = 0x70776E68616C6C

# Numbered migrations, applied in order, each once; a new one is appended, never edited.
# 1 is the first release's schema; 2 added the actor's display name to the audit; 3 the
# authorities' fence (the lease term of the room's latest authority, checked by every write)
# and the members' places (slot and seat), which an authority taking over holds for them.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE questions (
    room TEXT NOT NULL, id BIGINT NOT NULL, text TEXT NOT NULL, language TEXT NOT NULL,
    state TEXT NOT NULL, asker_id TEXT NOT NULL, asker_name TEXT NOT NULL,
    asker_slot INTEGER NOT NULL, created DOUBLE PRECISION NOT NULL, pinned BOOLEAN NOT NULL,
    rank INTEGER NOT NULL, merged_into BIGINT NOT NULL, answer_id BIGINT NOT NULL,
    PRIMARY KEY (room, id));
CREATE TABLE votes (
    room TEXT NOT NULL, question_id BIGINT NOT NULL, voter TEXT NOT NULL,
    PRIMARY KEY (room, question_id, voter));
CREATE TABLE actions (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, room TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL, actor_id TEXT NOT NULL, actor_role TEXT NOT NULL,
    action TEXT NOT NULL, question_id BIGINT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX actions_room ON actions (room, seq);
CREATE TABLE answers (
    room TEXT NOT NULL, id BIGINT NOT NULL, question_id BIGINT NOT NULL, text TEXT NOT NULL,
    label TEXT NOT NULL, sources TEXT NOT NULL, language TEXT NOT NULL,
    started DOUBLE PRECISION NOT NULL, ended DOUBLE PRECISION NOT NULL, outcome TEXT NOT NULL,
    PRIMARY KEY (room, id));
CREATE TABLE escalations (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, room TEXT NOT NULL,
    time DOUBLE PRECISION NOT NULL, question_id BIGINT NOT NULL, question TEXT NOT NULL,
    reason TEXT NOT NULL, language TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
    said TEXT NOT NULL DEFAULT '');
CREATE INDEX escalations_room ON escalations (room, seq);
CREATE TABLE attendance (
    room TEXT NOT NULL, session TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL,
    role TEXT NOT NULL, client TEXT NOT NULL, joined DOUBLE PRECISION NOT NULL,
    "left" DOUBLE PRECISION NOT NULL, hashed BOOLEAN NOT NULL, PRIMARY KEY (room, session));
CREATE TABLE statements (
    persona TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, topic TEXT NOT NULL,
    text TEXT NOT NULL, language TEXT NOT NULL, date TEXT NOT NULL, tags TEXT NOT NULL,
    author TEXT NOT NULL, approved DOUBLE PRECISION NOT NULL, review_by TEXT NOT NULL,
    translations TEXT NOT NULL, supersedes TEXT NOT NULL, retired BOOLEAN NOT NULL,
    PRIMARY KEY (persona, id, version));
CREATE TABLE answer_media (
    room TEXT NOT NULL, answer_id BIGINT NOT NULL, packets BYTEA NOT NULL,
    PRIMARY KEY (room, answer_id));
CREATE TABLE inbox (
    room TEXT NOT NULL, question_id BIGINT NOT NULL, time DOUBLE PRECISION NOT NULL,
    action TEXT NOT NULL, text TEXT NOT NULL, actor_id TEXT NOT NULL, answer_id BIGINT NOT NULL,
    PRIMARY KEY (room, question_id));
CREATE TABLE settings (
    room TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (room, key));
""",
    ),
    (2, "ALTER TABLE actions ADD COLUMN actor_name TEXT NOT NULL DEFAULT ''"),
    (
        3,
        """
CREATE TABLE fences (room TEXT PRIMARY KEY, term BIGINT NOT NULL);
CREATE TABLE places (
    room TEXT NOT NULL, holder TEXT NOT NULL, slot INTEGER NOT NULL, seat INTEGER NOT NULL,
    PRIMARY KEY (room, holder));
""",
    ),
)
LATEST = MIGRATIONS[-1][0]


def _upsert(table: str, columns: str, key: str) -> str:
    """INSERT of a whole row that replaces the row with the same key (SQLite's OR REPLACE)."""
    names = [c.strip() for c in columns.split(",")]
    keys = {k.strip() for k in key.split(",")}
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in keys)
    marks = ", ".join(["%s"] * len(names))
    return (
        f"INSERT INTO {table} ({columns}) VALUES ({marks})"
        f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


QUESTION_UPSERT = _upsert(
    "questions",
    "room, id, text, language, state, asker_id, asker_name, asker_slot, created, pinned,"
    " rank, merged_into, answer_id",
    "room, id",
)
ANSWER_UPSERT = _upsert(
    "answers",
    "room, id, question_id, text, label, sources, language, started, ended, outcome",
    "room, id",
)
MEDIA_UPSERT = _upsert("answer_media", "room, answer_id, packets", "room, answer_id")
SETTING_UPSERT = _upsert("settings", "room, key, value", "room, key")
ATTENDED_UPSERT = _upsert(
    "attendance",
    'room, session, user_id, name, role, client, joined, "left", hashed',
    "room, session",
)
PLACE_UPSERT = _upsert("places", "room, holder, slot, seat", "room, holder")
STATEMENT_COLUMNS = (
    "persona, id, version, topic, text, language, date, tags, author, approved, review_by,"
    " translations, supersedes, retired"
)


def where(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        return "the PostgreSQL URL in store.url"
    user = f"{info['user']}@" if info.get("user") else ""
    port = f":{info['port']}" if info.get("port") else ""
    return f"postgresql://{user}{info.get('host', '')}{port}/{info.get('dbname', '')}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def authority_session(room: str) -> str:
    """The ``application_name`` of a room's authority's writer (PostgreSQL keeps 63 bytes of
    it: a long room id is named by its hash), so a takeover can tell its sessions apart."""
    name = f"townhall authority {room}"
    if len(name.encode()) > 63:
        name = f"townhall authority #{hashlib.sha256(room.encode()).hexdigest()[:24]}"
    return name


def connect(url: str, application_name: str = "") -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection (transactions are explicit); a one-line StoreError if not."""
    try:
        return psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except psycopg.Error as exc:
        raise StoreError(f"cannot open database {where(url)}: {_one_line(exc)}") from None


def schema_version(conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection[tuple[Any, ...]], upto: int = LATEST) -> int:
    """Apply the migrations after the database's version, up to ``upto``; the version now.

    One transaction: a migration that fails leaves the database at its old version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied DOUBLE PRECISION NOT NULL)"
        )
        current = schema_version(conn)
        if current > LATEST:
            raise StoreError(
                f"the database's schema is version {current}, newer than this townhall knows"
                f" ({LATEST}): upgrade townhall"
            )
        for number, sql in MIGRATIONS:
            if current < number <= upto:
                conn.execute(sql.encode())  # no parameters: several statements in one go
                conn.execute("INSERT INTO schema_version VALUES (%s, %s)", (number, time.time()))
                current = number
    return current


class PostgresStore:
    """One room's durable records in PostgreSQL; ``await store.write(records)`` returns once
    committed."""

    def __init__(
        self, url: str, room: str, anonymous_attendance: bool = False, term: int = 0
    ) -> None:
        self.url = url
        self.room = room
        self.anonymous_attendance = anonymous_attendance
        self.term = term  # the authority's lease term: its writes land only while current
        self._session = authority_session(room) if term else ""
        self._conn = connect(url, self._session)
        try:
            migrate(self._conn)
            if term:
                self._fence()
            self._salt = self._room_salt()
            self._reader = connect(url)
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot use database {where(url)}: {_one_line(exc)}") from None
        except BaseException:
            self._conn.close()
            raise
        self._read_lock = threading.Lock()
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
        newer one is there. It waits for a write of the old authority's still in flight:
        that one is committed before, and so loaded, or refused after; one that does not
        finish (its process frozen) is cut off."""
        self._writer_session()
        for _ in range(FENCE_ATTEMPTS):
            try:
                with self._conn.transaction():
                    self._conn.execute(f"SET LOCAL lock_timeout = {FENCE_WAIT_MS}")
                    self._conn.execute(
                        "INSERT INTO fences VALUES (%s, %s) ON CONFLICT (room) DO UPDATE"
                        " SET term = EXCLUDED.term WHERE fences.term < EXCLUDED.term",
                        (self.room, self.term),
                    )
                    row = self._conn.execute(
                        "SELECT term FROM fences WHERE room=%s", (self.room,)
                    ).fetchone()
                break
            except psycopg.errors.LockNotAvailable:
                cut = self._cut_off_stuck_authorities()
                log.warning(
                    "store: the fence is held by a transaction that does not finish",
                    extra={"room": self.room, "sessions_cut_off": cut},
                )
        else:
            raise StoreError(
                f"the room's fence in {where(self.url)} stayed locked for"
                f" {FENCE_ATTEMPTS * FENCE_WAIT_MS / 1000:g} s by a session that is not"
                " one of the room's authorities"
            )
        stored = int(row[0]) if row else 0
        if stored != self.term:
            raise fence_refused(self.term, stored)

    def _cut_off_stuck_authorities(self) -> int:
        """End the sessions of the room's earlier authorities still inside a transaction.

        We hold the room's lease, so any other authority of the room is deposed (its own
        deadline passed before the lease could be ours): what it has not committed was
        never acknowledged, and PostgreSQL rolls it back. Only in this database: the
        activity view is the whole cluster's, where another deployment's room of the same
        name (the default "main") is none of ours."""
        rows = self._conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name = %s AND pid <> pg_backend_pid()"
            " AND datname = current_database() AND xact_start IS NOT NULL",
            (self._session,),
        ).fetchall()
        return sum(1 for (ended,) in rows if ended)

    def _writer_session(self) -> None:
        self._conn.execute(f"SET idle_in_transaction_session_timeout = {FENCED_IDLE_MS}")

    def _room_salt(self) -> str:
        """The room's attendance salt, made on first use (the first server to store one wins)."""
        self._conn.execute(
            "INSERT INTO settings VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (self.room, SALT_KEY, secrets.token_hex(16)),
        )
        row = self._conn.execute(
            "SELECT value FROM settings WHERE room=%s AND key=%s", (self.room, SALT_KEY)
        ).fetchone()
        assert row is not None
        return str(row[0])

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
        try:
            if self._conn.closed:  # lost with the last batch: a new one for this
                self._conn = connect(self.url, self._session)
                if self.term:
                    self._writer_session()
            # Pipeline mode: the batch's statements go out without waiting for each
            # reply (one round trip, not one per vote); COMMIT's reply is the sync point.
            # Runs of one statement (a burst of votes) go as one executemany, in order.
            with self._conn.pipeline(), self._conn.transaction(), self._conn.cursor() as cur:
                if self.term:
                    # The fence, in the same transaction: a share lock on it until COMMIT,
                    # so a takeover's new term lands either before (we fail) or after.
                    cur.execute("SELECT term FROM fences WHERE room=%s FOR SHARE", (self.room,))
                    row = cur.fetchone()
                    if row is None or int(row[0]) != self.term:
                        raise fenced(self.term, None if row is None else int(row[0]))
                for sql, rows in _runs(op for ops in batch for op in ops):
                    cur.executemany(sql, rows)
        except psycopg.Error as exc:
            if self._conn.broken:
                self._conn.close()
            raise StoreError(f"database write failed: {_one_line(exc)}") from None

    async def close(self) -> None:
        await self._writer.close()
        self._conn.close()
        self._reader.close()

    # ------------------------------------------------------------ records as rows

    def _question(self, q: QuestionSaved) -> Op:
        return (
            QUESTION_UPSERT,
            (
                self.room, q.id, q.text, q.language, q.state, q.asker_id, q.asker_name,
                q.asker_slot, q.created, q.pinned, q.rank, q.merged_into, q.answer_id,
            ),
        )  # fmt: skip

    def _vote(self, v: VoteCast) -> Op:
        return (
            "INSERT INTO votes VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (self.room, v.question_id, v.voter),
        )

    def _unvote(self, v: VoteWithdrawn) -> Op:
        return (
            "DELETE FROM votes WHERE room=%s AND question_id=%s AND voter=%s",
            (self.room, v.question_id, v.voter),
        )

    def _action(self, a: ActionRecorded) -> Op:
        return (
            "INSERT INTO actions"
            " (room, time, actor_id, actor_role, action, question_id, detail, actor_name)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                self.room, a.time, a.actor_id, a.actor_role, a.action, a.question_id, a.detail,
                a.actor_name,
            ),
        )  # fmt: skip

    def _answer(self, a: AnswerRecorded) -> Op:
        return (
            ANSWER_UPSERT,
            (
                self.room, a.answer_id, a.question_id, a.text, a.label, json.dumps(list(a.sources)),
                a.language, a.started, a.ended, a.outcome,
            ),
        )  # fmt: skip

    def _escalation(self, e: EscalationRecorded) -> Op:
        return (
            "INSERT INTO escalations"
            " (room, time, question_id, question, reason, language, detail, said)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (self.room, e.time, e.question_id, e.question, e.reason, e.language, e.detail, e.said),
        )

    def _media(self, m: AnswerMedia) -> Op:
        return (MEDIA_UPSERT, (self.room, m.answer_id, pack_packets(m.packets)))

    def _resolved(self, r: InboxResolved) -> Op:
        # A plain INSERT: a second answer to one question fails the commit, never overwrites.
        return (
            "INSERT INTO inbox VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (self.room, r.question_id, r.time, r.action, r.text, r.actor_id, r.answer_id),
        )

    def _setting(self, s: SettingSaved) -> Op:
        return (SETTING_UPSERT, (self.room, s.key, s.value))

    def _ban(self, b: UserBanned) -> Op:
        return self._setting(SettingSaved(BAN_PREFIX + b.user_id, "1"))

    def _attended(self, a: Attended) -> Op:
        user, name, hashed = a.user_id, a.name, False
        if self.anonymous_attendance:  # no name and no user id is ever written
            user, name, hashed = pseudonym(self._salt, a.user_id), "", True
        return (
            ATTENDED_UPSERT,
            (self.room, a.session, user, name, a.role, a.client, a.joined, a.left, hashed),
        )

    def _place(self, p: PlaceHeld) -> Op:
        if p.slot < 0:
            return ("DELETE FROM places WHERE room=%s AND holder=%s", (self.room, p.holder))
        return (PLACE_UPSERT, (self.room, p.holder, p.slot, p.seat))

    def _mute(self, m: UserMuted) -> Op:
        if m.muted:
            return self._setting(SettingSaved(MUTE_PREFIX + m.user_id, "1"))
        return (
            "DELETE FROM settings WHERE room=%s AND key=%s",
            (self.room, MUTE_PREFIX + m.user_id),
        )

    # ------------------------------------------------------------ reading

    @contextmanager
    def _reading(self) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
        """The reader connection, one caller at a time; reopened if the last read lost it."""
        with self._read_lock:
            if self._reader.closed:
                self._reader = connect(self.url)
            try:
                yield self._reader
            except psycopg.Error as exc:
                if self._reader.broken:
                    self._reader.close()
                raise StoreError(f"database read failed: {_one_line(exc)}") from None

    def _rows(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """A read; once more on a new connection if the server dropped the old one (a read
        can be repeated, a write cannot: it fails its callers, who were never acknowledged)."""
        try:
            with self._reading() as conn:
                return conn.execute(sql, params).fetchall()
        except StoreError:
            if not self._reader.closed:  # the connection is fine: the query is not
                raise
        with self._reading() as conn:
            return conn.execute(sql, params).fetchall()

    def load(self) -> Saved:
        """Everything a room needs back after a restart."""
        return saved_from(self)

    def load_questions(self) -> list[Question]:
        voters: dict[int, set[str]] = {}
        for qid, voter in self._rows(
            "SELECT question_id, voter FROM votes WHERE room=%s", (self.room,)
        ):
            voters.setdefault(qid, set()).add(voter)
        out = []
        for row in self._rows(
            "SELECT id, text, language, state, asker_id, asker_name, asker_slot, created,"
            " pinned, rank, merged_into, answer_id FROM questions WHERE room=%s ORDER BY id",
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

    def load_places(self) -> list[tuple[str, int, int]]:
        rows = self._rows("SELECT holder, slot, seat FROM places WHERE room=%s", (self.room,))
        return [(str(h), int(slot), int(seat)) for h, slot, seat in rows]

    def load_settings(self) -> dict[str, str]:
        rows = self._rows("SELECT key, value FROM settings WHERE room=%s", (self.room,))
        return {str(k): str(v) for k, v in rows}

    def max_question_id(self) -> int:
        """The highest question id any row mentions: new ids start after it, so an id is
        never given twice, not even one whose question row was lost but a vote was not."""
        (row,) = self._rows(
            "SELECT GREATEST("
            "(SELECT MAX(id) FROM questions WHERE room=%(r)s),"
            " (SELECT MAX(question_id) FROM votes WHERE room=%(r)s),"
            " (SELECT MAX(question_id) FROM answers WHERE room=%(r)s),"
            " (SELECT MAX(question_id) FROM actions WHERE room=%(r)s),"
            " (SELECT MAX(question_id) FROM escalations WHERE room=%(r)s))",
            {"r": self.room},
        )
        return int(row[0] or 0)

    def max_answer_id(self) -> int:
        # An answer cut short by a crash has no row yet, but its question names its id.
        (row,) = self._rows(
            "SELECT GREATEST((SELECT MAX(id) FROM answers WHERE room=%(r)s),"
            " (SELECT MAX(answer_id) FROM questions WHERE room=%(r)s))",
            {"r": self.room},
        )
        return int(row[0] or 0)

    def load_media(self, answer_id: int) -> tuple[bytes, ...]:
        """An answer's StagePacket payloads as sent (empty: none kept)."""
        rows = self._rows(
            "SELECT packets FROM answer_media WHERE room=%s AND answer_id=%s",
            (self.room, answer_id),
        )
        return unpack_packets(bytes(rows[0][0])) if rows else ()

    def load_inbox(self) -> list[tuple[EscalationRecorded, InboxResolved | None]]:
        """Every escalation of the room (the latest per question) and how it was resolved."""
        resolved = {
            row[1]: InboxResolved(row[0], row[1], row[2], row[3], row[4], row[5])
            for row in self._rows(
                "SELECT time, question_id, action, text, actor_id, answer_id FROM inbox"
                " WHERE room=%s",
                (self.room,),
            )
        }
        latest: dict[int, EscalationRecorded] = {}
        for row in self._rows(
            "SELECT time, question_id, question, reason, language, detail, said"
            " FROM escalations WHERE room=%s ORDER BY seq",
            (self.room,),
        ):
            latest[row[1]] = EscalationRecorded(*row)
        return [(e, resolved.get(qid)) for qid, e in sorted(latest.items())]

    def load_answer(self, answer_id: int) -> tuple[AnswerRecorded, str] | None:
        """One answer and the text of the question it answered (None: no such answer)."""
        rows = self._rows(
            "SELECT a.id, a.question_id, a.text, a.label, a.sources, a.language, a.started,"
            " a.ended, a.outcome, COALESCE(q.text, '') FROM answers a LEFT JOIN questions q"
            " ON q.room=a.room AND q.id=a.question_id WHERE a.room=%s AND a.id=%s",
            (self.room, answer_id),
        )
        if not rows:
            return None
        aid, qid, text, label, src, lang, st, en, out, question = rows[0]
        answer = AnswerRecorded(aid, qid, text, label, tuple(json.loads(src)), lang, st, en, out)
        return answer, str(question)

    def load_phase_moves(self) -> list[tuple[float, str]]:
        """The event's lifecycle moves (time, open/start/hold/resume/end), from the audit."""
        return [
            (float(t), str(d))
            for t, d in self._rows(
                "SELECT time, detail FROM actions WHERE room=%s AND action='control:event'"
                " ORDER BY seq",
                (self.room,),
            )
        ]

    def load_answers(self) -> list[AnswerRecorded]:
        return [
            AnswerRecorded(aid, qid, text, label, tuple(json.loads(src)), lang, st, en, out)
            for aid, qid, text, label, src, lang, st, en, out in self._rows(
                "SELECT id, question_id, text, label, sources, language, started, ended,"
                " outcome FROM answers WHERE room=%s ORDER BY id",
                (self.room,),
            )
        ]

    def load_statements(self, persona: str) -> list[StatementVersion]:
        """The newest version of every statement of ``persona``, by id."""
        rows = self._rows(LATEST_STATEMENTS, (persona,))
        return [_statement_of(row) for row in rows]

    def load_all_statements(self, persona: str) -> list[StatementVersion]:
        rows = self._rows(
            f"SELECT {STATEMENT_COLUMNS} FROM statements WHERE persona=%s ORDER BY id, version",
            (persona,),
        )
        return [_statement_of(row) for row in rows]

    def statement_history(self, persona: str, statement_id: str) -> list[StatementVersion]:
        rows = self._rows(
            f"SELECT {STATEMENT_COLUMNS} FROM statements WHERE persona=%s AND id=%s"
            " ORDER BY version",
            (persona, statement_id),
        )
        return [_statement_of(row) for row in rows]

    def write_now(self, records: Sequence[StatementVersion]) -> None:
        """Statement versions committed at once (the persona's seed at start)."""
        with self._reading() as conn, conn.transaction():
            for record in records:
                conn.execute(*_statement_row(record))


LATEST_STATEMENTS = (
    f"SELECT DISTINCT ON (id) {STATEMENT_COLUMNS} FROM statements WHERE persona=%s"
    " ORDER BY id, version DESC"
)


class StatementBook:
    """A persona's statements in PostgreSQL outside a running server (``townhall persona
    import|export``): one connection, the schema migrated, closed when the block ends."""

    def __init__(self, url: str) -> None:
        self._conn = connect(url)
        try:
            migrate(self._conn)
        except psycopg.Error as exc:
            self._conn.close()
            raise StoreError(f"cannot use database {where(url)}: {_one_line(exc)}") from None
        except BaseException:
            self._conn.close()
            raise

    def __enter__(self) -> StatementBook:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()

    def load_statements(self, persona: str) -> list[StatementVersion]:
        """The newest version of every statement of ``persona``, by id."""
        return [_statement_of(r) for r in self._conn.execute(LATEST_STATEMENTS, (persona,))]

    def write_now(self, records: Sequence[StatementVersion]) -> None:
        try:
            with self._conn.transaction():
                for record in records:
                    self._conn.execute(*_statement_row(record))
        except psycopg.Error as exc:
            raise StoreError(f"database write failed: {_one_line(exc)}") from None


def _runs(ops: Iterable[Op]) -> Iterator[tuple[str, list[Sequence[Any]]]]:
    """Consecutive ops with the same SQL as one (sql, [params, ...]); order is kept."""
    run: list[Sequence[Any]] = []
    current = ""
    for sql, params in ops:
        if sql != current and run:
            yield current, run
            run = []
        current = sql
        run.append(params)
    if run:
        yield current, run


def _statement_row(v: StatementVersion) -> Op:
    # A plain INSERT: two saves of one version fail the second commit, never overwrite.
    return (
        f"INSERT INTO statements ({STATEMENT_COLUMNS})"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            v.persona, v.id, v.version, v.topic, v.text, v.language, v.date,
            json.dumps(list(v.tags)), v.author, v.approved, v.review_by,
            json.dumps(list(v.translations)), v.supersedes, v.retired,
        ),
    )  # fmt: skip


def _statement_of(row: Sequence[Any]) -> StatementVersion:
    (persona, sid, version, topic, text, lang, date, tags, author, approved, review_by,
     translations, supersedes, retired) = row  # fmt: skip
    return StatementVersion(
        persona, sid, version, topic, text, lang, date, tuple(json.loads(tags)), author,
        approved, review_by, tuple(json.loads(translations)), supersedes, bool(retired),
    )  # fmt: skip
