"""The live mic in a running room: grants, peers, relay, transcription, the spoken question.

The gateway hands over Mic, MicOffer and MicRelease; the pure MicBoard decides; this shell
announces every change (MicChanged, sequenced), runs one MicPeer and LiveRelay per open mic,
ends mics on deadlines, drops and disconnects, and puts the spoken question in the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import (
    Ack,
    Error,
    Message,
    Mic,
    MicAnswer,
    MicChanged,
    MicOffer,
    MicRelease,
)
from townhall.server.core.qa import QaError
from townhall.server.rtc.mics import MicBoard, MicChange, MicError
from townhall.server.rtc.peer import BadOffer, MicPeer
from townhall.server.rtc.policy import NetworkPolicy
from townhall.server.rtc.relay import LiveRelay, Phrase, caption_words
from townhall.server.rtc.transcribe import Transcriber

if TYPE_CHECKING:
    from townhall.server.app import TownhallServer
    from townhall.server.core.room import Member
    from townhall.server.gateway.session import Session

log = logging.getLogger("townhall.rtc")

CHECK_EVERY_S = 0.1


@dataclass
class _Open:
    """An open mic's moving parts."""

    slot: int
    generation: int
    connection_id: int
    peer: MicPeer | None = None
    relay: LiveRelay | None = None
    phrases: list[asyncio.Task[str]] = field(default_factory=list)


