"""Transcript export from the room's database: markdown, JSON and WebVTT, and the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from townhall.protocol.messages import Ack, Control, Draft, Review
from townhall.server.app import TownhallServer
from townhall.server.core.qa import QaQueue
from townhall.server.ops.transcript import TranscriptError, export
from townhall.server.store.records import ActionRecorded, AnswerRecorded, EscalationRecorded
from townhall.server.store.sqlite import Store

from .conftest import TokenMaker
from .test_clone_stage import Viewer, ask_and_approve, clone_settings, state_of
from .waiting import eventually, settled


async def filled_db(tmp_path: Path) -> Path:
    path = tmp_path / "t.db"
    store = Store(str(path), "main")
    q = QaQueue()
    question, _ = q.submit("How do we work remotely?", asker_id="u1", asker_name="Ann", now=100.0)
    sensitive, _ = q.submit("Will there be layoffs?", asker_id="u2", asker_name="Bo", now=101.0)
    q.take(question.id, 1)
    q.settle(question.id, "answer")
    q.take(sensitive.id, 2)
    q.settle(sensitive.id, "escalate")
    records = [
        question.record(),
        sensitive.record(),
        ActionRecorded(100.5, "mod", "moderator", "approve", question.id, ""),
        AnswerRecorded(
            1, question.id, "We trust people.", "approved", ("S3",), "en", 102.0, 105.0, "done"
        ),
        EscalationRecorded(106.0, sensitive.id, sensitive.text, "sensitive_topic:layoffs", "en"),
        AnswerRecorded(
            2, sensitive.id, "That is for Dana.", "escalated", (), "en", 106.0, 108.0, "done"
        ),
    ]
    await store.write(records)
    await store.close()
    return path


async def test_formats(tmp_path: Path) -> None:
    db = await filled_db(tmp_path)
    data = json.loads(export(db, "main", "json"))
    kinds = [e["kind"] for e in data["entries"]]
    assert kinds == ["question", "action", "question", "answer", "escalation", "answer"]
    answer = data["entries"][3]
    assert (answer["label"], answer["sources"], answer["language"]) == ("approved", ["S3"], "en")
    md = export(db, "main", "md")
    assert "**Question 1** from Ann (?): How do we work remotely?" in md
    assert "[approved; sources: S3; done]" in md and "sensitive_topic:layoffs" in md
    vtt = export(db, "main", "vtt")
    assert vtt.startswith("WEBVTT\n")
    assert "00:00:02.000 --> 00:00:05.000" in vtt and "[escalated] That is for Dana." in vtt


async def test_errors(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match="no database"):
        export(tmp_path / "missing.db", "main", "md")
    db = await filled_db(tmp_path)
    with pytest.raises(TranscriptError, match="no transcript"):
        export(db, "other-room", "md")


async def test_cli(tmp_path: Path) -> None:
    db = await filled_db(tmp_path)
    cli = [sys.executable, "-m", "townhall.server.ops.cli", "transcript", "main", "--db", str(db)]
    result = subprocess.run([*cli, "--format", "vtt"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("WEBVTT")
    out = tmp_path / "t.md"
    assert subprocess.run([*cli, "--out", str(out)], timeout=60).returncode == 0
    assert out.read_text().startswith("# Transcript of room `main`")
    bad = subprocess.run(
        [*cli[:-1], str(tmp_path / "x.db")], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "no database" in bad.stderr


async def test_a_real_event_names_moderators_and_keeps_a_skipped_drafts_label(
    tmp_path: Path, token: TokenMaker
) -> None:
    """Run by a moderator in review mode: approve, skip the approved draft, switch the mode."""
    async with TownhallServer(clone_settings(tmp_path, review=True)) as srv:
        spectator = Viewer(srv.ws_url, token("spec-1", role="spectator", name="Sam"))
        moderator = Viewer(srv.ws_url, token("mod-7f3a", role="moderator", name="Maria Lind"))
        await spectator.connect()
        await moderator.connect()
        qid = await ask_and_approve(spectator, moderator, "How do we think about remote work?")
        await eventually(lambda: any(d.question == qid for d in moderator.of(Draft)), 30)
        draft = next(d for d in moderator.of(Draft) if d.question == qid)
        assert draft.label == "approved"
        assert isinstance(await moderator.request(lambda r: Review(r, draft.answer, "skip")), Ack)
        assert isinstance(await moderator.request(lambda r: Control(r, "mode", "auto")), Ack)
        await eventually(lambda: state_of(spectator, qid) == "rejected")
        await settled(srv, spectator.client)
        await spectator.client.close()
        await moderator.client.close()
    data = json.loads(export(tmp_path / "townhall.db", "main", "json"))
    actions = [e for e in data["entries"] if e["kind"] == "action"]
    assert {a["text"] for a in actions} >= {"approve", "review:skip", "control:mode"}
    assert all(a["who"] == "Maria Lind (moderator)" for a in actions), actions
    (skipped,) = [e for e in data["entries"] if e["kind"] == "answer"]
    assert (skipped["label"], skipped["outcome"]) == ("approved", "skipped")
    assert skipped["text"] == draft.text and skipped["sources"] == list(draft.sources)
    md = export(tmp_path / "townhall.db", "main", "md")
    assert "mod-7f3a" not in md and " on 0 " not in md
    assert f"*review:skip* on {qid} by Maria Lind (moderator)" in md
    assert "*control:mode* by Maria Lind (moderator): auto" in md
    assert f"**Draft for {qid} skipped** [approved; sources: " in md
    assert "escalated" not in md


async def test_a_database_from_before_names_still_exports_and_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    await Store(str(path), "main").close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE actions")  # as it was made before actor_name (and versioning)
    conn.execute("DROP TABLE schema_version")
    conn.execute(
        "CREATE TABLE actions (seq INTEGER PRIMARY KEY AUTOINCREMENT, room TEXT NOT NULL,"
        " time REAL NOT NULL, actor_id TEXT NOT NULL, actor_role TEXT NOT NULL,"
        " action TEXT NOT NULL, question_id INTEGER NOT NULL, detail TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO actions VALUES (1, 'main', 5.0, 'm1', 'moderator', 'approve', 3, '')")
    conn.commit()
    conn.close()
    assert "*approve* on 3 by m1 (moderator)" in export(path, "main", "md")
    store = Store(str(path), "main")
    await store.write([ActionRecorded(6.0, "m2", "moderator", "approve", 4, "", "Maria Lind")])
    await store.close()
    md = export(path, "main", "md")
    assert "on 3 by m1 (moderator)" in md and "on 4 by Maria Lind (moderator)" in md
