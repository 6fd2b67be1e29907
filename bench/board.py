"""A big board: Ask->Ack latency, tick lag and keyframe size at 100, 1,000 and 10,000 questions.

Starts ``townhall serve`` in its own process (``qa.max_questions`` raised a little above the
largest level so the probes fit), then for each level:

1. fills the board up to the level: 100 askers pipeline questions (3 in flight each, a
   person's burst), every one durable before its Ack, as a room collecting questions all
   day would;
2. measures a window: a probe asks ``--probes`` questions one at a time, one every
   ``--every`` seconds (Ask->Ack, each stored before it is acknowledged), five voters vote
   for random questions all the while, and a joiner joins every 0.2 s (its Keyframe's size
   is the one a joiner would get); the room's tick lag over the window comes from the
   server's tick-lag histogram (/metrics).

The probe runs in a process of its own (``--probe``), so its timings are not the load
generator's event loop running late, nor the server's. The machine's 1-minute load average
(os.getloadavg) is reported beside each window's figures: on a shared machine a tail means
little without it.

Targets (issue "Reliability and security", item 10): Ask->Ack p99 under 100 ms at 10,000
questions and the tick lag flat from 100 to 10,000. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

sys.path.insert(0, str(Path(__file__).parent))

from clone import lag_between, tick_lag_counts
from serve import serve

from townhall.protocol import codec
from townhall.protocol.messages import Ack, Ask, Error, Join, Keyframe, Message, Vote, Welcome
from townhall.server.gateway.tokens import issue_token

SECRET = "board-bench-secret-" + "x" * 32
LEVELS = (100, 1000, 10000)
SECRET_ENV = "TOWNHALL_BENCH_SECRET"  # the room's secret, for the probe process


def log(text: str) -> None:
    print(f"[board] {text}", file=sys.stderr, flush=True)


def start_server(tmp: Path, max_questions: int, clone: bool) -> tuple[subprocess.Popen[str], str]:
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
                "[log]",
                'level = "warning"',
                "[limits]",
                "messages_per_s = 100000.0",
                "message_burst = 100000",
                "connects_per_address_per_min = 0",
                "[qa]",
                "questions_per_minute = 1000000",
                "votes_per_s = 100000",
                f"max_questions = {max_questions}",
                "[clone]",
                f"enabled = {'true' if clone else 'false'}",
                "pause_s = 0.05",
            ]
        ),
    )
    return served.proc, served.url


class Client:
    """A spectator that matches replies to its requests by ``ref``."""

    def __init__(self, ws: ClientConnection, welcome: Welcome, keyframe_bytes: int) -> None:
        self.ws, self.welcome, self.keyframe_bytes = ws, welcome, keyframe_bytes
        self.waiting: dict[int, asyncio.Future[Message]] = {}
        self.ref = 0
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def join(cls, ws_url: str, user: str, secret: str = SECRET) -> Client:
        ws = await connect(ws_url, max_size=None, compression=None)
        tok = issue_token(
            secret, user_id=user, name=user, role="spectator", room="main", ttl_s=3600
        )
        await ws.send(codec.encode(Join(1, 1, tok)))
        welcome = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
        assert isinstance(welcome, Welcome), welcome
        keyframe = await ws.recv()
        assert isinstance(codec.decode_server(keyframe), Keyframe)  # type: ignore[arg-type]
        return cls(ws, welcome, len(keyframe))

    async def _read(self) -> None:
        async for data in self.ws:
            message = codec.decode_server(data)  # type: ignore[arg-type]
            if isinstance(message, Ack | Error):
                future = self.waiting.pop(message.ref, None)
                if future is not None and not future.done():
                    future.set_result(message)

    async def request(self, make: Any) -> Message:
        self.ref += 1
        future: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self.waiting[self.ref] = future
        await self.ws.send(codec.encode(make(self.ref)))
        return await asyncio.wait_for(future, 60)

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


def question(n: int) -> str:
    return f"Question {n} on subject s{n}x: what is the plan?"


async def fill(askers: list[Client], start: int, stop: int) -> int:
    """Ask questions ``start`` .. ``stop``; returns how many were acknowledged."""
    numbers = iter(range(start, stop))
    acked = 0

    async def lane(client: Client) -> None:
        nonlocal acked
        for n in numbers:
            reply = await client.request(lambda ref, n=n: Ask(ref, question(n)))
            acked += isinstance(reply, Ack)

    await asyncio.gather(*(lane(c) for c in askers for _ in range(3)))  # a person's burst
    return acked


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else 0.0


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


async def probe_process(
    ws_url: str, probes: int, every: float, seq: int, secret: str
) -> list[float]:
    """Run the probe in a process of its own; its Ask->Ack latencies in ms."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--probe", ws_url, "--probes", str(probes),
        "--every", str(every), "--seq", str(seq),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, SECRET_ENV: secret},  # not on the command line, for ps to show
    )  # fmt: skip
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"the probe failed (exit {proc.returncode})")
    latencies: list[float] = json.loads(out.decode().strip().splitlines()[-1])
    return latencies


