"""A fan-out worker process: an edge that holds client sockets the room hands over.

Started by ``WorkerPool`` as ``python -m townhall.server.fanout.worker``: it connects the
seam (a byte stream of ``seam`` messages each way, and a Unix socket that passes the
client sockets), then runs the one ``Edge`` (the same class a networked edge runs) on a
``SeamLink`` until the room stops it or goes away. Spreading clients over workers puts
both cores to work on the part that grows with the audience while the room stays one
authority.
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
from collections import deque
from typing import Any

from townhall.server.fanout import seam as ipc
from townhall.server.fanout.edge import Edge, EdgeLimits, role_of
from townhall.server.fanout.edge_client import EdgeClient
from townhall.server.fanout.keepalive import report

STOP_GRACE_S = 0.5  # how long clients have to answer our close frames when the room stops


class SeamLink(asyncio.Protocol):
    """The room on the other end of a Unix-socket seam: seam messages in, the edge acts on
    each; its own messages out; the sockets of adopted clients through the fd channel."""

    def __init__(self, fd_channel: socket.socket) -> None:
        self.fd_channel = fd_channel
        self.fds: deque[int] = deque()  # handed-over sockets waiting for their Adopt
        self.unpacker = ipc.Unpacker(ipc.ToWorker)
        self.transport: asyncio.Transport | None = None
        self.edge: Edge[EdgeClient] | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------ the byte stream

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        edge = self.edge
        assert edge is not None
        for message in self.unpacker.feed(data):
            edge.on_room(message)

    def connection_lost(self, exc: Exception | None) -> None:
        # The room process is gone: nobody can answer these clients any more.
        self.transport = None
        if self.edge is not None:
            self.stop(self.edge)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    # ------------------------------------------------------------ RoomLink

    def handed_over(self, edge: Edge[EdgeClient], adopt: ipc.Adopt) -> EdgeClient | None:
        """The socket the room passed just before this Adopt, as the edge's client."""
        if not self.fds:
            self.fd_channel.setblocking(True)  # sent before the Adopt: already queued
            self.fds.append(ipc.recv_fd(self.fd_channel))
            self.fd_channel.setblocking(False)
        sock = socket.socket(fileno=self.fds.popleft())
        sock.setblocking(False)
        limits = edge.limits
        if limits.socket_send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, limits.socket_send_buffer)
        client = EdgeClient(
            edge,
            adopt.sid,
            adopt.slot,
            role_of(adopt.role),
            adopt.cell,
            [],  # the edge writes the Adopt's first messages
            limits.max_message_bytes,
            limits.pose_hz,
        )
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(lambda: client, sock))

        def connected(task: asyncio.Task[Any]) -> None:
            if task.exception() is not None:  # the socket could not be set up: it is gone
                sock.close()
                edge.gone(client)

        task.add_done_callback(connected)
        return client

    def stop(self, edge: Edge[EdgeClient]) -> None:
        """Close every client (the room has already sent each its reason) and exit."""
        edge.shed(1001, "server stopping")

        def finish() -> None:
            for client in list(edge.clients.values()):
                client.abort()
            if not self.done.done():
                self.done.set_result(None)

        asyncio.get_running_loop().call_later(STOP_GRACE_S if edge.clients else 0.0, finish)

    def take_fds(self) -> None:
        """Drain the fd channel as fds arrive, so the room's sends never fill it."""
        while True:
            try:
                self.fds.append(ipc.recv_fd(self.fd_channel))
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionError:
                asyncio.get_running_loop().remove_reader(self.fd_channel.fileno())
                return


async def run(data_fd: int, fd_channel_fd: int, limits: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    fd_channel = socket.socket(fileno=fd_channel_fd)
    fd_channel.setblocking(False)
    link = SeamLink(fd_channel)
    edge = link.edge = Edge(EdgeLimits.from_json(limits), link)
    loop.add_reader(fd_channel.fileno(), link.take_fds)
    room_sock = socket.socket(fileno=data_fd)
    room_sock.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(lambda: link, room_sock)
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # the room stops us
    reporter = loop.create_task(report(edge))
    try:
        await link.done
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
