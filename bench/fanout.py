"""Fan-out benchmark: one server process, N attendees posing at 20 Hz, M spectators watching.

Starts ``townhall serve`` as its own process with a temporary config, ramps the
clients up from separate load-generator processes (bench/loadgen.py), lets the
room settle, then measures a window of ``--seconds``:

- latency of crowd frames, server stamp to client receipt (clocks synced by Ping/Pong),
- server CPU per delivered message and deliveries per second (from /metrics),
- downstream kbit/s per client, by role,
- server memory per connection.

Progress goes to stderr; the last line of stdout is one JSON object::

    python bench/fanout.py --attendees 1000 --spectators 1000 --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-" + "b" * 40


def log(text: str) -> None:
    print(f"[fanout] {text}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The benchmark could not run (server or load generator failed)."""


# ---------------------------------------------------------------- processes


def _child_setup() -> None:
    """In the child before exec: die with the parent, and take Ctrl-C normally.

    A shell starts background jobs with SIGINT ignored, and Python children would
    inherit that; the server should turn SIGINT into a clean stop.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any] | None, first: int, grace: float) -> None:
    """Signal, wait, then escalate to SIGTERM and SIGKILL; never leaves it running."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((first, grace), (signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def http_get(url: str, timeout: float = 15.0) -> str:
    """GET a page of the server; an overloaded server may take seconds to answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return str(resp.read().decode())
    except OSError as exc:  # URLError, timeouts and resets are all OSErrors
        raise BenchError(f"GET {url} failed: {exc}") from None


def scrape(base: str, timeout: float = 15.0) -> dict[str, float]:
    """Prometheus text from /metrics as {name{labels}: value}."""
    out: dict[str, float] = {}
    for line in http_get(base + "/metrics", timeout).splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out


def labelled(metrics: dict[str, float], prefix: str) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if k.startswith(prefix + "{")}


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


@dataclass
class Loadgen:
    """One load-generator process and the JSON lines it has sent."""

    index: int
    proc: subprocess.Popen[str]
    latency_file: Path
    lines: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    ps: psutil.Process | None = None

    def start_reader(self) -> None:
        def pump(stream: IO[str]) -> None:
            for raw in stream:
                raw = raw.strip()
                try:
                    msg = json.loads(raw)
                except json.JSONDecodeError:
                    print(f"[loadgen {self.index}] {raw}", file=sys.stderr, flush=True)
                    continue
                self.lines.put(msg)

        assert self.proc.stdout is not None
        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()

    def send(self, command: str) -> None:
        if self.proc.poll() is None and self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.proc.stdin.write(command + "\n")
                self.proc.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"loadgen {self.index}: no {event!r} within {timeout:.0f}s")
            try:
                msg = self.lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    code = self.proc.returncode
                    detail = f"loadgen {self.index} exited ({code}) before {event!r}"
                    raise BenchError(detail) from None
                continue
            if msg.get("event") == event:
                return msg


# ---------------------------------------------------------------- the run


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="townhall-bench-"))
        self.server: subprocess.Popen[bytes] | None = None
        self.server_ps: psutil.Process | None = None
        self.server_log: IO[bytes] | None = None
        self.loadgens: list[Loadgen] = []
        self.probe: Loadgen | None = None
        self.port = args.port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"

    # ------------------------------------------------------------ server

    def write_config(self) -> Path:
        a = self.args
        clients = a.attendees + a.spectators
        config = self.tmp / "townhall.toml"
        # Limits raised for the bench: max_connections must cover every client, and every
        # client comes from 127.0.0.1 (no per-address limit); the rest are defaults, kept so
        # the figures describe the shipped configuration.
        config.write_text(
            "\n".join(
                [
                    "[server]",
                    'host = "127.0.0.1"',
                    f"port = {self.port}",
                    f"max_connections = {max(20000, clients + 100)}",
                    "",
                    "[limits]",
                    "connects_per_address_per_min = 0",
                    "",
                    "[auth]",
                    f'secret = "{SECRET}"',
                    f'secret_file = "{self.tmp / "secret"}"',
                    "",
                    "[log]",
                    f'level = "{a.server_log_level}"',
                    "",
                    "[store]",
                    f'path = "{self.tmp / "townhall.db"}"',
                    "",
                    "# The crowd is what this bench measures; the clone stays off stage.",
                    "[clone]",
                    "enabled = false",
                    "",
                ]
            )
        )
        return config

    def start_server(self) -> None:
        config = self.write_config()
        cmd = [sys.executable]
        if self.args.server_profile:
            out = str(Path(self.args.server_profile).resolve())
            cmd += [str(Path(__file__).resolve()), PROFILED_SERVER, out]
        else:
            cmd += ["-m", "townhall.server.ops.cli"]
        cmd += ["serve", "--config", str(config)]
        self.server_log = open(self.tmp / "server.log", "wb")  # noqa: SIM115 (closed in cleanup)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOWNHALL_")}
        log(f"starting server on 127.0.0.1:{self.port} (log {self.tmp / 'server.log'})")
        self.server = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=self.server_log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_child_setup,
        )
        self.server_ps = psutil.Process(self.server.pid)
        deadline = time.monotonic() + 120  # a busy machine takes long to import the server
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise BenchError(f"server exited ({self.server.returncode}):\n{self.server_tail()}")
            with contextlib.suppress(BenchError):
                health = json.loads(http_get(self.base + "/healthz", timeout=1))
                if health.get("status") == "ok":
                    return
            time.sleep(0.1)
        raise BenchError("server did not answer /healthz within 120 s")

    def server_tail(self, lines: int = 20) -> str:
        path = self.tmp / "server.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def server_alive(self) -> None:
        if self.server is None or self.server.poll() is not None:
            raise BenchError(f"server died:\n{self.server_tail()}")

    def server_snapshot(self) -> tuple[dict[str, float], float, float, float]:
        """/metrics and when it was read (mid-request), then server CPU seconds and when."""
        assert self.server_ps is not None
        before = time.monotonic()
        metrics = scrape(self.base)
        after = time.monotonic()
        cpu = cpu_seconds(self.server_ps)
        return metrics, (before + after) / 2, cpu, time.monotonic()

    def profile_signal(self, sig: int) -> None:
        if self.args.server_profile and self.server is not None:
            self.server.send_signal(sig)

    # ------------------------------------------------------------ load generators

    def start_loadgens(self) -> None:
        a = self.args
        n = max(1, a.procs)
        for i in range(n):
            att = a.attendees // n + (1 if i < a.attendees % n else 0)
            spec = a.spectators // n + (1 if i < a.spectators % n else 0)
            self.loadgens.append(self.start_loadgen(i, att, spec))

    def start_loadgen(self, i: int, attendees: int, spectators: int) -> Loadgen:
        a = self.args
        lat = self.tmp / f"latency-{i}.bin"
        cmd = [
            sys.executable,
            str(HERE / "loadgen.py"),
            "--control",
            f"--port={self.port}",
            f"--secret={SECRET}",
            f"--attendees={attendees}",
            f"--spectators={spectators}",
            f"--spectator-auth={a.spectator_auth}",
            f"--pose-hz={a.pose_hz}",
            f"--batch={a.batch}",
            f"--ramp-timeout={a.ramp_timeout}",
            f"--proc-id={i}",
            f"--seed={i + 1}",
            f"--latency-file={lat}",
            f"--max-lifetime={a.ramp_timeout + a.warmup + a.seconds + 120}",
        ]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
            preexec_fn=_child_setup,
        )
        gen = Loadgen(i, proc, lat)
        gen.ps = psutil.Process(proc.pid)
        gen.start_reader()
        return gen

    # ------------------------------------------------------------ measurement

    def run(self) -> dict[str, Any]:
        a = self.args
        clients = a.attendees + a.spectators
        self.start_server()
        assert self.server_ps is not None
        time.sleep(0.5)
        rss_idle = self.server_ps.memory_info().rss
        log(
            f"server up (rss {rss_idle / 2**20:.0f} MB); ramping {clients} clients, {a.procs} procs"
        )

        ramp_start = time.monotonic()
        self.start_loadgens()
        joined = failed = 0
        for gen in self.loadgens:
            msg = gen.expect("joined", a.ramp_timeout + 30)
            joined += msg["joined"]
            failed += msg["failed"]
        ramp_s = time.monotonic() - ramp_start
        self.server_alive()
        if a.probes:
            # Joined last, so last in the server's write order: the slowest recipients,
            # timed by a process with nothing else to do (no client-side queueing).
            self.probe = self.start_loadgen(len(self.loadgens), 0, a.probes)
            self.probe.expect("joined", 60)
        everyone = self.loadgens + ([self.probe] if self.probe else [])
        log(f"joined {joined}/{clients} in {ramp_s:.1f}s; warming up {a.warmup:.0f}s")
        time.sleep(a.warmup)
        self.server_alive()
        rss_joined = self.server_ps.memory_info().rss
        health = json.loads(http_get(self.base + "/healthz"))
        n_conns = int(health.get("connections", joined))  # probes included, like the RSS

        log(f"measuring {a.seconds:.0f}s")
        m0, ts0, cpu0, tc0 = self.server_snapshot()
        gen_cpu0 = [cpu_seconds(g.ps) for g in self.loadgens if g.ps]
        sys0 = psutil.cpu_times()
        t0 = time.monotonic()
        self.profile_signal(signal.SIGUSR1)
        for gen in everyone:
            gen.send("start")
        for gen in everyone:
            gen.expect("started", 10)
        end = t0 + a.seconds
        last = t0
        lag_samples: list[float] = []
        while (now := time.monotonic()) < end:
            time.sleep(min(1.0, end - now))
            self.server_alive()
            if time.monotonic() < end - 0.5:
                # One cheap scrape a second: the server only keeps the lifetime max lag.
                with contextlib.suppress(BenchError, KeyError):
                    lag_samples.append(scrape(self.base, 2.0)["townhall_tick_lag_seconds"])
            if time.monotonic() - last >= 5 and time.monotonic() < end - 1:
                last = time.monotonic()
                pct = 100 * (cpu_seconds(self.server_ps) - cpu0) / (last - t0)
                lag = 1000 * max(lag_samples[-5:], default=0.0)
                log(f"  {last - t0:4.0f}s  server cpu {pct:.0f}%, tick lag up to {lag:.0f} ms")
        for gen in everyone:
            gen.send("stop")
        self.profile_signal(signal.SIGUSR2)
        t1 = time.monotonic()
        gen_cpu1 = [cpu_seconds(g.ps) for g in self.loadgens if g.ps]
        sys1 = psutil.cpu_times()
        m1, ts1, cpu1, tc1 = self.server_snapshot()
        stats = [gen.expect("stats", 30) for gen in self.loadgens]
        probe_stats = self.probe.expect("stats", 30) if self.probe else None
        window = t1 - t0
        # Server counters are rated over the time between the two scrapes, which
        # brackets the clients' window: each figure over the span it was counted in.
        server_window = ts1 - ts0
        cpu_window = tc1 - tc0
        log("window done; collecting")

        lat_parts = [np.fromfile(g.latency_file, dtype=np.int64) for g in self.loadgens]
        lat_ms = (np.concatenate(lat_parts) if lat_parts else np.empty(0)) / 1000.0
        probe_ms = np.empty(0)
        if self.probe:
            probe_ms = np.fromfile(self.probe.latency_file, dtype=np.int64) / 1000.0

        def delta(name: str) -> float:
            return m1.get(name, 0.0) - m0.get(name, 0.0)

        messages_out = delta("townhall_messages_out_total")
        ticks = delta("townhall_ticks_total")
        cpu_us = (cpu1 - cpu0) * 1e6
        att_bytes = sum(s["attendee_bytes"] / s["window_s"] for s in stats)
        spec_bytes = sum(s["spectator_bytes"] / s["window_s"] for s in stats)
        n_att = sum(s["attendees"] for s in stats)
        n_spec = sum(s["spectators"] for s in stats)
        att_max = max((s["attendee_max_bytes"] / s["window_s"] for s in stats), default=0.0)
        n_open = sum(s["open"] for s in stats)
        sys_busy = (sum(sys1) - sys1.idle - sys1.iowait) - (sum(sys0) - sys0.idle - sys0.iowait)

        def merged(key: str) -> dict[str, int]:
            out: dict[str, int] = {}
            for s in stats:
                for k, v in s[key].items():
                    out[k] = out.get(k, 0) + v
            return out

        def kbps(bytes_per_s: float, n: int) -> float:
            return round(8 * bytes_per_s / 1000 / n, 2) if n else 0.0

        def pct(q: float, samples: np.ndarray = lat_ms) -> float | None:
            return round(float(np.percentile(samples, q)), 3) if samples.size else None

        best_rtt = [s["clock_rtt_us"] for s in stats if s["clock_rtt_us"] is not None]
        server_closes = {
            k.split('"')[1]: int(v - m0.get(k, 0.0))
            for k, v in labelled(m1, "townhall_closes_total").items()
            if v - m0.get(k, 0.0)
        }
        result: dict[str, Any] = {
            "clients": clients,
            "attendees": a.attendees,
            "spectators": a.spectators,
            "joined": joined,
            "join_failed": failed,
            "open_at_end": n_open,
            "server_connections": health.get("connections"),
            "closed": sum(s["closed_after_join"] for s in stats),
            "close_codes": merged("close_codes"),
            "errors": merged("errors"),
            "window_errors": merged("window_errors"),
            "window_s": round(window, 2),
            "ramp_s": round(ramp_s, 1),
            "deliveries_per_s": round(messages_out / server_window, 1),
            "received_per_s": round(
                sum((s["attendee_msgs"] + s["spectator_msgs"]) / s["window_s"] for s in stats), 1
            ),
            "p50_ms": pct(50),
            "p90_ms": pct(90),
            "p99_ms": pct(99),
            "max_ms": round(float(lat_ms.max()), 3) if lat_ms.size else None,
            "latency_samples": int(lat_ms.size),
            "probes": a.probes,
            "probe_p50_ms": pct(50, probe_ms),
            "probe_p99_ms": pct(99, probe_ms),
            "probe_clock_rtt_us": probe_stats["clock_rtt_us"] if probe_stats else None,
            "clock_rtt_us_min": min(best_rtt) if best_rtt else None,
            "server_cpu_us_per_delivery": round(cpu_us / messages_out, 3) if messages_out else None,
            # Time inside room ticks (building crowd frames, writing to every socket) per
            # delivery: the fan-out's share, without the cost of ingesting poses.
            "tick_us_per_delivery": round(
                1e6 * delta("townhall_tick_busy_seconds_total") / messages_out, 3
            )
            if messages_out
            else None,
            "server_cpu_percent": round(100 * (cpu1 - cpu0) / cpu_window, 1),
            "loadgen_cpu_percent": round(
                100 * sum(b - a_ for a_, b in zip(gen_cpu0, gen_cpu1, strict=True)) / window, 1
            ),
            "system_cpu_percent": round(100 * sys_busy / window, 1),
            "cpu_count": psutil.cpu_count(),
            "down_kbps_per_client": kbps(att_bytes + spec_bytes, n_att + n_spec),
            "down_kbps_attendee": kbps(att_bytes, n_att),
            "down_kbps_spectator": kbps(spec_bytes, n_spec),
            "down_kbps_attendee_max": round(8 * att_max / 1000, 2),
            "server_bytes_out_per_s": round(delta("townhall_bytes_out_total") / server_window),
            "server_messages_in_per_s": round(
                delta("townhall_messages_in_total") / server_window, 1
            ),
            "poses_sent_per_s": round(sum(s["poses_sent"] for s in stats) / window, 1),
            "server_rss_kb_per_conn": round((rss_joined - rss_idle) / 1024 / max(1, n_conns), 2),
            "server_rss_mb": round(rss_joined / 2**20, 1),
            "frames_dropped": int(delta("townhall_frames_dropped_total")),
            "server_closes": server_closes,
            "server_errors_sent": int(
                sum(labelled(m1, "townhall_errors_sent_total").values())
                - sum(labelled(m0, "townhall_errors_sent_total").values())
            ),
            "ticks_per_s": round(ticks / server_window, 1),
            "tick_errors": int(delta("townhall_tick_errors_total")),
            "tick_lag_mean_ms": round(1000 * delta("townhall_tick_lag_seconds_total") / ticks, 2)
            if ticks
            else None,
            "tick_busy_mean_ms": round(1000 * delta("townhall_tick_busy_seconds_total") / ticks, 2)
            if ticks
            else None,
            "tick_lag_sampled_max_ms": round(1000 * max(lag_samples, default=0.0), 1),
            "tick_lag_max_ms_since_start": round(1000 * m1["townhall_tick_lag_max_seconds"], 1),
            "pose_hz": a.pose_hz,
            "loadgen_procs": len(self.loadgens),
        }
        return result

    # ------------------------------------------------------------ cleanup

    def cleanup(self) -> None:
        everyone = self.loadgens + ([self.probe] if self.probe else [])
        for gen in everyone:
            gen.send("quit")
        for gen in everyone:
            try:
                gen.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                stop_process(gen.proc, signal.SIGTERM, 3)
            if gen.proc.stdin:
                with contextlib.suppress(OSError):
                    gen.proc.stdin.close()
        stop_process(self.server, signal.SIGINT, 5)
        if self.args.server_profile and Path(self.args.server_profile).exists():
            import pstats

            log(f"server profile in {self.args.server_profile}; top functions by own time:")
            stats = pstats.Stats(self.args.server_profile, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(25)
        if self.server_log:
            self.server_log.close()
        if self.args.keep_tmp:
            log(f"kept {self.tmp}")
        else:
            for p in sorted(self.tmp.glob("*")):
                with contextlib.suppress(OSError):
                    p.unlink()
            with contextlib.suppress(OSError):
                self.tmp.rmdir()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=(
            "Fan-out benchmark: start a Townhall server process, connect attendees (posing) and "
            "spectators from load-generator processes, and measure latency, server CPU per "
            "delivered message, downstream bandwidth and memory per connection. The last "
            "stdout line is one JSON object."
        ),
    )
    p.add_argument("--attendees", type=int, default=1000, help="attendee clients (default 1000)")
    p.add_argument("--spectators", type=int, default=1000, help="spectator clients (default 1000)")
    p.add_argument(
        "--seconds", type=float, default=20.0, help="length of the measuring window (default 20)"
    )
    p.add_argument(
        "--warmup",
        type=float,
        default=3.0,
        help="seconds between everyone joined and the window start (default 3)",
    )
    p.add_argument(
        "--procs",
        type=int,
        default=2,
        help="load-generator processes sharing the clients (default 2)",
    )
    p.add_argument(
        "--probes",
        type=int,
        default=8,
        help="extra spectators in their own idle process, joined last, whose latency "
        "(probe_p50_ms, probe_p99_ms) has no load-generator queueing in it (default 8; 0: none)",
    )
    p.add_argument(
        "--pose-hz", type=float, default=20.0, help="poses per second per attendee (default 20)"
    )
    p.add_argument(
        "--spectator-auth",
        choices=["token", "anonymous"],
        default="token",
        help="spectators join with a signed spectator token or anonymously (default token)",
    )
    p.add_argument(
        "--batch",
        type=int,
        default=50,
        help="connections each load generator opens at once while ramping (default 50)",
    )
    p.add_argument(
        "--ramp-timeout",
        type=float,
        default=120.0,
        help="seconds allowed to get everyone joined (default 120)",
    )
    p.add_argument("--port", type=int, default=0, help="server port (default: a free one)")
    p.add_argument(
        "--server-log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="server log level (its log goes to a temporary file)",
    )
    p.add_argument(
        "--server-profile",
        metavar="FILE",
        help="profile the server (cProfile) during the window only and write the stats here; "
        "it slows the server, so use the figures of a run without it",
    )
    p.add_argument("--json-out", metavar="FILE", help="also write the JSON result to this file")
    p.add_argument("--keep-tmp", action="store_true", help="keep the temp dir (config, server log)")
    return p


PROFILED_SERVER = "_profiled-server"


def profiled_server(out: str, cli_args: list[str]) -> int:
    """Run ``townhall`` in this process with cProfile on only between SIGUSR1 and SIGUSR2.

    Profiling just the measuring window keeps the ramp (joins, keyframes) out of
    the figures and leaves the ramp at full speed.
    """
    import cProfile

    from townhall.server.ops.cli import main as townhall_main

    profiler = cProfile.Profile()

    def on(signum: int, frame: object) -> None:
        profiler.enable()

    def off(signum: int, frame: object) -> None:
        profiler.disable()
        profiler.dump_stats(out)

    signal.signal(signal.SIGUSR1, on)
    signal.signal(signal.SIGUSR2, off)
    return townhall_main(cli_args)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == [PROFILED_SERVER]:
        return profiled_server(argv[1], argv[2:])
    args = build_parser().parse_args(argv)
    if args.attendees < 0 or args.spectators < 0 or args.attendees + args.spectators == 0:
        print("fanout: need at least one client", file=sys.stderr)
        return 2
    bench = Bench(args)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        result = bench.run()
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        return 130
    except BenchError as exc:
        log(f"failed: {exc}")
        return 1
    finally:
        with contextlib.suppress(KeyboardInterrupt):
            bench.cleanup()
    line = json.dumps(result)
    if args.json_out:
        Path(args.json_out).write_text(line + "\n")
    print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
