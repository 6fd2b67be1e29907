"""The event's lifecycle: doors open (the lobby), live, on hold, ended.

Pure logic. The phase moves only along ``TRANSITIONS`` (a move not in it raises
IllegalTransition with NOT_ALLOWED), the way questions and mics do:

    doors --start--> live --hold--> hold --resume--> live
      \\                \\              \\
       `----end-------->`----end------>`----end----> ended --open--> doors

What each phase allows is asked here too, so the handlers and the clone's turns read one
answer: in the lobby the board is open but the clone waits; live it answers; on hold it
finishes the sentence it is saying and starts nothing new; ended, the board is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.messages import Phase, PhaseEvent
from townhall.server.core.transitions import move

TRANSITIONS: dict[Phase, dict[PhaseEvent, Phase]] = {
    "doors": {"start": "live", "end": "ended"},
    "live": {"hold": "hold", "end": "ended"},
    "hold": {"resume": "live", "end": "ended"},
    "ended": {"open": "doors"},  # the same room, a new event
}
PHASES: tuple[Phase, ...] = tuple(TRANSITIONS)
EVENTS: tuple[PhaseEvent, ...] = ("open", "start", "hold", "resume", "end")


@dataclass
class Lifecycle:
    """The event's phase and its scheduled start (unix seconds, 0: none)."""

    phase: Phase = "live"
    starts_at: int = 0

    def move(self, event: PhaseEvent) -> Phase:
        """Make a move; returns the phase it left."""
        before = self.phase
        self.phase = move(TRANSITIONS, "the event", self.phase, event)
        return before

    @property
    def clone_may_start(self) -> bool:
        """Whether the clone may take the next question (only while live)."""
        return self.phase == "live"

    def check_open(self, what: str) -> None:
        """Refuse a change to the board (an Ask, a vote, a moderation) once the event ended."""
        if self.phase == "ended":
            raise Refused(ErrorCode.EVENT_ENDED, f"the event has ended: {what} closed")


def parse_event(value: str) -> PhaseEvent:
    for event in EVENTS:
        if value == event:
            return event
    raise Refused(ErrorCode.BAD_MESSAGE, f"event must be one of {', '.join(EVENTS)}")


def parse_phase(value: str, default: Phase) -> Phase:
    """A stored or configured phase; anything else is ``default``."""
    for phase in PHASES:
        if value == phase:
            return phase
    return default


def parse_start(value: str) -> int:
    """A schedule value: unix seconds as digits ("" or "0": no start time)."""
    value = value.strip()
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 12:
        raise Refused(ErrorCode.BAD_MESSAGE, "the start time must be unix seconds")
    return int(value)
