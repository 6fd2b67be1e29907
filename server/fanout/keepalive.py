"""An edge's once-a-second chores: counters to the room, pings to find dead peers."""

from __future__ import annotations

import asyncio
import time

from townhall.server.fanout.edge import Edge
from townhall.server.fanout.edge_client import EdgeClient

STATS_EVERY_S = 1.0
PING_TIMEOUT = "PING_TIMEOUT"


async def report(edge: Edge[EdgeClient]) -> None:
    """Send the edge's counters to the room each second; ping quiet clients, close the dead."""
    while True:
        await asyncio.sleep(STATS_EVERY_S)
        keepalive(edge, time.monotonic())
        edge.to_room(edge.stats())


def keepalive(edge: Edge[EdgeClient], now: float) -> None:
    """A client quiet for a ping interval gets a ping; quiet for another, it is closed."""
    interval = edge.limits.ping_interval_s
    for client in list(edge.clients.values()):
        if client.closing or now - client.last_heard < interval:
            continue
        if client.ping_sent == 0.0:
            client.ping_sent = now
            client.ping()
        elif now - client.ping_sent >= interval:
            closes = edge.writer.closes
            closes[PING_TIMEOUT] = closes.get(PING_TIMEOUT, 0) + 1
            client.close(1011, "keepalive ping timeout")
