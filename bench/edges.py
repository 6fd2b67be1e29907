"""Edges: one room's authority and three edges over NATS, against today's local workers.

For each size (clients, one in six a headset attendee sending poses at 20 Hz, the rest
spectators) and in the same run, two deployments on this machine while the clone speaks:

- **edges**: a ``nats-server -js`` of the bench's own, ``townhall serve --role authority``
  and three ``townhall serve --role edge``, each a process; the clients are spread evenly
  over the edges (one load generator per edge);
- **workers**: ``townhall serve`` (role all) with ``server.workers = 3`` local fan-out
  workers, the same clients in three load generators on its one port.

The load generator is ``bench/capload.c`` (as in ``bench/capacity.py``). For each window it
reports the authority's (the room process's) CPU, each edge's (worker's) CPU and its
microseconds per delivery (its CPU over the messages its clients received), the bus's bytes
a second (what the authority published, and what NATS took in and sent out, from its
monitoring endpoint), stage packets early or late against their media time, crowd p99,
and the ratio edges/workers of each. Latency percentiles are the worst of the three load
generators' (each has its own histogram), a bound on the whole crowd's.

The clients join at ``--ramp-per-s`` all together, each load generator its share (200 a
second), with at most ``--max-pending`` of a generator's clients joining at once: on a busy
2-core machine the edges seat 30 to 160 a second while serving those already in, and a
server handed more than it seats works through a queue of clients that gave up (60 s) by
the time it reaches them, then seats no one. A deployment that fails (clients not
joined in time, a server that does not start) is stopped, every process of it, and its row
holds the error; the other sizes still run. Every process runs in a process group of its
own (``bench/children.py``) and is stopped on any failure, Ctrl-C or SIGTERM.

Prints progress on stderr and one JSON object as its last line on stdout (exit status 1 if
any deployment failed). Set EDGES_TMP=DIR to keep the run's files (every server's log) in DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from townhall.plugin.client import RoomClient
from townhall.protocol import codec
from townhall.protocol.limits import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION
from townhall.protocol.messages import Join
from townhall.server.gateway.tokens import issue_token

sys.path.insert(0, str(Path(__file__).parent))
import children
from capacity import (
    SECRET,
    BenchError,
    Capload,
    build_capload,
    cpu_seconds,
    free_port,
    pose_frames,
    start_stage,
    steady,
    write_frames,
)
from loadgen import mask_frame

EDGES = 3
NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
START_TIMEOUT_S = 90.0


def log(text: str) -> None:
    print(f"[edges] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes


class Proc:
    """A server process of the run (a process group: fan-out workers included), its log in
    a file; ``ready`` waits for the line that says it serves."""

    def __init__(self, cmd: list[str], logfile: Path, cwd: Path) -> None:
        self.cmd = cmd
        self.logfile = logfile
        self.log = logfile.open("w")
        self.proc = children.popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=cwd)
        self.ps = psutil.Process(self.proc.pid)
        self.url = ""

    def ready(self, marker: str) -> Proc:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise BenchError(f"{self.cmd[-1]} exited; see {self.logfile}")
            if marker in line:
                # "... serving room R at URL", an authority adding " (lease term N)"
                self.url = line.split(" at ", 1)[1].split()[0]
                break
        else:
            raise BenchError(f"{self.cmd} did not start in {START_TIMEOUT_S:.0f} s")
        # Keep reading its stdout so a full pipe never stops it.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        return self

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])

    def family(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return [self.ps, *self.ps.children(recursive=True)]
        return [self.ps]

    def stop(self) -> None:
        children.stop(self.proc)
        self.log.close()


def serve_cmd(config: Path, role: str) -> list[str]:
    return [sys.executable, "-m", "townhall.server.ops.cli", "serve", "--config", str(config),
            "--role", role]  # fmt: skip


def write_config(tmp: Path, nats_url: str, workers: int) -> Path:
    config = tmp / "townhall.toml"
    config.write_text(
        "\n".join(
            [
                "[server]",
                'room = "main"',
                'host = "127.0.0.1"',
                "port = 0",
                f"workers = {workers}",
                "max_connections = 20000",
                "[limits]",
                "connects_per_address_per_min = 0",  # every client comes from 127.0.0.1
                "[room]",
                "tick_hz = 10",
                "spectator_hz = 2.5",
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
                "[bus]",
                f'url = "{nats_url}"',
            ]
        )
    )
    return config


def start_nats(tmp: Path) -> tuple[Proc, str, str]:
    if not Path(NATS_SERVER).exists():
        raise BenchError("no nats-server (Debian's nats-server package)")
    port, monitor = free_port(), free_port()
    cmd = [NATS_SERVER, "-js", "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
           "-sd", str(tmp / "jetstream")]  # fmt: skip
    proc = Proc(cmd, tmp / "nats.log", tmp)
    varz = f"http://127.0.0.1:{monitor}/varz"
    deadline = time.monotonic() + 20
    while True:
        try:
            nats_varz(varz)
            break
        except OSError:
            if time.monotonic() > deadline or proc.proc.poll() is not None:
                raise BenchError(f"nats-server did not start; see {tmp / 'nats.log'}") from None
            time.sleep(0.1)
    return proc, f"nats://127.0.0.1:{port}", varz


def nats_varz(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


def healthz(http: str) -> dict[str, Any]:
    with urllib.request.urlopen(http + "/healthz", timeout=30) as resp:
        data: dict[str, Any] = json.loads(resp.read())
        return data


# ---------------------------------------------------------------- load


def join_frames(first: int, attendees: int, spectators: int) -> list[bytes]:
    """Join frames for users ``first``... (each load generator its own users)."""
    frames = []
    for i in range(first, first + attendees + spectators):
        role = "attendee" if i < first + attendees else "spectator"
        token = issue_token(
            SECRET, user_id=f"edge-{i}", name=f"Load {i}", role=role, room="main", ttl_s=7200
        )
        join = Join(MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, token, client="capload")
        frames.append(mask_frame(0x2, codec.encode(join)))
    return frames


def loaders(
    exe: Path, tmp: Path, ports: list[int], clients: int, args: argparse.Namespace, offset: int
) -> list[Capload]:
    """One load generator per port, the clients split evenly (one in six attendees)."""
    out = []
    first = 0
    for k, port in enumerate(ports):
        n = clients // len(ports) + (1 if k < clients % len(ports) else 0)
        attendees = n // 6
        where = tmp / f"load{k}"
        where.mkdir(exist_ok=True)
        write_frames(where / "joins.bin", join_frames(first, attendees, n - attendees))
        write_frames(where / "poses.bin", pose_frames())
        first += n
        # --ramp-per-s is all of them together: each its share, so that three generators
        # do not join three times as fast as capacity.py's one.
        ramp = max(1, round(args.ramp_per_s * n / clients))
        spec = argparse.Namespace(
            attendees=attendees,
            spectators=n - attendees,
            pose_hz=20,
            ramp_per_s=ramp,
            max_pending=args.max_pending,
        )
        out.append(Capload(exe, where, port, spec, offset_us=offset))
    return out


def window(
    loads: list[Capload],
    room: Proc,
    fanout: list[list[psutil.Process]],
    nats: Proc | None,
    varz: str,
    seconds: float,
    per_edge: bool,
) -> dict[str, Any]:
    """One measured window over every load generator at once."""
    bus0 = healthz(room.url)["bus_bytes_out"] if nats is not None else 0
    v0 = nats_varz(varz) if nats is not None else {}
    room_cpu0 = cpu_seconds([room.ps])
    fan0 = [cpu_seconds(f) for f in fanout]
    nats0 = cpu_seconds([nats.ps]) if nats is not None else 0.0
    t0 = time.monotonic()
    for load in loads:
        load.command("start")
    time.sleep(seconds)
    for load in loads:
        load.command("stop")
    stats = [load.expect(30) for load in loads]
    elapsed = time.monotonic() - t0
    # A load generator whose clients got nothing measured nothing: its edge's figure would
    # be empty (seen once on a starved machine, with the bench exiting 0). A failure, said.
    for k, s in enumerate(stats):
        if not s["messages"]:
            raise BenchError(
                f"load generator {k}: its {s['open']} open clients received nothing in the "
                f"{seconds:g} s window"
            )
    room_cpu = cpu_seconds([room.ps]) - room_cpu0
    fan_cpu = [cpu_seconds(f) - c0 for f, c0 in zip(fanout, fan0, strict=True)]
    delivered = sum(s["messages"] for s in stats)
    samples = sum(s["stage_samples"] for s in stats)
    early = sum(s["stage_negative"] for s in stats)
    out: dict[str, Any] = {
        "joined": sum(s["joined"] for s in stats),
        "open": sum(s["open"] for s in stats),
        "deliveries_per_s": round(delivered / elapsed),
        "authority_cpu_percent": round(100 * room_cpu / elapsed, 1),
        "fanout_cpu_percent": [round(100 * c / elapsed, 1) for c in fan_cpu],
        "stage_p99_ms": max(s["stage_p99_ms"] for s in stats),
        "stage_p50_ms": max(s["stage_p50_ms"] for s in stats),
        "stage_early_fraction": round(early / samples, 4) if samples else None,
        "stage_late_fraction": round(1 - early / samples, 4) if samples else None,
        "stage_packets_per_s": round(min(s["stage_per_s"] for s in stats), 1),
        "crowd_p99_ms": max(s["crowd_p99_ms"] for s in stats),
        "total_cpu_us_per_delivery": (
            round((room_cpu + sum(fan_cpu)) * 1e6 / delivered, 3) if delivered else None
        ),
        "window_s": round(elapsed, 1),
    }
    if per_edge:  # edges: each load generator's clients are one edge's
        out["us_per_delivery"] = [
            round(c * 1e6 / s["messages"], 3) if s["messages"] else None
            for c, s in zip(fan_cpu, stats, strict=True)
        ]
    else:  # workers: the kernel spreads one port's clients over them; their mean
        out["us_per_delivery"] = [round(sum(fan_cpu) * 1e6 / delivered, 3)] if delivered else []
    if nats is not None:
        v1 = nats_varz(varz)
        bus1 = healthz(room.url)["bus_bytes_out"]
        nats_cpu = cpu_seconds([nats.ps]) - nats0
        out["bus_published_bytes_per_s"] = round((bus1 - bus0) / elapsed)
        out["nats_in_bytes_per_s"] = round((v1["in_bytes"] - v0["in_bytes"]) / elapsed)
        out["nats_out_bytes_per_s"] = round((v1["out_bytes"] - v0["out_bytes"]) / elapsed)
        out["nats_cpu_percent"] = round(100 * nats_cpu / elapsed, 1)
        out["total_cpu_us_per_delivery"] = (
            round((room_cpu + sum(fan_cpu) + nats_cpu) * 1e6 / delivered, 3) if delivered else None
        )
    return out


# ---------------------------------------------------------------- one deployment


def run(
    mode: str, exe: Path, tmp: Path, clients: int, args: argparse.Namespace, nats_url: str,
    nats: Proc | None, varz: str,
) -> dict[str, Any]:  # fmt: skip
    """One deployment at one size: start it, load it, measure one window, stop it."""
    tmp.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp, nats_url, 0 if mode == "edges" else EDGES)
    procs: list[Proc] = []
    loads: list[Capload] = []
    loop = asyncio.new_event_loop()
    try:
        if mode == "edges":
            room = Proc(serve_cmd(config, "authority"), tmp / "authority.log", tmp)
            procs.append(room)
            room.ready("serving")
            for k in range(EDGES):
                procs.append(Proc(serve_cmd(config, "edge"), tmp / f"edge{k}.log", tmp))
                procs[-1].ready(" serving room ")
            edges = procs[1:]
            ports = [e.port for e in edges]
            fanout = [[e.ps] for e in edges]
            probe_url = edges[0].url
        else:
            room = Proc(serve_cmd(config, "all"), tmp / "server.log", tmp)
            procs.append(room)
            room.ready("serving")
            ports = [room.port] * EDGES
            fanout = [[p] for p in room.ps.children(recursive=True)]
            probe_url = room.url.replace("http://", "ws://") + "/ws"
        probe, offset = loop.run_until_complete(start_stage(probe_url, args.questions))
        threading.Thread(target=loop.run_forever, daemon=True).start()
        loads.extend(loaders(exe, tmp, ports, clients, args, round(offset)))
        ramped = [load.expect(args.ramp_timeout, "ramped") for load in loads]
        log(f"{mode} {clients}: {sum(r['joined'] for r in ramped)} joined; settling")
        time.sleep(args.settle)
        steady(loads, 20.0)
        bus = nats if mode == "edges" else None
        stats = window(loads, room, fanout, bus, varz, args.seconds, mode == "edges")
        stats["ramp_s"] = max(r["ramp_s"] for r in ramped)
        log(
            f"{mode} {clients}: authority {stats['authority_cpu_percent']}% CPU, "
            f"{stats['us_per_delivery']} us/delivery, stage p99 {stats['stage_p99_ms']} ms"
        )
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(quiet(probe), loop).result(5)
        return stats
    finally:
        for load in loads:
            load.stop()
        loop.call_soon_threadsafe(loop.stop)
        for proc in reversed(procs):
            proc.stop()


async def quiet(probe: RoomClient) -> None:
    """The probe leaves, its question-asking task with it."""
    for task in asyncio.all_tasks():
        if task is not asyncio.current_task():
            task.cancel()
    await probe.close()


def ratio(a: Any, b: Any) -> float | None:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return round(a / b, 3)
    return None


def compare(edges: dict[str, Any], workers: dict[str, Any]) -> dict[str, Any]:
    """edges / workers for each figure both have (lists: their means)."""
    out = {}
    for key, value in edges.items():
        other = workers.get(key)
        if isinstance(value, list) and isinstance(other, list) and value and other:
            value = sum(v for v in value if v) / len(value)
            other = sum(v for v in other if v) / len(other)
        if (r := ratio(value, other)) is not None:
            out[key] = r
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="3000,6000,12000", help="client counts, comma-separated")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured window (15)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before a window (5)")
    parser.add_argument(
        "--ramp-per-s", type=int, default=200, help="new connections a second, all together (200)"
    )
    parser.add_argument(
        "--max-pending",
        type=int,
        default=100,
        help="clients joining at once, each load generator (100; 0: no limit)",
    )
    parser.add_argument("--ramp-timeout", type=float, default=400.0, help="seconds to join (400)")
    parser.add_argument("--questions", type=int, default=400, help="to keep the clone talking")
    parser.add_argument("--skip-workers", action="store_true", help="the edges only")
    parser.add_argument("--skip-edges", action="store_true", help="the workers only")
    args = parser.parse_args(argv)
    try:
        sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes: not comma-separated numbers: {args.sizes!r}")
    if not sizes or min(sizes) < EDGES:
        parser.error(f"--sizes: at least {EDGES} clients each")
    children.exit_on_termination()
    try:
        return measure_all(sizes, args)
    finally:
        children.stop_all()  # whatever a failure, Ctrl-C or SIGTERM left running


def attempt(mode: str, *run_args: Any) -> dict[str, Any]:
    """One deployment's figures, or the reason it failed (its processes all stopped)."""
    try:
        return run(mode, *run_args)
    except BenchError as exc:
        log(f"{mode}: failed: {exc}")
        return {"error": str(exc)}


