"""A client that stops reading loses droppable frames, is closed, and holds up nobody."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from websockets.asyncio.client import connect

from townhall.plugin.client import RoomClient
from townhall.protocol import codec, quant
from townhall.protocol.messages import CrowdFar, CrowdNear, Join
from townhall.server.app import TownhallServer
from townhall.server.core.effects import Ship

from .conftest import TokenMaker, make_settings
from .waiting import eventually, ticks_later


def big_crowd_frame(kind: type, n: int = 2000) -> bytes:
    """A realistic heavy frame: coarse records for a full hall."""
    zeros = [0.0] * n
    records = quant.encode_coarse(list(range(n)), [0] * n, zeros, zeros, zeros)
    return codec.encode(kind(0, records))


async def test_stalled_client_is_dropped_without_hurting_others(
    tmp_path: Path, token: TokenMaker
) -> None:
    settings = make_settings(
        tmp_path,
        limits={
            "send_soft_bytes": 64 * 1024,
            "send_hard_bytes": 4 * 1024 * 1024,
            "slow_close_s": 1.0,
        },
    )
    async with TownhallServer(settings) as srv:
        honest = RoomClient(srv.ws_url, token("honest"))
        await honest.connect()
        received_before = honest.received

        # The stalled client: a tiny receive buffer, joins, then never reads again.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        stalled = await connect(srv.ws_url, sock=sock, max_queue=1, max_size=None)
        await stalled.send(codec.encode(Join(1, 1, token("stalled"))))
        await eventually(lambda: len(srv.fanout.sessions) == 2)
        stalled.transport.pause_reading()
        slow = next(s for s in srv.fanout.sessions.values() if s.slot != honest.welcome.slot)  # type: ignore[union-attr]

        near = big_crowd_frame(CrowdNear)
        far = big_crowd_frame(CrowdFar)
        peak = 0
        ticks = 0
        started = time.monotonic()
        # Heavy crowd traffic for both clients' cells until the stalled one is cut off.
        while not slow.closing and time.monotonic() - started < 10:
            cells = {
                honest_cell: near
                for honest_cell in {
                    slow.cell,
                    srv.authority.crowd.cell_of_slot[honest.welcome.slot],
                }
            }  # type: ignore[union-attr]
            srv.fanout.ship(Ship(ticks + 1, 0, (), cells, far), time.monotonic())
            ticks += 1
            peak = max(peak, slow.buffered())
            await ticks_later(srv, 1)
        assert slow.closing, "stalled client was never closed"
        assert srv.metrics.closes.get("SLOW_CONSUMER") == 1
        assert srv.metrics.frames_dropped > 0
        # Memory stays bounded: the backlog never ran far past the hard limit.
        assert peak <= settings.limits.send_hard_bytes + 2 * (len(near) + len(far))
        # The honest client got every tick's frames and is still fine.
        await eventually(lambda: honest.received - received_before >= 2 * ticks)
        assert not honest.closed and honest.errors == []
        stalled.transport.abort()
        await honest.close()
