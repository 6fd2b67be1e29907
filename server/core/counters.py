"""What the room authority counts: messages in, errors and closes by reason, joins, latencies.

The shell's ``ops.metrics.Metrics`` extends this with what only the shell sees (bytes
out, ticks) and renders it all at ``GET /metrics``; the core bumps plain attributes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SUMMARY_WINDOW = 1000  # recent observations kept for each latency summary


@dataclass
class Counters:
    messages_in: int = 0
    bytes_in: int = 0
    errors_sent: dict[str, int] = field(default_factory=dict)
    closes: dict[str, int] = field(default_factory=dict)
    joins: int = 0
    resumes: int = 0
    summaries: dict[str, deque[float]] = field(default_factory=dict)

    def observe(self, name: str, seconds: float) -> None:
        """Record a latency (e.g. time_to_first_audio_s); /metrics shows p50 and p95."""
        window = self.summaries.get(name)
        if window is None:
            window = self.summaries[name] = deque(maxlen=SUMMARY_WINDOW)
        window.append(seconds)

    def count_error(self, name: str) -> None:
        self.errors_sent[name] = self.errors_sent.get(name, 0) + 1

    def count_close(self, reason: str) -> None:
        self.closes[reason] = self.closes.get(reason, 0) + 1
