"""A fan-out worker: a process that owns client sockets the room hands over and writes to them.

The room process (the authority) joins each client, then passes its socket here.
From then on this process reads the client's frames and forwards the payloads
to the room in batches, and does the per-client writes: per tick, every client
gets one write whose bytes are built once per (role, cell) group, so the
per-client cost is one ``transport.write`` of a shared buffer. Spreading
clients over workers puts both cores to work on the part that grows with the
audience while the room stays one authority.

Started by ``WorkerPool`` as ``python -m townhall.server.fanout.worker``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import time
from array import array
from collections import deque
from typing import Any

import msgspec

from townhall.protocol import codec, quant
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Error, Pose
from townhall.server.fanout import seam as ipc
from townhall.server.fanout.framing import frame_binary
from townhall.server.fanout.sendlimits import SendLimits, slow_reason
from townhall.server.fanout.wsreader import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    PING_FRAME,
    ClientFrameReader,
    FrameError,
    apply_mask,
    close_frame,
    pong_frame,
)

CLOSE_GRACE_S = 2.0  # how long a closing client has to answer our close frame
STATS_EVERY_S = 1.0
SLOW_CLOSE_CODE = ErrorCode.SLOW_CONSUMER.close_code
ATTENDEE = ipc.ROLE_BITS["attendee"]
SPECTATOR = ipc.ROLE_BITS["spectator"]
FLUSH_AFTER_S = 0.005  # inbound messages and poses gather this long before going to the room
POSE_TAG = Pose.TYPE
_decode_pose = msgspec.msgpack.Decoder(Pose).decode
_RATE_NOTICE = codec.encode(
    Error(int(ErrorCode.RATE_LIMITED), "poses above the room's rate; dropped", Pose.TYPE, False, 0)
)


class ClientConnection(asyncio.Protocol):
    """One adopted client: reads frames for the room, takes writes from the worker."""

    def __init__(self, worker: Worker, adopt: ipc.Adopt) -> None:
        self.worker = worker
        self.sid = adopt.sid
        self.slot = adopt.slot
        self.role = adopt.role
        self.pose_tokens = float(worker.pose_burst)
        self.pose_refilled = time.monotonic()
        self.rate_noticed = -1e9
        self.adopted_tick = worker.tick_no
        self.cell = adopt.cell
        self.reader = ClientFrameReader(worker.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = [adopt.initial] if adopt.initial else []
        self.closing = False
        self.aborted = False
        self.behind_since = 0.0
        self.last_heard = time.monotonic()
        self.ping_sent = 0.0

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        if self.aborted:
            transport.abort()
            return
        if self.pending:
            transport.write(b"".join(self.pending))  # type: ignore[attr-defined]
            self.pending.clear()
        if self.closing:  # closed by the room before the socket was set up here
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, transport.abort)

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        self.ping_sent = 0.0
        if (
            self.role == ATTENDEE
            and not self.closing
            and len(data) > 8
            and data[0] == 0x82
            and data[7] ^ data[3] == POSE_TAG  # the type, unmasked
            and 0x80 < data[1] < 0xFE
            and len(data) == 6 + (data[1] & 0x7F)
            and not self.reader.pending()
        ):
            # The common case, thousands a second: exactly one small whole binary frame.
            payload = apply_mask(data[6:], data[2:6])
            if payload[0] in (0x93, 0x94):
                self.worker.pose(self, payload)
                return
        try:
            frames = self.reader.feed(data)
        except FrameError as exc:
            self.close(exc.code, exc.reason)
            return
        worker = self.worker
        for opcode, payload in frames:
            if self.closing:
                if opcode == OP_CLOSE and self.transport is not None:
                    self.transport.close()  # the client answered our close
                continue
            if opcode == OP_BINARY:
                if (
                    self.role == ATTENDEE
                    and len(payload) > 2
                    and payload[1] == POSE_TAG
                    and payload[0] in (0x93, 0x94)
                ):
                    worker.pose(self, payload)
                else:
                    worker.forward(self.sid, payload)
            elif opcode == OP_TEXT:
                worker.forward(self.sid, payload.decode("utf-8", "replace"))
            elif opcode == OP_PING:
                self.write(pong_frame(payload))
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1000
                self.closing = True
                self.write(close_frame(code if 1000 <= code < 5000 else 1000, ""))
                if self.transport is not None:
                    self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.worker.gone(self)

    # ------------------------------------------------------------ writes

    def write(self, data: bytes) -> int:
        if self.transport is None:
            self.pending.append(data)
            return len(data)
        if self.transport.is_closing():
            return 0
        self.transport.write(data)
        return len(data)

    def abort(self) -> None:
        """Drop the socket without a close frame (as a network fault would)."""
        self.aborted = self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Send a close frame; drop the socket when the client answers or the grace ends."""
        if self.closing:
            return
        self.write(close_frame(code, reason))
        self.closing = True
        transport = self.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, transport.abort)


