"""Running the clone: review its drafts, switch the room's mode, stop it, take the next."""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.messages import STAFF, Control, Review, RoomMode
from townhall.server.core.dispatch import handles
from townhall.server.core.effects import BoardChanged, Effect, ReviewTurn, Sequenced
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
    elif action == "stop":
        question = room.answer.question.id if room.answer is not None else 0
        room.stop_turn(now)
    else:  # next: no pause before the next question
        room.next_turn_at = 0.0
    if action in ("mode", "review"):
        then.append(Sequenced(RoomMode(0, room.qa.mode, room.qa.review)))
    records.append(room.action(c, now, f"control:{action}", question, value))
    then.append(room.ack(c.id, message.ref))
    room.persist(records, *then, conn=c.id, about=Control.TYPE, ref=message.ref)
