"""One client connection in this process: its socket, and where the fan-out writes it."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from townhall.protocol.messages import Role
from townhall.server.gateway.closing import close_within

_ids = itertools.count(1)


def new_session_id() -> int:
    """A connection id unique in this process (for clients held by edges on the bus too)."""
    return next(_ids)


@dataclass(eq=False)
class Session:
    """A connection's transport and what the fan-out needs to write it (the room keeps the
    rest: identity, limits, membership)."""

    connection: ServerConnection
    transport: asyncio.WriteTransport
    id: int = field(default_factory=new_session_id)
    slot: int = -1
    role: Role | None = None
    cell: int = -1
    joined: bool = False
    closing: bool = False
    behind_since: float = 0.0  # when the send buffer last went over the soft limit
    stage_sent: int = 0  # the number of the last stage packet written to it
    since_tick: int = 0  # the tick it joined the writes at
    close_task: asyncio.Task[None] | None = None
    handed_off: bool = False  # the socket now belongs to a fan-out worker

    def write(self, data: bytes) -> int:
        """Write already-framed bytes; returns how many were queued (0 when closing)."""
        if self.closing or self.transport.is_closing():
            return 0
        try:
            self.transport.write(data)
        except RuntimeError:  # websockets already sent EOF after a close handshake
            self.closing = True
            return 0
        return len(data)

    def abort(self) -> None:
        """Drop the connection without a close handshake, as a network fault would."""
        self.transport.abort()

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def close(self, code: int, reason: str) -> None:
        """Close from synchronous code; the fan-out stops writing at once."""
        if self.closing:
            return
        self.closing = True
        self.close_task = asyncio.get_running_loop().create_task(
            close_within(self.connection, code, reason)  # ends it even if the frame cannot go
        )
