"""How long `townhall serve` takes to listen: wall time and the process's CPU seconds.

Each run starts `townhall serve` (port 0, the embedded clone on, a fresh folder) as a
deployment runs it, reads its first line (printed once it listens), kills it and takes the
CPU it used. ``--cold`` gives it an empty intent-model cache each run (it trains, importing
scikit-learn), otherwise the cache in ``--cache`` (warmed by a first run, not counted).

    python bench/startup.py --runs 5
    python bench/startup.py --runs 5 --cold

Prints one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = '[server]\nport = 0\n[auth]\nsecret = "{secret}"\n'


def start_once(cache: Path) -> tuple[float, float]:
    """(wall seconds to the first line, CPU seconds of the server until then)."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "townhall.toml"
        config.write_text(CONFIG.format(secret="b" * 40))
        env = {**os.environ, "TOWNHALL_CACHE_DIR": str(cache)}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "townhall.server.ops.cli", "serve", "--config", str(config)],
            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        line = proc.stdout.readline()
        wall = time.monotonic() - began
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if "serving" not in line:
            raise SystemExit(f"townhall serve did not start: {line!r} {proc.stderr.read()[-800:]}")
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="an empty model cache each run")
    parser.add_argument("--cache", type=Path, help="the model cache (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        cache = args.cache or Path(scratch) / "cache"
        if not args.cold:
            start_once(cache)  # warms the cache
        walls, cpus = [], []
        for k in range(args.runs):
            run_cache = Path(scratch) / f"cold{k}" if args.cold else cache
            wall, cpu = start_once(run_cache)
            print(f"[startup] run {k + 1}: {wall:.2f} s wall, {cpu:.2f} s CPU", file=sys.stderr)
            walls.append(wall)
            cpus.append(cpu)
    print(
        json.dumps(
            {
                "runs": args.runs,
                "cold_cache": args.cold,
                "wall_s_median": round(statistics.median(walls), 2),
                "cpu_s_median": round(statistics.median(cpus), 2),
                "load_1min": round(os.getloadavg()[0], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
