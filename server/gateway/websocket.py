"""The WebSocket endpoint: one coroutine per connection that hands every frame to the room.

Everything a client sends goes to the room host as it arrives; the room answers through
the fan-out. Joining, validation, limits, timeouts and closing with a reason are the
room's decisions (``core.authority``); this only owns the socket while it is here.
"""

from __future__ import annotations

import socket

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from townhall.server.fanout.local import Fanout
from townhall.server.gateway.guests import GuestCookies
from townhall.server.gateway.host import RoomHost
from townhall.server.gateway.session import Session


class Gateway:
    """Reads one connection from handshake to close on behalf of the room."""

    def __init__(
        self,
        host: RoomHost,
        fanout: Fanout,
        socket_send_buffer: int,
        guests: GuestCookies | None = None,
    ) -> None:
        self.host = host
        self.fanout = fanout
        self.socket_send_buffer = socket_send_buffer
        self.address_of: dict[ServerConnection, str] = {}  # admission's: the client's address
        self.guests = guests

    async def handle(self, connection: ServerConnection) -> None:
        transport = connection.transport
        sock = transport.get_extra_info("socket")
        if self.socket_send_buffer and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_send_buffer)
        session = Session(connection, transport)
        self.fanout.add(session)
        request = connection.request
        guest = ""
        if self.guests is not None and request is not None:
            guest = self.guests.read(request.headers)
        self.host.connect(session.id, self.address_of.get(connection, ""), guest)
        try:
            async for data in connection:
                if session.handed_off:
                    break  # a fan-out worker reads this socket from now on
                # After the room decides to close, keep draining: websockets stops reading
                # when its queue is full and would never see the client's close frame.
                if not session.closing:
                    self.host.receive(session.id, data)
                if session.handed_off:
                    break
        except ConnectionClosed:
            pass
        finally:
            if session.handed_off:
                await connection.wait_closed()  # our copy of the socket is gone
            else:
                self.fanout.remove(session)
                self.host.disconnect(session.id)
            if session.close_task is not None:
                # Returning first would let websockets close with 1000 and lose our code.
                await session.close_task
