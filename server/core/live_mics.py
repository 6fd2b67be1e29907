"""The live mic's course in the room: announced, ended, its peer's news, the spoken question.

Functions of the ``RoomAuthority`` (sans-I/O like it) around the pure ``MicBoard``: every
change is announced (MicChanged, sequenced); an ended mic's peer is closed by the shell
(EndMic), which reports back what was said; the attendee hears when the mic failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.protocol.errors import ErrorCode, ProtocolError, Refused
from townhall.protocol.limits import MAX_MIC_REASON_CHARS, MAX_QUESTION_CHARS, clip
from townhall.protocol.messages import MicAnswer, MicChanged, MicOffer
from townhall.server.core.effects import BoardChanged, EndMic, Log
from townhall.server.core.mics import MicChange

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority


def grant(room: RoomAuthority, slot: int, now: float) -> bool:
    """Give the attendee in ``slot`` the mic now; False if they are gone or muted since."""
    member = room.room.members.get(slot)
    holder = room.conn_of(member) if member is not None else None
    if member is None or holder is None or not member.connected or member.muted:
        return False
    change = room.mics.grant(slot, member.identity.user_id, now)
    room.mic_conns[slot] = holder.id
    room.set_hand(slot, False)
    announce_mic(room, change, now)
    return True


def start_queued(room: RoomAuthority, now: float) -> None:
    """The answer ended: the grants queued behind it start, in order, while mics are free
    (one still waiting keeps the clone from taking the next question)."""
    for slot, user in list(room.queued_mics.items()):
        if len(room.mics.mics) >= room.mics.max_live:
            return
        del room.queued_mics[slot]
        member = room.room.members.get(slot)
        if member is not None and member.identity.user_id == user and grant(room, slot, now):
            continue
        # Gone (or muted) since: the queued grant ends, as a mic would.
        room.emit(MicChanged(0, slot, "ended", "disconnected"))
        room.do(Log("queued mic dropped", {"slot": slot, "user": user}))


def announce_mic(room: RoomAuthority, change: MicChange, now: float) -> None:
    ends_us = 0
    if change.state != "ended":
        ends_us = room.media_us(now) + round((change.deadline - now) * 1e6)
    reason = clip(change.reason, MAX_MIC_REASON_CHARS)
    room.emit(MicChanged(0, change.slot, change.state, reason, ends_us))


def end_mic(room: RoomAuthority, change: MicChange, now: float, submit: bool = True) -> None:
    """A mic ended: announce it and close its peer (whose transcript may come back)."""
    room.mic_conns.pop(change.slot, None)
    announce_mic(room, change, now)
    room.do(EndMic(change.slot, change.generation, change.reason, submit))
    if change.reason == "failed":
        member = room.room.members.get(change.slot)
        c = room.conn_of(member) if member is not None else None
        if c is not None:
            notice = ProtocolError(
                ErrorCode.MIC_FAILED, "your mic connection failed or never connected"
            )
            room.send(c.id, room.error_payload(notice))


def end_mic_of(room: RoomAuthority, c: Conn, reason: str, now: float) -> None:
    if room.mic_conns.get(c.slot) != c.id:
        return
    mic = room.mics.get(c.slot)
    if mic is not None:
        change = room.mics.end(c.slot, reason, mic.generation)
        if change is not None:
            end_mic(room, change, now)


def mic_answered(
    room: RoomAuthority, slot: int, generation: int, conn: int, ref: int, sdp: str
) -> None:
    """The shell answered a mic's WebRTC offer."""
    mic = room.mics.get(slot)
    if mic is None or mic.generation != generation:
        return  # ended while the peer was being set up
    room.send(conn, MicAnswer(ref, sdp))


def mic_refused(
    room: RoomAuthority, slot: int, generation: int, conn: int, ref: int, reason: str, now: float
) -> None:
    """The offer could not be used: the mic ends, the attendee hears why."""
    change = room.mics.end(slot, "failed", generation)
    if change is not None:
        room.mic_conns.pop(slot, None)
        announce_mic(room, change, now)
        room.do(EndMic(slot, generation, "failed", submit=False))
    exc = ProtocolError(ErrorCode.BAD_SDP, reason, MicOffer.TYPE, ref)
    room.send(conn, room.error_payload(exc))


def mic_state(room: RoomAuthority, slot: int, generation: int, state: str, now: float) -> None:
    """The mic's peer connected, failed or closed."""
    if state == "connected":
        change = room.mics.connected(slot, generation, now)
        if change is not None:
            announce_mic(room, change, now)
    elif state in ("failed", "closed"):
        ended = room.mics.end(slot, "failed", generation)
        if ended is not None:
            end_mic(room, ended, now)


def mic_lost(
    room: RoomAuthority, slot: int, generation: int, reason: str, now: float, ref: int = 0
) -> None:
    """The mic's peer cannot be had or was lost with its host (no media node answered, the
    media node died): the mic ends as ``failed`` and the attendee hears why (MIC_FAILED)."""
    change = room.mics.end(slot, "failed", generation)
    if change is None:
        return
    conn = room.mic_conns.pop(slot, None)
    announce_mic(room, change, now)
    room.do(EndMic(slot, generation, "failed", submit=False))
    room.do(Log("mic lost", {"slot": slot, "reason": reason}))
    if conn is not None:
        exc = ProtocolError(ErrorCode.MIC_FAILED, reason, MicOffer.TYPE if ref else 0, ref)
        room.send(conn, room.error_payload(exc))


def mic_transcript(room: RoomAuthority, slot: int, text: str, now: float) -> None:
    """What the attendee said at the mic (transcribed): their question, in the queue."""
    member = room.room.members.get(slot)
    text = " ".join(text.split())
    if member is None or len(text) < 3:
        return
    try:
        new = room.submit(member, clip(text, MAX_QUESTION_CHARS), "", now, member.slot)
    except Refused as exc:
        room.do(Log("spoken question refused", {"reason": exc.reason}))
        return
    room.persist(new.records, BoardChanged((new.question.id,)), undo=new.undo)
    room.do(Log("spoken question", {"slot": slot, "question": new.question.id}))
