"""The room's side of the fan-out seam: worker processes, handover, and remote sessions.

After a client has joined, the room hands its socket to the least-loaded fan-out
worker (``fanout.worker``). The fan-out keeps a ``RemoteSession`` in its place: what
the room writes to it crosses the seam, and what the client sends comes back over it
to the room host. A connection that cannot be handed over cleanly
(the client already sent more than its Join) simply stays in the room process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from townhall.protocol.limits import close_reason
from townhall.protocol.messages import Role
from townhall.server.fanout import seam as ipc
from townhall.server.gateway.session import Session
from townhall.server.ops.config import Settings
from townhall.server.ops.metrics import Metrics

if TYPE_CHECKING:
    from townhall.server.fanout.local import Fanout


class Inbox(Protocol):
    """Where what a worker's clients send goes (the room host)."""

    def receive(self, conn: int, data: bytes | str) -> None: ...
    def poses(self, slots: bytes, flags: bytes, records: bytes, bytes_in: int) -> None: ...
    def disconnect(self, conn: int) -> None: ...


log = logging.getLogger("townhall.workers")

STOP_TIMEOUT_S = 5.0


@dataclass(eq=False)
class RemoteSession(Session):
    """A joined client whose socket a fan-out worker owns; writes go over the seam."""

    worker: WorkerHandle | None = None

    def send(self, payloads: Sequence[bytes]) -> None:
        """Messages for this client: the worker frames and writes them at once."""
        if not self.closing and self.worker is not None and payloads:
            self.worker.send(ipc.Send(self.id, list(payloads)))

    def abort(self) -> None:
        if self.worker is not None:
            self.worker.send(ipc.Close(self.id, ipc.ABORT, ""))

    def buffered(self) -> int:
        return 0  # the worker applies the send limits where the buffer is

    def close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        if self.worker is not None:
            self.worker.send(ipc.Close(self.id, code, close_reason(reason)))


