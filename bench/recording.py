"""The recording's cost: bytes per second of speech, the recorder's time per room tick,
reading (index) and export (WebM + VTT) speed.

Runs a server with the embedded clone (the sample persona, or ``--persona DIR``), asks N
questions, waits for every answer, then measures. Progress on stderr, one JSON object as
the last line of stdout.

    python bench/recording.py --answers 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from townhall.plugin.client import RoomClient
from townhall.protocol.messages import Ack, Ask, Error, Message, StageEnd, StageStart
from townhall.server.app import TownhallServer
from townhall.server.gateway.tokens import issue_token
from townhall.server.ops.config import (
    AuthSettings,
    CloneSettings,
    QaSettings,
    ServerSettings,
    Settings,
    StoreSettings,
)
from townhall.server.ops.recording_export import export
from townhall.server.store.recording import index

QUESTIONS = [
    "How do we think about remote work?",
    "What is our plan for the office?",
    "How are we investing in training?",
    "How do we think about hiring this year?",
]


class TimedRecorder:
    """Wraps the server's recorder to time each ship() (the work added to a tick)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.times: list[float] = []

    def ship(self, ship: object) -> None:
        t0 = time.perf_counter()
        self.inner.ship(ship)  # type: ignore[attr-defined]
        self.times.append(time.perf_counter() - t0)

    def live(self, now_us: int, payload: bytes) -> None:
        self.inner.live(now_us, payload)  # type: ignore[attr-defined]


async def run(answers: int, persona: str = "") -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="townhall-bench-rec-"))
    secret = "bench-secret-" + "x" * 32
    settings = Settings(
        server=ServerSettings(port=0),  # a free port: never collides with another server
        auth=AuthSettings(secret=secret),
        store=StoreSettings(path=str(tmp / "townhall.db")),
        qa=QaSettings(mode="auto"),
        clone=CloneSettings(pause_s=0.1, persona=persona),
    )
    async with TownhallServer(settings) as srv:
        assert srv.recorder is not None
        timed = TimedRecorder(srv.recorder)
        srv.host.recorder = timed
        seen: list[Message] = []
        token = issue_token(
            secret, user_id="bench", name="Bench", role="spectator", room="main", ttl_s=3600
        )
        client = RoomClient(srv.ws_url, token, on_message=seen.append)
        await client.connect()
        for ref, text in enumerate((QUESTIONS * 3)[:answers], 1):
            await client.send(Ask(ref, text))
            while not any(isinstance(m, (Ack, Error)) and m.ref == ref for m in seen):
                await asyncio.sleep(0.05)
        # A near-duplicate question merges into an earlier one: fewer answers than asks.
        distinct = len({m.id for m in seen if isinstance(m, Ack)})
        while sum(isinstance(m, StageEnd) for m in seen) < distinct:
            await asyncio.sleep(0.1)
        print(f"{distinct} answers spoken", file=sys.stderr)
        await client.close()
        rec_path = srv.recorder.path
    started = sum(isinstance(m, StageStart) for m in seen)
    t0 = time.perf_counter()
    found = index(rec_path)
    index_s = time.perf_counter() - t0
    speech_s = sum((c.end_us - c.start_us) / 1e6 for c in found.chapters)
    t0 = time.perf_counter()
    done = export(rec_path, tmp / "event.webm")
    export_s = time.perf_counter() - t0
    ticks = sorted(timed.times)
    return {
        "answers": started,
        "recording_s": round(found.duration_s, 1),
        "speech_s": round(speech_s, 1),
        "bytes": found.bytes,
        "kB_per_speech_s": round(found.bytes / 1e3 / max(speech_s, 1e-9), 1),
        "MB_per_hour_of_speech": round(found.bytes / 1e6 / max(speech_s, 1e-9) * 3600, 1),
        "ship_us_p50": round(ticks[len(ticks) // 2] * 1e6, 1),
        "ship_us_p99": round(ticks[int(len(ticks) * 0.99)] * 1e6, 1),
        "ticks": len(ticks),
        "index_s": round(index_s, 3),
        "export_s": round(export_s, 2),
        "export_x_realtime": round(done.duration_s / export_s, 1),
        "webm_bytes": done.webm.stat().st_size,
        "vtt_cues": done.cues,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=4, help="questions to answer (default 4)")
    parser.add_argument(
        "--persona", default="", help="persona directory (default: the bundled sample)"
    )
    args = parser.parse_args()
    result = asyncio.run(run(args.answers, args.persona))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
