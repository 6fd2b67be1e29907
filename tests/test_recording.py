"""The event's recording: a real served answer recorded as sent, listed, indexed, exported."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from townhall.protocol import codec
from townhall.protocol.messages import StageEnd, StagePacket, StageStart
from townhall.server.app import TownhallServer
from townhall.server.ops.recording_export import export
from townhall.server.store.recording import (
    EVENT,
    KEYFRAME,
    META,
    STAGE,
    index,
    list_recordings,
    read_entries,
)

from .conftest import TokenMaker, http_get
from .recorded import record_two_answers, recording_settings
from .test_clone_stage import words


async def get(srv: TownhallServer, path: str) -> tuple[int, str, str]:
    return await asyncio.to_thread(http_get, srv.url + path)


async def test_a_served_answer_is_recorded_listed_and_exported(
    tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(recording_settings(tmp_path, fast=True)) as srv:
        # While the event runs: flushed within flush_s, readable, served to a moderator only.
        rec = await record_two_answers(srv, token)
        rec_id, path, spectator = rec.id, rec.path, rec.spectator
        first, second = rec.questions
        (start1, start2), (end1, end2) = rec.starts, rec.ends
        assert path == tmp_path / "recordings" / f"{rec_id}.threc"
        mod_token = token("mod2", role="moderator", name="Mo")
        status, _, body = await asyncio.to_thread(
            http_get, f"{srv.url}/recordings.json?token={mod_token}"
        )
        assert status == 200 and [r["id"] for r in json.loads(body)["recordings"]] == [rec_id]
        spec_token = token("spec2", role="spectator", name="S")
        status, _, body = await asyncio.to_thread(
            http_get, f"{srv.url}/recordings.json?token={spec_token}"
        )
        assert status == 403 and json.loads(body)["code"] == "NOT_ALLOWED"
        status, _, body = await asyncio.to_thread(
            http_get, f"{srv.url}/recordings/{rec_id}.json?token=nonsense"
        )
        assert status == 401 and json.loads(body)["code"] == "AUTH_INVALID"
        status, _, body = await asyncio.to_thread(
            http_get, f"{srv.url}/recordings/nope.json?token={spec_token}"
        )
        assert status == 404
        status, _, body = await asyncio.to_thread(
            http_get, f"{srv.url}/recordings/{rec_id}.json?token={spec_token}"
        )
        chapters = json.loads(body)["chapters"]
        assert [c["question"] for c in chapters] == [first, second]
        sent = [p for p in spectator.of(StagePacket) if p.answer in (start1.answer, start2.answer)]
        await rec.close()

    # As sent: every stage packet the spectator got is in the recording, byte for byte.
    entries = list(read_entries(path))
    assert [e.kind for e in entries[:2]] == [META, KEYFRAME]
    recorded = [e.payload for e in entries if e.kind == STAGE]
    assert all(codec.encode(p) in recorded for p in sent)
    events = [codec.decode_server(e.payload) for e in entries if e.kind == EVENT]
    assert [m.answer for m in events if isinstance(m, StageStart)] == [start1.answer, start2.answer]
    assert {m.answer for m in events if isinstance(m, StageEnd)} == {start1.answer, start2.answer}

    # Survives the restart: the next run lists it beside its own recording.
    async with TownhallServer(recording_settings(tmp_path, fast=True)) as srv:
        assert srv.recorder is not None and srv.recorder.id != rec_id
    assert rec_id in [r.id for r in list_recordings(tmp_path / "recordings")]

    # Export: WebM with one Opus stream as long as the recording, captions beside it.
    found = index(path)
    out = tmp_path / "event.webm"
    done = export(path, out)
    with av.open(str(out)) as container:
        (stream,) = container.streams.audio
        assert stream.codec_context.name == "opus" and stream.sample_rate == 48000
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(stream)])
    seconds = len(pcm) / 48000
    assert abs(seconds - found.duration_s) < 0.2, (seconds, found.duration_s)
    # Speech where the first answer was, on the recording's timeline.
    c1 = found.chapters[0]
    a = round((c1.start_us - found.start_us) / 1e6 * 48000)
    b = round((c1.end_us - found.start_us) / 1e6 * 48000)
    assert np.abs(pcm[a:b]).mean() > 5 * (np.abs(pcm[:a]).mean() + 1e-6)
    vtt = done.vtt.read_text()
    assert vtt.startswith("WEBVTT") and done.vtt == tmp_path / "event.vtt"
    assert "NOTE chapter" in vtt and "How do we think about remote work?" in vtt
    cue_lines = [
        re.sub(r"^\[[^]]*\] ", "", line)
        for line in vtt.splitlines()
        if line and "-->" not in line and not line.isdigit()
        if not line.startswith(("WEBVTT", "NOTE"))
    ]
    assert words(" ".join(cue_lines)) == words(end1.text) + words(end2.text)
    assert "[Approved answer]" in vtt
    first_cue = vtt.split("\n\n")[3]  # header, two chapter notes, then cue 1
    stamp = first_cue.splitlines()[1].split(" --> ")[0]
    h, m, s = stamp.split(":")
    assert abs(int(h) * 3600 + int(m) * 60 + float(s) - (c1.start_us - found.start_us) / 1e6) < 1.0

    # The CLI: list and export, one-line errors with exit 2.
    env = {**os.environ, "TOWNHALL_STORE_PATH": str(tmp_path / "townhall.db")}
    cli = [sys.executable, "-m", "townhall.server.ops.cli"]
    listed = subprocess.run([*cli, "recording", "list"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0 and rec_id in listed.stdout and "2 chapters" in listed.stdout
    out2 = tmp_path / "cli.webm"
    made = subprocess.run(
        [*cli, "recording", "export", rec_id, str(out2)], capture_output=True, text=True, env=env
    )
    assert made.returncode == 0, made.stderr
    assert out2.stat().st_size > 1000 and (tmp_path / "cli.vtt").read_text() == vtt
    bad = subprocess.run(
        [*cli, "recording", "export", "no-such", str(out2)], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "no recording no-such" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_torn_tail_is_left_out(tmp_path: Path) -> None:
    """A kill -9 in the middle of a write: the whole entries before it still read."""
    from townhall.server.store.recording import (
        RecordingError,
        RecordingWriter,
        parse_entries,
        whole_bytes,
    )

    writer = RecordingWriter(tmp_path, "r1", {"room": "main", "started": 1.0})
    writer.write(KEYFRAME, 10, b"k")
    writer.write(EVENT, 20, b"e" * 100)
    writer.flush()
    size = (tmp_path / "r1.threc").stat().st_size
    writer.write(EVENT, 30, b"x" * 100)
    writer.close()
    with open(tmp_path / "r1.threc", "r+b") as fh:
        fh.truncate(size + 50)
    assert [e.at_us for e in read_entries(tmp_path / "r1.threc")] == [0, 10, 20]
    assert len(whole_bytes(tmp_path / "r1.threc")) == size
    # The headset parses what the server sends (plugin/replay.py): the same entries.
    data = (tmp_path / "r1.threc").read_bytes()
    assert list(parse_entries(data)) == list(read_entries(tmp_path / "r1.threc"))
    with pytest.raises(RecordingError):
        list(parse_entries(b"<html>not a recording</html>"))


def test_the_captions_name_words_read_out_for_the_moderators_and_the_leader(
    tmp_path: Path,
) -> None:
    """Words the clone reads out for a moderator or the leader's office carry that label's
    title in the WebVTT, not the raw label."""
    from townhall.server.ops.recording_export import Word, write_vtt

    words = [
        Word(0, 300_000, "Hello.", 0, "moderator"),
        Word(2_000_000, 2_300_000, "Thanks.", 0, "leader"),
    ]
    out = tmp_path / "t.vtt"
    assert write_vtt(words, 0, [], out) == 2
    text = out.read_text("utf-8")
    assert "[Written by the moderators] Hello." in text
    assert "[The leader's own words] Thanks." in text
