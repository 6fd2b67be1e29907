"""townhall.protocol: the sans-I/O wire protocol (messages, codec, quantization, clock)."""

from .clock import ClockSample, ClockSync
from .codec import decode_client, decode_server, encode
from .errors import FATAL_CODES, ErrorCode, MalformedMessage, ProtocolError, Refused, RequestFailed
from .limits import PROTOCOL_VERSION
from .version import negotiate

__all__ = [
    "FATAL_CODES",
    "PROTOCOL_VERSION",
    "ClockSample",
    "ClockSync",
    "ErrorCode",
    "MalformedMessage",
    "ProtocolError",
    "Refused",
    "RequestFailed",
    "decode_client",
    "decode_server",
    "encode",
    "negotiate",
]
