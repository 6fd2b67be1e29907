"""msgpack encoding and validating decoding of catalog messages.

Decoding is one C pass (msgspec) that checks types and ranges; only when it fails
do we take a slower path to tell a malformed frame from an unknown type from a
bad field, so honest traffic pays nothing for good error messages.
"""

from __future__ import annotations

from typing import Union

import msgspec

from .errors import ErrorCode, MalformedMessage
from .limits import MAX_CLIENT_FRAME_BYTES
from .messages import BY_TYPE, CLIENT_MESSAGES, SERVER_MESSAGES, Message

_encoder = msgspec.msgpack.Encoder()
# Union over a tuple of classes: the X | Y spelling cannot unpack a tuple.
_client_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(
    Union[CLIENT_MESSAGES]  # noqa: UP007
)
_server_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(
    Union[SERVER_MESSAGES]  # noqa: UP007
)
_raw_decoder = msgspec.msgpack.Decoder()
# msgspec before 0.19 raised UnicodeDecodeError (not a MsgspecError) for invalid UTF-8 in a
# str; later releases raise DecodeError("Invalid UTF-8 ..."). Nesting deeper than the C
# stack allows raises RecursionError. All of them are a client's malformed frame.
_DECODE_ERRORS = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)
_CLIENT_TYPES = frozenset(c.TYPE for c in CLIENT_MESSAGES)
_SERVER_TYPES = frozenset(c.TYPE for c in SERVER_MESSAGES)


def encode(message: Message) -> bytes:
    """Encode one message as the payload of one WebSocket binary message."""
    return _encoder.encode(message)


def decode_client(data: bytes, max_bytes: int = MAX_CLIENT_FRAME_BYTES) -> Message:
    """Decode a client-to-server message or raise ProtocolError with the reason."""
    if len(data) > max_bytes:
        raise MalformedMessage(ErrorCode.TOO_LARGE, f"frame of {len(data)} bytes over {max_bytes}")
    try:
        return _client_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _diagnose(data, exc, _CLIENT_TYPES, "client") from None


def decode_server(data: bytes) -> Message:
    """Decode a server-to-client message or raise ProtocolError with the reason."""
    try:
        return _server_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _diagnose(data, exc, _SERVER_TYPES, "server") from None


def _diagnose(data: bytes, exc: Exception, allowed: frozenset[int], side: str) -> MalformedMessage:
    try:
        raw = _raw_decoder.decode(data)
    except UnicodeDecodeError:
        return MalformedMessage(ErrorCode.BAD_MESSAGE, "a string is not valid UTF-8")
    except RecursionError:
        return MalformedMessage(ErrorCode.BAD_FRAME, "values nested too deeply")
    except msgspec.DecodeError as error:
        if "utf-8" in str(error).lower():
            return MalformedMessage(ErrorCode.BAD_MESSAGE, "a string is not valid UTF-8")
        return MalformedMessage(ErrorCode.BAD_FRAME, "not a msgpack value")
    except _DECODE_ERRORS:
        return MalformedMessage(ErrorCode.BAD_FRAME, "not a msgpack value")
    if not isinstance(raw, list) or not raw:
        return MalformedMessage(ErrorCode.BAD_MESSAGE, "expected an array [type, fields...]")
    kind = raw[0]
    if not isinstance(kind, int) or isinstance(kind, bool):
        return MalformedMessage(
            ErrorCode.BAD_MESSAGE, "first element must be the integer type code"
        )
    about = kind if 0 <= kind <= 255 else 0
    if kind not in allowed:
        where = "known" if kind in BY_TYPE else "a known type"
        detail = f"type {kind} is not {where} for {side} messages"
        return MalformedMessage(ErrorCode.UNKNOWN_TYPE, detail, about)
    cls = BY_TYPE[kind]
    ref = 0
    # Requests carry the client's ``ref`` first: echo it so the client can match the Error.
    if cls.__struct_fields__[:1] == ("ref",) and len(raw) > 1:
        candidate = raw[1]
        if isinstance(candidate, int) and not isinstance(candidate, bool):
            ref = candidate if 0 <= candidate < 2**32 else 0
    return MalformedMessage(ErrorCode.BAD_MESSAGE, f"{cls.__name__}: {exc}", about, ref)
