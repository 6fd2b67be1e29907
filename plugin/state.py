"""The client's copy of the room, rebuilt from Keyframes and kept current by events.

Pure: feed it decoded messages, read the state. Sequenced messages at or below
the current sequence number are duplicates (e.g. replayed after a resume) and are
ignored; a gap means something was missed and a keyframe is needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from townhall.protocol.messages import (
    SEQUENCED,
    Board,
    CrowdFar,
    CrowdNear,
    EventState,
    HandChanged,
    Joined,
    Keyframe,
    Left,
    Message,
    MicChanged,
    Participant,
    ParticipantChanged,
    QuestionChanged,
    QuestionInfo,
    RoomMode,
    SequencedMessage,
    StageEnd,
    StageStart,
    Welcome,
)

Sequenced = SequencedMessage


@dataclass
class RoomState:
    """Participants by slot, the last applied sequence number, the latest crowd frames."""

    seq: int = 0
    participants: dict[int, Participant] = field(default_factory=dict)
    hands: dict[int, bool] = field(default_factory=dict)
    near: bytes = b""  # latest CrowdNear records
    near_time_us: int = 0
    far: dict[int, bytes] = field(default_factory=dict)  # slot -> latest coarse record
    far_time_us: int = 0
    questions: dict[int, QuestionInfo] = field(default_factory=dict)
    stage: StageStart | None = None  # the answer being spoken now
    mode: str = "auto"
    review: bool = False
    phase: str = "live"  # the event: doors, live, hold, ended
    starts_at: int = 0  # its scheduled start, unix seconds (0: none)
    has_keyframe: bool = False
    needs_keyframe: bool = False
    crowd_frames: int = 0
    mics: dict[int, MicChanged] = field(default_factory=dict)  # open mics by slot

    def apply(self, message: Message, coarse_record_size: int = 0) -> None:
        if isinstance(message, Welcome):
            if not message.resumed:
                self.has_keyframe = False
        elif isinstance(message, Keyframe):
            self.seq = message.seq
            self.participants = {p.slot: p for p in message.participants}
            self.hands = {p.slot: bool(p.flags & 1) for p in message.participants}
            self.far = _split(message.coarse, coarse_record_size)
            self.questions = {q.id: q for q in message.questions}
            self.stage = message.stage
            self.mode, self.review = message.mode, message.review
            self.phase, self.starts_at = message.phase, message.starts_at
            self.has_keyframe = True
            self.needs_keyframe = False
        elif isinstance(message, Board):  # more of the board than the Keyframe's top
            self.questions.update((q.id, q) for q in message.questions)
        elif isinstance(message, SEQUENCED):
            self._apply_sequenced(message)  # type: ignore[arg-type]
        elif isinstance(message, CrowdNear):
            self.near, self.near_time_us = message.records, message.server_time_us
            self.crowd_frames += 1
        elif isinstance(message, CrowdFar):
            self.far.update(_split(message.records, coarse_record_size))
            self.far_time_us = message.server_time_us
            self.crowd_frames += 1

    def _apply_sequenced(self, message: Sequenced) -> None:
        if message.seq != 0:  # 0: a private update (for staff or an asker), outside the log
            if message.seq <= self.seq:
                return
            if message.seq != self.seq + 1 or not self.has_keyframe:
                self.needs_keyframe = True
                return
            self.seq = message.seq
        if isinstance(message, Joined):
            p = message.participant
            self.participants[p.slot] = p
            self.hands[p.slot] = bool(p.flags & 1)
        elif isinstance(message, Left):
            self.participants.pop(message.slot, None)
            self.hands.pop(message.slot, None)
            self.far.pop(message.slot, None)
        elif isinstance(message, HandChanged):
            self.hands[message.slot] = message.raised
        elif isinstance(message, ParticipantChanged):
            p = message.participant
            self.participants[p.slot] = p
            self.hands[p.slot] = bool(p.flags & 1)
        elif isinstance(message, QuestionChanged):
            self.questions[message.question.id] = message.question
        elif isinstance(message, StageStart):
            self.stage = message
        elif isinstance(message, StageEnd):
            if self.stage is not None and self.stage.answer == message.answer:
                self.stage = None
        elif isinstance(message, MicChanged):
            if message.state == "ended":
                self.mics.pop(message.slot, None)
            else:
                self.mics[message.slot] = message
        elif isinstance(message, RoomMode):
            self.mode, self.review = message.mode, message.review
        elif isinstance(message, EventState):
            self.phase, self.starts_at = message.phase, message.starts_at


def _split(records: bytes, size: int) -> dict[int, bytes]:
    """Coarse records keyed by their leading uint16 slot."""
    if size <= 0:
        return {}
    return {
        int.from_bytes(records[i : i + 2], "little"): records[i : i + size]
        for i in range(0, len(records) - size + 1, size)
    }
