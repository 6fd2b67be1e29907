"""Closing a client connection so that it always ends: a reason that fits, then a deadline.

A close frame is a control frame: at most 125 bytes of payload, two of them the code, so
the reason gets 123 bytes of UTF-8 (RFC 6455 section 5.5). Reasons often echo what the
client sent, so they are cut by bytes on a character boundary here, for every close path
(the gateway's, the fan-out workers' and the remote sessions' of the room).

websockets' ``close()`` raises on a reason that does not fit and waits without limit for
the close frame to drain to a client that does not read; either way the connection would
outlive its welcome. ``close_within`` gives the closing handshake a deadline and then
aborts the TCP connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

log = logging.getLogger("townhall.gateway.closing")

MAX_REASON_BYTES = 123  # 125 bytes of control-frame payload less the 2-byte code
CLOSE_DEADLINE_S = 5.0  # for the close frame to go out and the client's answer to come back


def cut_reason(reason: str, limit: int = MAX_REASON_BYTES) -> str:
    """``reason`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    data = reason.encode("utf-8", "replace")
    if len(data) <= limit:
        return reason
    # Dropping an incomplete trailing sequence leaves whole characters only.
    return data[:limit].decode("utf-8", "ignore")


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
            await connection.close(code, cut_reason(reason))
    except TimeoutError:
        log.info("close timed out; aborting", extra={"code": code})
    except asyncio.CancelledError:
        connection.transport.abort()
        raise
    except Exception as exc:  # a close that cannot be sent must still end the connection
        log.info("close failed; aborting", extra={"code": code, "error": repr(exc)[:200]})
    # A connection closed cleanly has no transport left to abort; this is then a no-op.
    connection.transport.abort()
