"""The capacity bench's baseline: the same room traffic served the textbook way.

One process, python-websockets' ``serve`` and ``broadcast()``: every 40 ms a
stage packet to everyone, every 100 ms a coarse crowd frame to everyone and a
near-crowd frame to each cell of 12 attendees; poses are received and decoded.
Join tokens are verified as the real server does. The messages are real
protocol messages of the real sizes, so the load generator reads both servers
the same way and the two CPU-per-delivery figures compare like for like.

Started by ``bench/capacity.py``; prints ``listening PORT`` when ready.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np
from websockets.asyncio.server import ServerConnection, broadcast, serve

from townhall.protocol import codec
from townhall.protocol.errors import ProtocolError
from townhall.protocol.messages import (
    Caption,
    CrowdFar,
    CrowdNear,
    Join,
    StagePacket,
    Welcome,
)
from townhall.protocol.quant import CROWD_DTYPE
from townhall.server.gateway.tokens import verify_token

CELL = 12


def now_us() -> int:
    return time.monotonic_ns() // 1000  # the load generator's clock: offset 0


class Baseline:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.everyone: set[ServerConnection] = set()
        self.cells: list[set[ServerConnection]] = []
        self.attendees = 0

    async def handle(self, ws: ServerConnection) -> None:
        try:
            join = codec.decode_client(await ws.recv())
            if not isinstance(join, Join):
                return
            identity = verify_token(self.secret, join.token, "main")
        except (ProtocolError, Exception):
            await ws.close(4002, "bad join")
            return
        slot = len(self.everyone)
        welcome = Welcome(
            1,
            "main",
            slot,
            identity.user_id,
            identity.name,
            identity.role,
            -1,
            "r",
            now_us(),
            0,
            20,
            False,
        )  # type: ignore[arg-type]
        await ws.send(codec.encode(welcome))
        self.everyone.add(ws)
        cell: set[ServerConnection] | None = None
        if identity.role == "attendee":
            index = self.attendees // CELL
            self.attendees += 1
            while len(self.cells) <= index:
                self.cells.append(set())
            cell = self.cells[index]
            cell.add(ws)
        try:
            async for data in ws:
                codec.decode_client(data)  # poses: decoded and dropped
        except Exception:
            pass
        finally:
            self.everyone.discard(ws)
            if cell is not None:
                cell.discard(ws)

    async def stage(self) -> None:
        """25 stage packets a second, like the clone speaking."""
        index = 0
        anim = bytes(139)
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += 0.04
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            packet = StagePacket(
                1,
                index,
                now_us(),
                40_000,
                "approved",
                [bytes(90), bytes(90)],
                [0],
                anim,
                [Caption(0, 300_000, "word")] if index % 8 == 0 else [],
            )
            broadcast(self.everyone, codec.encode(packet))
            index += 1

    async def crowd(self) -> None:
        """10 Hz: a coarse far frame to everyone and each cell's poses to that cell."""
        records = np.zeros(CELL, dtype=CROWD_DTYPE).tobytes()
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += 0.1
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            t = now_us()
            far_count = max(1, self.attendees // 50)
            broadcast(self.everyone, codec.encode(CrowdFar(t, bytes(6 * far_count))))
            near = codec.encode(CrowdNear(t, records))
            for cell in self.cells:
                broadcast(cell, near)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--expect", type=int, default=0, help="clients to wait for first")
    args = parser.parse_args()
    base = Baseline(args.secret)
    async with serve(
        base.handle, "127.0.0.1", args.port, compression=None, max_queue=64, backlog=4096
    ):
        print(f"listening {args.port}", flush=True)
        # Broadcasting starts once everyone is in: at full load this server has no CPU
        # left for handshakes, and the comparison is of the steady state anyway.
        while len(base.everyone) < args.expect:
            await asyncio.sleep(0.2)
        await asyncio.gather(base.stage(), base.crowd())


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
