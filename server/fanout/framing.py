"""Server-to-client WebSocket frames, serialized once per payload by python-websockets.

Server frames are unmasked, so the framed bytes of a broadcast are identical for every
recipient: we frame once (websockets' ``Frame.serialize``, the same code its own
connections use) and write the same bytes to every transport.
"""

from __future__ import annotations

from websockets.extensions import Extension
from websockets.frames import Frame, Opcode

_NO_EXTENSIONS: list[Extension] = []


def frame_binary(payload: bytes) -> bytes:
    """One complete, final, unmasked binary frame carrying ``payload``."""
    return Frame(Opcode.BINARY, payload).serialize(mask=False, extensions=_NO_EXTENSIONS)
