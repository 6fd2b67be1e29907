"""Time to first audio: from the clone taking a question to its first stage packet.

Starts `townhall serve` in its own process (embedded brain and voice by default),
asks the sample questions one at a time as a spectator, and as soon as the first
stage packet of each answer arrives, a moderator stops the clone so the next
question follows at once. Prints one JSON object as its last line:

- ttfa_server_p50_ms / _p95_ms: the server's own measure (question taken to first
  packet written), from its /metrics summary;
- ttfa_client_p50_ms / _p95_ms: ask sent to first packet received, as a viewer sees
  it (includes storing the question and the director's pickup);
- brain_p50_ms (question taken to first sentence), voice_p50_ms (one sentence to audio);
- tick_lag_speaking_p99_ms / _max_ms: how late the room's 20 Hz tick started while the
  clone spoke whole answers (``--speak`` of them, played to the end), from the server's
  tick-lag histogram (two scrapes subtracted; p99 is the upper bound of its bucket), and
  tick_lag_silent_p99_ms over as long a stretch with the room idle; ping_speaking_p99_ms:
  Ping to Pong round trips a client measured meanwhile. Target: p99 under 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from serve import serve

from townhall.plugin.client import RoomClient
from townhall.protocol.messages import (
    Ack,
    Ask,
    Control,
    Message,
    Ping,
    Pong,
    StageEnd,
    StagePacket,
    StageStart,
)
from townhall.server.clone.persona import sample_persona_path
from townhall.server.gateway.tokens import issue_token

SECRET = "bench-secret-" + "x" * 32


def log(text: str) -> None:
    print(f"[clone-bench] {text}", file=sys.stderr, flush=True)


def sample_questions() -> list[str]:
    path = sample_persona_path() / "questions.txt"
    lines = path.read_text(encoding="utf-8").splitlines()
    return [q.strip() for q in lines if q.strip() and not q.startswith("#")]


def start_server(tmp: Path, brain: str, voice: str) -> tuple[subprocess.Popen[str], str]:
    served = serve(
        tmp,
        "\n".join(
            [
                "[server]",
                "port = 0",
                "[auth]",
                f'secret = "{SECRET}"',
                "[store]",
                f'path = "{tmp / "townhall.db"}"',
                "[qa]",
                'mode = "auto"',
                "questions_per_minute = 6000",
                "[clone]",
                f'brain = "{brain}"',
                f'voice = "{voice}"',
                "pause_s = 0.05",
            ]
        ),
    )
    return served.proc, served.url


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for name, q, value in re.findall(r'^townhall_(\w+)\{quantile="([\d.]+)"\} (\S+)$', text, re.M):
        out[f"{name}@{q}"] = float(value)
    return out


def tick_lag_counts(url: str) -> list[tuple[float, int]]:
    """(upper bound s, cumulative ticks) of the server's tick-lag histogram."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    rows = re.findall(r'^townhall_tick_lag_hist_seconds_bucket\{le="([^"]+)"\} (\d+)$', text, re.M)
    return [(float(le), int(n)) for le, n in rows]


def lag_between(
    before: list[tuple[float, int]], after: list[tuple[float, int]]
) -> dict[str, float]:
    """p99 (bucket upper bound, ms) and the share of ticks over 50 ms between two scrapes."""
    counts = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
    total = counts[-1][1]
    if total == 0:
        return {"ticks": 0, "p99_ms": float("nan"), "over_50ms_pct": float("nan")}
    p99 = next(le for le, n in counts if n >= 0.99 * total)
    within_50 = next(n for le, n in counts if le >= 0.05)
    return {
        "ticks": total,
        "p99_ms": round(p99 * 1000, 1),
        "over_50ms_pct": round(100 * (total - within_50) / total, 2),
    }


async def speak_and_measure(
    url: str, viewer: RoomClient, seen: list[Message], texts: list[str]
) -> dict[str, float]:
    """Let the clone answer ``texts`` to the end while pinging; tick lag and ping meanwhile."""
    rtts: list[float] = []
    pongs: dict[int, float] = {}

    def on_pong(message: Message) -> None:
        if isinstance(message, Pong) and message.client_time_us in pongs:
            rtts.append(time.perf_counter() - pongs.pop(message.client_time_us))

    viewer.listeners.append(on_pong)
    before = await asyncio.to_thread(tick_lag_counts, url)
    seen.clear()
    ended = i = 0
    for n, text in enumerate(texts):  # one at a time: a person may ask 3 at once at most
        await viewer.send(Ask(50_000 + n, f"{text} (spoken {n})"))
        deadline = time.perf_counter() + 60
        while ended <= n and time.perf_counter() < deadline:
            i += 1
            pongs[i] = time.perf_counter()
            await viewer.send(Ping(i))
            await asyncio.sleep(0.05)
            ended = sum(1 for m in seen if isinstance(m, StageEnd))
    after = await asyncio.to_thread(tick_lag_counts, url)
    viewer.listeners.remove(on_pong)
    lag = lag_between(before, after)
    ms = np.asarray(rtts) * 1000
    return {
        "answers_spoken": ended,
        "speaking_ticks": lag["ticks"],
        "tick_lag_speaking_p99_ms": lag["p99_ms"],
        "tick_lag_speaking_over_50ms_pct": lag["over_50ms_pct"],
        "ping_speaking_p50_ms": round(float(np.median(ms)), 1) if len(ms) else float("nan"),
        "ping_speaking_p99_ms": round(float(np.quantile(ms, 0.99)), 1) if len(ms) else float("nan"),
    }


