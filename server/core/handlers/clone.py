"""Running the clone: review its drafts, switch the room's mode, stop it, take the next."""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.messages import STAFF, Control, EventState, MicChanged, Review, RoomMode
from townhall.server.core import onstage
from townhall.server.core.dispatch import handles
from townhall.server.core.effects import BoardChanged, Effect, ReviewTurn, Sequenced
from townhall.server.core.lifecycle import parse_event, parse_start
from townhall.server.store.records import Record, SettingSaved

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority


@handles(Review, roles=STAFF)
def review(room: RoomAuthority, c: Conn, message: Review, now: float) -> None:
    answer = room.answer
    if answer is None or answer.id != message.answer or answer.draft is None:
        raise Refused(ErrorCode.NOT_ALLOWED, f"answer {message.answer} is not awaiting review")
    if message.decision == "edit" and not message.text.strip():
        raise Refused(ErrorCode.BAD_MESSAGE, "an edit needs the text to speak")
    answer.reviewed, answer.draft = answer.draft, None  # decided: a second one is refused
    record = room.action(c, now, f"review:{message.decision}", answer.question.id, message.text)
    room.persist(
        [record],
        ReviewTurn(
            answer.id,
            message.decision,
            message.text,
            author="leader" if c.role == "operator" else "moderator",
        ),
        room.ack(c.id, message.ref, message.answer),
        conn=c.id,
        about=Review.TYPE,
        ref=message.ref,
    )


@handles(Control, roles=STAFF)
def control(room: RoomAuthority, c: Conn, message: Control, now: float) -> None:
    action, value = message.action, message.value
    records: list[Record] = []
    then: list[Effect] = []
    question = 0  # what the action is about, for the record: the answer a stop cuts
    if action == "mode":
        if value not in ("auto", "moderated"):
            raise Refused(ErrorCode.BAD_MESSAGE, "mode must be auto or moderated")
        changed = room.qa.set_mode("auto" if value == "auto" else "moderated")
        records += [room.qa.questions[i].record() for i in changed]
        records.append(SettingSaved("mode", value))
        then.append(BoardChanged(tuple(changed)))
    elif action == "review":
        if value not in ("on", "off"):
            raise Refused(ErrorCode.BAD_MESSAGE, "review must be on or off")
        room.qa.review = value == "on"
        records.append(SettingSaved("review", value))
        if value == "off":  # a draft waiting for review is spoken now
            released = onstage.release_draft(room, "speak")
            if released is not None:
                then.append(ReviewTurn(released.id, "speak"))
    elif action == "event":
        event = parse_event(value)
        room.event.move(event)
        records.append(SettingSaved("phase", room.event.phase))
        phase_changed(room, event, now)
    elif action == "schedule":
        room.event.starts_at = parse_start(value)
        records.append(SettingSaved("starts_at", str(room.event.starts_at)))
    elif action == "stop":
        question = room.answer.question.id if room.answer is not None else 0
        room.stop_turn(now)
    else:  # next: a waiting draft is skipped; the next question follows without the pause
        released = onstage.release_draft(room, "skip")
        if released is not None:
            then.append(ReviewTurn(released.id, "skip"))
        if room.answer is not None:
            room.answer.hurry = True
        room.next_turn_at = 0.0
    if action in ("mode", "review"):
        then.append(Sequenced(RoomMode(0, room.qa.mode, room.qa.review)))
    if action in ("event", "schedule"):
        then.append(Sequenced(EventState(0, room.event.phase, room.event.starts_at)))
    records.append(room.action(c, now, f"control:{action}", question, value))
    then.append(room.ack(c.id, message.ref))
    room.persist(records, *then, conn=c.id, about=Control.TYPE, ref=message.ref)


def phase_changed(room: RoomAuthority, event: str, now: float) -> None:
    """What a move of the event does on stage: hold lets the sentence end and waits; start
    and resume take the next question at once; end stops the clone and closes the mics."""
    if event == "hold":
        onstage.hold_turn(room, now)
    elif event in ("start", "resume"):
        room.next_turn_at = 0.0
    elif event == "end":
        room.stop_turn(now)
        for slot in room.queued_mics:
            room.emit(MicChanged(0, slot, "ended", "revoked"))
        room.queued_mics.clear()
        for slot in list(room.mics.mics):
            ended = room.mics.end(slot, "revoked")
            if ended is not None:
                room.end_mic(ended, now)
