"""The record's write path on each backend: votes acknowledged per second, and the time from
``store.write`` to its commit (what an Ack waits for), SQLite against PostgreSQL.

``--writers`` tasks each write one vote, await its commit, and write the next (a room's
voters, every vote durable before its Ack), for ``--seconds``. The group commit gathers
what arrives while a transaction is in flight, so commits stay far fewer than writes.
PostgreSQL: a database of its own, made on the server ``--admin-url`` names and dropped
after. Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from townhall.server.store.base import RoomStore
from townhall.server.store.factory import open_store
from townhall.server.store.records import VoteCast

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def measure(store: RoomStore, writers: int, seconds: float) -> dict[str, Any]:
    latencies: list[float] = []
    stop = time.monotonic() + seconds
    first = store.commits

    async def voter(n: int) -> None:
        q = 0
        while time.monotonic() < stop:
            q += 1
            t0 = time.perf_counter()
            await store.write([VoteCast(q, f"voter{n}")])
            latencies.append(time.perf_counter() - t0)

    t0 = time.monotonic()
    await asyncio.gather(*(voter(n) for n in range(writers)))
    elapsed = time.monotonic() - t0
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "votes_per_s": round(len(latencies) / elapsed),
        "commits_per_s": round((store.commits - first) / elapsed),
        "ack_ms_p50": pct(0.50),
        "ack_ms_p99": pct(0.99),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"writers": args.writers, "seconds": args.seconds}
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store("", str(Path(tmp) / "bench.db"), "main")
        out["sqlite"] = await measure(store, args.writers, args.seconds)
        await store.close()
    name = f"townhall_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = args.admin_url.rsplit("/", 1)[0] + "/" + name
        store = open_store(url, "", "main")
        out["postgresql"] = await measure(store, args.writers, args.seconds)
        await store.close()
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            admin.execute(drop.format(sql.Identifier(name)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=200, help="voters writing at once")
    parser.add_argument("--seconds", type=float, default=5.0, help="per backend")
    parser.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL to make a db on")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
