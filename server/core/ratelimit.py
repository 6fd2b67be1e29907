"""Token buckets for per-connection message limits."""

from __future__ import annotations


class TokenBucket:
    """Allows ``rate`` events a second on average with bursts up to ``burst``."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    def allow(self, now: float, cost: float = 1.0) -> bool:
        elapsed = now - self._last
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            self._last = now
        if self._tokens >= cost:
            self._tokens -= cost
            return True
        return False

    def full(self, now: float) -> bool:
        """Whether it has refilled to its burst (forgetting it would change nothing)."""
        return self._tokens + max(0.0, now - self._last) * self.rate >= self.burst


class RejectCounter:
    """Counts rejected messages in a sliding window; too many means flooding."""

    __slots__ = ("_times", "limit", "window_s")

    def __init__(self, limit: int, window_s: float = 10.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._times: list[float] = []

    def add(self, now: float) -> bool:
        """Record one rejection; True when the limit is now exceeded."""
        cutoff = now - self.window_s
        self._times = [t for t in self._times if t > cutoff]
        self._times.append(now)
        return len(self._times) > self.limit


class PoseLimiter:
    """The one pose rate rule, for the room and every fan-out edge.

    Poses bunch up after any stall on either side; dropping the excess is enough. The
    client is told (once a second) but it never counts as flooding.
    """

    __slots__ = ("_bucket", "_noticed")

    OK, DROP, DROP_AND_NOTIFY = 0, 1, 2
    NOTICE = "poses above the room's rate; dropped"

    def __init__(self, pose_hz: float, now: float) -> None:
        self._bucket = TokenBucket(pose_hz * 1.5, pose_hz, now)
        self._noticed = -1e9

    def admit(self, now: float) -> int:
        if self._bucket.allow(now):
            return self.OK
        if now - self._noticed >= 1.0:
            self._noticed = now
            return self.DROP_AND_NOTIFY
        return self.DROP
