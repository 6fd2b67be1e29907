"""Moderators' actions on people: mute (no questions, no raised hand), kick, ban.

Like the Q&A requests, each is stored before it is acknowledged; bans survive a
restart (kept in the room's settings table).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import Ack, Error, ParticipantChanged, People

if TYPE_CHECKING:
    from townhall.server.app import TownhallServer
    from townhall.server.gateway.session import Session

log = logging.getLogger("townhall.people")

BAN_PREFIX = "ban:"
STAFF = frozenset({"moderator", "operator"})


class PeopleService:
    """Applies People requests to the room and the fan-out."""

    def __init__(self, server: TownhallServer) -> None:
        self.server = server
        saved = server.qa.store.load_settings()
        server.banned.update(k[len(BAN_PREFIX) :] for k in saved if k.startswith(BAN_PREFIX))
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, session: Session, message: People) -> None:
        task = asyncio.get_running_loop().create_task(self._handle(session, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, session: Session, message: People) -> None:
        try:
            await self._apply(session, message)
        except ProtocolError as exc:
            self._reply(session, Error(int(exc.code), exc.reason, People.TYPE, False, message.ref))
        except Exception:
            log.exception("people action failed")
            reason = "could not do that"
            self._reply(
                session, Error(int(ErrorCode.INTERNAL), reason, People.TYPE, False, message.ref)
            )

    async def _apply(self, session: Session, message: People) -> None:
        srv = self.server
        room = srv.room
        actor = room.members.get(session.slot)
        target = room.members.get(message.slot)
        if actor is None:
            raise ProtocolError(ErrorCode.NOT_JOINED, "not in the room")
        if target is None:
            raise ProtocolError(ErrorCode.BAD_MESSAGE, f"nobody in slot {message.slot}")
        if target.slot == actor.slot or target.identity.role in STAFF:
            raise ProtocolError(
                ErrorCode.NOT_ALLOWED, "moderators cannot act on staff or themselves"
            )
        store = srv.qa.store
        user = target.identity.user_id
        ops = [
            store.action_op(
                time.time(), actor.identity.user_id, actor.identity.role,
                f"people:{message.action}", 0, user,
            )
        ]  # fmt: skip
        if message.action == "ban":
            ops.append(store.setting_op(BAN_PREFIX + user, "1"))
        await store.write(ops)
        if message.action in ("mute", "unmute"):
            room.set_muted(target.slot, message.action == "mute")
        else:
            if message.action == "ban":
                srv.banned.add(user)
            code = ErrorCode.BANNED if message.action == "ban" else ErrorCode.KICKED
            srv.remove_member(
                target.slot, ProtocolError(code, f"removed by a moderator ({message.action})")
            )
        self._reply(session, Ack(message.ref, message.slot))

    def _reply(self, session: Session, message: Ack | Error) -> None:
        self.server.fanout.send(session, [codec.encode(message)])

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def participant_changed(server: TownhallServer, slot: int) -> ParticipantChanged:
    member = server.room.members[slot]
    return ParticipantChanged(server.room.log.next_seq(), member.participant())
