"""Capacity: one room, 2,000 headset attendees and 10,000 spectators, on this machine.

Runs, in one go and against the same load generator:

1. the baseline: the same traffic served with python-websockets' ``broadcast()``
   (``bench/baseline_server.py``);
2. Townhall (``townhall serve`` with fan-out workers) while the clone speaks:
   attendees send poses at 20 Hz, everyone receives the stage stream (25 packets
   a second), crowd frames and room events;
3. the same with 10% of the clients stalled (they stop reading), over a window
   long enough for them to fill their socket buffers, fall behind and be closed,
   to show that slow clients do not hold back the others and memory stays bounded.

The load generator is ``bench/capload.c`` (compiled here with the system
compiler, once per source: kept in ``$TOWNHALL_CACHE_DIR/capload``): one epoll
loop in C, so that it takes a small share of the two cores it shares with the
server. Server CPU is read from /proc for the server
and its fan-out workers over the measured window; deliveries are the messages
the clients received in the window. Latency is client receive time minus the
time the server stamped, through a Ping/Pong clock sync: for stage packets their
media time, the moment every client is to play them (negative: early; with
fan-out workers the room hands each packet over ``stage_lead_ms`` before it, so
receive minus hand-off is that much more); for crowd frames their build time.

Prints progress on stderr and one JSON object as its last line on stdout. Set
CAPACITY_TMP=DIR to keep the run's files (the server's log among them) in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

import psutil

from townhall.plugin.client import RoomClient
from townhall.plugin.headset_sim import SimulatedHeadset
from townhall.protocol import codec
from townhall.protocol.limits import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION
from townhall.protocol.messages import Ask, Join, Pose
from townhall.server.clone.brain.intent_cache import cache_dir
from townhall.server.clone.persona import sample_persona_path
from townhall.server.gateway.tokens import issue_token
from townhall.server.ops.config import RoomSettings

sys.path.insert(0, str(Path(__file__).parent))
import children
from loadgen import mask_frame
from serve import ServeError, serve

SECRET = "capacity-secret-" + "c" * 40
HERE = Path(__file__).parent


def log(text: str) -> None:
    print(f"[capacity] {text}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The benchmark could not run."""


# ---------------------------------------------------------------- inputs


def build_capload(tmp: Path) -> Path:
    """The load generator, compiled once per source and compiler.

    The binary is kept in the cache folder (``$TOWNHALL_CACHE_DIR``, as the intent model)
    under a hash of ``capload.c``, the compiler and its flags, so a run reuses it rather
    than compile again (a quarter second of CPU per bench, three benches in the smoke
    tests); a cache that cannot be written costs a build into ``tmp``, as before.
    """
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise BenchError("no C compiler (cc or gcc) to build bench/capload.c")
    source = HERE / "capload.c"
    flags = ["-O2"]
    compiler = Path(cc).resolve()
    digest = hashlib.sha256(source.read_bytes())
    digest.update(f"{compiler} {compiler.stat().st_mtime_ns} {' '.join(flags)}".encode())
    folder = cache_dir() / "capload" / digest.hexdigest()[:32]
    out = folder / "capload"  # the name the processes go by (tests look for it)
    if out.exists():
        return out
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, building = tempfile.mkstemp(dir=folder, prefix=".capload-")
        os.close(fd)
    except OSError:  # no cache to keep it in: built for this run only
        out = tmp / "capload"
        subprocess.run([cc, *flags, "-o", str(out), str(source)], check=True)
        return out
    try:
        subprocess.run([cc, *flags, "-o", building, str(source)], check=True)
        os.chmod(building, 0o755)
        os.replace(building, out)  # whole or not at all, for a bench starting beside
    finally:
        Path(building).unlink(missing_ok=True)
    return out


