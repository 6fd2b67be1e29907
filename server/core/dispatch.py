"""Which handler takes which client message, and who may send it: one table.

A handler is a small function ``(room, conn, message, now) -> None`` registered with
``@handles(MessageType, roles=...)``; it changes the room and queues effects through
the ``RoomAuthority`` it is given. A new request is a new message type in ``protocol``
and one decorated function in a module of ``core.handlers`` (listed in its
``__init__``); nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from townhall.protocol.messages import Message, Role

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority

M = TypeVar("M", bound=Message)
Handler = Callable[["RoomAuthority", "Conn", Any, float], None]


@dataclass(frozen=True)
class Route:
    roles: frozenset[Role] | None  # None: every joined client
    handler: Handler


ROUTES: dict[type[Message], Route] = {}


def handles(
    message_type: type[M], roles: frozenset[Role] | None = None
) -> Callable[[Callable[[RoomAuthority, Conn, M, float], None]], Handler]:
    """Register the decorated function as the handler of ``message_type``."""

    def register(handler: Callable[[RoomAuthority, Conn, M, float], None]) -> Handler:
        if message_type in ROUTES:
            raise ValueError(f"{message_type.__name__} already has a handler")
        ROUTES[message_type] = Route(roles, handler)
        return handler

    return register