class RtcService:
    """Owns the mic board and the peers of one room."""

    def __init__(self, server: TownhallServer) -> None:
        self.server = server
        s = server.settings.rtc
        self.settings = s
        self.policy = NetworkPolicy.from_settings(s)
        self.board = MicBoard(s.max_live_mics, s.accept_timeout_s, s.connect_timeout_s,
                              s.mic_time_limit_s)  # fmt: skip
        self.transcriber: Transcriber | None = None
        if s.transcription == "openai":
            clone = server.settings.clone
            key = s.transcription_api_key or clone.openai_api_key
            self.transcriber = Transcriber(
                s.transcription_base_url or clone.openai_base_url,
                key or os.environ.get("OPENAI_API_KEY", ""),
                s.transcription_model,
            )
        self.open: dict[int, _Open] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None

    @property
    def busy(self) -> bool:
        """A mic is granted, connecting or live: the clone waits."""
        return self.board.busy

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._timer = asyncio.get_running_loop().create_task(self._deadlines(), name="rtc-mics")

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        for slot in list(self.open):
            change = self.board.end(slot, "revoked")
            if change is not None:
                await self._ended(change, submit=False)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.transcriber is not None:
            await self.transcriber.close()

    def _spawn(self, coro: object) -> None:
        task = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deadlines(self) -> None:
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            try:
                for change in self.board.expire(time.monotonic()):
                    await self._ended(change)
            except Exception:
                log.exception("mic deadline check failed")

    # ------------------------------------------------------------ requests

    def handle(self, session: Session, message: Message) -> None:
        self._spawn(self._handle(session, message))

    async def _handle(self, session: Session, message: Message) -> None:
        ref = getattr(message, "ref", 0)
        try:
            if isinstance(message, Mic):
                await self._mic(session, message)
            elif isinstance(message, MicOffer):
                await self._offer(session, message)
            elif isinstance(message, MicRelease):
                await self._release(session, message)
        except (MicError, QaError) as exc:
            self._error(session, ErrorCode[exc.code], exc.reason, message.TYPE, ref)
        except ProtocolError as exc:
            self._error(session, exc.code, exc.reason, message.TYPE, ref)
        except Exception:
            log.exception("mic request failed", extra={"type": message.TYPE})
            self._error(session, ErrorCode.INTERNAL, "could not do that", message.TYPE, ref)

    async def _mic(self, session: Session, message: Mic) -> None:
        srv = self.server
        actor = self._member(session.slot, session.id)
        target = srv.room.members.get(message.slot)
        if target is None or target.identity.role != "attendee":
            raise MicError("BAD_MESSAGE", f"no attendee in slot {message.slot}")
        store = srv.qa.store
        op = store.action_op(
            time.time(), actor.identity.user_id, actor.identity.role,
            f"mic:{message.action}", 0, target.identity.user_id,
        )  # fmt: skip
        if message.action == "grant":
            if target.connection_id not in srv.fanout.sessions or not target.connected:
                raise MicError("NOT_ALLOWED", f"{target.identity.name} is not connected")
            if target.muted:
                raise MicError("NOT_ALLOWED", f"{target.identity.name} is muted")
            director = srv.director
            if director is not None and director.current is not None:
                raise MicError("MIC_BUSY", "the clone is answering; stop it or wait for StageEnd")
            change = self.board.grant(target.slot, target.identity.user_id, time.monotonic())
            self.open[target.slot] = _Open(target.slot, change.generation, target.connection_id)
            srv.set_hand(target.slot, False)
            self._announce(change)
            await store.write([op])
        elif message.action == "revoke":
            change = self.board.end(message.slot, "revoked")
            if change is None:
                raise MicError("NOT_ALLOWED", f"slot {message.slot} has no mic")
            await store.write([op])
            await self._ended(change)
        else:  # ask: the moderator types what was said
            question = await srv.qa.submit_spoken(target, message.text)
            await store.write([op])
            self._reply(session, Ack(message.ref, question.id))
            return
        self._reply(session, Ack(message.ref, message.slot))

    async def _offer(self, session: Session, message: MicOffer) -> None:
        srv = self.server
        member = self._member(session.slot, session.id)
        change = self.board.offer(session.slot, member.identity.user_id, time.monotonic())
        entry = self.open[session.slot]
        generation = change.generation
        self._announce(change)
        entry.relay = LiveRelay(
            session.slot,
            srv.now_us,
            srv.broadcast_stage,
            lambda phrase: self._phrase(entry, phrase),
            self.settings.vad_threshold_db,
        )
        relay = entry.relay
        entry.peer = MicPeer(
            self.policy,
            relay.push,
            lambda state: self._peer_state(session.slot, generation, state),
        )
        try:
            answer = await entry.peer.accept(message.sdp)
        except BadOffer as exc:
            ended = self.board.end(session.slot, "failed", generation)
            if ended is not None:
                await self._ended(ended, notify=False)
            self._error(session, ErrorCode.BAD_SDP, str(exc), MicOffer.TYPE, message.ref)
            return
        if self.board.get(session.slot) is None:  # ended while we set up
            return
        self._reply(session, MicAnswer(message.ref, answer[:6000]))
        log.info("mic answered", extra={"slot": session.slot})

    async def _release(self, session: Session, message: MicRelease) -> None:
        mic = self.board.get(session.slot)
        entry = self.open.get(session.slot)
        if mic is None or entry is None or entry.connection_id != session.id:
            raise MicError("NOT_ALLOWED", "you have no mic")
        change = self.board.end(session.slot, "released")
        self._reply(session, Ack(message.ref, session.slot))
        if change is not None:
            await self._ended(change)

    # ------------------------------------------------------------ events

    def disconnected(self, session: Session) -> None:
        """A connection ended: its mic (if any) ends too."""
        entry = self.open.get(session.slot)
        if entry is not None and entry.connection_id == session.id:
            change = self.board.end(session.slot, "disconnected", entry.generation)
            if change is not None:
                self._spawn(self._ended(change))

    def _peer_state(self, slot: int, generation: int, state: str) -> None:
        if state == "connected":
            change = self.board.connected(slot, generation, time.monotonic())
            if change is not None:
                self._announce(change)
                log.info("mic live", extra={"slot": slot})
        elif state in ("failed", "closed"):
            change = self.board.end(slot, "failed", generation)
            if change is not None:
                self._spawn(self._ended(change))

    def _phrase(self, entry: _Open, phrase: Phrase) -> None:
        if self.transcriber is None:
            return
        task = asyncio.get_running_loop().create_task(self._transcribe(entry, phrase))
        entry.phrases.append(task)

    async def _transcribe(self, entry: _Open, phrase: Phrase) -> str:
        assert self.transcriber is not None
        try:
            text = await self.transcriber.transcribe(phrase.pcm16k, 16_000)
        except Exception as exc:
            log.warning("transcription failed", extra={"slot": entry.slot, "error": str(exc)})
            return ""
        if entry.relay is not None and text:
            entry.relay.captions(caption_words(text, phrase.start_us, phrase.end_us))
        return text

    async def _ended(self, change: MicChange, notify: bool = True, submit: bool = True) -> None:
        """Close the peer, announce, then put the transcript in the queue."""
        srv = self.server
        entry = self.open.pop(change.slot, None)
        self._announce(change)
        log.info("mic ended", extra={"slot": change.slot, "reason": change.reason})
        if notify and change.reason == "failed":
            self._notify_speaker(change.slot, "your mic connection failed or never connected")
        if entry is None:
            return
        if entry.relay is not None:
            entry.relay.close()
        if entry.peer is not None:
            await entry.peer.close()
        texts = [t for t in await asyncio.gather(*entry.phrases) if t] if entry.phrases else []
        text = " ".join(texts).strip()
        member = srv.room.members.get(change.slot)
        if submit and text and member is not None and len(text) >= 3:
            try:
                question = await srv.qa.submit_spoken(member, text[:500])
                log.info("spoken question", extra={"slot": change.slot, "question": question.id})
            except QaError as exc:
                log.warning("spoken question refused", extra={"reason": exc.reason})
        srv.qa.changed.set()  # the clone may answer again

    # ------------------------------------------------------------ helpers

    def _announce(self, change: MicChange) -> None:
        room = self.server.room
        ends_us = 0
        if change.state != "ended":
            ends_us = self.server.now_us() + round((change.deadline - time.monotonic()) * 1e6)
        room.emit(
            MicChanged(room.log.next_seq(), change.slot, change.state, change.reason[:32], ends_us)
        )

    def _member(self, slot: int, connection_id: int) -> Member:
        member = self.server.room.members.get(slot)
        if member is None or member.connection_id != connection_id:
            raise ProtocolError(ErrorCode.NOT_JOINED, "not in the room")
        return member

    def _notify_speaker(self, slot: int, reason: str) -> None:
        member = self.server.room.members.get(slot)
        if member is None:
            return
        session = self.server.fanout.sessions.get(member.connection_id)
        if session is not None:
            error = Error(int(ErrorCode.MIC_FAILED), reason, 0, False, 0)
            self.server.fanout.send(session, [codec.encode(error)])

    def _reply(self, session: Session, message: Message) -> None:
        self.server.fanout.send(session, [codec.encode(message)])

    def _error(self, session: Session, code: ErrorCode, reason: str, type_: int, ref: int) -> None:
        self.server.metrics.count_error(code.name)
        self._reply(session, Error(int(code), reason[:512], type_, False, ref))
