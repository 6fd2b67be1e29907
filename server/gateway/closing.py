"""Closing a client connection so that it always ends: a reason that fits, then a deadline.

A close frame is a control frame: at most 125 bytes of payload, two of them the code, so
the reason gets 123 bytes of UTF-8 (RFC 6455 section 5.5). Reasons often echo what the
client sent, so every close path cuts them with ``protocol.limits.close_reason`` (by bytes,
on a character boundary).

websockets' ``close()`` raises on a reason that does not fit and waits without limit for
the close frame to drain to a client that does not read; either way the connection would
outlive its welcome. ``close_within`` gives the closing handshake a deadline and then
aborts the TCP connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from townhall.protocol.limits import close_reason

log = logging.getLogger("townhall.gateway.closing")

CLOSE_DEADLINE_S = 5.0  # for the close frame to go out and the client's answer to come back


class _Closable(Protocol):
    """What ``close_within`` needs of a websockets connection."""

    @property
    def transport(self) -> asyncio.Transport: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


async def close_within(
    connection: _Closable, code: int, reason: str, deadline_s: float = CLOSE_DEADLINE_S
) -> None:
    """Close with ``code`` and ``reason``; abort the TCP connection if that fails or stalls.

    Never raises: every caller only wants the connection gone.
    """
    try:
        async with asyncio.timeout(deadline_s):
            await connection.close(code, close_reason(reason))
    except TimeoutError:
        log.info("close timed out; aborting", extra={"code": code})
    except asyncio.CancelledError:
        connection.transport.abort()
        raise
    except Exception as exc:  # a close that cannot be sent must still end the connection
        log.info("close failed; aborting", extra={"code": code, "error": repr(exc)[:200]})
    # A connection closed cleanly has no transport left to abort; this is then a no-op.
    connection.transport.abort()
