"""The clone's turn as the room sees it: the events a turn reports, and the answer on stage.

A turn (``clone.turn``) runs outside the core: question in, an async stream of these
events out. The room authority places each ``Voiced`` segment on the stage timeline,
announces the answer once it has a first segment, and records it when it ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from townhall.protocol.messages import Draft, Label, ReviewDecision, StageStart
from townhall.server.core.qa import Question
from townhall.server.core.stage import Segment, StageTimeline

TurnOutcome = Literal["done", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class Drafted:
    """Review mode: the whole answer, before it is spoken, for a moderator to decide."""

    text: str
    label: Label
    sources: tuple[str, ...]
    language: str


@dataclass(frozen=True, slots=True)
class Said:
    """One sentence the clone is about to speak (its segments follow)."""

    text: str
    label: Label
    sources: tuple[str, ...]
    language: str
    disclosure: str  # that the clone is an AI, in the answer's language


@dataclass(frozen=True, slots=True)
class Voiced:
    """A rendered piece of speech, to go on the media clock at ``at_us`` (or just after)."""

    segment: Segment
    at_us: int


@dataclass(frozen=True, slots=True)
class Finished:
    """The turn ended by itself: spoken to the end, skipped at review, or failed."""

    outcome: TurnOutcome


TurnEvent = Drafted | Said | Voiced | Finished


@dataclass
class Answer:
    """The answer on stage: what it has said so far and where its speech sits."""

    id: int
    question: Question
    taken_at: float  # monotonic, for time to first audio
    started_wall: float
    timeline: StageTimeline | None = None
    start: StageStart | None = None  # announced once it has a first segment
    draft: Draft | None = None  # waiting for a moderator's review
    reviewed: Draft | None = None  # the draft a moderator decided on
    # Decided before the draft came (review turned off: speak; Next: skip): no one waits on it.
    on_draft: ReviewDecision | None = None
    hurry: bool = False  # Next: the question after this one follows without the pause
    held: bool = False  # Hold: cut after the sentence being said (recorded as stopped)
    spoken: list[str] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    language: str = ""
    disclosure: str = ""
    finished: TurnOutcome | None = None  # the turn is over; the speech may still be playing
    first_shipped: bool = False
    leader: bool = False  # the leader's own words from /studio, not the clone's answer
    packets: list[bytes] = field(default_factory=list)  # as sent, kept for replay

    def label(self) -> Label:
        """An answer with any escalated sentence is escalated; else its first sentence's."""
        if "escalated" in self.labels:
            return "escalated"
        return self.labels[0] if self.labels else "escalated"
