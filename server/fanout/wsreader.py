"""Client-to-server WebSocket frames after the handshake (RFC 6455 section 5), sans-I/O.

A fan-out worker reads thousands of small pose frames a second; websockets'
general reader costs a coroutine step per frame, this costs a few slices. It
handles only what a server must accept from a client without extensions:
masked frames, fragmented messages, and the three control frames.
"""

from __future__ import annotations

from townhall.server.gateway.closing import cut_reason

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C speedups ship in websockets' wheels
    from websockets.utils import apply_mask

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_TOO_BIG = 1009


class FrameError(Exception):
    """The client broke the framing rules; close with ``code``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class ClientFrameReader:
    """Feed bytes from the socket; get complete messages and control frames back."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._buf = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_op = 0
        self._fragment_size = 0

    def pending(self) -> bool:
        """Part of a frame or message is buffered (the next bytes continue it)."""
        return bool(self._buf or self._fragments)

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """Every whole (opcode, payload) in the stream so far; text stays bytes (UTF-8)."""
        buf = self._buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        out: list[tuple[int, bytes]] = []
        at, end = 0, len(view)
        while end - at >= 2:
            b0, b1 = view[at], view[at + 1]
            if not b1 & 0x80:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "client frames must be masked")
            if b0 & 0x70:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "reserved bits set")
            n = b1 & 0x7F
            head = 6
            if n == 126:
                if end - at < 8:
                    break
                n = int.from_bytes(view[at + 2 : at + 4], "big")
                head = 8
            elif n == 127:
                if end - at < 14:
                    break
                n = int.from_bytes(view[at + 2 : at + 10], "big")
                head = 14
            if n > self.max_message_bytes:
                raise FrameError(CLOSE_TOO_BIG, f"frame of {n} bytes is over the limit")
            if end - at < head + n:
                break
            mask = bytes(view[at + head - 4 : at + head])
            payload = apply_mask(view[at + head : at + head + n], mask) if n else b""
            at += head + n
            self._frame(b0 & 0x80, b0 & 0x0F, payload, out)
        if at == end:
            buf.clear()
        elif view is buf:
            del buf[:at]
        else:
            buf += view[at:]
        return out

    def _frame(self, fin: int, opcode: int, payload: bytes, out: list[tuple[int, bytes]]) -> None:
        if opcode >= OP_CLOSE:
            if opcode > OP_PONG:
                raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
            if not fin or len(payload) > 125:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "bad control frame")
            out.append((opcode, payload))
            return
        if opcode == OP_CONT:
            if not self._fragments:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "continuation without a first frame")
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragments:
                raise FrameError(CLOSE_PROTOCOL_ERROR, "new message inside a fragmented one")
            if fin:
                out.append((opcode, payload))
                return
            self._fragment_op = opcode
        else:
            raise FrameError(CLOSE_PROTOCOL_ERROR, f"unknown opcode {opcode}")
        self._fragment_size += len(payload)
        if self._fragment_size > self.max_message_bytes:
            raise FrameError(CLOSE_TOO_BIG, "message over the limit")
        self._fragments.append(payload)
        if fin:
            out.append((self._fragment_op, b"".join(self._fragments)))
            self._fragments.clear()
            self._fragment_size = 0


def close_frame(code: int, reason: str) -> bytes:
    """A server close frame (unmasked) with a code and a UTF-8 reason cut to fit."""
    body = code.to_bytes(2, "big") + cut_reason(reason).encode()
    return bytes((0x88, len(body))) + body


def pong_frame(payload: bytes) -> bytes:
    return bytes((0x8A, len(payload))) + payload


PING_FRAME = bytes((0x89, 0))
