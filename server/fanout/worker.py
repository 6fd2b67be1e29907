"""A fan-out worker process: an edge that holds client sockets the room hands over.

Started by ``WorkerPool`` as ``python -m townhall.server.fanout.worker``: it connects the
seam (a byte stream of ``seam`` messages each way, and a Unix socket that passes the
client sockets), then runs an ``Edge`` until the room stops it or goes away. Spreading
clients over workers puts both cores to work on the part that grows with the audience
while the room stays one authority.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import sys
from typing import Any

from townhall.server.fanout import seam as ipc
from townhall.server.fanout.edge import Edge, EdgeLimits
from townhall.server.fanout.keepalive import report


class RoomLink(asyncio.Protocol):
    """The byte stream from the room: seam messages in, the edge acts on each."""

    def __init__(self, edge: Edge) -> None:
        self.edge = edge
        self.unpacker = ipc.Unpacker(ipc.ToWorker)

    def data_received(self, data: bytes) -> None:
        for message in self.unpacker.feed(data):
            self.edge.on_room(message)

    def connection_lost(self, exc: Exception | None) -> None:
        # The room process is gone: nobody can answer these clients any more.
        self.edge.uplink.room = None
        self.edge.stop()


async def run(data_fd: int, fd_channel_fd: int, limits: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    fd_channel = socket.socket(fileno=fd_channel_fd)
    fd_channel.setblocking(False)
    edge = Edge(fd_channel, EdgeLimits.from_json(limits))
    loop.add_reader(fd_channel.fileno(), edge.take_fds)
    room_sock = socket.socket(fileno=data_fd)
    room_sock.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(lambda: RoomLink(edge), room_sock)
    edge.uplink.room = transport
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # the room stops us
    reporter = loop.create_task(report(edge))
    try:
        await edge.done
    finally:
        reporter.cancel()
        transport.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Townhall fan-out worker (started by the server).")
    parser.add_argument("--data-fd", type=int, required=True)
    parser.add_argument("--fd-channel", type=int, required=True)
    parser.add_argument("--limits", required=True, help="JSON object of send limits")
    args = parser.parse_args(argv)
    limits = json.loads(args.limits)
    gc.set_threshold(50_000, 20, 100)
    try:
        import uvloop

        uvloop.run(run(args.data_fd, args.fd_channel, limits))
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        asyncio.run(run(args.data_fd, args.fd_channel, limits))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
