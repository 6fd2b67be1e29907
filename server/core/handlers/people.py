"""Moderators' actions on people: mute (no questions, no raised hand), kick, ban.

Anyone but the staff, attendee or spectator, guest or signed in. Each is stored before it is
acknowledged, against the user id (a guest's comes from their browser's cookie): mutes and
bans hold when the person leaves and comes back, and across a restart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.protocol.errors import ErrorCode, ProtocolError, Refused
from townhall.protocol.messages import STAFF, People
from townhall.server.core.dispatch import handles
from townhall.server.store.records import Record, UserBanned, UserMuted

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority


@handles(People, roles=STAFF)
def people(room: RoomAuthority, c: Conn, message: People, now: float) -> None:
    room.member(c)
    target = room.room.members.get(message.slot)
    if target is None:
        raise Refused(ErrorCode.BAD_MESSAGE, f"nobody in slot {message.slot}")
    if target.slot == c.slot or target.identity.staff:
        raise Refused(ErrorCode.NOT_ALLOWED, "moderators cannot act on staff or themselves")
    user = target.identity.user_id
    records: list[Record] = [room.action(c, now, f"people:{message.action}", 0, user)]
    if message.action in ("mute", "unmute"):
        muted = message.action == "mute"
        room.room.set_muted(target.slot, muted)
        records.append(UserMuted(user, muted))
        if muted:
            room.muted.add(user)
        else:
            room.muted.discard(user)
        if message.action == "mute":
            room.crowd.set_hand(target.slot, False)
    else:
        if message.action == "ban":
            records.append(UserBanned(user))
            room.banned.add(user)
        code = ErrorCode.BANNED if message.action == "ban" else ErrorCode.KICKED
        reason = ProtocolError(code, f"removed by a moderator ({message.action})")
        room.remove_member(target.slot, reason, now)
    room.persist(
        records,
        room.ack(c.id, message.ref, message.slot),
        conn=c.id,
        about=People.TYPE,
        ref=message.ref,
    )
