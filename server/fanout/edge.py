"""A fan-out edge: the clients it holds, and what it does with each message from the room.

The room decides; the edge writes. It adopts clients the room hands over, writes every
room tick to them through the shared ``TickWriter`` (the same loop the room process uses
for its own clients), passes per-client sends and closes through, and tells the room
when a client is gone. Its clients' messages go to the room through the ``Uplink``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from townhall.protocol.messages import ROLES, Role
from townhall.server.core.tickplan import TickPlan
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.edge_client import EdgeClient
from townhall.server.fanout.sendlimits import SendLimits
from townhall.server.fanout.uplink import RoomWriter, Uplink
from townhall.server.fanout.writer import TickIn, TickWriter


@dataclass(frozen=True)
class EdgeLimits:
    """What the room tells an edge at start: its plan, send limits and frame limit."""

    plan: TickPlan
    send: SendLimits
    max_message_bytes: int
    pose_hz: float
    socket_send_buffer: int = 0
    ping_interval_s: float = 20.0

    @classmethod
    def from_json(cls, limits: dict[str, Any]) -> EdgeLimits:
        return cls(
            TickPlan(
                int(limits.get("tick_hz", 20)),
                int(limits.get("crowd_hz", 10)),
                max(1, int(limits.get("spectator_every", 1))),
            ),
            SendLimits(
                int(limits["send_soft_bytes"]),
                int(limits["send_hard_bytes"]),
                float(limits["slow_close_s"]),
            ),
            int(limits["max_message_bytes"]),
            float(limits.get("pose_hz", 20)),
            int(limits.get("socket_send_buffer", 0)),
            float(limits.get("ping_interval_s", 20.0)),
        )


def tick_in(tick: ipc.Tick) -> TickIn:
    """A seam tick as the write loop takes it (role names checked, frozen)."""
    broadcasts = tuple(
        (payload, frozenset(role_of(r) for r in roles) if roles else None)
        for payload, roles in tick.broadcasts
    )
    return TickIn(
        tick.number,
        tick.now_us,
        tuple(tick.events),
        tick.near,
        tick.far or None,
        tuple(tick.stage),
        tick.stage_first,
        tuple(tick.stage_ends_us),
        broadcasts,
    )


def role_of(name: str) -> Role:
    for role in ROLES:
        if role == name:
            return role
    return "spectator"


class Edge:
    """All of this process's clients and the seam back to the room."""

    def __init__(self, fd_channel: socket.socket, limits: EdgeLimits) -> None:
        self.fd_channel = fd_channel
        self.limits = limits
        self.fds: deque[int] = deque()  # handed-over sockets waiting for their Adopt
        self.writer = TickWriter(limits.plan, limits.send)
        self.uplink = Uplink(time.monotonic)
        self.clients: dict[int, EdgeClient] = {}
        self.tick_max_s = 0.0
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def room(self) -> RoomWriter | None:
        return self.uplink.room

    # ------------------------------------------------------------ from the room

    def on_room(self, message: ipc.Seam) -> None:
        if isinstance(message, ipc.Tick):
            started = time.perf_counter()
            self.tick(message)
            self.tick_max_s = max(self.tick_max_s, time.perf_counter() - started)
        elif isinstance(message, ipc.Broadcast):
            roles = frozenset(role_of(r) for r in message.roles) if message.roles else None
            self.writer.broadcast(message.payload, roles)
        elif isinstance(message, ipc.Send):
            client = self.clients.get(message.sid)
            if client is not None:
                self.writer.send(client, message.payloads)
        elif isinstance(message, ipc.Adopt):
            self.adopt(message)
        elif isinstance(message, ipc.Close):
            client = self.clients.get(message.sid)
            if client is None:
                pass
            elif message.code == ipc.ABORT:
                client.abort()
            else:
                client.close(message.code, message.reason)
        elif isinstance(message, ipc.Stop):
            self.stop()

    def tick(self, tick: ipc.Tick) -> None:
        self.writer.tick(tick_in(tick), time.monotonic())

    def adopt(self, message: ipc.Adopt) -> None:
        if not self.fds:
            self.fd_channel.setblocking(True)  # sent before the Adopt: already queued
            self.fds.append(ipc.recv_fd(self.fd_channel))
            self.fd_channel.setblocking(False)
        sock = socket.socket(fileno=self.fds.popleft())
        sock.setblocking(False)
        if self.limits.socket_send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.socket_send_buffer)
        client = EdgeClient(
            self,
            message.sid,
            message.slot,
            role_of(message.role),
            message.cell,
            message.initial,
            self.limits.max_message_bytes,
            self.limits.pose_hz,
        )
        self.clients[message.sid] = client
        self.writer.add(client)
        self.writer.messages_out += len(message.initial)
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(lambda: client, sock))
        task.add_done_callback(lambda t: self.gone(client) if t.exception() else None)

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

    # ------------------------------------------------------------ to the room

    def gone(self, client: EdgeClient) -> None:
        if self.clients.pop(client.id, None) is None:
            return
        self.writer.remove(client)
        self.uplink.flush()  # the room sees this client's last messages before it hears it left
        if self.room is not None:
            self.room.write(ipc.pack(ipc.Gone(client.id)))
        if client.transport is not None:
            client.transport.abort()

    def stats(self) -> ipc.Stats:
        """Counters since the previous call."""
        w = self.writer
        stats = ipc.Stats(
            w.messages_out, w.bytes_out, w.frames_dropped, w.closes, self.uplink.errors,
            self.tick_max_s,
        )  # fmt: skip
        w.messages_out = w.bytes_out = w.frames_dropped = 0
        w.closes = {}
        self.uplink.errors = {}
        self.tick_max_s = 0.0
        return stats

    def stop(self) -> None:
        """Close every client (the room has already sent each its reason) and exit."""
        for client in list(self.clients.values()):
            client.close(1001, "server stopping")
        loop = asyncio.get_running_loop()

        def finish() -> None:
            for client in list(self.clients.values()):
                if client.transport is not None:
                    client.transport.abort()
            if not self.done.done():
                self.done.set_result(None)

        loop.call_later(0.5 if self.clients else 0.0, finish)