class Worker:
    """All of this process's clients and the seam back to the room."""

    def __init__(
        self, room: asyncio.Transport | None, fd_channel: socket.socket, limits: dict[str, Any]
    ) -> None:
        self.room = room
        self.fd_channel = fd_channel
        self.fds: deque[int] = deque()  # handed-over sockets waiting for their Adopt
        self.max_message_bytes = int(limits["max_message_bytes"])
        self.send_limits = SendLimits(
            int(limits["send_soft_bytes"]),
            int(limits["send_hard_bytes"]),
            float(limits["slow_close_s"]),
        )
        self.ping_interval_s = float(limits.get("ping_interval_s", 20.0))
        self.socket_send_buffer = int(limits.get("socket_send_buffer", 0))
        pose_hz = float(limits.get("pose_hz", 20))
        self.pose_rate, self.pose_burst = pose_hz * 1.5, pose_hz  # as the room's gateway
        self.pose_slots = array("H")
        self.pose_flags = bytearray()
        self.pose_records = bytearray()
        self.pose_from: list[tuple[ClientConnection, bytes]] = []
        self.pose_bytes_in = 0
        self.errors: dict[str, int] = {}
        self.tick_max_s = 0.0
        self.clients: dict[int, ClientConnection] = {}
        # Spectators are written every n-th tick: they need the stage stream and the coarse
        # crowd, which the room sends a tick ahead, not every crowd tick; fewer, larger
        # writes are most of what a delivery costs.
        self.spectator_every = max(1, int(limits.get("spectator_every", 1)))
        # Who a tick writes: clients written every tick first (attendees see the crowd, so
        # they get it soonest), then the spectators whose turn it is (they have the stage
        # lead's margin). Only those are visited, not every client each tick.
        self.every_tick: dict[int, ClientConnection] = {}
        self.by_phase: list[dict[int, ClientConnection]] = [{} for _ in range(self.spectator_every)]
        self.tick_no = 0
        self.spectator_ticks: list[tuple[int, bytes, int, bytes, int]] = []
        # Spectators are spread over the ticks (by session id), so each tick writes an
        # even share of them rather than all of them every n-th tick.
        self.phase_written = [0] * self.spectator_every
        self.broadcasts: list[tuple[bytes, int]] = []
        self.inbound: list[tuple[int, bytes | str]] = []
        self._flush_scheduled = False
        self.messages_out = self.bytes_out = self.frames_dropped = 0
        self.closes: dict[str, int] = {}
        self.done = asyncio.get_running_loop().create_future()

    # ------------------------------------------------------------ from the room

    def on_room(self, message: ipc.Seam) -> None:
        if isinstance(message, ipc.Tick):
            started = time.perf_counter()
            self.tick(message)
            self.tick_max_s = max(self.tick_max_s, time.perf_counter() - started)
        elif isinstance(message, ipc.Broadcast):
            self.broadcasts.append((message.framed, message.roles))
        elif isinstance(message, ipc.Send):
            client = self.clients.get(message.sid)
            if client is not None and not client.closing:
                self.bytes_out += client.write(message.data)
                self.messages_out += message.count
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

    def adopt(self, message: ipc.Adopt) -> None:
        if not self.fds:
            self.fd_channel.setblocking(True)  # sent before the Adopt: already queued
            self.fds.append(ipc.recv_fd(self.fd_channel))
            self.fd_channel.setblocking(False)
        fd = self.fds.popleft()
        sock = socket.socket(fileno=fd)
        sock.setblocking(False)
        if self.socket_send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_send_buffer)
        client = ClientConnection(self, message)
        self.clients[message.sid] = client
        self._tick_group(client)[message.sid] = client
        loop = asyncio.get_running_loop()
        task = loop.create_task(loop.connect_accepted_socket(lambda: client, sock))
        task.add_done_callback(lambda t: t.exception() and self.gone(client))

    def _tick_group(self, client: ClientConnection) -> dict[int, ClientConnection]:
        if client.role == SPECTATOR and self.spectator_every > 1:
            return self.by_phase[client.sid % self.spectator_every]
        return self.every_tick

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

    def tick(self, tick: ipc.Tick) -> None:
        """One write per client: broadcasts since the last tick, events, then crowd frames."""
        broadcasts, self.broadcasts = self.broadcasts, []
        events, n_events = tick.events, tick.n_events
        near, far = tick.near, tick.far
        groups: dict[tuple[int, int], tuple[bytes, int]] = {}
        self.tick_no += 1
        every = self.spectator_every
        phase_now = self.tick_no % every
        if every > 1:
            data, count = self._group(broadcasts, events, n_events, near, far, (SPECTATOR, -1))
            self.spectator_ticks.append((self.tick_no, data, count, events, n_events))
        since: dict[int, tuple[bytes, int, bytes, int]] = {}
        now = time.monotonic()
        soft = self.send_limits.soft
        messages = written = dropped = 0
        due = list(self.every_tick.values())
        if every > 1:
            due += self.by_phase[phase_now].values()
        for client in due:
            transport = client.transport
            if client.closing or transport is None:
                continue
            gathered = None
            if every > 1 and client.role == SPECTATOR:
                after = max(client.adopted_tick, self.phase_written[phase_now])
                gathered = since.get(after)
                if gathered is None:
                    gathered = since[after] = self._since(after)
            backlog = transport.get_write_buffer_size()
            if backlog < soft:
                client.behind_since = 0.0
                if gathered is not None:
                    data, count = gathered[0], gathered[1]
                else:
                    key = (client.role, client.cell)
                    group = groups.get(key)
                    if group is None:
                        group = self._group(broadcasts, events, n_events, near, far, key)
                        groups[key] = group
                    data, count = group
            else:
                droppable = sum(1 for _, roles in broadcasts if not roles or roles & client.role)
                dropped += droppable + (client.cell in near) + bool(far)
                if self.send_limits.must_close(client, backlog, now):
                    self.closes["SLOW_CONSUMER"] = self.closes.get("SLOW_CONSUMER", 0) + 1
                    client.close(SLOW_CLOSE_CODE, slow_reason(backlog))
                    continue
                data, count = (events, n_events) if gathered is None else gathered[2:]
            if data:
                transport.write(data)
                written += len(data)
                messages += count
        if every > 1:
            self.phase_written[phase_now] = self.tick_no
            oldest = min(self.phase_written)
            while self.spectator_ticks and self.spectator_ticks[0][0] <= oldest:
                self.spectator_ticks.pop(0)
        self.messages_out += messages
        self.bytes_out += written
        self.frames_dropped += dropped

    def _since(self, after: int) -> tuple[bytes, int, bytes, int]:
        """What spectators get at their write: every tick gathered since ``after``."""
        ticks = [t for t in self.spectator_ticks if t[0] > after]
        return (
            b"".join(t[1] for t in ticks),
            sum(t[2] for t in ticks),
            b"".join(t[3] for t in ticks),
            sum(t[4] for t in ticks),
        )

    @staticmethod
    def _group(
        broadcasts: list[tuple[bytes, int]],
        events: bytes,
        n_events: int,
        near: dict[int, bytes],
        far: bytes,
        key: tuple[int, int],
    ) -> tuple[bytes, int]:
        role, cell = key
        parts = [framed for framed, roles in broadcasts if not roles or roles & role]
        count = len(parts) + n_events
        if events:
            parts.append(events)
        cell_frame = near.get(cell) if cell >= 0 else None
        if cell_frame:
            parts.append(cell_frame)
            count += 1
        if far:
            parts.append(far)
            count += 1
        return b"".join(parts), count

    # ------------------------------------------------------------ to the room

    def forward(self, sid: int, payload: bytes | str) -> None:
        self.inbound.append((sid, payload))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)

    def pose(self, client: ClientConnection, payload: bytes) -> None:
        """An attendee's pose: limited and batched here, so the room does one array write."""
        try:
            pose = _decode_pose(payload)
        except (msgspec.MsgspecError, RecursionError):  # truncated or wrong: not only invalid
            self.forward(client.sid, payload)  # the room answers with the exact error
            return
        now = time.monotonic()
        tokens = client.pose_tokens + (now - client.pose_refilled) * self.pose_rate
        client.pose_refilled = now
        if tokens < 1.0:
            client.pose_tokens = tokens
            # Poses bunch up after any stall; dropping the excess is enough, and one
            # notice a second tells the client (the room's gateway does the same).
            if now - client.rate_noticed >= 1.0:
                client.rate_noticed = now
                self.errors["RATE_LIMITED"] = self.errors.get("RATE_LIMITED", 0) + 1
                client.write(frame_binary(_RATE_NOTICE))
            return
        client.pose_tokens = min(float(self.pose_burst), tokens) - 1.0
        self.pose_slots.append(client.slot)
        self.pose_flags.append(pose.flags)
        self.pose_records += pose.pose
        self.pose_from.append((client, payload))
        self.pose_bytes_in += len(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_AFTER_S, self.flush)

    def _pose_batch(self) -> ipc.PoseBatch | None:
        if not self.pose_from:
            return None
        records = bytes(self.pose_records)
        try:
            quant.check_poses(records)
            batch = ipc.PoseBatch(
                self.pose_slots.tobytes(), bytes(self.pose_flags), records, self.pose_bytes_in
            )
        except quant.QuantizationError:
            # Someone sent a bad rotation: pass every pose of this batch to the room one
            # by one, so the good ones land and the bad one gets its error.
            for client, payload in self.pose_from:
                self.inbound.append((client.sid, payload))
            batch = None
        self.pose_slots = array("H")
        self.pose_flags = bytearray()
        self.pose_records = bytearray()
        self.pose_from = []
        self.pose_bytes_in = 0
        return batch

    def flush(self) -> None:
        self._flush_scheduled = False
        if self.room is None:
            return
        batch = self._pose_batch()
        if batch is not None:
            self.room.write(ipc.pack(batch))
        if self.inbound:
            items, self.inbound = self.inbound, []
            self.room.write(ipc.pack(ipc.Inbound(items)))

    def gone(self, client: ClientConnection) -> None:
        if self.clients.pop(client.sid, None) is None:
            return
        self._tick_group(client).pop(client.sid, None)
        self.flush()  # the room sees this client's last messages before it hears it left
        if self.room is not None:
            self.room.write(ipc.pack(ipc.Gone(client.sid)))
        if client.transport is not None:
            client.transport.abort()

    async def report(self) -> None:
        """Counters to the room once a second; pings to quiet clients to find dead peers."""
        while True:
            await asyncio.sleep(STATS_EVERY_S)
            if self.room is not None:
                stats = ipc.Stats(
                    self.messages_out,
                    self.bytes_out,
                    self.frames_dropped,
                    self.closes,
                    self.errors,
                    self.tick_max_s,
                )
                self.room.write(ipc.pack(stats))
            self.messages_out = self.bytes_out = self.frames_dropped = 0
            self.closes = {}
            self.errors = {}
            self.tick_max_s = 0.0
            self._keepalive(time.monotonic())

    def _keepalive(self, now: float) -> None:
        interval = self.ping_interval_s
        for client in list(self.clients.values()):
            if client.closing or now - client.last_heard < interval:
                continue
            if client.ping_sent == 0.0:
                client.ping_sent = now
                client.write(PING_FRAME)
            elif now - client.ping_sent >= interval:
                self.closes["PING_TIMEOUT"] = self.closes.get("PING_TIMEOUT", 0) + 1
                client.close(1011, "keepalive ping timeout")

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


class RoomLink(asyncio.Protocol):
    """The byte stream from the room: seam messages in, the worker acts on each."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.unpacker = ipc.Unpacker(ipc.ToWorker)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        for message in self.unpacker.feed(data):
            self.worker.on_room(message)

    def connection_lost(self, exc: Exception | None) -> None:
        # The room process is gone: nobody can answer these clients any more.
        self.worker.room = None
        self.worker.stop()


async def run(data_fd: int, fd_channel_fd: int, limits: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    fd_channel = socket.socket(fileno=fd_channel_fd)
    fd_channel.setblocking(False)
    worker = Worker(None, fd_channel, limits)
    loop.add_reader(fd_channel.fileno(), worker.take_fds)
    room_sock = socket.socket(fileno=data_fd)
    room_sock.setblocking(False)
    transport, _ = await loop.connect_accepted_socket(lambda: RoomLink(worker), room_sock)
    worker.room = transport  # type: ignore[assignment]
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, lambda: None)  # the room stops us
    reporter = loop.create_task(worker.report())
    try:
        await worker.done
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
    import gc

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
