"""The stage timeline: sentences laid end to end on the media clock, cut into packets.

Pure logic. The room appends a Segment per spoken sentence as soon as the clone's
turn has rendered it; each room tick takes the packets due within the stage lead,
and a ring keeps the recent ones to replay what a client missed. Each packet covers
40 ms of media time and carries the Opus frames (20 ms each), the animation
frames and the caption words that start inside it, so every client plays audio,
mouth and captions from the same timestamps.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from townhall.protocol.limits import MAX_WORD_CHARS, clip
from townhall.protocol.messages import Caption, PacketLabel, StagePacket

PACKET_US = 40_000
OPUS_FRAME_US = 20_000


@dataclass(frozen=True)
class Segment:
    """One rendered sentence: times are seconds from the segment's start."""

    label: PacketLabel
    opus: list[bytes]  # contiguous 20 ms frames from t = 0
    anim: list[tuple[float, bytes]]  # (time, encoded animation frame)
    words: list[tuple[float, float, str]]  # (start, duration, text)

    @property
    def duration_us(self) -> int:
        return len(self.opus) * OPUS_FRAME_US


@dataclass
class _Placed:
    start_us: int
    segment: Segment


@dataclass
class StageTimeline:
    """One answer's media: where each sentence sits and which packets are still to send."""

    answer_id: int
    start_us: int  # media time of packet 0
    segments: deque[_Placed] = field(default_factory=deque)
    next_index: int = 0
    cursor_us: int = 0  # media time where the next segment may start
    closed: bool = False  # no more segments will come
    label: PacketLabel = "approved"  # of the latest sentence; gaps between sentences carry it

    def __post_init__(self) -> None:
        self.cursor_us = self.start_us

    def next_start(self, not_before_us: int) -> int:
        """Where a sentence appended now would start: after the previous one, on the grid."""
        start = max(self.cursor_us, not_before_us)
        # Keep Opus frames on the 20 ms grid of the answer so packets hold whole frames.
        offset = start - self.start_us
        return self.start_us + math.ceil(offset / OPUS_FRAME_US) * OPUS_FRAME_US

    def append(self, segment: Segment, not_before_us: int) -> int:
        """Place a sentence after the previous one (or later, if it arrived late)."""
        start = self.next_start(not_before_us)
        self.segments.append(_Placed(start, segment))
        self.label = segment.label
        self.cursor_us = start + segment.duration_us
        return start

    def cut_after(self, at_us: int) -> None:
        """End the answer with the sentence playing at ``at_us`` (or the last one already
        sent, whichever is later): nothing that was sent is taken back, nothing after is."""
        at_us = max(at_us, self.packet_time(self.next_index) - 1)
        self.segments = deque(p for p in self.segments if p.start_us <= at_us)
        end = max((p.start_us + p.segment.duration_us for p in self.segments), default=at_us)
        self.cursor_us = max(min(self.cursor_us, end), self.packet_time(self.next_index))
        self.closed = True

    @property
    def end_us(self) -> int:
        return self.cursor_us

    def packet_time(self, index: int) -> int:
        return self.start_us + index * PACKET_US

    def done(self) -> bool:
        """Closed and every packet up to the last sentence's end has been taken."""
        return self.closed and self.packet_time(self.next_index) >= self.cursor_us

    def due(self, now_us: int, lead_us: int = 0) -> list[StagePacket]:
        """Packets whose media time has come (minus ``lead_us``), in order."""
        out = []
        while self.packet_time(self.next_index) <= now_us + lead_us:
            t0 = self.packet_time(self.next_index)
            if t0 >= self.cursor_us:
                break  # nothing placed there yet
            out.append(self._packet(self.next_index, t0, t0 + PACKET_US))
            self.next_index += 1
        while self.segments and self.segments[0].start_us + self.segments[
            0
        ].segment.duration_us <= self.packet_time(self.next_index):
            self.segments.popleft()
        return out

    def _packet(self, index: int, t0: int, t1: int) -> StagePacket:
        opus: list[bytes] = []
        anim_times: list[int] = []
        anim: list[bytes] = []
        captions: list[Caption] = []
        label: PacketLabel = self.label
        for placed in self.segments:
            seg, s0 = placed.segment, placed.start_us
            if s0 >= t1:
                break
            if s0 + seg.duration_us <= t0:
                continue
            label = seg.label
            first = max(0, (t0 - s0) // OPUS_FRAME_US)
            last = min(len(seg.opus), -(-(t1 - s0) // OPUS_FRAME_US))
            opus.extend(seg.opus[first:last])
            for at_s, frame in seg.anim:
                at = s0 + round(at_s * 1e6)
                if t0 <= at < t1:
                    anim_times.append(at - t0)
                    anim.append(frame)
            for start_s, dur_s, text in seg.words:
                at = s0 + round(start_s * 1e6)
                if t0 <= at < t1:
                    captions.append(Caption(at, round(dur_s * 1e6), clip(text, MAX_WORD_CHARS)))
        return StagePacket(
            self.answer_id,
            index,
            t0,
            PACKET_US,
            label,
            opus,
            anim_times,
            b"".join(anim),
            captions,
        )


@dataclass(frozen=True, slots=True)
class RingEntry:
    number: int  # the room's stage packet number: consecutive across answers
    answer: int
    end_us: int  # media time when this packet has played out
    payload: bytes


class StageRing:
    """The recent stage packets, numbered, to replay speech a client missed.

    A client that was behind (its droppable writes skipped) or that resumes after a drop
    gets the packets it has not had and that are still to be played.
    """

    def __init__(self, capacity: int = 256) -> None:
        self._entries: deque[RingEntry] = deque(maxlen=capacity)
        self.next_number = 1

    def add(self, answer: int, end_us: int, payload: bytes) -> int:
        number = self.next_number
        self._entries.append(RingEntry(number, answer, end_us, payload))
        self.next_number += 1
        return number

    def extend(self, first: int, entries: list[tuple[int, int, bytes]]) -> None:
        """Packets numbered from ``first`` as shipped by the room (an edge's copy)."""
        for offset, (answer, end_us, payload) in enumerate(entries):
            self._entries.append(RingEntry(first + offset, answer, end_us, payload))
        if entries:
            self.next_number = first + len(entries)

    def after(self, number: int, now_us: int, before: int | None = None) -> list[bytes]:
        """Packets numbered above ``number`` (and below ``before``) still to play at ``now_us``."""
        top = before if before is not None else self.next_number
        return [e.payload for e in self._entries if number < e.number < top and e.end_us > now_us]

    def unplayed(self, now_us: int) -> list[bytes]:
        """Every held packet still to be played (for a client that resumes)."""
        return [e.payload for e in self._entries if e.end_us > now_us]

    def drop_answer(self, answer: int) -> None:
        """A stopped answer is not replayed."""
        self._entries = deque(
            (e for e in self._entries if e.answer != answer), maxlen=self._entries.maxlen
        )