def write_frames(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as f:
        for frame in frames:
            f.write(len(frame).to_bytes(2, "little") + frame)


def join_frames(attendees: int, spectators: int) -> list[bytes]:
    frames = []
    for i in range(attendees + spectators):
        role = "attendee" if i < attendees else "spectator"
        token = issue_token(
            SECRET, user_id=f"cap-{i}", name=f"Load {i}", role=role, room="main", ttl_s=7200
        )
        join = Join(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, token, client="capload")
        frames.append(mask_frame(0x2, codec.encode(join)))
    return frames


def pose_frames(count: int = 200) -> list[bytes]:
    """Ten seconds of one simulated wearer at 20 Hz; each client starts at its own offset."""
    headset = SimulatedHeadset(1)
    frames = []
    for k in range(count):
        t = k / 20
        pose = Pose(0, headset.encoded_pose_at(t), headset.flags_at(t))
        frames.append(mask_frame(0x2, codec.encode(pose)))
    return frames


# ---------------------------------------------------------------- processes


class Capload:
    """The load generator process and its JSON lines."""

    def __init__(
        self,
        exe: Path,
        tmp: Path,
        port: int,
        args: argparse.Namespace,
        offset_us: int,
        attendees: int | None = None,
    ) -> None:
        clients = args.attendees + args.spectators
        posing = args.attendees if attendees is None else attendees
        cmd = [
            str(exe), "--port", str(port), "--clients", str(clients),
            "--attendees", str(posing), "--pose-hz", str(args.pose_hz),
            "--ramp-per-s", str(args.ramp_per_s), "--offset-us", str(offset_us),
            "--joins", str(tmp / "joins.bin"), "--poses", str(tmp / "poses.bin"),
            "--max-pending", str(getattr(args, "max_pending", 0)),
        ]  # fmt: skip
        # The clients run at a higher priority than the server (nice -5 where allowed): a
        # healthy client reads what arrives at once, so the latency measured is the
        # server's, not a starved load generator's backlog.
        self.proc = children.popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            preexec_fn=_raise_priority,
        )
        self.ps = psutil.Process(self.proc.pid)
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=self._pump, args=(self.proc.stdout,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with contextlib.suppress(json.JSONDecodeError):
                self.lines.put(json.loads(line))

    def command(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def expect(self, timeout: float, event: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"load generator: no {event or 'stats'} within {timeout:.0f} s")
            try:
                line = self.lines.get(timeout=min(left, 1.0))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise BenchError(f"load generator exited with {self.proc.returncode}") from None
                continue
            if event is None and "event" not in line:
                return line
            if event is not None and line.get("event") == event:
                return line

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.command("quit")
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        children.stop(self.proc, grace_s=5.0)


def _raise_priority() -> None:
    with contextlib.suppress(OSError):
        os.nice(-5)


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def rss_bytes(procs: list[psutil.Process]) -> int:
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def server_family(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    root = psutil.Process(proc.pid)
    return [root, *root.children(recursive=True)]


def stop_process(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def scrape(url: str) -> dict[str, float]:
    """The server's /metrics samples (name, with its labels if any -> value)."""
    import urllib.request

    out: dict[str, float] = {}
    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        for line in resp.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                with contextlib.suppress(ValueError):
                    out[name] = float(value)
    return out


CLOSES = ("SLOW_CONSUMER", "PING_TIMEOUT")  # why the server closes a stalled client


def _summary(url: str, name: str, quantile: str) -> float | None:
    """One quantile of a /metrics summary, in milliseconds."""
    import urllib.request

    with urllib.request.urlopen(url + "/metrics", timeout=30) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(f'townhall_{name}{{quantile="{quantile}"}}'):
                return round(float(line.rsplit(" ", 1)[1]) * 1000, 2)
    return None


def steady(loads: Capload | list[Capload], limit_s: float) -> float:
    """Wait until the clients are no longer catching up (the ramp can leave a backlog).

    Catching up shows as more than 25 stage packets a second per client, or packets
    arriving a second late; the clone not yet speaking, as few packets. Several load
    generators are probed over the same seconds (as the window measures them), until each
    has settled. Returns how long it took (or the limit if it never settled).
    """
    waiting = [loads] if isinstance(loads, Capload) else list(loads)
    started = time.monotonic()
    while waiting and time.monotonic() - started < limit_s:
        for load in waiting:
            load.command("start")
        time.sleep(3.0)
        for load in waiting:
            load.command("stop")
        probes = [load.expect(30) for load in waiting]
        waiting = [
            load
            for load, probe in zip(waiting, probes, strict=True)
            if not (10 < probe["stage_per_s"] <= 25.5 and probe["stage_p99_ms"] < 1000)
        ]
    return round(time.monotonic() - started, 1)


def measure(
    load: Capload, family: list[psutil.Process], seconds: float, url: str = ""
) -> dict[str, Any]:
    """One window: the clients' counts and the server's CPU over the same seconds."""
    m0 = scrape(url) if url else {}
    each0 = [cpu_seconds([p]) for p in family]
    cpu0 = cpu_seconds(family)
    lg0 = cpu_seconds([load.ps])
    t0 = time.monotonic()
    load.command("start")
    rss = [rss_bytes(family)]
    while (left := t0 + seconds - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        rss.append(rss_bytes(family))
    load.command("stop")
    stats = load.expect(30)
    stats["server_rss_mb_peak"] = round(max(rss) / 2**20, 1)
    stats["server_rss_mb_every_10s"] = [round(b / 2**20, 1) for b in rss[::10]]
    if url:
        stats["worker_tick_max_p95_ms"] = _summary(url, "worker_tick_max_s", "0.95")
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(family) - cpu0
    stats["server_cpu_percent_by_process"] = [
        round(100 * (cpu_seconds([p]) - c0) / elapsed, 1)
        for p, c0 in zip(family, each0, strict=True)
    ]
    delivered = stats["messages"]
    stats["server_cpu_percent"] = round(100 * cpu / elapsed, 1)
    stats["loadgen_cpu_percent"] = round(100 * (cpu_seconds([load.ps]) - lg0) / elapsed, 1)
    stats["server_cpu_us_per_delivery"] = round(cpu * 1e6 / delivered, 3) if delivered else None
    stats["server_rss_mb"] = round(rss_bytes(family) / 2**20, 1)
    if url:
        m1 = scrape(url)
        closes = [f'townhall_closes_total{{reason="{r}"}}' for r in CLOSES]
        stats["server_closes"] = {
            r: int(m1.get(k, 0) - m0.get(k, 0)) for r, k in zip(CLOSES, closes, strict=True)
        }
        ticks = m1["townhall_ticks_total"] - m0["townhall_ticks_total"]
        if ticks:
            lag = m1["townhall_tick_lag_seconds_total"] - m0["townhall_tick_lag_seconds_total"]
            busy = m1["townhall_tick_busy_seconds_total"] - m0["townhall_tick_busy_seconds_total"]
            stats["tick_lag_mean_ms"] = round(lag / ticks * 1000, 2)
            stats["tick_busy_mean_ms"] = round(busy / ticks * 1000, 2)
            stats["ticks_per_s"] = round(ticks / elapsed, 1)
    return stats


# ---------------------------------------------------------------- the runs


def run_baseline(exe: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    expect = str(args.attendees + args.spectators)
    cmd = [sys.executable, str(HERE / "baseline_server.py"), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--secret", SECRET, "--expect", expect],
        stdout=subprocess.PIPE,
        text=True,
    )
    load = None
    try:
        assert proc.stdout is not None
        if "listening" not in proc.stdout.readline():
            raise BenchError("baseline server did not start")
        family = server_family(proc)
        rss0 = rss_bytes(family)
        # Everyone watches, nobody sends poses: websockets spends ~25 us on each received
        # message, so 40,000 poses a second alone take its whole core and it cannot even
        # admit the crowd (measured: 3,100 of 12,000 joined in 90 s). The baseline is the
        # broadcast part, which is what broadcast() is for.
        load = Capload(exe, tmp, port, args, offset_us=0, attendees=args.baseline_attendees)
        ramp = load.expect(args.ramp_timeout, "ramped")
        log(f"baseline: {ramp['joined']} joined in {ramp['ramp_s']} s; measuring {args.seconds} s")
        time.sleep(args.settle)
        stats = measure(load, family, args.seconds)
        stats["ramp_s"] = ramp["ramp_s"]
        stats["server_rss_kb_per_conn"] = round(
            (rss_bytes(family) - rss0) / 1024 / max(1, ramp["joined"]), 2
        )
        return stats
    finally:
        if load is not None:
            load.stop()
        stop_process(proc)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_townhall(tmp: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    config = tmp / "townhall.toml"
    config.write_text(
        "\n".join(
            [
                "[server]",
                "port = 0",
                f"workers = {args.workers}",
                "max_connections = 20000",
                "[limits]",
                "connects_per_address_per_min = 0",  # every client comes from 127.0.0.1
                "[room]",
                f"tick_hz = {args.tick_hz}",
                f"spectator_hz = {args.spectator_hz}",
                "[auth]",
                f'secret = "{SECRET}"',
                "[store]",
                f'path = "{tmp / "townhall.db"}"',
                "[log]",
                'level = "warning"',
                "[qa]",
                'mode = "auto"',
                "questions_per_minute = 6000",
                "[clone]",
                "pause_s = 0.05",
            ]
        )
    )
    try:
        served = serve(tmp, config.read_text(), stderr=tmp / "server.log")
    except ServeError as exc:
        raise BenchError(str(exc)) from exc
    return served.proc, served.url


def sample_questions() -> list[str]:
    lines = (sample_persona_path() / "questions.txt").read_text(encoding="utf-8").splitlines()
    return [q.strip() for q in lines if q.strip() and not q.startswith("#")]


async def keep_asking(probe: RoomClient, questions: list[str], start: int, count: int) -> None:
    """One question every two seconds (within the message rate), so the clone never runs dry."""
    for n in range(start, count):
        await asyncio.sleep(2.0)
        text = questions[n % len(questions)] + ("" if n < len(questions) else f" ({n})")
        await probe.send(Ask(n + 1, text))


async def start_stage(ws_url: str, count: int) -> tuple[RoomClient, float]:
    """A probe spectator: the clock offset, and questions to keep the clone talking."""
    probe = RoomClient(
        ws_url,
        issue_token(
            SECRET, user_id="probe", name="Probe", role="spectator", room="main", ttl_s=7200
        ),
    )
    await probe.connect()
    offset = await probe.sync_clock(samples=20, interval_s=0.01)
    questions = sample_questions()
    first = min(count, 20)  # within the general message burst
    for n in range(first):
        await probe.send(Ask(n + 1, questions[n % len(questions)]))
    asyncio.get_running_loop().create_task(keep_asking(probe, questions, first, count))
    return probe, offset


def run_townhall(exe: Path, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    proc, url = start_townhall(tmp, args)
    ws_url = url.replace("http://", "ws://") + "/ws"
    loop = asyncio.new_event_loop()
    load = None
    try:
        family = server_family(proc)
        rss0 = rss_bytes(family)
        probe, offset = loop.run_until_complete(start_stage(ws_url, args.questions))
        log(
            f"townhall: {len(family) - 1} fan-out workers; clock offset {offset / 1000:.1f} ms "
            f"(rtt {probe.clock.rtt_us:.0f} us)"
        )
        load = Capload(exe, tmp, int(url.rsplit(":", 1)[1]), args, offset_us=round(offset))
        # The probe's loop runs in a thread so it keeps answering while we measure.
        threading.Thread(target=loop.run_forever, daemon=True).start()
        ramp = load.expect(args.ramp_timeout, "ramped")
        log(f"townhall: {ramp['joined']} joined in {ramp['ramp_s']} s; measuring {args.seconds} s")
        time.sleep(args.settle)
        drained = steady(load, 60.0)
        rss_ramped = rss_bytes(family)
        stats = measure(load, family, args.seconds, url)
        stats["ramp_s"] = ramp["ramp_s"]
        stats["server_rss_kb_per_conn"] = round(
            (rss_ramped - rss0) / 1024 / max(1, ramp["joined"]), 2
        )
        stats["server_processes"] = len(family)
        stats["settled_after_s"] = args.settle + drained
        log(
            f"townhall: {stats['deliveries_per_s']:.0f} deliveries/s, "
            f"stage p99 {stats['stage_p99_ms']} ms, {stats['server_cpu_us_per_delivery']} "
            f"us/delivery; stalling {args.stall:.0%} of clients"
        )
        load.command(f"stall {args.stall}")
        load.expect(10, "stalled")
        # Long enough for a stalled client to fill its socket buffers, fall behind and be
        # closed: the whole of what a slow client can do to the others is in the window.
        stalled = measure(load, family, args.stall_seconds, url)
        stalled["server_rss_mb_start"] = round(rss_ramped / 2**20, 1)
        return {"run": stats, "stalled": stalled}
    finally:
        if load is not None:
            load.stop()
        loop.call_soon_threadsafe(loop.stop)
        stop_process(proc)


def stage_lead_ms(args: argparse.Namespace) -> float:
    """How far ahead of its media time the room sends a stage packet with these settings."""
    if args.workers <= 0:
        return 0.0
    room = RoomSettings(tick_hz=args.tick_hz, spectator_hz=args.spectator_hz)
    return room.stage_lead_us / 1000


def _change(now: float, before: float) -> float | None:
    return round(now / before - 1, 3) if before > 0 else None


def summary(
    base: dict[str, Any], now: dict[str, Any], stalled: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    keys = (
        "deliveries_per_s", "stage_p50_ms", "stage_p99_ms", "crowd_p99_ms",
        "server_cpu_us_per_delivery", "server_cpu_percent", "down_kbps_per_client",
        "server_rss_kb_per_conn", "joined", "open",
    )  # fmt: skip
    p99 = now["stage_p99_ms"]
    lead_ms = stage_lead_ms(args)
    crowd = now["crowd_p99_ms"]
    return {
        "clients": args.attendees + args.spectators,
        "attendees": args.attendees,
        "spectators": args.spectators,
        "joined": now["joined"],
        "deliveries_per_s": now["deliveries_per_s"],
        # Stage packets: client receive minus the packet's media time, the moment every
        # client is to play it (negative: it arrived that much before it was due).
        "p50_ms": now["stage_p50_ms"],
        "p99_ms": p99,
        "stage_attendee_p99_ms": now["stage_attendee_p99_ms"],
        "stage_spectator_p99_ms": now["stage_spectator_p99_ms"],
        "stage_p90_ms": now["stage_p90_ms"],
        "stage_max_ms": now["stage_max_ms"],
        "stage_early_fraction": round(now["stage_negative"] / max(1, now["stage_samples"]), 4),
        # The room hands each packet to the fan-out this long before its media time, so
        # receive minus hand-off is p99_ms + stage_lead_ms.
        "stage_lead_ms": lead_ms,
        "stage_from_handoff_p99_ms": round(p99 + lead_ms, 2),
        "crowd_p99_ms": crowd,
        "server_cpu_us_per_delivery": now["server_cpu_us_per_delivery"],
        "server_cpu_percent": now["server_cpu_percent"],
        "server_cpu_percent_by_process": now["server_cpu_percent_by_process"],
        "tick_lag_mean_ms": now.get("tick_lag_mean_ms"),
        "worker_tick_max_p95_ms": now.get("worker_tick_max_p95_ms"),
        "tick_busy_mean_ms": now.get("tick_busy_mean_ms"),
        "loadgen_cpu_percent": now["loadgen_cpu_percent"],
        "down_kbps_per_client": now["down_kbps_per_client"],
        "down_kbps_attendee": now["down_kbps_attendee"],
        "down_kbps_spectator": now["down_kbps_spectator"],
        "crowd_kbps_attendee": now["crowd_kbps_attendee"],
        "stage_packets_per_s": now["stage_per_s"],
        "poses_sent_per_s": now["poses_sent_per_s"],
        "server_rss_kb_per_conn": now["server_rss_kb_per_conn"],
        "server_rss_mb": now["server_rss_mb"],
        "closed_healthy": now["closed_in_window"],
        "close_codes": now["close_codes"],
        "baseline": {k: base.get(k) for k in keys}
        | {"server": "websockets broadcast()", "posing_clients": args.baseline_attendees},
        "cpu_per_delivery_vs_baseline": (
            round(base["server_cpu_us_per_delivery"] / now["server_cpu_us_per_delivery"], 2)
            if base.get("server_cpu_us_per_delivery") and now["server_cpu_us_per_delivery"]
            else None
        ),
        "stalled": {
            "fraction": args.stall,
            "stalled_clients": stalled["stalled"],
            "window_s": args.stall_seconds,
            "others_p99_ms": stalled["stage_p99_ms"],
            "others_p99_shift_ms": round(stalled["stage_p99_ms"] - p99, 2),
            # Relative to the others' send-to-receive p99 (from the hand-off), as a share.
            "others_p99_change": _change(stalled["stage_p99_ms"] + lead_ms, p99 + lead_ms),
            "others_crowd_p99_ms": stalled["crowd_p99_ms"],
            "others_crowd_p99_change": _change(stalled["crowd_p99_ms"], crowd),
            "others_closed": stalled["closed_in_window"],
            # The server closes a stalled client once it falls behind the send limits, or
            # once it has not answered a keepalive ping for a ping interval.
            "closed_by_server": stalled.get("server_closes"),
            "server_rss_mb_before": stalled["server_rss_mb_start"],
            "server_rss_mb_peak": stalled["server_rss_mb_peak"],
            "server_rss_mb_every_10s": stalled["server_rss_mb_every_10s"],
            "server_rss_mb_after": stalled["server_rss_mb"],
            "close_codes": stalled["close_codes"],
        },
        "settled_after_s": now["settled_after_s"],
        "window_s": args.seconds,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--attendees", type=int, default=2000, help="headset clients sending poses (2000)"
    )
    parser.add_argument("--spectators", type=int, default=10000, help="watch-only clients (10000)")
    parser.add_argument(
        "--seconds", type=float, default=20.0, help="length of each measured window (20)"
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="Townhall fan-out worker processes (2)"
    )
    parser.add_argument(
        "--pose-hz", type=int, default=20, help="poses per attendee per second (20)"
    )
    parser.add_argument("--tick-hz", type=int, default=10, help="room ticks (writes) a second (10)")
    parser.add_argument(
        "--spectator-hz", type=float, default=2.5, help="writes a second to each spectator (2.5)"
    )
    parser.add_argument(
        "--ramp-per-s", type=int, default=400, help="new connections per second (400)"
    )
    parser.add_argument(
        "--ramp-timeout", type=float, default=180.0, help="seconds allowed for joining"
    )
    parser.add_argument("--settle", type=float, default=10.0, help="seconds before a window (10)")
    parser.add_argument(
        "--stall", type=float, default=0.1, help="fraction of clients that stall (0.1)"
    )
    parser.add_argument(
        "--questions", type=int, default=400, help="questions asked to keep the clone talking"
    )
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=90.0,
        help="length of the stalled window: long enough for stalled clients to be closed (90)",
    )
    parser.add_argument("--skip-baseline", action="store_true", help="measure Townhall only")
    parser.add_argument(
        "--baseline-attendees",
        type=int,
        default=0,
        help="clients sending poses to the baseline server (0: all just watch)",
    )
    args = parser.parse_args(argv)
    children.exit_on_termination()
    try:
        return _main(args)
    finally:
        children.stop_all()  # whatever a failure or a signal left running


def _main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="townhall-capacity-") as tmpdir:
        tmp = Path(os.environ.get("CAPACITY_TMP", tmpdir))
        tmp.mkdir(parents=True, exist_ok=True)
        exe = build_capload(tmp)
        log(f"building {args.attendees + args.spectators} join frames")
        write_frames(tmp / "joins.bin", join_frames(args.attendees, args.spectators))
        write_frames(tmp / "poses.bin", pose_frames())
        try:
            base: dict[str, Any] = {}
            if not args.skip_baseline:
                log("baseline: websockets broadcast()")
                base = run_baseline(exe, tmp, args)
                log(
                    f"baseline: {base['deliveries_per_s']:.0f} deliveries/s, "
                    f"{base['server_cpu_us_per_delivery']} us/delivery, "
                    f"stage p99 {base['stage_p99_ms']} ms"
                )
            result = run_townhall(exe, tmp, args)
        except BenchError as exc:
            log(f"failed: {exc}")
            return 1
    print(json.dumps(summary(base, result["run"], result["stalled"], args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
