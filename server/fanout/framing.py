"""Server-to-client WebSocket framing done once per payload (RFC 6455 section 5.2).

Server frames are unmasked, so the framed bytes of a broadcast are identical for
every recipient: we frame once and write the same bytes to every transport.
"""

from __future__ import annotations

import struct

_BINARY_FIN = 0x82


def frame_binary(payload: bytes) -> bytes:
    """One complete, final, unmasked binary frame carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((_BINARY_FIN, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _BINARY_FIN, 126, n) + payload
    return struct.pack("!BBQ", _BINARY_FIN, 127, n) + payload
