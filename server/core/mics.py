"""The mic grants of one room: who may speak, since when, until when. Pure logic.

    granted --offer--> connecting --connected--> live
       \\------------------\\-----------------------\\--> ended (released, declined, revoked,
                                                     disconnected, time_limit, not_accepted, failed)

A mic moves only along ``TRANSITIONS``; anything else raises IllegalTransition.

Every method returns the changes it made as :class:`MicChange` items for the shell to announce
(MicChanged) and act on (close peers). Times are seconds on one monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.messages import MicState
from townhall.server.core.transitions import move

MicEvent = Literal["offer", "connected", "end"]
TRANSITIONS: dict[MicState, dict[MicEvent, MicState]] = {
    "granted": {"offer": "connecting", "end": "ended"},
    "connecting": {"connected": "live", "end": "ended"},
    "live": {"end": "ended"},
    "ended": {},
}


@dataclass
class Mic:
    slot: int
    user_id: str
    state: MicState
    deadline: float  # when the current state runs out
    generation: int  # tells one grant of a slot from a later one

    def move(self, event: MicEvent) -> None:
        self.state = move(TRANSITIONS, f"the mic of slot {self.slot}", self.state, event)


@dataclass(frozen=True)
class MicChange:
    slot: int
    state: MicState
    reason: str
    deadline: float  # 0.0 when ended
    generation: int


@dataclass
class MicBoard:
    """At most ``max_live`` mics are open (granted, connecting or live) at once."""

    max_live: int = 1
    accept_timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    time_limit_s: float = 120.0

    def __post_init__(self) -> None:
        self.mics: dict[int, Mic] = {}
        self._generations = 0

    @property
    def busy(self) -> bool:
        """Is any mic open? The clone does not start an answer then."""
        return bool(self.mics)

    def get(self, slot: int) -> Mic | None:
        return self.mics.get(slot)

    def grant(self, slot: int, user_id: str, now: float) -> MicChange:
        if slot in self.mics:
            raise Refused(ErrorCode.MIC_BUSY, f"slot {slot} already has the mic")
        if len(self.mics) >= self.max_live:
            live = ", ".join(str(s) for s in sorted(self.mics))
            raise Refused(
                ErrorCode.MIC_BUSY,
                f"{len(self.mics)} mic(s) already open (slot {live}); revoke first",
            )
        self._generations += 1
        mic = Mic(slot, user_id, "granted", now + self.accept_timeout_s, self._generations)
        self.mics[slot] = mic
        return self._change(mic, "")

    def offer(self, slot: int, user_id: str, now: float) -> MicChange:
        """The attendee accepted with an offer; the peer is being set up."""
        mic = self.mics.get(slot)
        if mic is None or mic.user_id != user_id:
            raise Refused(ErrorCode.NOT_ALLOWED, "you have not been granted the mic")
        if mic.state != "granted":
            raise Refused(ErrorCode.NOT_ALLOWED, f"your mic is already {mic.state}")
        mic.move("offer")
        mic.deadline = now + self.connect_timeout_s
        return self._change(mic, "")

    def connected(self, slot: int, generation: int, now: float) -> MicChange | None:
        mic = self.mics.get(slot)
        if mic is None or mic.generation != generation or mic.state != "connecting":
            return None
        mic.move("connected")
        mic.deadline = now + self.time_limit_s
        return self._change(mic, "")

    def end(self, slot: int, reason: str, generation: int | None = None) -> MicChange | None:
        """End a mic (release, revoke, disconnect, failure); None if there was none."""
        mic = self.mics.get(slot)
        if mic is None or (generation is not None and mic.generation != generation):
            return None
        if reason == "released" and mic.state == "granted":
            reason = "declined"
        mic.move("end")
        del self.mics[slot]
        return MicChange(slot, "ended", reason, 0.0, mic.generation)

    def expire(self, now: float) -> list[MicChange]:
        """Mics whose deadline passed: not accepted, never connected, or out of time."""
        out = []
        for mic in [m for m in self.mics.values() if m.deadline <= now]:
            reason = {"granted": "not_accepted", "connecting": "failed"}.get(
                mic.state, "time_limit"
            )
            change = self.end(mic.slot, reason)
            if change is not None:
                out.append(change)
        return out

    @staticmethod
    def _change(mic: Mic, reason: str) -> MicChange:
        return MicChange(mic.slot, mic.state, reason, mic.deadline, mic.generation)