def measure_all(sizes: list[int], args: argparse.Namespace) -> int:
    results: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="townhall-edges-") as tmpdir:
        tmp = Path(os.environ.get("EDGES_TMP", tmpdir))
        tmp.mkdir(parents=True, exist_ok=True)
        nats: Proc | None = None
        try:
            exe = build_capload(tmp)
            nats, nats_url, varz = start_nats(tmp)
            for clients in sizes:
                row: dict[str, Any] = {"clients": clients}
                if not args.skip_edges:
                    where = tmp / f"{clients}-edges"
                    row["edges"] = attempt("edges", exe, where, clients, args, nats_url, nats, varz)
                if not args.skip_workers:
                    where = tmp / f"{clients}-workers"
                    row["workers"] = attempt(
                        "workers", exe, where, clients, args, nats_url, None, ""
                    )
                if "edges" in row and "workers" in row:
                    row["edges_vs_workers"] = compare(row["edges"], row["workers"])
                results.append(row)
        except BenchError as exc:
            log(f"failed: {exc}")
            return 1
        finally:
            if nats is not None:
                nats.stop()
    first = "workers" if args.skip_edges else "edges"
    cpu = [r[first].get("authority_cpu_percent") for r in results]
    failed = [r for r in results if any("error" in r.get(m, {}) for m in ("edges", "workers"))]
    print(
        json.dumps(
            {
                "edges": EDGES,
                "sizes": results,
                # Flat: the authority's CPU at the largest size over that at the smallest.
                "authority_cpu_growth": ratio(cpu[-1], cpu[0]),
                "window_s": args.seconds,
                "ramp_per_s": args.ramp_per_s,
                "cpu_count": os.cpu_count(),
                # The machine's 1-minute load average as the run began and ended: the bench
                # shares it with whatever else runs.
                "load_average": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
