"""One client socket on a fan-out edge, read through python-websockets' sans-I/O protocol.

The socket arrives already open (the room did the HTTP upgrade and the Join), so the
connection is websockets' ``ServerProtocol`` constructed with ``state=OPEN``: it parses
and unmasks the client's frames, answers pings, runs the closing handshake and refuses
broken framing with the right close code, exactly as the room's own connections do.
This class moves bytes between the socket and that protocol and hands whole messages to
the edge. Writes of the room's pre-framed ticks go straight to the transport (server
frames are unmasked: the same bytes for everyone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from townhall.protocol.limits import close_reason
from townhall.protocol.messages import Role
from townhall.server.core.ratelimit import PoseLimiter
from townhall.server.fanout.framing import frame_binary

if TYPE_CHECKING:
    from townhall.server.fanout.edge import Edge

CLOSE_GRACE_S = 2.0  # how long a closing client has to answer our close frame
_log = logging.getLogger("townhall.edge.websocket")


class EdgeClient(asyncio.Protocol):
    """An adopted client: frames in through ``ServerProtocol``, the room's bytes out."""

    def __init__(
        self,
        edge: Edge[EdgeClient],
        sid: int,
        slot: int,
        role: Role,
        cell: int,
        initial: list[bytes],
        max_size: int,
        pose_hz: float,
    ) -> None:
        now = time.monotonic()
        self.edge = edge
        self.id = sid
        self.slot = slot
        self.role: Role | None = role
        self.cell = cell
        self.joined = True  # the room hands a client over once it has joined
        self.protocol = ServerProtocol(state=State.OPEN, max_size=max_size, logger=_log)
        self.poses = PoseLimiter(pose_hz, now)
        self.transport: asyncio.Transport | None = None
        self.pending: list[bytes] = [frame_binary(p) for p in initial]
        self.closing = False
        self.aborted = False
        self.behind_since = 0.0
        self.stage_sent = 0
        self.since_tick = 0
        self.last_heard = now
        self.ping_sent = 0.0
        self._fragments: list[bytes] = []
        self._fragment_op: Opcode | None = None

    # ------------------------------------------------------------ asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        if self.aborted:
            transport.abort()  # type: ignore[attr-defined]
            return
        if self.pending:
            transport.write(b"".join(self.pending))  # type: ignore[attr-defined]
            self.pending.clear()
        self._flush()  # a close requested before the socket was set up here
        if self.closing:
            self._expect_close()

    def data_received(self, data: bytes) -> None:
        self.last_heard = time.monotonic()
        self.ping_sent = 0.0
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            if isinstance(event, Frame):
                self._frame(event)
        self._flush()

    def eof_received(self) -> bool | None:
        self.protocol.receive_eof()
        self._flush()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.edge.gone(self)

    # ------------------------------------------------------------ frames in

    def _frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.CLOSE:
            self.closing = True  # the protocol answered it; the socket ends next
            return
        if opcode is Opcode.PING or opcode is Opcode.PONG:
            return  # pongs are queued by the protocol; any frame counts as heard
        if opcode is Opcode.CONT:
            self._fragments.append(bytes(frame.data))
            if not frame.fin:
                return
            opcode, data = self._fragment_op or Opcode.BINARY, b"".join(self._fragments)
            self._fragments.clear()
        elif not frame.fin:
            self._fragment_op = opcode
            self._fragments = [bytes(frame.data)]
            return
        else:
            data = bytes(frame.data)
        if self.closing:
            return
        if opcode is Opcode.TEXT:
            self.edge.uplink.forward(self.id, data.decode("utf-8", "replace"))
        else:
            self.edge.uplink.message(self, data)

    # ------------------------------------------------------------ bytes out

    def _flush(self) -> None:
        """Write what the protocol wants sent (pongs, close frames); end the socket if told."""
        transport = self.transport
        if transport is None:
            return
        for data in self.protocol.data_to_send():
            if data:
                transport.write(data)
            else:  # SEND_EOF: the closing handshake is done, or the client broke the rules
                transport.close()
        if self.protocol.state is not State.OPEN and not self.closing:
            self.closing = True
            self._expect_close()

    def write(self, data: bytes) -> int:
        if self.transport is None:
            if self.closing:
                return 0
            self.pending.append(data)
            return len(data)
        if self.closing or self.transport.is_closing():
            return 0
        self.transport.write(data)
        return len(data)

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size() if self.transport is not None else 0

    def ping(self) -> None:
        if self.protocol.state is State.OPEN:
            self.protocol.send_ping(b"")
            self._flush()

    def abort(self) -> None:
        """Drop the socket without a close frame (as a network fault would)."""
        self.aborted = self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake; drop the socket when it ends or the grace runs out."""
        if self.closing:
            return
        self.closing = True
        if self.protocol.state is State.OPEN:
            self.protocol.send_close(code, close_reason(reason))
        self._flush()
        self._expect_close()

    def _expect_close(self) -> None:
        transport = self.transport
        if transport is not None:
            asyncio.get_running_loop().call_later(CLOSE_GRACE_S, transport.abort)
