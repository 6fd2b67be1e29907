"""The slow-consumer rule, shared by the room's own fan-out and the fan-out workers.

A client whose unsent bytes pass the soft limit gets only what must not be dropped;
one that stays there too long, or passes the hard limit, is closed with
SLOW_CONSUMER. Nobody else waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class FallsBehind(Protocol):
    behind_since: float  # when it last went over the soft limit; 0.0 while keeping up


@dataclass(frozen=True, slots=True)
class SendLimits:
    soft: int
    hard: int
    slow_close_s: float

    def must_close(self, client: FallsBehind, backlog: int, now: float) -> bool:
        """For a client over the soft limit: True once it is to be closed."""
        if client.behind_since == 0.0:
            client.behind_since = now
        return backlog > self.hard or now - client.behind_since > self.slow_close_s


def slow_reason(backlog: int) -> str:
    return f"client fell behind ({backlog} bytes unsent)"