class WorkerHandle(asyncio.Protocol):
    """One worker process: its data stream, its fd channel and the sessions it holds."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.transport: asyncio.Transport | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.fd_channel: socket.socket | None = None
        self.sessions: set[int] = set()
        self.unpacker = ipc.Unpacker(ipc.ToRoom)
        self.lost = asyncio.get_running_loop().create_future()

    def send(self, message: ipc.Seam) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ipc.pack(message))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        for message in self.unpacker.feed(data):
            self.pool.on_worker(self, message)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.pool.worker_lost(self)
        if not self.lost.done():
            self.lost.set_result(None)


class WorkerPool:
    """Starts the fan-out workers and routes the room's output to them."""

    def __init__(
        self,
        settings: Settings,
        metrics: Metrics,
        fanout: Fanout,
        inbox: Inbox,
        count: int,
        keyframe: Callable[[], bytes] | None = None,
    ) -> None:
        self.settings = settings
        self.keyframe = keyframe  # the room's state, for a worker that asks (NeedKeyframe)
        self.metrics = metrics
        self.fanout = fanout
        self.inbox = inbox
        self.count = count
        self.workers: list[WorkerHandle] = []
        self.stopping = False

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        limits = self.settings.limits
        config = json.dumps(
            {
                "max_message_bytes": limits.max_frame_bytes * 8,
                "send_soft_bytes": limits.send_soft_bytes,
                "send_hard_bytes": limits.send_hard_bytes,
                "slow_close_s": limits.slow_close_s,
                "pose_hz": self.settings.room.pose_hz,
                "socket_send_buffer": limits.socket_send_buffer,
                "spectator_every": self.settings.room.spectator_every,
                "tick_hz": self.settings.room.tick_hz,
                "crowd_hz": self.settings.room.crowd_hz,
            }
        )
        for index in range(self.count):
            data_room, data_worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            # A stream, not datagrams: Linux queues only max_dgram_qlen (often 10) datagrams,
            # and a crowd arriving at once hands over sockets faster than that.
            fds_room, fds_worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            handle = WorkerHandle(self, index)
            handle.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "townhall.server.fanout.worker",
                    "--data-fd",
                    str(data_worker.fileno()),
                    "--fd-channel",
                    str(fds_worker.fileno()),
                    "--limits",
                    config,
                ],
                pass_fds=(data_worker.fileno(), fds_worker.fileno()),
            )
            data_worker.close()
            fds_worker.close()
            fds_room.setblocking(False)  # never block the room; a full channel keeps it local
            handle.fd_channel = fds_room
            data_room.setblocking(False)
            await loop.connect_accepted_socket(lambda h=handle: h, data_room)  # type: ignore[misc]
            self.workers.append(handle)
        log.info("fan-out workers started", extra={"workers": self.count})

    async def stop(self) -> None:
        self.stopping = True
        for handle in self.workers:
            handle.send(ipc.Stop())
        for handle in self.workers:
            proc = handle.process
            if proc is None:
                continue
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await asyncio.to_thread(proc.wait)
            if handle.transport is not None:
                handle.transport.close()
            if handle.fd_channel is not None:
                handle.fd_channel.close()

    # ------------------------------------------------------------ handover

    def adopt(self, session: Session, payloads: tuple[bytes, ...]) -> RemoteSession | None:
        """Hand a freshly joined client to a worker; None keeps it in this process."""
        live = [w for w in self.workers if w.transport is not None and w.fd_channel is not None]
        if not live or not _quiet(session):
            return None
        worker = min(live, key=lambda w: len(w.sessions))
        transport = session.transport
        sock = transport.get_extra_info("socket")
        if sock is None:
            return None
        reading = cast(asyncio.ReadTransport, transport)  # a socket transport reads too
        reading.pause_reading()
        fd = os.dup(sock.fileno())
        try:
            ipc.send_fd(worker.fd_channel, fd)  # type: ignore[arg-type]
        except OSError:  # BlockingIOError included: the worker is behind; serve it here
            reading.resume_reading()
            return None
        finally:
            os.close(fd)
        role = session.role or "spectator"
        worker.send(ipc.Adopt(session.id, session.slot, role, session.cell, list(payloads)))
        worker.sessions.add(session.id)
        remote = RemoteSession(
            session.connection,
            transport,
            id=session.id,
            slot=session.slot,
            role=session.role,
            cell=session.cell,
            joined=True,
            worker=worker,
        )
        session.handed_off = True
        transport.abort()  # our copy of the socket only; the worker's stays open
        return remote

    # ------------------------------------------------------------ fan-out

    def tick(self, message: ipc.Tick) -> None:
        """A room tick to every worker, packed once: each sees every tick number, as a
        networked edge does on the bus, so a gap is news (the edge asks for a keyframe)."""
        packed = ipc.pack(message)
        for worker in self.workers:
            if worker.transport is not None:
                worker.transport.write(packed)

    def broadcast(self, payload: bytes, roles: frozenset[Role] | None) -> None:
        """A droppable message, written by each worker with its next tick."""
        packed = ipc.pack(ipc.Broadcast(payload, sorted(roles) if roles else None))
        for worker in self.workers:
            if worker.sessions and worker.transport is not None:
                worker.transport.write(packed)

    def forget(self, session: RemoteSession) -> None:
        if session.worker is not None:
            session.worker.sessions.discard(session.id)

    # ------------------------------------------------------------ from workers

    def on_worker(self, worker: WorkerHandle, message: ipc.Seam) -> None:
        if isinstance(message, ipc.Inbound):
            sessions = self.fanout.sessions
            for sid, payload in message.items:
                session = sessions.get(sid)
                if session is not None and session.joined and not session.closing:
                    self.inbox.receive(sid, payload)
        elif isinstance(message, ipc.PoseBatch):
            self.inbox.poses(message.slots, message.flags, message.poses, message.bytes_in)
        elif isinstance(message, ipc.Gone):
            worker.sessions.discard(message.sid)
            self._gone(worker, message.sid)
        elif isinstance(message, ipc.Stats):
            m = self.metrics
            m.messages_out += message.messages_out
            m.bytes_out += message.bytes_out
            m.frames_dropped += message.frames_dropped
            for reason, n in message.closes.items():
                m.closes[reason] = m.closes.get(reason, 0) + n
            m.observe("worker_tick_max_s", message.tick_max_s)
            for code, n in message.errors.items():
                m.errors_sent[code] = m.errors_sent.get(code, 0) + n
        elif isinstance(message, ipc.NeedKeyframe):
            # The seam is a reliable stream: a gap there is a bug; its clients still get
            # the room's state rather than miss events silently.
            log.error("worker asked for a keyframe", extra={"worker": worker.index})
            if self.keyframe is not None:
                worker.send(ipc.Broadcast(self.keyframe(), None))

    def _gone(self, worker: WorkerHandle, sid: int) -> None:
        session = self.fanout.sessions.get(sid)
        if isinstance(session, RemoteSession) and session.worker is worker:
            self.fanout.remove(session)
            self.inbox.disconnect(sid)

    def worker_lost(self, worker: WorkerHandle) -> None:
        """A worker died: its clients' connections are gone; they may resume."""
        if not self.stopping:
            log.error("fan-out worker exited", extra={"worker": worker.index})
        for sid in list(worker.sessions):
            self._gone(worker, sid)
        worker.sessions.clear()

    def held(self) -> int:
        """Clients whose sockets the workers hold (they count toward max_connections)."""
        return sum(len(w.sessions) for w in self.workers)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.process is not None]


def _quiet(session: Session) -> bool:
    """Nothing unread in websockets' buffers and nothing unsent: the socket can move."""
    connection = session.connection
    try:
        if session.transport.get_write_buffer_size():
            return False
        if len(connection.recv_messages.frames):
            return False
        protocol = connection.protocol
        return not protocol.reader.buffer and not protocol.events
    except AttributeError:  # a websockets version whose internals differ: keep it here
        return False
