"""The fan-out benchmark runs end to end at a small size and reports every figure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from .judgment_set import SPLITS, TUNED_ON, load
from .test_clone_stage import fast_persona
from .waiting import eventually

BENCH = Path(__file__).resolve().parent.parent / "bench" / "fanout.py"
KEYS = (
    "clients",
    "joined",
    "deliveries_per_s",
    "p50_ms",
    "p99_ms",
    "server_cpu_us_per_delivery",
    "down_kbps_per_client",
    "down_kbps_attendee",
    "down_kbps_spectator",
    "server_rss_kb_per_conn",
    "frames_dropped",
    "window_s",
)


def test_fanout_bench_smoke() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--attendees",
            "20",
            "--spectators",
            "20",
            "--seconds",
            "2",
            "--warmup",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-3000:]
    result = json.loads(lines[-1])
    missing = [k for k in KEYS if k not in result]
    assert not missing, missing
    assert result["clients"] == 40
    assert result["joined"] == 40
    assert result["deliveries_per_s"] > 0
    assert result["p50_ms"] is not None and result["p99_ms"] is not None
    assert result["p50_ms"] <= result["p99_ms"]
    assert result["down_kbps_per_client"] > 0
    assert result["down_kbps_attendee"] > result["down_kbps_spectator"] > 0
    assert result["server_cpu_us_per_delivery"] > 0


CAPACITY = BENCH.parent / "capacity.py"


def test_capacity_bench_smoke() -> None:
    """Baseline, Townhall over workers and the stalled window, small: every figure is there."""
    small = "--attendees 40 --spectators 160 --seconds 2 --settle 1 --stall-seconds 3"
    proc = subprocess.run(
        [sys.executable, str(CAPACITY), *small.split(), "--questions", "20"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["clients"] == 200 and result["joined"] == 200
    assert result["deliveries_per_s"] > 0 and result["server_cpu_us_per_delivery"] > 0
    # The clone spoke in the window, handed over ahead of its media time. How early and how
    # often the packets arrived are figures of the bench (p99_ms < 0 and about 20 a second
    # on a quiet machine), not asserted here: on a busy machine the load generator itself
    # reads them late, and a 2 s window once held 9.8 a second (beside bench/capacity.py).
    assert result["stage_packets_per_s"] > 0
    assert result["p50_ms"] <= result["p99_ms"] and result["stage_lead_ms"] > 0
    assert result["stage_from_handoff_p99_ms"] == round(result["p99_ms"] + 500.0, 2)
    assert 0 < result["crowd_kbps_attendee"] < result["down_kbps_attendee"]
    assert result["closed_healthy"] == 0
    base = result["baseline"]
    assert base["joined"] == 200 and base["deliveries_per_s"] > 0
    assert result["cpu_per_delivery_vs_baseline"] > 0
    stalled = result["stalled"]
    assert stalled["stalled_clients"] == 20
    assert set(stalled["closed_by_server"]) == {"SLOW_CONSUMER", "PING_TIMEOUT"}
    assert stalled["server_rss_mb_peak"] >= stalled["server_rss_mb_before"] > 0


def test_voice_bench_smoke() -> None:
    """The voice benchmark runs at a small size and reports every figure as a positive number."""
    script = BENCH.parent / "voice.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--renders", "2", "--alignments", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(result) == {
        "espeak_10_words_median_ms",
        "espeak_audio_s",
        "opus_encode_ms_per_audio_s",
        "alignment_median_ms",
        "alignment_reference_s",
        "alignment_target_s",
    }
    assert all(value > 0 for value in result.values())


def test_trust_bench_smoke() -> None:
    """The judgment benchmark asks a few questions of each split (train, dev and every
    held-out set, reported apart) through a real server."""
    script = BENCH.parent / "trust.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--limit", "3", "--no-disclosure"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["questions"] == 3 * len(SPLITS)
    assert list(result["splits"]) == list(SPLITS)
    assert "heldout9" in SPLITS and result["never_tuned_on"] == [
        s for s in SPLITS if s not in TUNED_ON
    ]
    assert TUNED_ON == ("train", "dev")
    for split in result["splits"].values():
        assert split["questions"] == 3
        assert {"missed_escalations", "over_escalations", "wrong_language_answers"} <= set(split)
        assert split["categories"]
    # The first questions of train and heldout are sensitive paraphrases: none may be
    # answered (heldout2 to heldout9 open with harmless ones).
    assert result["missed_escalations"] == 0
    assert 0 < result["classifier_p50_ms"] <= result["classifier_p95_ms"]
    model = result["misbehaving_model"]
    assert model["bad_sentences"] >= 30
    assert model["unsupported_sentences_spoken"] == len(model["spoken"]) == 0
    assert model["good_sentences"] > 0 and model["good_sentences_cut"] == 0
    assert 0 < result["classifier_cpu_p50_ms"] <= result["classifier_cpu_p95_ms"]
    # A blind split's questions are named by file and line, never shown: running the bench
    # must not put their wording before whoever tunes the classifier (train's are shown).
    asked = {s: load(s)[:3] for s in SPLITS}
    printed = proc.stderr + proc.stdout
    for split, cases in asked.items():
        for case in cases:
            if split in TUNED_ON:
                assert case.text[:60] in proc.stderr, case.text
            else:
                assert case.text[:30] not in printed, case.where
                assert f"{case.where}" in proc.stderr


def test_disclosure_bench_smoke(tmp_path: Path) -> None:
    """The spoken-disclosure figure of bench/trust.py, over one real `townhall serve` session
    whose clone speaks fast (what it says first is measured, not its pace)."""
    script = BENCH.parent / "disclosure.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--sessions", "1", "--persona", fast_persona(tmp_path)],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # Every answer that opens the session or follows a pause opened with the disclosure,
    # and an answer right after another did not repeat it.
    assert result["answers_due"] == 5 and result["disclosure_spoken"] == 1.0, result
    assert result["session_starts_disclosed"] == 1 and result["repeated_without_pause"] == 0


def test_recording_bench_smoke(tmp_path: Path) -> None:
    """The recording benchmark records one real answer, spoken fast, and reports its figures."""
    script = BENCH.parent / "recording.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--answers", "1", "--persona", fast_persona(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["answers"] == 1 and result["vtt_cues"] >= 1
    for key in ("speech_s", "kB_per_speech_s", "ship_us_p50", "export_x_realtime", "webm_bytes"):
        assert result[key] > 0, key


EDGES_BENCH = BENCH.parent / "edges.py"
EDGE_KEYS = (
    "joined",
    "deliveries_per_s",
    "authority_cpu_percent",
    "us_per_delivery",
    "stage_early_fraction",
    "stage_late_fraction",
    "crowd_p99_ms",
    "total_cpu_us_per_delivery",
)


def test_edges_bench_smoke() -> None:
    """NATS, an authority and three edges, then three local workers: every figure, small."""
    proc = subprocess.run(
        [sys.executable, str(EDGES_BENCH), "--sizes", "30", "--seconds", "2", "--settle", "0"],
        capture_output=True,
        text=True,
        timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    (size,) = result["sizes"]
    edges, workers = size["edges"], size["workers"]
    for figures in (edges, workers):
        missing = [k for k in EDGE_KEYS if k not in figures]
        assert not missing, missing
        assert figures["joined"] == 30 and figures["deliveries_per_s"] > 0
        early, late = figures["stage_early_fraction"], figures["stage_late_fraction"]
        assert early + late == pytest.approx(1.0)
    assert len(edges["us_per_delivery"]) == 3 and all(u > 0 for u in edges["us_per_delivery"])
    assert edges["bus_published_bytes_per_s"] > 0
    assert edges["nats_out_bytes_per_s"] >= edges["bus_published_bytes_per_s"]
    assert size["edges_vs_workers"]["total_cpu_us_per_delivery"] > 0
    assert result["authority_cpu_growth"] == 1.0  # one size: its own


def test_edges_bench_stops_every_process_it_started_on_sigterm() -> None:
    """SIGTERM mid-run (what `timeout` sends): NATS, the servers and the load generators
    stop with the bench, not only the bench; a later run must not share the machine."""
    proc = subprocess.Popen(
        [sys.executable, str(EDGES_BENCH), "--sizes", "30", "--seconds", "120", "--settle", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    bench = psutil.Process(proc.pid)

    def loading() -> bool:  # NATS, the authority, three edges and their load generators
        with contextlib.suppress(psutil.Error):
            return sum(p.name() == "capload" for p in bench.children(recursive=True)) == 3
        return False

    try:
        # Each look walks every process of the machine (psutil's children()): a few ms of
        # CPU, so half a second apart (at 20 ms, a quarter of a core for the minute the
        # edges take to start on a busy machine). SIGTERM comes as mid-run either way.
        asyncio.run(eventually(loading, 180, "the edges under load", poll=0.5))
        started = bench.children(recursive=True)
        assert len(started) >= 8
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=90) == 128 + signal.SIGTERM
        _, alive = psutil.wait_procs(started, timeout=30)
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
