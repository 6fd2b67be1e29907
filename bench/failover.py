"""How long a failover takes: kill -9 the active authority, time the standby and the clients.

Runs a nats-server of its own, two ``serve --role authority`` of one room on one SQLite
file, and one edge with spectators on it (the clone on, answering). Each round kills the
active authority and measures, from the kill: the standby's first line as the room
(``serving_s``), the edge on the new term (``edge_s``), and every client rejoined through
the edge with the room's keyframe (``clients_s``), and how many came back resumed in the
slot and seat they had (``places_kept``: resume tokens any authority verifies, places the
new one keeps for them); then the killed one is started again, as the next round's standby.
Prints one JSON object as its last line.

    .venv/bin/python -m bench.failover --rounds 3 --clients 20 --lease-ttl 5 --role attendee
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.conftest import SECRET
from tests.natsserver import nats_server
from tests.test_bus_edges import Proc, health, start, stop
from townhall.plugin.client import RoomClient
from townhall.protocol.messages import Keyframe, Message, Welcome
from townhall.server.gateway.tokens import issue_token

POLL_S = 0.05


def http_of(proc: Proc) -> str:
    url = proc.url.removesuffix("/ws")
    return url.replace("ws", "http", 1) if url.startswith("ws") else url


async def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(POLL_S)


async def rejoin(client: RoomClient, seen: list[Message], deadline: float) -> Welcome:
    await client.wait_closed()
    seen.clear()
    while True:
        try:
            welcome = await client.reconnect()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
    while not any(isinstance(m, Keyframe) for m in seen):
        if time.monotonic() > deadline:
            raise RuntimeError("no keyframe after rejoining")
        await asyncio.sleep(POLL_S)
    return welcome


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rounds: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        async with nats_server(folder) as nats:
            room = f"b{uuid.uuid4().hex[:10]}"
            config = folder / "townhall.toml"
            config.write_text(
                f'[server]\nroom = "{room}"\nhost = "127.0.0.1"\n'
                f'[auth]\nsecret = "{SECRET}"\n'
                f'[store]\npath = "{folder / "townhall.db"}"\n'
                '[qa]\nmode = "auto"\n[clone]\npause_s = 0.1\n'
                f'[bus]\nurl = "{nats.url}"\nedge_timeout_s = 2.0\n'
                f"lease_ttl_s = {args.lease_ttl}\n"
                '[log]\nformat = "text"\nlevel = "warning"\n'
            )
            procs: list[Proc] = []
            active = await start(config, "authority", "WebSocket ")
            standby = await start(config, "authority", "standby for room")
            edge = await start(config, "edge", " serving room ")
            procs += [active, standby, edge]
            clients: list[tuple[RoomClient, list[Message]]] = []
            try:
                for n in range(args.clients):
                    seen: list[Message] = []
                    tok = issue_token(
                        SECRET, user_id=f"u{n}", name=f"u{n}", role=args.role, room=room,
                        ttl_s=3600,
                    )  # fmt: skip
                    c = RoomClient(edge.url, tok, on_message=seen.append, timeout_s=30)
                    await c.connect()
                    clients.append((c, seen))
                for _ in range(args.rounds):
                    term = (await health(http_of(active)))["term"]

                    async def edge_on(term: object = term) -> bool:
                        return (await health(http_of(edge)))["term"] == term

                    await wait(edge_on, 30, "the edge on the active term")
                    lines_before = len(standby.lines)
                    active.process.send_signal(signal.SIGKILL)
                    killed = time.monotonic()
                    deadline = killed + 60
                    rejoined = [asyncio.create_task(rejoin(c, s, deadline)) for c, s in clients]

                    async def serving(proc: Proc = standby, after: int = lines_before) -> bool:
                        return any("WebSocket " in x for x in proc.lines[after:])

                    await wait(serving, 60, "the standby serving")
                    serving_s = time.monotonic() - killed

                    async def edge_moved() -> bool:
                        return (await health(http_of(edge)))["authority_changes"] == len(rounds) + 1

                    await wait(edge_moved, 60, "the edge on the new term")
                    edge_s = time.monotonic() - killed
                    places = [(w.slot, w.seat) for w in (c.welcome for c, _ in clients) if w]
                    welcomes = await asyncio.gather(*rejoined)
                    clients_s = time.monotonic() - killed
                    kept = sum(
                        w.resumed and (w.slot, w.seat) == place
                        for w, place in zip(welcomes, places, strict=True)
                    )
                    rounds.append(
                        {
                            "serving_s": round(serving_s, 2),
                            "edge_s": round(edge_s, 2),
                            "clients_s": round(clients_s, 2),
                            "places_kept": kept,
                        }
                    )
                    print(json.dumps(rounds[-1]), file=sys.stderr, flush=True)
                    standby.url = (
                        next(x for x in standby.lines[lines_before:] if "WebSocket " in x)
                        .rsplit(" ", 1)[-1]
                        .strip()
                    )
                    await active.process.wait()
                    again = await start(config, "authority", "standby for room")
                    procs.append(again)
                    active, standby = standby, again
            finally:
                for c, _ in clients:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(c.close(), 5)
                for proc in procs:
                    await stop(proc)
    serving = [r["serving_s"] for r in rounds]
    clients_all = [r["clients_s"] for r in rounds]
    return {
        "bench": "failover",
        "lease_ttl_s": args.lease_ttl,
        "clients": args.clients,
        "role": args.role,
        "rounds": rounds,
        "serving_s_median": statistics.median(serving),
        "serving_s_max": max(serving),
        "clients_back_s_median": statistics.median(clients_all),
        "clients_back_s_max": max(clients_all),
        "places_kept_min": min(r["places_kept"] for r in rounds),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--lease-ttl", type=float, default=5.0)
    p.add_argument("--role", choices=("spectator", "attendee"), default="spectator")
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
