"""One answer as a recording: what /studio's "Play" hands to the /watch player.

Each answer's stage packets are kept as sent (``AnswerMedia``). This module wraps them in the
recording format (``store.recording``): a meta entry, the answer's StageStart, its packets
stamped a stage lead ahead of their media time (as they were shipped live), and its StageEnd,
so the player plays the answer's voice, captions and label through the live page's code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import msgspec

from townhall.protocol import codec
from townhall.protocol.messages import StageEnd, StagePacket, StageStart
from townhall.server.store.recording import (
    EVENT,
    MAGIC,
    META,
    STAGE,
    Chapter,
    RecordingIndex,
)
from townhall.server.store.records import AnswerRecorded

_encoder = msgspec.msgpack.Encoder()
PREFIX = "answer-"


def replay_id(answer_id: int) -> str:
    return f"{PREFIX}{answer_id}"


def _entry(kind: int, at_us: int, payload: bytes) -> bytes:
    body = _encoder.encode((kind, at_us, payload))
    return len(body).to_bytes(4, "big") + body


def _times(packets: Sequence[bytes]) -> tuple[int, int]:
    """The media time the answer's packets start at and end at."""
    start, end = 0, 0
    for i, payload in enumerate(packets):
        packet = codec.decode_server(payload)
        if not isinstance(packet, StagePacket):
            continue
        if i == 0 or packet.media_time_us < start:
            start = packet.media_time_us
        end = max(end, packet.media_time_us + packet.duration_us)
    return start, end


def answer_index(
    room: str,
    answer: AnswerRecorded,
    question_text: str,
    packets: Sequence[bytes],
    lead_us: int,
    size: int,
) -> RecordingIndex:
    """The replay's extent and its one chapter, as ``/recordings/ID.json`` gives them."""
    start, end = _times(packets)
    chapter = Chapter(answer.answer_id, answer.question_id, question_text, answer.label, start, end,
                      answer.outcome)  # fmt: skip
    return RecordingIndex(
        replay_id(answer.answer_id), room, answer.started, start - lead_us, end, size, [chapter]
    )


def answer_recording(
    room: str,
    answer: AnswerRecorded,
    question_text: str,
    packets: Sequence[bytes],
    lead_us: int,
) -> bytes:
    """The answer's packets as a recording file the /watch player reads."""
    start, end = _times(packets)
    meta = {"room": room, "started": answer.started, "answer": answer.answer_id}
    head = StageStart(
        0, answer.answer_id, answer.question_id, question_text, answer.label,
        list(answer.sources), answer.language or "en", "", -1, start,
    )  # fmt: skip
    tail = StageEnd(
        0, answer.answer_id, answer.outcome, answer.text, answer.label,  # type: ignore[arg-type]
        list(answer.sources),
    )  # fmt: skip
    parts = [MAGIC, _entry(META, 0, json.dumps(meta).encode())]
    parts.append(_entry(EVENT, start - lead_us, codec.encode(head)))
    for payload in packets:
        packet = codec.decode_server(payload)
        at = packet.media_time_us - lead_us if isinstance(packet, StagePacket) else start
        parts.append(_entry(STAGE, max(start - lead_us, at), payload))
    parts.append(_entry(EVENT, end, codec.encode(tail)))
    return b"".join(parts)
