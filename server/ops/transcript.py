"""The record of a town hall: every question, answer and moderation action, exported.

Read from the room's SQLite store, so it works on a live server (WAL readers do not
block the writer) and after the event.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMATS = ("md", "json", "vtt")
#: Words a person wrote, spoken by the clone, named for the reader (JSON keeps the raw label).
HUMAN_LABELS = {"moderator": "written by the moderators", "leader": "the leader's own words"}
_ORDER = {"question": 0, "action": 1, "escalation": 2, "answer": 3}  # at the same instant


class TranscriptError(ValueError):
    """No such database or room."""


@dataclass(frozen=True)
class Entry:
    """One thing that happened, in time order."""

    time: float
    kind: str  # question, action, answer, escalation
    question_id: int
    text: str
    who: str = ""
    label: str = ""
    sources: list[str] = field(default_factory=list)
    language: str = ""
    outcome: str = ""
    ended: float = 0.0
    detail: str = ""


def load_transcript(db_path: str | Path, room: str) -> list[Entry]:
    path = Path(db_path)
    if not path.exists():
        raise TranscriptError(f"no database at {path}")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        entries = [
            Entry(created, "question", qid, text, who=name, language=lang, detail=state)
            for qid, text, lang, name, created, state in conn.execute(
                "SELECT id, text, language, asker_name, created, state FROM questions"
                " WHERE room=? AND merged_into=0",
                (room,),
            )
        ]
        # Moderators by the name they had (a database from before names has only ids).
        columns = {row[1] for row in conn.execute("PRAGMA table_info(actions)")}
        name = "actor_name" if "actor_name" in columns else "''"
        entries += [
            Entry(t, "action", qid, action, who=f"{actor_name or actor} ({role})", detail=detail)
            for t, actor, actor_name, role, action, qid, detail in conn.execute(
                f"SELECT time, actor_id, {name}, actor_role, action, question_id, detail"
                " FROM actions WHERE room=?",
                (room,),
            )
        ]
        entries += [
            Entry(
                started, "answer", qid, text, who="clone", label=label,
                sources=json.loads(sources), language=lang, outcome=outcome, ended=ended,
            )
            for qid, text, label, sources, lang, started, ended, outcome in conn.execute(
                "SELECT question_id, text, label, sources, language, started, ended, outcome"
                " FROM answers WHERE room=?",
                (room,),
            )
        ]  # fmt: skip
        entries += [
            Entry(t, "escalation", qid, question, detail=f"{reason}{': ' + why if why else ''}",
                  language=lang)
            for t, qid, question, reason, lang, why in conn.execute(
                "SELECT time, question_id, question, reason, language, detail FROM escalations"
                " WHERE room=?",
                (room,),
            )
        ]  # fmt: skip
    except sqlite3.Error as exc:
        raise TranscriptError(f"{path}: {exc}") from exc
    finally:
        conn.close()
    if not entries:
        raise TranscriptError(f"room {room!r} has no transcript in {path}")
    return sorted(entries, key=lambda e: (e.time, _ORDER[e.kind]))


def render(entries: list[Entry], fmt: str, room: str) -> str:
    if fmt == "json":
        return json.dumps({"room": room, "entries": [asdict(e) for e in entries]}, indent=2) + "\n"
    if fmt == "vtt":
        return _vtt(entries)
    if fmt == "md":
        return _markdown(entries, room)
    raise TranscriptError(f"format must be one of {', '.join(FORMATS)}")


def _clock(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02}:{m:02}:{s:02}.{ms:03}"


def _vtt(entries: list[Entry]) -> str:
    """Captions of what the clone said, timed from the first entry of the event."""
    t0 = entries[0].time
    lines = ["WEBVTT", ""]
    spoken = (e for e in entries if e.kind == "answer" and e.outcome != "skipped")
    for n, e in enumerate(spoken, 1):
        end = max(e.ended, e.time + 0.5)
        lines += [
            str(n),
            f"{_clock(e.time - t0)} --> {_clock(end - t0)}",
            f"<v Clone>[{_label(e.label)}] {e.text}",
            "",
        ]
    return "\n".join(lines)


def _label(label: str) -> str:
    return HUMAN_LABELS.get(label, label)


def _markdown(entries: list[Entry], room: str) -> str:
    def stamp(t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + " UTC"

    out = [f"# Transcript of room `{room}`", ""]
    for e in entries:
        if e.kind == "question":
            lang = e.language or "?"
            out.append(
                f"- {stamp(e.time)} **Question {e.question_id}** from {e.who} ({lang}): {e.text}"
            )
        elif e.kind == "answer" and e.outcome == "skipped":
            sources = f"; sources: {', '.join(e.sources)}" if e.sources else ""
            head = f"**Draft for {e.question_id} skipped** [{_label(e.label)}{sources}], not spoken"
            out.append(f"- {stamp(e.time)} {head} ({e.language}): {e.text}")
        elif e.kind == "answer":
            sources = f"; sources: {', '.join(e.sources)}" if e.sources else ""
            head = f"**Answer to {e.question_id}** [{_label(e.label)}{sources}; {e.outcome}]"
            out.append(f"- {stamp(e.time)} {head} ({e.language}): {e.text}")
        elif e.kind == "escalation":
            out.append(f"- {stamp(e.time)} **Escalated {e.question_id}** ({e.detail}): {e.text}")
        else:
            detail = f": {e.detail}" if e.detail else ""
            about = f" on {e.question_id}" if e.question_id else ""  # 0: not about a question
            out.append(f"- {stamp(e.time)} *{e.text}*{about} by {e.who}{detail}")
    return "\n".join(out) + "\n"


def export(db_path: str | Path, room: str, fmt: str) -> str:
    return render(load_transcript(db_path, room), fmt, room)


def export_audit(db_path: str | Path, room: str, fmt: str) -> str:
    """``townhall audit``: every action (studio and moderation) with who and when."""
    actions = [e for e in load_transcript(db_path, room) if e.kind == "action"]
    if fmt == "json":
        return json.dumps({"room": room, "actions": [asdict(e) for e in actions]}, indent=2) + "\n"
    lines = [f"# Audit of room `{room}`", ""]
    for e in actions:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.time)) + " UTC"
        about = f" on {e.question_id}" if e.question_id else ""
        detail = f": {e.detail}" if e.detail else ""
        lines.append(f"- {stamp} {e.who} *{e.text}*{about}{detail}")
    return "\n".join(lines) + "\n"
