"""Time to first audio: from the clone taking a question to its first stage packet.

Starts `townhall serve` in its own process (embedded brain and voice by default),
asks the sample questions one at a time as a spectator, and as soon as the first
stage packet of each answer arrives, a moderator stops the clone so the next
question follows at once. Prints one JSON object as its last line:

- ttfa_server_p50_ms / _p95_ms: the server's own measure (question taken to first
  packet written), from its /metrics summary;
- ttfa_client_p50_ms / _p95_ms: ask sent to first packet received, as a viewer sees
  it (includes storing the question and the director's pickup);
- brain_p50_ms (question taken to first sentence), voice_p50_ms (one sentence to audio).
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

from townhall.plugin.client import RoomClient
from townhall.protocol.messages import Ack, Ask, Control, Message, StageEnd, StagePacket, StageStart
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
    config = tmp / "townhall.toml"
    config.write_text(
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
        )
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "townhall.server.ops.cli", "serve", "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=tmp,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving room" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1].strip()


def metrics(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for name, q, value in re.findall(r'^townhall_(\w+)\{quantile="([\d.]+)"\} (\S+)$', text, re.M):
        out[f"{name}@{q}"] = float(value)
    return out


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
        "cpu_count": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--questions", type=int, default=20, help="questions to ask (default 20: the sample list)"
    )
    parser.add_argument("--brain", default="embedded", help="embedded (default) or openai")
    parser.add_argument("--voice", default="embedded", help="embedded (default) or openai")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
