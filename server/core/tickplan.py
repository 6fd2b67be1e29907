"""The room's schedule: how often it ticks, when crowd frames go, who is written when.

One plan for the room and every fan-out edge, in one process or many. The stage lead
is a property of it, not a special case anywhere: a spectator is written every
``spectator_every`` ticks, so the clone's speech is placed on the media clock and
shipped that many ticks and one more ahead of its media time, and every packet reaches
everyone before it is due.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TickPlan:
    tick_hz: int = 20
    crowd_hz: int = 10
    spectator_every: int = 1  # spectators are written on every n-th tick

    @property
    def period_s(self) -> float:
        return 1.0 / self.tick_hz

    @property
    def crowd_every(self) -> int:
        """Crowd frames are built on every n-th tick."""
        return max(1, round(self.tick_hz / self.crowd_hz))

    @property
    def lead_us(self) -> int:
        """How far ahead of its media time a stage packet is shipped.

        It waits up to a tick to be shipped, then up to a spectator period less one tick
        for a given spectator's write; one more tick leaves the write time to arrive.
        """
        return round(1e6 * (self.spectator_every + 1) / self.tick_hz)

    def spectator_phase(self, conn: int) -> int:
        """Which of the spectator ticks writes this connection (spread evenly by id)."""
        return conn % self.spectator_every
