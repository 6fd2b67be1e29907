"""Clock sync: map the server's media clock onto a client's local clock.

NTP-style: the client stamps a Ping at t0 (local), the server stamps receive t1
and send t2 (media clock), the client receives the Pong at t3 (local). Samples
with the smallest round trip carry the least queueing error, so the estimate is
the offset of the best-RTT sample among the recent ones.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ClockSample:
    """One Ping/Pong exchange reduced to offset and round-trip time (microseconds)."""

    offset_us: float  # server media time minus local time
    rtt_us: float

    @classmethod
    def from_times(cls, t0: int, t1: int, t2: int, t3: int) -> ClockSample:
        offset = ((t1 - t0) + (t2 - t3)) / 2.0
        rtt = max(0.0, float((t3 - t0) - (t2 - t1)))
        return cls(offset, rtt)


class ClockSync:
    """Keeps the last ``window`` samples and estimates offset from the fastest."""

    def __init__(self, window: int = 16) -> None:
        self._samples: deque[ClockSample] = deque(maxlen=window)

    def reset(self) -> None:
        """Forget every sample: the connection now reaches another server, whose media clock
        may start elsewhere (a standby authority that took over)."""
        self._samples.clear()

    def add(self, t0: int, t1: int, t2: int, t3: int) -> ClockSample:
        sample = ClockSample.from_times(t0, t1, t2, t3)
        self._samples.append(sample)
        return sample

    @property
    def synced(self) -> bool:
        return bool(self._samples)

    @property
    def best(self) -> ClockSample:
        if not self._samples:
            raise LookupError("no clock samples yet")
        return min(self._samples, key=lambda s: s.rtt_us)

    @property
    def offset_us(self) -> float:
        return self.best.offset_us

    @property
    def rtt_us(self) -> float:
        return self.best.rtt_us

    def to_local(self, server_us: float) -> float:
        """Local time at which the server's media clock reads ``server_us``."""
        return server_us - self.offset_us

    def to_server(self, local_us: float) -> float:
        """Server media time corresponding to local time ``local_us``."""
        return local_us + self.offset_us
