"""Who attended: one row per person from the room's store, for the organisers.

Each connection's stay is stored when it joins and when it ends (``store.records.Attended``);
the report merges a person's stays (several tabs or reconnections count once: the union of
their times), names the kinds of client they came with, and counts the questions they
asked and the votes they hold for others' questions. Anonymous (``attendance.anonymous``
or ``--anonymous``): no names, and ids replaced by a keyed hash stable within the room, so
people can be counted and told apart but not named. A stay with no end yet (still present,
or the server was killed) counts until the report is made and is marked ``present``.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from townhall.server.store.base import SALT_KEY, pseudonym

FORMATS = ("csv", "json")
CLIENT_KINDS = {
    "townhall-watch": "browser",
    "townhall-moderate": "browser (moderator console)",
    "townhall-xr": "headset",
    "townhall-plugin": "headset",
    "townhall-xr-mirror": "desktop mirror",
    "townhall-bot": "bot",
}
CSV_COLUMNS = (
    "user",
    "name",
    "roles",
    "clients",
    "first_joined",
    "last_left",
    "duration_s",
    "sessions",
    "questions",
    "votes",
    "present",
)


class AttendanceError(ValueError):
    """No database, or no such room in it."""


@dataclass
class Attendee:
    user: str
    name: str
    roles: list[str] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)
    first_joined: float = 0.0
    last_left: float = 0.0  # 0 while present
    duration_s: float = 0.0
    sessions: int = 0
    questions: int = 0
    votes: int = 0
    present: bool = False


def client_kind(client: str) -> str:
    """``townhall-watch/0.1`` -> browser; an unknown client keeps its own name."""
    name = client.split("/", 1)[0].strip()
    return CLIENT_KINDS.get(name, name or "unknown")


def _union_seconds(spans: list[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def load(
    db_path: str | Path, room: str, anonymous: bool = False, now: float | None = None
) -> tuple[list[Attendee], bool]:
    """The attendees, by first join; and whether the report is anonymous (asked for, or
    forced because the room stored its attendance anonymously)."""
    path = Path(db_path)
    if not path.exists():
        raise AttendanceError(f"no database at {path}")
    now = time.time() if now is None else now
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "attendance" not in tables:
            raise AttendanceError(f"{path} has no attendance (made by an older server)")
        rows = conn.execute(
            "SELECT user_id, name, role, client, joined, left, hashed FROM attendance"
            " WHERE room=? ORDER BY joined",
            (room,),
        ).fetchall()
        if not rows:
            known = [r[0] for r in conn.execute("SELECT DISTINCT room FROM attendance")]
            rooms = ", ".join(known) if known else "none"
            raise AttendanceError(f"no attendance for room {room!r} (rooms: {rooms})")
        anonymous = anonymous or any(r[6] for r in rows)
        salt_row = conn.execute(
            "SELECT value FROM settings WHERE room=? AND key=?", (room, SALT_KEY)
        ).fetchone()
        salt = str(salt_row[0]) if salt_row else ""

        def who(user: str, hashed: int = 0) -> str:
            return pseudonym(salt, user) if anonymous and not hashed else user

        people: dict[str, Attendee] = {}
        spans: dict[str, list[tuple[float, float]]] = {}
        for user_id, name, role, client, joined, left, hashed in rows:
            key = who(user_id, hashed)
            a = people.setdefault(
                key, Attendee(key, "" if anonymous else name, first_joined=joined)
            )
            if not anonymous:
                a.name = name  # the latest name
            if role not in a.roles:
                a.roles.append(role)
            kind = client_kind(client)
            if kind not in a.clients:
                a.clients.append(kind)
            a.sessions += 1
            a.present = a.present or not left
            if left:
                a.last_left = max(a.last_left, left)
            spans.setdefault(key, []).append((joined, left or max(now, joined)))
        for key, a in people.items():
            a.duration_s = round(_union_seconds(spans[key]), 1)
            if a.present:
                a.last_left = 0.0
        for (asker,) in conn.execute(
            "SELECT asker_id FROM questions WHERE room=? AND merged_into=0", (room,)
        ):
            if (asked := people.get(who(asker))) is not None:
                asked.questions += 1
        # Votes for other people's questions (an asker's question carries their own vote).
        for (voter,) in conn.execute(
            "SELECT v.voter FROM votes v JOIN questions q ON q.room = v.room"
            " AND q.id = v.question_id WHERE v.room=? AND q.asker_id != v.voter",
            (room,),
        ):
            if (voted := people.get(who(voter))) is not None:
                voted.votes += 1
        return list(people.values()), anonymous
    finally:
        conn.close()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds") if t else ""


def export(
    db_path: str | Path, room: str, fmt: str, anonymous: bool = False, now: float | None = None
) -> str:
    if fmt not in FORMATS:
        raise AttendanceError(f"unknown format {fmt!r} (csv or json)")
    people, anonymous = load(db_path, room, anonymous, now)
    if fmt == "json":
        rows = []
        for a in people:
            row = asdict(a)
            row["first_joined"] = _iso(a.first_joined)
            row["last_left"] = _iso(a.last_left)
            if anonymous:
                del row["name"]
            rows.append(row)
        report = {
            "room": room,
            "anonymous": anonymous,
            "generated": _iso(time.time() if now is None else now),
            "totals": {
                "people": len(people),
                "sessions": sum(a.sessions for a in people),
                "questions": sum(a.questions for a in people),
                "votes": sum(a.votes for a in people),
            },
            "attendees": rows,
        }
        return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    out = io.StringIO()
    columns = [c for c in CSV_COLUMNS if not (anonymous and c == "name")]
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for a in people:
        values = {
            **asdict(a),
            "roles": " ".join(a.roles),
            "clients": "; ".join(a.clients),
            "first_joined": _iso(a.first_joined),
            "last_left": _iso(a.last_left),
            "present": "yes" if a.present else "no",
        }
        writer.writerow([values[c] for c in columns])
    return out.getvalue()
