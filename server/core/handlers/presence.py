"""Being in the hall: poses, hands, clock pings, keyframes, leaving."""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.protocol import quant
from townhall.protocol.errors import ErrorCode, ProtocolError, Refused
from townhall.protocol.messages import Hand, Join, KeyframeRequest, Leave, Ping, Pong, Pose, Role
from townhall.server.core.dispatch import handles
from townhall.server.core.ratelimit import PoseLimiter

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority

ATTENDEE: frozenset[Role] = frozenset({"attendee"})


@handles(Pose, roles=ATTENDEE)
def pose(room: RoomAuthority, c: Conn, message: Pose, now: float) -> None:
    verdict = c.poses.admit(now)
    if verdict != PoseLimiter.OK:
        if verdict == PoseLimiter.DROP_AND_NOTIFY:
            exc = Refused(ErrorCode.RATE_LIMITED, PoseLimiter.NOTICE, Pose.TYPE)
            room.send(c.id, room.error_payload(exc))
        return
    try:
        quant.check_poses(message.pose)
    except quant.QuantizationError as exc:
        # One bad pose relayed would break every neighbour's decoder.
        raise ProtocolError(ErrorCode.BAD_MESSAGE, str(exc), Pose.TYPE) from None
    room.crowd.set_pose(c.slot, message.pose, message.flags)


@handles(Hand, roles=ATTENDEE)
def hand(room: RoomAuthority, c: Conn, message: Hand, now: float) -> None:
    if message.raised and room.member(c).muted:
        raise Refused(ErrorCode.NOT_ALLOWED, "you are muted", Hand.TYPE)
    room.set_hand(c.slot, message.raised)


@handles(Ping)
def ping(room: RoomAuthority, c: Conn, message: Ping, now: float) -> None:
    now_us = room.media_us(now)
    room.send(c.id, Pong(message.client_time_us, now_us, now_us))


@handles(KeyframeRequest)
def keyframe(room: RoomAuthority, c: Conn, message: KeyframeRequest, now: float) -> None:
    if now - c.last_keyframe < 1.0:
        raise Refused(ErrorCode.RATE_LIMITED, "one keyframe a second at most", KeyframeRequest.TYPE)
    c.last_keyframe = now
    room.send(c.id, *room.keyframe_since(now), *room.private_snapshot(room.member(c).identity))


@handles(Leave)
def leave(room: RoomAuthority, c: Conn, message: Leave, now: float) -> None:
    room.leave(c, now)


@handles(Join)
def join_again(room: RoomAuthority, c: Conn, message: Join, now: float) -> None:
    raise Refused(ErrorCode.ALREADY_JOINED, "this connection has joined", Join.TYPE)
