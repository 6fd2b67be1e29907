"""The room's sequenced events, kept in a ring so a resuming client can catch up."""

from __future__ import annotations

from collections import deque


class EventLog:
    """Encoded sequenced messages by sequence number; the oldest fall off."""

    def __init__(self, capacity: int) -> None:
        self._events: deque[tuple[int, bytes]] = deque(maxlen=capacity)
        self.last_seq = 0

    def next_seq(self) -> int:
        self.last_seq += 1
        return self.last_seq

    def append(self, seq: int, payload: bytes) -> None:
        self._events.append((seq, payload))

    def since(self, seq: int) -> list[bytes] | None:
        """Payloads after ``seq``, or None when some of them have fallen off."""
        if seq > self.last_seq:
            return None
        if seq == self.last_seq:
            return []
        if not self._events or self._events[0][0] > seq + 1:
            return None
        out = []  # from the newest back: a joiner asks for the last few of thousands
        for s, payload in reversed(self._events):
            if s <= seq:
                break
            out.append(payload)
        out.reverse()
        return out
