"""Error codes carried by the Error message and by WebSocket close frames.

Codes are stable wire values; a close frame uses ``4000 + code`` so a client
can tell why it was closed even if it never read the Error message.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    """Why a message was rejected or a connection closed."""

    BAD_FRAME = 1  # not decodable msgpack, or a text frame
    BAD_MESSAGE = 2  # valid msgpack, wrong shape, types or ranges
    UNKNOWN_TYPE = 3  # type code not in the catalog for this direction
    TOO_LARGE = 4  # frame over the size limit
    RATE_LIMITED = 5  # too many messages of this kind; the message was dropped
    NOT_ALLOWED = 6  # the sender's role may not send this message
    AUTH_INVALID = 7  # token missing, malformed or badly signed
    AUTH_EXPIRED = 8  # token past its expiry
    WRONG_ROOM = 9  # token is for another room
    VERSION_UNSUPPORTED = 10  # no protocol version in common
    NOT_JOINED = 11  # a message other than Join before Join
    ALREADY_JOINED = 12  # a second Join on one connection
    ROOM_FULL = 13  # no seat or connection slot left
    RESUME_FAILED = 14  # resume token unknown or expired; a fresh join happened instead
    SLOW_CONSUMER = 15  # the client stayed behind past the limit
    FLOODING = 16  # too many rejected messages; the connection is closed
    JOIN_TIMEOUT = 17  # no Join within the handshake limit
    REPLACED = 18  # the same user joined again elsewhere; this connection is closed
    BANNED = 19  # the user may not join this room
    INTERNAL = 20  # a server fault; the room keeps running
    SERVER_SHUTDOWN = 21  # the server is stopping; reconnect later
    KICKED = 22  # a moderator removed you; you may join again
    MIC_BUSY = 23  # the live-mic limit is reached, or the clone is answering
    BAD_SDP = 24  # a WebRTC offer that cannot be used
    MIC_FAILED = 25  # the live mic ended by a fault: never connected, dropped
    BAD_TOKEN = 26  # a well-signed token whose claims are not acceptable (times, lifetime, name)
    BOARD_FULL = 27  # the room has as many questions as it takes (qa.max_questions)
    CONFLICT = 28  # a save based on a version that is no longer the newest: reload and redo
    NOT_FOUND = 29  # no statement, answer or inbox item with that id
    EVENT_ENDED = 30  # the event has ended: questions, votes and the mic are closed
    STORE = 31  # the room could not store it (nothing changed); try again later
    ROOM_UNAVAILABLE = 32  # no authority serves the token's room now (an edge); try again later

    @property
    def close_code(self) -> int:
        """The WebSocket close code that carries this error."""
        return 4000 + int(self)


# Errors after which the server closes the connection.
FATAL_CODES: frozenset[ErrorCode] = frozenset(
    {
        ErrorCode.AUTH_INVALID,
        ErrorCode.AUTH_EXPIRED,
        ErrorCode.BAD_TOKEN,
        ErrorCode.WRONG_ROOM,
        ErrorCode.VERSION_UNSUPPORTED,
        ErrorCode.ROOM_FULL,
        ErrorCode.SLOW_CONSUMER,
        ErrorCode.FLOODING,
        ErrorCode.JOIN_TIMEOUT,
        ErrorCode.REPLACED,
        ErrorCode.BANNED,
        ErrorCode.SERVER_SHUTDOWN,
        ErrorCode.KICKED,
        ErrorCode.ROOM_UNAVAILABLE,
    }
)


class ProtocolError(Exception):
    """The root of every error the room sends back: a code, a reason, and what it answers.

    ``about`` is the type code of the message it answers (0: none); ``ref`` is the
    request id (the ``ref`` field) of that message, so a client can match the Error to
    its request. Raise a subclass where the cause matters to the handler.
    """

    def __init__(self, code: ErrorCode, reason: str, about: int = 0, ref: int = 0) -> None:
        super().__init__(f"{code.name}: {reason}")
        self.code = code
        self.reason = reason
        self.about = about
        self.ref = ref

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_CODES


class MalformedMessage(ProtocolError):
    """A frame that is not a valid message of the catalog (decoding failed)."""


class Refused(ProtocolError):
    """A valid request the room will not carry out: not allowed now, limited, or busy."""


class RequestFailed(ProtocolError):
    """A request of this client's that the server answered with an Error (client side)."""

    @classmethod
    def of(cls, code: int, reason: str, about: int = 0, ref: int = 0) -> RequestFailed:
        """From an Error's fields; a code this version does not know reads as INTERNAL."""
        known = code in ErrorCode._value2member_map_
        return cls(ErrorCode(code) if known else ErrorCode.INTERNAL, reason, about, ref)