async def probe(ws_url: str, probes: int, every: float, seq: int, secret: str) -> list[float]:
    """One asker, one question in flight, a new one every ``every`` s (or at the reply, if
    that comes later); each Ask->Ack in ms."""
    client = await Client.join(ws_url, f"probe-{seq}", secret)
    latencies = []
    start = time.perf_counter()
    for i in range(probes):
        delay = start + i * every - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        t0 = time.perf_counter()
        reply = await client.request(lambda ref, i=i: Ask(ref, question(10**7 + seq * 10**5 + i)))
        latencies.append((time.perf_counter() - t0) * 1000)
        assert isinstance(reply, Ack), reply
    await client.close()
    return latencies


async def measure(
    ws_url: str,
    url: str,
    voters: list[Client],
    level: int,
    seq: int,
    probes: int = 400,
    every: float = 0.05,
    secret: str = SECRET,
) -> dict[str, Any]:
    stop = asyncio.Event()
    votes = 0
    keyframes: list[int] = []

    async def vote(client: Client) -> None:
        nonlocal votes
        rng = random.Random(id(client))
        while not stop.is_set():
            await client.request(lambda ref: Vote(ref, rng.randint(1, level)))
            votes += 1

    async def joiners() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            c = await Client.join(ws_url, f"joiner-{seq}-{n}", secret)
            keyframes.append(c.keyframe_bytes)
            await c.close()
            await asyncio.sleep(0.2)

    before = await asyncio.to_thread(tick_lag_counts, url)
    load_before = load_average()
    background = [asyncio.create_task(vote(v)) for v in voters]
    background.append(asyncio.create_task(joiners()))
    started = time.perf_counter()
    latencies = await probe_process(ws_url, probes, every, seq, secret)
    window = time.perf_counter() - started
    stop.set()
    await asyncio.gather(*background, return_exceptions=True)
    lag = lag_between(before, await asyncio.to_thread(tick_lag_counts, url))
    return {
        "questions": level,
        "probes": len(latencies),
        "ask_ack_p50_ms": percentile(latencies, 0.5),
        "ask_ack_p90_ms": percentile(latencies, 0.9),
        "ask_ack_p99_ms": percentile(latencies, 0.99),
        "ask_ack_max_ms": percentile(latencies, 1.0),
        "tick_lag_p99_ms": lag["p99_ms"],
        "ticks_over_50ms_pct": lag["over_50ms_pct"],
        "votes_per_s": round(votes / window, 1),
        "keyframe_bytes_max": max(keyframes, default=0),
        "window_s": round(window, 1),
        "load_average_1m_start": load_before,
        "load_average_1m": load_average(),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    levels = [int(x) for x in args.levels.split(",")]
    out: dict[str, Any] = {
        "levels": [],
        "probes": args.probes,
        "every_s": args.every,
        "clone": args.clone,
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="townhall-board-") as tmpdir:
        max_questions = max(levels) + args.probes * len(levels) + 100
        proc, url = start_server(Path(tmpdir), max_questions, args.clone)
        ws_url = url.replace("http://", "ws://") + "/ws"
        try:
            askers = [await Client.join(ws_url, f"asker{n}") for n in range(100)]
            voters = [await Client.join(ws_url, f"voter{n}") for n in range(5)]
            asked = 0
            for seq, level in enumerate(levels):
                t0 = time.perf_counter()
                asked += await fill(askers, asked, level)
                log(f"{level} questions on the board ({time.perf_counter() - t0:.1f} s to fill)")
                out["levels"].append(
                    await measure(ws_url, url, voters, level, seq, args.probes, args.every)
                )
                log(json.dumps(out["levels"][-1]))
            for c in [*askers, *voters]:
                await c.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    last = out["levels"][-1]
    out["ask_ack_p99_ms_at_max"] = last["ask_ack_p99_ms"]
    out["tick_lag_p99_ms_at_max"] = last["tick_lag_p99_ms"]
    out["load_average_1m_at_max"] = last["load_average_1m"]
    out["targets"] = {"ask_ack_p99_ms": 100, "tick_lag_flat": True}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)), help="board sizes")
    parser.add_argument("--probes", type=int, default=400, help="timed asks per level")
    parser.add_argument(
        "--every", type=float, default=0.05, help="seconds between the probe's asks"
    )
    parser.add_argument("--clone", action="store_true", help="run the clone on stage too")
    parser.add_argument("--probe", metavar="WS_URL", help=argparse.SUPPRESS)  # the probe process
    parser.add_argument("--seq", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        secret = os.environ.get(SECRET_ENV, SECRET)
        print(json.dumps(asyncio.run(probe(args.probe, args.probes, args.every, args.seq, secret))))
        return
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
