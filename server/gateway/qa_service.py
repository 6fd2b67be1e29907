"""The Q&A requests of a live room: validate, apply, store durably, then acknowledge.

The gateway hands over Ask, Vote, Moderate, Review and Control messages. Each is
applied to the pure QaQueue at once (so the order of requests is the order of
effects), written through the group-commit store, and only then acknowledged and
shown to the room. Board updates are coalesced: a question voted on a thousand
times in one tick goes out once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import (
    Ack,
    Ask,
    Control,
    Error,
    Message,
    Moderate,
    QuestionChanged,
    QuestionInfo,
    Review,
    RoomMode,
    Vote,
)
from townhall.server.core.qa import QaError, QaQueue, Question
from townhall.server.core.ratelimit import TokenBucket
from townhall.server.store.sqlite import Op, Store

if TYPE_CHECKING:
    from townhall.server.app import TownhallServer
    from townhall.server.core.room import Member
    from townhall.server.gateway.session import Session

log = logging.getLogger("townhall.qa")

BOARD_RECENT = 50  # closed questions kept on the board in keyframes


def question_info(q: Question) -> QuestionInfo:
    return QuestionInfo(
        q.id,
        q.text,
        q.language,
        q.state,
        q.votes,
        q.asker_slot,
        q.asker_name[:64],
        q.pinned,
        q.rank,
        q.merged_into,
        q.answer_id,
    )


class QaService:
    """Owns the queue and its store for one room."""

    def __init__(self, server: TownhallServer, store: Store) -> None:
        self.server = server
        self.settings = server.settings.qa
        self.store = store
        saved = store.load_settings()
        self.queue = QaQueue(
            mode=saved.get("mode", self.settings.mode),  # type: ignore[arg-type]
            review=saved.get("review", "on" if self.settings.review else "off") == "on",
        )
        self.queue.restore(store.load_questions())
        self.dirty: set[int] = set()
        self.changed = asyncio.Event()  # the director waits on this for new approved questions
        self._ask_limits: dict[str, TokenBucket] = {}
        self._vote_limits: dict[str, TokenBucket] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        if self.queue.next_question() is not None:
            self.changed.set()

    # ------------------------------------------------------------ entry from the gateway

    def handle(self, session: Session, message: Message) -> None:
        """Start handling a request; the reply comes when it is stored."""
        task = asyncio.get_running_loop().create_task(self._handle(session, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, session: Session, message: Message) -> None:
        ref = getattr(message, "ref", 0)
        try:
            if isinstance(message, Ask):
                await self._ask(session, message)
            elif isinstance(message, Vote):
                await self._vote(session, message)
            elif isinstance(message, Moderate):
                await self._moderate(session, message)
            elif isinstance(message, Review):
                await self._review(session, message)
            elif isinstance(message, Control):
                await self._control(session, message)
        except QaError as exc:
            self._reply_error(session, ErrorCode[exc.code], exc.reason, message.TYPE, ref)
        except ProtocolError as exc:
            self._reply_error(session, exc.code, exc.reason, message.TYPE, ref)
        except Exception:
            log.exception("Q&A request failed", extra={"type": message.TYPE})
            self._reply_error(
                session, ErrorCode.INTERNAL, "could not store that", message.TYPE, ref
            )

    # ------------------------------------------------------------ requests

    async def _ask(self, session: Session, message: Ask) -> None:
        member = self._member(session)
        user = member.identity.user_id
        if not self._allow(self._ask_limits, user, self.settings.questions_per_minute / 60.0, 3):
            raise QaError("RATE_LIMITED", "too many questions; wait a minute")
        language = message.language or self.server.detect_language(message.text)
        question, merged = self.queue.submit(
            message.text,
            asker_id=user,
            asker_name=member.identity.name,
            asker_slot=session.slot if session.role == "attendee" else -1,
            language=language,
        )
        ops = [self.store.question_op(question), *self.store.vote_ops(question, [user])]
        await self._commit(ops, question.id)
        self._ack(session, message.ref, question.id, merged)

    async def submit_spoken(self, member: Member, text: str, language: str = "") -> Question:
        """A question asked at the live mic (transcribed, or typed by a moderator), with the
        attendee as its asker so the clone looks at them."""
        user = member.identity.user_id
        question, _ = self.queue.submit(
            text,
            asker_id=user,
            asker_name=member.identity.name,
            asker_slot=member.slot,
            language=language or self.server.detect_language(text),
        )
        ops = [self.store.question_op(question), *self.store.vote_ops(question, [user])]
        await self._commit(ops, question.id)
        return question

    async def _vote(self, session: Session, message: Vote) -> None:
        user = self._member(session).identity.user_id
        if not self._allow(self._vote_limits, user, self.settings.votes_per_s, 10):
            raise QaError("RATE_LIMITED", "too many votes; slow down")
        question = self.queue.vote(message.question, user, message.up)
        await self._commit(
            self.store.vote_ops(question, [user], message.up), question.id, wake=False
        )
        self._ack(session, message.ref, question.id)

    async def _moderate(self, session: Session, message: Moderate) -> None:
        q, action = self.queue, message.action
        if action == "approve":
            changed = q.approve(message.question)
        elif action == "reject":
            changed = q.reject(message.question)
        elif action == "edit":
            changed = q.edit(message.question, message.text)
        elif action == "merge":
            changed = q.merge(message.question, message.target)
        elif action == "move":
            changed = q.move(message.question, message.target)
        else:
            changed = q.pin(message.question, action == "pin")
        ops: list[Op] = [self.store.question_op(q.questions[i]) for i in changed]
        if action == "merge":
            target = q.questions[message.target]
            ops += self.store.vote_ops(target, sorted(target.voters))
        detail = message.text if action == "edit" else str(message.target or "")
        ops.append(self._action_op(session, action, message.question, detail))
        await self._commit(ops, *changed)
        self._ack(session, message.ref, message.question)

    async def _review(self, session: Session, message: Review) -> None:
        director = self.server.director
        if director is None or not director.awaiting_review(message.answer):
            raise QaError("NOT_ALLOWED", f"answer {message.answer} is not awaiting review")
        if message.decision == "edit" and not message.text.strip():
            raise QaError("BAD_MESSAGE", "an edit needs the text to speak")
        op = self._action_op(session, f"review:{message.decision}", 0, message.text)
        await self.store.write([op])
        director.review(message.answer, message.decision, message.text)
        self._ack(session, message.ref, message.answer)

    async def _control(self, session: Session, message: Control) -> None:
        action, value = message.action, message.value
        ops: list[Op] = []
        changed: list[int] = []
        if action == "mode":
            if value not in ("auto", "moderated"):
                raise QaError("BAD_MESSAGE", "mode must be auto or moderated")
            changed = self.queue.set_mode(value)  # type: ignore[arg-type]
            ops += [self.store.question_op(self.queue.questions[i]) for i in changed]
            ops.append(self.store.setting_op("mode", value))
        elif action == "review":
            if value not in ("on", "off"):
                raise QaError("BAD_MESSAGE", "review must be on or off")
            self.queue.review = value == "on"
            ops.append(self.store.setting_op("review", value))
        ops.append(self._action_op(session, f"control:{action}", 0, value))
        await self._commit(ops, *changed)
        if action in ("mode", "review"):
            self.server.room.emit(
                RoomMode(self.server.room.log.next_seq(), self.queue.mode, self.queue.review)
            )
        director = self.server.director
        if action == "stop" and director is not None:
            director.stop()
        elif action == "next":
            self.changed.set()
        self._ack(session, message.ref)

    # ------------------------------------------------------------ helpers

    async def _commit(self, ops: list[Op], *changed: int, wake: bool = True) -> None:
        """Store, then show. ``wake`` tells the director a question may be ready; votes only
        reorder, so they skip it (no queue sort on every vote)."""
        await self.store.write(ops)
        self.dirty.update(changed)
        if wake:
            self.changed.set()

    def _action_op(self, session: Session, action: str, question: int, detail: str) -> Op:
        member = self._member(session)
        return self.store.action_op(
            time.time(), member.identity.user_id, member.identity.role, action, question, detail
        )

    def _member(self, session: Session) -> Member:
        member = self.server.room.members.get(session.slot)
        if member is None or member.connection_id != session.id:
            raise ProtocolError(ErrorCode.NOT_JOINED, "not in the room")
        return member

    @staticmethod
    def _allow(buckets: dict[str, TokenBucket], user: str, rate: float, burst: int) -> bool:
        now = time.monotonic()
        bucket = buckets.get(user)
        if bucket is None:
            bucket = buckets[user] = TokenBucket(rate, burst, now)
        return bucket.allow(now)

    def _ack(self, session: Session, ref: int, id_: int = 0, merged: bool = False) -> None:
        self.server.fanout.send(session, [codec.encode(Ack(ref, id_, merged))])

    def _reply_error(
        self, session: Session, code: ErrorCode, reason: str, type_: int, ref: int
    ) -> None:
        self.server.metrics.count_error(code.name)
        error = Error(int(code), reason[:512], type_, False, ref)
        self.server.fanout.send(session, [codec.encode(error)])

    # ------------------------------------------------------------ the room's view

    def flush(self) -> None:
        """Once per tick: one QuestionChanged per question changed since the last tick."""
        room = self.server.room
        for qid in sorted(self.dirty):
            q = self.queue.questions.get(qid)
            if q is not None:
                room.emit(QuestionChanged(room.log.next_seq(), question_info(q)))
        self.dirty.clear()

    def board(self) -> list[QuestionInfo]:
        """Open questions in order, then the most recent closed ones."""
        open_ = self.queue.ordered()
        open_ids = {q.id for q in open_}
        closed = [q for q in self.queue.questions.values() if q.id not in open_ids]
        closed = sorted(closed, key=lambda q: q.id)[-BOARD_RECENT:]
        return [question_info(q) for q in open_ + closed]

    async def set_state(self, question: Question, state: str, answer_id: int = 0) -> None:
        """The director moves a question along (answering, answered, escalated)."""
        self.queue.set_state(question.id, state, answer_id)  # type: ignore[arg-type]
        await self._commit([self.store.question_op(question)], question.id, wake=False)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.store.close()
