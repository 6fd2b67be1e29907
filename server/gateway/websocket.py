"""The WebSocket endpoint: join handshake, per-message validation, limits, dispatch.

Everything here runs on the event loop; message handling is synchronous so a
message's effects land before the next one is read, and nothing a client sends
can raise out of the loop: every fault becomes an Error with a code and reason.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
from typing import TYPE_CHECKING

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from townhall.protocol import codec, negotiate, quant
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import (
    Ask,
    Control,
    Error,
    Hand,
    Join,
    KeyframeRequest,
    Leave,
    Message,
    Mic,
    MicOffer,
    MicRelease,
    Moderate,
    People,
    Ping,
    Pong,
    Pose,
    Review,
    Vote,
    Welcome,
)
from townhall.server.core.ratelimit import RejectCounter, TokenBucket
from townhall.server.gateway.names import shown_identity
from townhall.server.gateway.session import Session
from townhall.server.gateway.tokens import Identity, verify_token

if TYPE_CHECKING:
    from townhall.server.app import TownhallServer

log = logging.getLogger("townhall.gateway")

# Which roles may send which message types (Join, Ping, Leave, KeyframeRequest: everyone).
STAFF = frozenset({"moderator", "operator"})
ALLOWED: dict[type[Message], frozenset[str]] = {
    Pose: frozenset({"attendee"}),
    Hand: frozenset({"attendee"}),
    Ask: frozenset({"attendee", "spectator"}),
    Vote: frozenset({"attendee", "spectator", "moderator"}),
    Moderate: STAFF,
    Review: STAFF,
    Control: STAFF,
    People: STAFF,
    Mic: STAFF,
    MicOffer: frozenset({"attendee"}),
    MicRelease: frozenset({"attendee"}),
}
QA_MESSAGES = (Ask, Vote, Moderate, Review, Control)


class Gateway:
    """Handles one connection from handshake to close on behalf of the server."""

    def __init__(self, server: TownhallServer) -> None:
        self.server = server
        self.settings = server.settings
        self.metrics = server.metrics

    async def handle(self, connection: ServerConnection) -> None:
        transport = connection.transport
        send_buffer = self.settings.limits.socket_send_buffer
        sock = transport.get_extra_info("socket")
        if send_buffer and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        now = time.monotonic()
        lim = self.settings.limits
        session = Session(
            connection,
            transport,
            TokenBucket(lim.messages_per_s, lim.message_burst, now),
            TokenBucket(self.settings.room.pose_hz * 1.5, self.settings.room.pose_hz, now),
            RejectCounter(lim.max_rejects),
        )
        try:
            joined = await self._handshake(session)
            if session.handed_off:
                await connection.wait_closed()  # our copy of the socket is gone; nothing to close
                return
            async for data in connection:
                # After we decide to close, keep draining: websockets stops reading
                # when its queue is full and would never see the client's close frame.
                if joined and not session.closing:
                    self.on_message(session, data)
        except ConnectionClosed:
            pass
        finally:
            self.server.detach(session)
            if session.close_task is not None:
                # Returning first would let websockets close with 1000 and lose our code.
                await session.close_task

    # ------------------------------------------------------------ join

    async def _handshake(self, session: Session) -> bool:
        try:
            data = await asyncio.wait_for(
                session.connection.recv(), self.settings.limits.join_timeout_s
            )
        except TimeoutError:
            self.fail(session, ProtocolError(ErrorCode.JOIN_TIMEOUT, "no Join received in time"))
            return False
        try:
            self._count_in(data)
            if isinstance(data, str):
                raise ProtocolError(ErrorCode.BAD_FRAME, "text frames are not part of the protocol")
            message = codec.decode_client(data, self.settings.limits.max_frame_bytes)
            if not isinstance(message, Join):
                raise ProtocolError(
                    ErrorCode.NOT_JOINED, f"{type(message).__name__} before Join", message.TYPE
                )
            self._join(session, message)
            return True
        except ProtocolError as exc:
            self.fail(session, exc)
            return False

    def _join(self, session: Session, join: Join) -> None:
        version = negotiate(join.min_version, join.max_version)
        identity = self._identify(join.token)
        srv = self.server
        if len(srv.fanout.sessions) >= self.settings.server.max_connections:
            raise ProtocolError(ErrorCode.ROOM_FULL, "the server is at its connection limit")
        result = srv.room.join(identity, time.monotonic(), session.id, join.resume, join.last_seq)
        member = result.member
        if result.replaced_connection:
            old = srv.fanout.sessions.get(result.replaced_connection)
            if old is not None:
                self.fail(old, ProtocolError(ErrorCode.REPLACED, "you joined again elsewhere"))
                srv.fanout.remove(old)
        session.slot = member.slot
        session.role = identity.role
        session.joined = True
        if member.seat >= 0:
            session.cell = srv.crowd.cell_of_slot.get(member.slot, -1)
            if session.cell < 0:
                session.cell = srv.crowd.add(member.slot, member.seat)
        welcome = Welcome(
            version,
            srv.room.room_id,
            member.slot,
            identity.user_id,
            identity.name,
            identity.role,  # type: ignore[arg-type]
            member.seat,
            member.resume,
            srv.now_us(),
            srv.room.log.last_seq,
            self.settings.room.pose_hz,
            result.resumed,
        )
        payloads = [codec.encode(welcome)]
        if result.resume_failed:
            payloads.append(
                self._error_payload(
                    ProtocolError(ErrorCode.RESUME_FAILED, "resume not possible; joined afresh", 1)
                )
            )
        if result.replay is None:
            payloads.append(srv.keyframe())
        else:
            payloads.extend(result.replay)
        if identity.role in STAFF and srv.director is not None:
            payloads.extend(codec.encode(d) for d in srv.director.pending_drafts())
        remote = srv.workers.adopt(session, payloads) if srv.workers is not None else None
        if remote is None:
            srv.fanout.add(session)
            srv.fanout.send(session, payloads)
        else:
            srv.fanout.add(remote)
        self.metrics.joins += 1
        if result.resumed:
            self.metrics.resumes += 1
        log.info(
            "joined",
            extra={
                "user": identity.user_id,
                "role": identity.role,
                "slot": member.slot,
                "seat": member.seat,
                "resumed": result.resumed,
            },
        )

    def _identify(self, token: str) -> Identity:
        srv = self.server
        if not token:
            if not self.settings.server.allow_anonymous_spectators:
                raise ProtocolError(ErrorCode.AUTH_INVALID, "this room needs a token")
            guest = secrets.token_hex(4)
            return Identity(f"anon-{guest}", f"Guest {guest}", "spectator", srv.room.room_id, 0.0)
        identity = verify_token(
            srv.secret,
            token,
            srv.room.room_id,
            max_lifetime_s=self.settings.auth.max_token_lifetime_s,
        )
        identity = shown_identity(identity, srv.staff_names)  # cleaned; staff look-alikes marked
        if identity.user_id in srv.banned:
            raise ProtocolError(ErrorCode.BANNED, "you may not join this room")
        return identity

    # ------------------------------------------------------------ messages after join

    def on_message(self, session: Session, data: bytes | str) -> None:
        """Validate, limit and dispatch one client message; never raises."""
        now = time.monotonic()
        self._count_in(data)
        try:
            if not session.messages.allow(now):
                raise ProtocolError(ErrorCode.RATE_LIMITED, "too many messages; slow down")
            if isinstance(data, str):
                raise ProtocolError(ErrorCode.BAD_FRAME, "text frames are not part of the protocol")
            message = codec.decode_client(data, self.settings.limits.max_frame_bytes)
            allowed = ALLOWED.get(type(message))
            if allowed is not None and session.role not in allowed:
                raise ProtocolError(
                    ErrorCode.NOT_ALLOWED,
                    f"a {session.role} may not send {type(message).__name__}",
                    message.TYPE,
                    getattr(message, "ref", 0),
                )
            self._dispatch(session, message, now)
        except ProtocolError as exc:
            self._reject(session, exc, now)
        except Exception:  # a bug of ours must not take the room down
            log.exception("message handling failed", extra={"slot": session.slot})
            self._reject(session, ProtocolError(ErrorCode.INTERNAL, "server fault"), now)

    def _dispatch(self, session: Session, message: Message, now: float) -> None:
        srv = self.server
        if isinstance(message, Pose):
            if not session.poses.allow(now):
                # Poses bunch up after any stall on either side; dropping the excess is
                # enough. Tell the client (once a second) but never count it as flooding.
                reason = "poses above the room's rate; dropped"
                self._notify_rate(
                    session, now, ProtocolError(ErrorCode.RATE_LIMITED, reason, Pose.TYPE)
                )
                return
            try:
                quant.check_poses(message.pose)
            except quant.QuantizationError as exc:
                # One bad pose relayed would break every neighbour's decoder.
                raise ProtocolError(ErrorCode.BAD_MESSAGE, str(exc), Pose.TYPE) from None
            srv.crowd.set_pose(session.slot, message.pose, message.flags)
        elif isinstance(message, QA_MESSAGES):
            if isinstance(message, Ask) and self._muted(session):
                raise ProtocolError(ErrorCode.NOT_ALLOWED, "you are muted", Ask.TYPE, message.ref)
            srv.qa.handle(session, message)
        elif isinstance(message, People):
            srv.people.handle(session, message)
        elif isinstance(message, (Mic, MicOffer, MicRelease)):
            if srv.rtc is None:
                raise ProtocolError(
                    ErrorCode.NOT_ALLOWED, "live mics are off", message.TYPE, message.ref
                )
            srv.rtc.handle(session, message)
        elif isinstance(message, Ping):
            recv_us = srv.now_us()
            pong = Pong(message.client_time_us, recv_us, srv.now_us())
            srv.fanout.send(session, [codec.encode(pong)])
        elif isinstance(message, Hand):
            if message.raised and self._muted(session):
                raise ProtocolError(ErrorCode.NOT_ALLOWED, "you are muted", Hand.TYPE)
            srv.set_hand(session.slot, message.raised)
        elif isinstance(message, KeyframeRequest):
            if now - session.last_keyframe < 1.0:
                raise ProtocolError(
                    ErrorCode.RATE_LIMITED, "one keyframe a second at most", KeyframeRequest.TYPE
                )
            session.last_keyframe = now
            srv.fanout.send(session, [srv.keyframe()])
        elif isinstance(message, Leave):
            srv.leave(session)
        elif isinstance(message, Join):
            raise ProtocolError(ErrorCode.ALREADY_JOINED, "this connection has joined", Join.TYPE)

    def _muted(self, session: Session) -> bool:
        member = self.server.room.members.get(session.slot)
        return member is not None and member.muted

    # ------------------------------------------------------------ errors

    def _reject(self, session: Session, exc: ProtocolError, now: float) -> None:
        if exc.fatal:
            self.fail(session, exc)
            return
        if session.rejects.add(now):
            self.fail(session, ProtocolError(ErrorCode.FLOODING, "too many bad or excess messages"))
            return
        if exc.code is ErrorCode.RATE_LIMITED:
            self._notify_rate(session, now, exc)
            return
        self.server.fanout.send(session, [self._error_payload(exc)])

    def _notify_rate(self, session: Session, now: float, exc: ProtocolError) -> None:
        """One RATE_LIMITED a second is enough to tell the client; more would add to the flood."""
        if now - session.last_rate_error >= 1.0:
            session.last_rate_error = now
            self.server.fanout.send(session, [self._error_payload(exc)])

    def _error_payload(self, exc: ProtocolError) -> bytes:
        self.metrics.count_error(exc.code.name)
        error = Error(int(exc.code), exc.reason[:512], exc.ref, exc.fatal, exc.request)
        return codec.encode(error)

    def fail(self, session: Session, exc: ProtocolError) -> None:
        """Send the error and close the connection with its code."""
        fatal = Error(int(exc.code), exc.reason[:512], exc.ref, True)
        self.metrics.count_error(exc.code.name)
        self.metrics.count_close(exc.code.name)
        self.server.fanout.send(session, [codec.encode(fatal)])
        session.close(exc.code, exc.reason)
        log.info(
            "closed", extra={"code": exc.code.name, "reason": exc.reason, "slot": session.slot}
        )

    def _count_in(self, data: bytes | str) -> None:
        self.metrics.messages_in += 1
        self.metrics.bytes_in += len(data)
