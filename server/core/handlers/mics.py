"""The live mic: a moderator grants it, the attendee offers WebRTC, speaks, and releases."""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.limits import MAX_QUESTION_CHARS, clip
from townhall.protocol.messages import STAFF, Mic, MicChanged, MicOffer, MicRelease, Role
from townhall.server.core import live_mics
from townhall.server.core.dispatch import handles
from townhall.server.core.effects import BoardChanged, StartMic

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority

ATTENDEE: frozenset[Role] = frozenset({"attendee"})


def _mics_on(room: RoomAuthority, type_: int, ref: int) -> None:
    if not room.rules.mics:
        raise Refused(ErrorCode.NOT_ALLOWED, "live mics are off", type_, ref)


@handles(Mic, roles=STAFF)
def mic(room: RoomAuthority, c: Conn, message: Mic, now: float) -> None:
    _mics_on(room, Mic.TYPE, message.ref)
    room.member(c)
    target = room.room.members.get(message.slot)
    if target is None or target.identity.role != "attendee":
        raise Refused(ErrorCode.BAD_MESSAGE, f"no attendee in slot {message.slot}")
    if message.action != "revoke":
        room.event.check_open("the mic is")
    # While the clone talks a grant is queued: the mic follows its answer.
    queue = message.action == "grant" and (room.answer is not None or bool(room.queued_mics))
    action = "queue" if queue else message.action
    record = room.action(c, now, f"mic:{action}", 0, target.identity.user_id)
    if message.action == "grant":
        holder = room.conn_of(target)
        if holder is None or not target.connected:
            raise Refused(ErrorCode.NOT_ALLOWED, f"{target.identity.name} is not connected")
        if target.muted:
            raise Refused(ErrorCode.NOT_ALLOWED, f"{target.identity.name} is muted")
        if target.slot in room.mics.mics or target.slot in room.queued_mics:
            raise Refused(ErrorCode.MIC_BUSY, f"slot {target.slot} already has the mic")
        if queue:
            room.queued_mics[target.slot] = target.identity.user_id
            room.emit(MicChanged(0, target.slot, "queued"))
        else:
            live_mics.grant(room, target.slot, now)
        room.persist([record], room.ack(c.id, message.ref, message.slot), conn=c.id,
                     about=Mic.TYPE, ref=message.ref)  # fmt: skip
    elif message.action == "revoke":
        if room.queued_mics.pop(message.slot, None) is not None:
            room.emit(MicChanged(0, message.slot, "ended", "revoked"))
        else:
            ended = room.mics.end(message.slot, "revoked")
            if ended is None:
                raise Refused(ErrorCode.NOT_ALLOWED, f"slot {message.slot} has no mic")
            room.end_mic(ended, now)
        room.persist([record], room.ack(c.id, message.ref, message.slot), conn=c.id,
                     about=Mic.TYPE, ref=message.ref)  # fmt: skip
    else:  # ask: the moderator types what was said
        text = clip(message.text, MAX_QUESTION_CHARS)
        new = room.submit(target, text, "", now, target.slot)
        room.persist(
            [*new.records, record],
            BoardChanged((new.question.id,)),
            room.ack(c.id, message.ref, new.question.id),
            conn=c.id,
            about=Mic.TYPE,
            ref=message.ref,
            undo=new.undo,
        )


@handles(MicOffer, roles=ATTENDEE)
def offer(room: RoomAuthority, c: Conn, message: MicOffer, now: float) -> None:
    _mics_on(room, MicOffer.TYPE, message.ref)
    member = room.member(c)
    change = room.mics.offer(c.slot, member.identity.user_id, now)
    room.mic_conns[c.slot] = c.id
    room.announce_mic(change, now)
    room.do(StartMic(c.slot, change.generation, c.id, message.ref, message.sdp))


@handles(MicRelease, roles=ATTENDEE)
def release(room: RoomAuthority, c: Conn, message: MicRelease, now: float) -> None:
    _mics_on(room, MicRelease.TYPE, message.ref)
    if room.mics.get(c.slot) is None or room.mic_conns.get(c.slot) != c.id:
        raise Refused(ErrorCode.NOT_ALLOWED, "you have no mic")
    change = room.mics.end(c.slot, "released")
    room.do(room.ack(c.id, message.ref, c.slot))
    if change is not None:
        room.end_mic(change, now)