def token(user: str, role: str) -> str:
    return issue_token(SECRET, user_id=user, name=user, role=role, room="main", ttl_s=3600)


async def run(args: argparse.Namespace) -> dict[str, object]:
    questions = sample_questions()
    with tempfile.TemporaryDirectory(prefix="townhall-clone-bench-") as tmpdir:
        proc, url = start_server(Path(tmpdir), args.brain, args.voice)
        ws = url.replace("http://", "ws://") + "/ws"
        try:
            seen: list[Message] = []
            viewer = RoomClient(ws, token("viewer", "spectator"), on_message=seen.append)
            moderator = RoomClient(ws, token("moderator", "moderator"))
            await viewer.connect()
            await moderator.connect()
            client_ttfa: list[float] = []
            for n in range(args.questions):
                text = questions[n % len(questions)]
                if n >= len(questions):
                    text = f"{text} ({n})"  # not merged with the earlier asking
                seen.clear()
                sent = time.perf_counter()
                await viewer.send(Ask(n + 1, text))
                first = None
                deadline = sent + 30
                while time.perf_counter() < deadline:
                    if first is None and any(isinstance(m, StagePacket) for m in seen):
                        first = time.perf_counter()
                        client_ttfa.append(first - sent)
                        await moderator.send(Control(10_000 + n, "stop"))
                    if first is not None and any(isinstance(m, StageEnd) for m in seen):
                        break
                    await asyncio.sleep(0.001)
                else:
                    raise SystemExit(f"no answer to {text!r} within 30 s")
                acked = any(isinstance(m, Ack) and m.ref == n + 1 for m in seen)
                label = next((m.label for m in seen if isinstance(m, StageStart)), "?")
                late = "" if acked else " (ack after the answer started)"
                took = client_ttfa[-1] * 1000
                log(f"{n + 1}/{args.questions} {took:6.1f} ms [{label}] {text[:50]}{late}")
            m = metrics(url)
            quiet_before = await asyncio.to_thread(tick_lag_counts, url)
            await asyncio.sleep(args.silent_s)
            silent = lag_between(quiet_before, await asyncio.to_thread(tick_lag_counts, url))
            # Questions not asked above, so none is merged with an answered one.
            spoken = questions[::-1][: args.speak]
            speaking = await speak_and_measure(url, viewer, seen, spoken)
            await viewer.close()
            await moderator.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    ms = np.asarray(client_ttfa) * 1000
    return {
        "questions": args.questions,
        "brain": args.brain,
        "voice": args.voice,
        "ttfa_server_p50_ms": round(m["time_to_first_audio_s@0.5"] * 1000, 1),
        "ttfa_server_p95_ms": round(m["time_to_first_audio_s@0.95"] * 1000, 1),
        "ttfa_client_p50_ms": round(float(np.median(ms)), 1),
        "ttfa_client_p95_ms": round(float(np.quantile(ms, 0.95)), 1),
        "brain_p50_ms": round(m["brain_first_sentence_s@0.5"] * 1000, 1),
        "voice_p50_ms": round(m["voice_s@0.5"] * 1000, 1),
        "voice_p95_ms": round(m["voice_s@0.95"] * 1000, 1),
        "target_ms": 150,
        **speaking,
        "tick_lag_silent_p99_ms": silent["p99_ms"],
        "tick_lag_target_p99_ms": 50,
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions", type=int, default=20, help="questions to ask (default 20: the sample list)"
    )
    parser.add_argument("--brain", default="embedded", help="embedded (default) or openai")
    parser.add_argument("--voice", default="embedded", help="embedded (default) or openai")
    parser.add_argument(
        "--speak", type=int, default=4, help="whole answers spoken for the tick lag (default 4)"
    )
    parser.add_argument(
        "--silent-s", type=float, default=5.0, help="idle seconds for the silent tick lag"
    )
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
