"""Who may open the WebSocket at all: the page's Origin and the server's connection limit.

Both are decided at the HTTP handshake, before websockets upgrades the connection, so a
refused client costs one request and one response and holds nothing afterwards.

- **Origin.** A browser names the page that opens a WebSocket in ``Origin``; a page on
  another site must not drive a room with a token it got hold of. Allowed: the origins
  in ``server.allowed_origins`` or, when that is empty, the server's own origin
  (``server.public_url``'s when set, else the one the request's ``Host`` names). Clients
  that are not browsers send no Origin and are let in (their token is the check).
- **New connections per address.** ``limits.connects_per_address_per_min`` handshakes per
  client address (``gateway.addresses``: behind trusted proxies, the address they name); one
  more gets ``429`` with ``Retry-After``. The address is kept for the room's per-address
  limits on guests.
- **Connection limit.** ``server.max_connections`` counts every open WebSocket of the room:
  those that have not joined yet, those joined in this process, and those a fan-out
  worker holds. One over it gets ``503`` with ``Retry-After``; nothing is accepted first
  and closed later, so a flood of handshakes cannot hold sockets or memory past the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from townhall.server.gateway.addresses import AddressLimits, ClientAddresses
from townhall.server.gateway.http import WS_PATH, text_response
from townhall.server.ops.metrics import Metrics

log = logging.getLogger("townhall.gateway.admission")

RETRY_AFTER_S = 10  # seconds a refused client should wait; joins time out within 10 s too
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}

Origin = tuple[str, str, int]  # scheme, host, port


def parse_origin(text: str) -> Origin | None:
    """``scheme://host[:port]`` as a comparable tuple; None if it is not such an origin."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or parts.username or parts.password:
        return None
    return scheme, host, port if port is not None else DEFAULT_PORTS[scheme]


def parse_allowed_origins(text: str) -> tuple[frozenset[Origin], bool, bool]:
    """The setting as (origins, any origin allowed, the opaque origin ``null`` allowed)."""
    origins: set[Origin] = set()
    anything = opaque = False
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == "*":
            anything = True
        elif part == "null":
            opaque = True
        else:
            origin = parse_origin(part)
            if origin is None:
                raise ValueError(f"server.allowed_origins: {part!r} is not scheme://host[:port]")
            origins.add(origin)
    return frozenset(origins), anything, opaque


class Admission:
    """Checks each WebSocket handshake; counts the connections it lets through."""

    def __init__(
        self,
        allowed_origins: str,
        public_url: str,
        max_connections: int,
        metrics: Metrics,
        held_elsewhere: Callable[[], int] = lambda: 0,
        addresses: ClientAddresses | None = None,
        connects_per_address_per_min: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.origins, self.any_origin, self.opaque_origin = parse_allowed_origins(allowed_origins)
        own = parse_origin(public_url) if public_url else None
        self.public_origin = own
        self.max_connections = max_connections
        self.metrics = metrics
        self.held_elsewhere = held_elsewhere  # sessions whose sockets fan-out workers hold
        self.open: set[ServerConnection] = set()  # this process's, from handshake to end
        self.addresses = addresses or ClientAddresses("")
        self.per_address = AddressLimits(connects_per_address_per_min)
        self.address_of: dict[ServerConnection, str] = {}  # of each open connection
        self.clock = clock

    @property
    def count(self) -> int:
        """Every open WebSocket of the room, in this process and in the workers."""
        return len(self.open) + self.held_elsewhere()

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        """None lets the handshake go on (and counts the connection); else the refusal."""
        if request.path.split("?", 1)[0] != WS_PATH:
            return None
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return None  # the router answers 426
        origins = request.headers.get_all("Origin")
        if origins and not self._origin_allowed(origins, request.headers.get("Host", "")):
            return self._refuse(
                "origin",
                HTTPStatus.FORBIDDEN,
                "This page's origin may not open the room's WebSocket "
                "(see server.allowed_origins).\n",
            )
        peer = connection.remote_address
        address = self.addresses.of(
            str(peer[0]) if peer else "", request.headers.get_all(self.addresses.header)
        )
        if not self.per_address.allow(address, self.clock()):
            resp = self._refuse(
                "address_rate",
                HTTPStatus.TOO_MANY_REQUESTS,
                "Too many new connections from your address; try again shortly "
                "(see limits.connects_per_address_per_min).\n",
            )
            resp.headers["Retry-After"] = str(RETRY_AFTER_S)
            return resp
        if self.count >= self.max_connections:
            resp = self._refuse(
                "connection_limit",
                HTTPStatus.SERVICE_UNAVAILABLE,
                "The server is at its connection limit; try again shortly.\n",
            )
            resp.headers["Retry-After"] = str(RETRY_AFTER_S)
            return resp
        self._hold(connection, address)
        return None

    def _origin_allowed(self, values: Iterable[str], host: str) -> bool:
        values = list(values)
        if len(values) != 1:
            return False  # several Origin headers: no browser sends that
        if self.any_origin:
            return True
        value = values[0].strip()
        if value == "null":
            return self.opaque_origin
        origin = parse_origin(value)
        if origin is None:
            return False
        if self.origins:
            return origin in self.origins
        if self.public_origin is not None:
            return origin == self.public_origin
        # No setting: the server's own origin is the one the browser asked for by Host.
        return origin == parse_origin(f"{origin[0]}://{host}")

    def _hold(self, connection: ServerConnection, address: str) -> None:
        self.open.add(connection)
        self.address_of[connection] = address
        self.metrics.open_connections = len(self.open)

        def release(_: asyncio.Future[None]) -> None:
            self.open.discard(connection)
            self.address_of.pop(connection, None)
            self.metrics.open_connections = len(self.open)

        connection.connection_lost_waiter.add_done_callback(release)

    def _refuse(self, reason: str, status: HTTPStatus, text: str) -> Response:
        self.metrics.refused[reason] = self.metrics.refused.get(reason, 0) + 1
        log.info("handshake refused", extra={"reason": reason})
        return text_response(text, status)
