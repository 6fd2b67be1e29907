"""Wire limits shared by both ends; SPEC.md lists them and tests keep the two in step."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

PROTOCOL_VERSION = 1
MIN_PROTOCOL_VERSION = 1

MAX_CLIENT_FRAME_BYTES = 8 * 1024  # largest binary frame a client may send
MAX_TOKEN_CHARS = 4096
MAX_NAME_CHARS = 64
MAX_USER_ID_CHARS = 128
MAX_REASON_CHARS = 512
MAX_CLIENT_INFO_CHARS = 128
MAX_POSE_HZ = 30  # attendees may send Pose at up to this rate
POSE_BYTES = 30  # size of one quantized pose (head, left hand, right hand)
MAX_SLOT = 65535  # participant slot numbers are uint16 on the wire
NO_SEAT = -1
MAX_QUESTION_CHARS = 500
BOARD_PAGE_MAX = 100  # questions in one Board page (BoardRequest.count)
MAX_ANSWER_CHARS = 4000
MAX_SDP_CHARS = 6000  # a WebRTC offer or answer (audio only, candidates inline)
JOIN_TIMEOUT_S = 10.0
RESUME_WINDOW_S = 60.0
MAX_WORD_CHARS = 32  # one caption word
MAX_STATEMENT_CHARS = 1200  # one approved statement's text (persona folders alike)
MAX_STATEMENT_ID_CHARS = 32
MAX_TAGS = 16
STUDIO_PAGE_MAX = 200  # items in one StudioItems reply
MAX_SOURCES = 32  # statement ids cited by one answer
MAX_EDGES = 64  # edge URLs in one Welcome (a room of 100,000 needs far fewer)
MAX_URL_CHARS = 256  # one edge's WebSocket URL
MAX_SOURCE_CHARS = 64
MAX_MIC_REASON_CHARS = 32
MAX_LANGUAGE_CHARS = 16
MAX_CAPTION_WORDS = 64  # words of one live-mic phrase shown as captions
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is 125 bytes, 2 of them the code


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters (a field's wire limit)."""
    return text if len(text) <= limit else text[:limit]


def first(items: Sequence[T], limit: int) -> list[T]:
    """At most ``limit`` items (a list field's wire limit)."""
    return list(items[:limit])


def close_reason(text: str) -> str:
    """A close reason cut to the 123 UTF-8 bytes a close frame holds, on a character boundary."""
    data = text.encode()
    if len(data) <= MAX_CLOSE_REASON_BYTES:
        return text
    return data[:MAX_CLOSE_REASON_BYTES].decode("utf-8", "ignore")
