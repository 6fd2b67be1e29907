"""Transcript export from the room's database: markdown, JSON and WebVTT, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from townhall.server.core.qa import QaQueue
from townhall.server.ops.transcript import TranscriptError, export
from townhall.server.store.records import ActionRecorded, AnswerRecorded, EscalationRecorded
from townhall.server.store.sqlite import Store


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
