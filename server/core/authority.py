"""The room authority: every decision of one room, sans-I/O.

After python-websockets' ``protocol.py``: the shell feeds events in —
``connect``, ``receive_data`` (or ``receive`` for a decoded message), ``disconnect``,
``tick``, ``stored`` (a commit finished), ``turn_event`` (the clone spoke), the mic
calls — and takes typed effects out with ``effects()`` (``core.effects``). Nothing
here reads a clock, a socket or the event loop: time comes in as ``now`` (monotonic
seconds; the media clock is microseconds since ``epoch``). A client message is handled
completely before the next one, so the order of requests is the order of effects, and
no request needs a task of its own.

Messages are routed by type through ``core.dispatch`` (a table of small handlers, one
module per subject); the clone's turns run in ``core.onstage`` and the live mic's course in
``core.live_mics``; this class holds the state they share and the helpers they use.
"""

from __future__ import annotations

import secrets
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from logging import ERROR

import msgspec

from townhall.protocol import codec, negotiate
from townhall.protocol.errors import ErrorCode, ProtocolError, Refused
from townhall.protocol.limits import (
    BOARD_PAGE_MAX,
    MAX_REASON_CHARS,
    clip,
    close_reason,
)
from townhall.protocol.messages import (
    STAFF,
    Ack,
    Board,
    Error,
    FollowUp,
    Join,
    Joined,
    Keyframe,
    Message,
    QuestionChanged,
    Role,
    SequencedMessage,
    StudioItems,
    Welcome,
)
from townhall.server.core import dispatch, handlers, live_mics, onstage  # noqa: F401 (handlers fill the table)
from townhall.server.core.counters import Counters
from townhall.server.core.crowd import Crowd
from townhall.server.core.effects import (
    Admit,
    BoardChanged,
    Broadcast,
    Close,
    Effect,
    Escalated,
    Log,
    Persist,
    QuestionDropped,
    QuestionsRestored,
    Send,
    Sequenced,
    Ship,
    StatementsUndone,
    VoteRestored,
)
from townhall.server.core.identity import Identity
from townhall.server.core.lifecycle import Lifecycle, parse_phase
from townhall.server.core.mics import MicBoard, MicChange
from townhall.server.core.qa import BOARD_RECENT, BOARD_TOP, QaQueue, Question, normalise
from townhall.server.core.ratelimit import PoseLimiter, RejectCounter, TokenBucket
from townhall.server.core.resume import ResumeTokens
from townhall.server.core.room import Member, Room
from townhall.server.core.rules import RoomRules
from townhall.server.core.stage import StageRing
from townhall.server.core.studio import Studio
from townhall.server.core.turns import Answer, TurnEvent
from townhall.server.store.records import (
    ActionRecorded,
    Attended,
    EscalationRecorded,
    PlaceHeld,
    Record,
    SettingSaved,
    VoteCast,
)

DELIVERED_PREFIX = "delivered:"  # settings rows: a follow-up its asker has received
# A joiner gets the tick's Keyframe and at most this many events after it, else a new one.
KEYFRAME_CATCH_UP = 64

Identify = Callable[[str], Identity]  # a join token to who holds it; raises ProtocolError


@dataclass(eq=False)
class Conn:
    """One connection as the room sees it: who it is once joined, and its limits."""

    id: int
    messages: TokenBucket
    poses: PoseLimiter
    rejects: RejectCounter
    join_by: float
    guest_id: str = ""  # the browser's guest id (a signed cookie), for a Join without a token
    slot: int = -1
    role: Role | None = None
    cell: int = -1
    joined: bool = False
    closing: bool = False
    last_rate_error: float = -1e9
    last_keyframe: float = -1e9
    address: str = ""  # the client's address (behind trusted proxies: the one they name)
    # Joined without a token: a guest, whose limits are counted by address (a browser's
    # guest cookie is free to get again, so it keeps bans and mutes, not limits).
    guest: bool = False
    stay: Attended | None = None  # the attendance record of this connection, once joined


@dataclass(frozen=True)
class Submitted:
    """A question just submitted: stored with ``records``; ``undo`` if that fails."""

    question: Question
    merged: bool
    records: list[Record]
    undo: tuple[Effect, ...]


@dataclass
class Saved:
    """What a restarted room gets back from its store."""

    questions: list[Question] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    banned: set[str] = field(default_factory=set)
    max_answer_id: int = 0
    max_question_id: int = 0  # the highest question id any stored row mentions
    muted: set[str] = field(default_factory=set)
    # The places (holder, slot, seat) the members of the last authority had: kept for them.
    places: list[tuple[str, int, int]] = field(default_factory=list)


class RoomAuthority:
    """One room's state and rules; events in, effects out."""

    def __init__(
        self,
        rules: RoomRules,
        crowd: Crowd,
        seat_positions: Sequence[tuple[float, float, float]],
        identify: Identify,
        *,
        counters: Counters | None = None,
        saved: Saved | None = None,
        epoch: float = 0.0,
        wall_epoch: float = 0.0,
        detect_language: Callable[[str], str] = lambda text: "en",
        resume_secret: str = "",
    ) -> None:
        saved = saved or Saved()
        self.rules = rules
        self.plan = rules.plan
        self.crowd = crowd
        self.seat_positions = seat_positions
        self.identify = identify
        self.counters = counters or Counters()
        self.epoch = epoch
        self.wall_epoch = wall_epoch
        self.detect_language = detect_language
        self.room = Room(
            rules.room_id,
            len(seat_positions),
            resume_window_s=rules.resume_window_s,
            event_log_size=rules.event_log,
        )
        if resume_secret:  # signed resume tokens: another authority of the room honours them
            self.room.tokens = ResumeTokens(
                resume_secret,
                rules.room_id,
                ttl_s=rules.resume_token_ttl_s,
                window_s=rules.resume_window_s,
                started=wall_epoch,
            )
            self.room.hold(saved.places, epoch + rules.resume_window_s)
        self.qa = QaQueue(
            mode="moderated" if saved.settings.get("mode", rules.mode) == "moderated" else "auto",
            review=saved.settings.get("review", "on" if rules.review else "off") == "on",
            max_questions=rules.max_questions,
        )
        self.qa.restore(saved.questions, saved.max_question_id)
        self.mics = MicBoard(
            rules.max_live_mics,
            rules.accept_timeout_s,
            rules.connect_timeout_s,
            rules.mic_time_limit_s,
        )
        self.mic_conns: dict[int, int] = {}  # slot -> the connection that holds the mic
        # Grants made while the clone talked: slot -> user id, in order; they start when the
        # answer ends, and the clone takes no new question before they have.
        self.queued_mics: dict[int, str] = {}
        stored_start = saved.settings.get("starts_at", "")
        known = stored_start.isascii() and stored_start.isdigit()
        self.event = Lifecycle(
            parse_phase(saved.settings.get("phase", ""), rules.phase),
            int(stored_start) if known else rules.starts_at,
        )
        self.banned: set[str] = set(saved.banned)
        self.muted: set[str] = set(saved.muted)  # by user id: held across rejoins and restarts
        self.conns: dict[int, Conn] = {}
        self.staff_conns: set[int] = set()  # joined moderators and operators: private updates
        self.joined = 0  # connections that have joined and not ended
        self.ask_limits: dict[str, TokenBucket] = {}
        self.vote_limits: dict[str, TokenBucket] = {}
        # Guests' votes per (question, address): who of them voted (guest_votes_per_question).
        self.guest_votes: dict[tuple[int, str], set[str]] = {}
        # Who asked or voted for which questions: a joiner gets theirs beyond the board's top.
        self.mine: dict[str, set[int]] = {}
        for q in self.qa.questions.values():
            for voter in q.voters:
                self.mine.setdefault(voter, set()).add(q.id)
        self.answer: Answer | None = None
        self.studio = Studio()  # /studio: statements, inbox, answers, audit (filled by the shell)
        self.next_answer_id = saved.max_answer_id + 1
        self.next_turn_at = 0.0
        self.ring = StageRing()
        # The room's live edges' WebSocket URLs (set by the shell as edges come and go): every
        # Welcome carries them, so a client whose edge dies knows where else to resume.
        self.edge_urls: tuple[str, ...] = ()
        self.tick_no = 0
        self._effects: list[Effect] = []
        self._dirty: set[int] = set()
        self._broadcasts: list[Broadcast] = []
        self._pending_joins: deque[Conn] = deque()
        self._last_expire = -1e9
        self._keyframe: tuple[int, int, bytes] | None = None  # tick, seq, encoded
        # Answer ids continue after every id the store knows, the one cut short included.
        taken = max((q.answer_id for q in self.qa.questions.values()), default=0)
        self.next_answer_id = max(self.next_answer_id, taken + 1)
        onstage.close_interrupted(self, epoch)

    # ================================================================ clocks

    def media_us(self, now: float) -> int:
        """The room's media clock: microseconds since the room started."""
        return int((now - self.epoch) * 1_000_000)

    def wall(self, now: float) -> float:
        """Wall-clock seconds for records, from the monotonic ``now``."""
        return self.wall_epoch + (now - self.epoch)

    # ================================================================ effects out

    def effects(self) -> list[Effect]:
        """Everything to do since the last call, in order (then the list is empty)."""
        out, self._effects = self._effects, []
        return out

    def do(self, *effects: Effect) -> None:
        self._effects.extend(effects)

    def send(self, conn: int, *messages: Message | bytes) -> None:
        payloads = tuple(m if isinstance(m, bytes) else codec.encode(m) for m in messages)
        if payloads:
            self._effects.append(Send(conn, payloads))

    def ack(self, conn: int, ref: int, id_: int = 0, merged: bool = False) -> Send:
        """The Send of an Ack (to put in ``Persist.then``)."""
        return Send(conn, (codec.encode(Ack(ref, id_, merged)),))

    def error_payload(self, exc: ProtocolError, fatal: bool = False) -> bytes:
        self.counters.count_error(exc.code.name)
        reason = clip(exc.reason, MAX_REASON_CHARS)
        return codec.encode(Error(int(exc.code), reason, exc.about, fatal or exc.fatal, exc.ref))

    def persist(
        self,
        records: Sequence[Record],
        *then: Effect,
        conn: int = 0,
        about: int = 0,
        ref: int = 0,
        undo: Sequence[Effect] = (),
    ) -> None:
        """Store ``records``, then release ``then``; if storing fails, carry out ``undo``
        (what was changed in memory goes back) and tell ``conn`` why."""
        failed: tuple[Effect, ...] = tuple(undo)
        if conn:  # built now, counted only if it is sent (see ``stored``)
            error = Error(int(ErrorCode.STORE), "could not store that", about, False, ref)
            failed += (Send(conn, (codec.encode(error),)),)
        self._effects.append(Persist(tuple(records), tuple(then), failed))

    def stored(self, persist: Persist, ok: bool) -> None:
        """The shell stored (``ok``) or could not store a Persist's records."""
        if not ok and any(isinstance(e, Send) for e in persist.failed):
            self.counters.count_error(ErrorCode.STORE.name)
        for effect in persist.then if ok else persist.failed:
            if isinstance(effect, Sequenced):
                self.emit(effect.message)
            elif isinstance(effect, BoardChanged):
                self.qa.stored(effect.questions)
                self._dirty.update(effect.questions)
            elif isinstance(effect, QuestionDropped):
                self.qa.drop(effect.question)
            elif isinstance(effect, VoteRestored):
                self.qa.set_voted(effect.question, effect.voter, effect.voted)
                self._dirty.add(effect.question)
            elif isinstance(effect, QuestionsRestored):
                self._restore_rows(effect)
            elif isinstance(effect, StatementsUndone):
                self.studio.undo(effect.versions)
            else:
                self._effects.append(effect)

    def _restore_rows(self, effect: QuestionsRestored) -> None:
        for row in effect.rows:
            if row.id in self.qa.questions:
                self.qa.put_back(row)
                self._dirty.add(row.id)
        for qid, voter in effect.votes_added:
            self.qa.set_voted(qid, voter, False)
            self._dirty.add(qid)

    def emit(self, message: SequencedMessage) -> None:
        """Log a sequenced event (its ``seq`` assigned now) and ship it with the next tick."""
        self.room.emit(msgspec.structs.replace(message, seq=self.room.log.next_seq()))

    def broadcast(self, message: Message, roles: frozenset[Role] | None = None) -> None:
        self._broadcasts.append(Broadcast(codec.encode(message), roles))

    def encode(self, message: Message) -> bytes:
        return codec.encode(message)

    def to_staff(self, message: StudioItems) -> Broadcast:
        """A live /studio change for every operator and moderator (released once stored)."""
        return Broadcast(codec.encode(message), STAFF)

    # ================================================================ /studio

    def escalated(self, e: EscalationRecorded, now: float) -> None:
        """The clone escalated a question (already stored): into the inbox, live."""
        q = self.qa.questions.get(e.question_id)
        asker = (q.asker_id, q.asker_name) if q is not None else ("", "")
        item = self.studio.inbox.add(e, *asker)
        self.broadcast(StudioItems(0, "inbox", inbox=[item]), STAFF)
        self.do(Escalated(e.question_id, e.question, e.reason, e.language, asker[1]))

    def deliver_to(self, user: str, question: int, follow: FollowUp) -> list[Effect]:
        """A follow-up for one person: now if connected, else on their next join."""
        payload = codec.encode(follow)
        for c in self.conns.values():
            if c.joined and not c.closing and self.member(c).identity.user_id == user:
                self.persist([SettingSaved(f"{DELIVERED_PREFIX}{question}", "1")])
                return [Send(c.id, (payload,))]
        self.studio.waiting.setdefault(user, []).append((question, payload))
        return []

    def _waiting_for(self, user: str) -> list[bytes]:
        waiting = self.studio.waiting.pop(user, [])
        if waiting:
            self.persist([SettingSaved(f"{DELIVERED_PREFIX}{q}", "1") for q, _ in waiting])
        return [payload for _, payload in waiting]

    # ================================================================ connections

    def connect(self, conn: int, now: float, address: str = "", guest_id: str = "") -> None:
        """A connection opened (from ``address``); it has ``join_timeout_s`` to send Join.

        ``guest_id`` is the browser's own guest id, verified by the shell (a signed cookie):
        a guest joining with it is the same person on every reload.
        """
        r = self.rules
        c = Conn(
            conn,
            TokenBucket(r.messages_per_s, r.message_burst, now),
            PoseLimiter(r.pose_hz, now),
            RejectCounter(r.max_rejects),
            now + r.join_timeout_s,
            address=address,
            guest_id=guest_id,
        )
        self.conns[conn] = c
        self._pending_joins.append(c)

    def receive_data(self, conn: int, data: bytes | str, now: float) -> None:
        """One frame from a client: decoded, limited, then handled; never raises."""
        c = self.conns.get(conn)
        if c is None or c.closing:
            return
        self.counters.messages_in += 1
        self.counters.bytes_in += len(data)
        try:
            if c.joined and not c.messages.allow(now):
                raise Refused(ErrorCode.RATE_LIMITED, "too many messages; slow down")
            if isinstance(data, str):
                raise ProtocolError(ErrorCode.BAD_FRAME, "text frames are not part of the protocol")
            message = codec.decode_client(data, self.rules.max_frame_bytes)
        except ProtocolError as exc:
            self._reject(c, exc, now)
            return
        self._handle(c, message, now)

    def receive(self, conn: int, message: Message, now: float) -> None:
        """One decoded client message (``receive_data`` without the bytes)."""
        c = self.conns.get(conn)
        if c is not None and not c.closing:
            self._handle(c, message, now)

    def _handle(self, c: Conn, message: Message, now: float) -> None:
        try:
            if not c.joined:
                if not isinstance(message, Join):
                    raise ProtocolError(
                        ErrorCode.NOT_JOINED, f"{type(message).__name__} before Join", message.TYPE
                    )
                self._join(c, message, now)
                return
            route = dispatch.ROUTES.get(type(message))
            if route is None:
                raise ProtocolError(ErrorCode.UNKNOWN_TYPE, "no handler", message.TYPE)
            if route.roles is not None and c.role not in route.roles:
                raise Refused(
                    ErrorCode.NOT_ALLOWED,
                    f"a {c.role} may not send {type(message).__name__}",
                    message.TYPE,
                    getattr(message, "ref", 0),
                )
            route.handler(self, c, message, now)
        except ProtocolError as exc:
            if not exc.about:
                exc.about = message.TYPE
                exc.ref = exc.ref or getattr(message, "ref", 0)
            self._reject(c, exc, now)
        except Exception:  # a bug of ours must not take the room down
            trace = traceback.format_exc()
            self.do(Log("message handling failed", {"slot": c.slot, "error": trace}, ERROR))
            fault = ProtocolError(
                ErrorCode.INTERNAL, "server fault", message.TYPE, getattr(message, "ref", 0)
            )
            self._reject(c, fault, now)

    def disconnect(self, conn: int, now: float) -> None:
        """The connection ended (either side): the member keeps its place to resume."""
        c = self.conns.pop(conn, None)
        if c is None:
            return
        c.closing = True
        if not c.joined:
            return
        self._unjoin(c, now)
        self._end_mic_of(c, "disconnected", now)
        member = self.room.members.get(c.slot)
        if member is not None and member.connection_id == c.id and member.connected:
            self.room.disconnect(c.slot, c.id, now)
            self.crowd.set_hand(c.slot, False)

    # ------------------------------------------------------------ joining

    def _unjoin(self, c: Conn, now: float) -> None:
        if c.joined:
            c.joined = False
            self.joined -= 1
            if c.stay is not None:
                self.do(Persist((replace(c.stay, left=self.wall(now)),)))
            self.staff_conns.discard(c.id)

    def _join(self, c: Conn, join: Join, now: float) -> None:
        version = negotiate(join.min_version, join.max_version)
        identity = self._identify(join.token, c.guest_id)
        if self.joined >= self.rules.max_connections:
            raise ProtocolError(ErrorCode.ROOM_FULL, "the server is at its connection limit")
        result = self.room.join(
            identity,
            now,
            c.id,
            join.resume,
            join.last_seq,
            identity.user_id in self.muted,
            self.wall(now),
        )
        member = result.member
        if result.replaced_connection:
            old = self.conns.get(result.replaced_connection)
            if old is not None:
                self.fail(old, ProtocolError(ErrorCode.REPLACED, "you joined again elsewhere"))
                self._unjoin(old, now)
        c.slot, c.role, c.joined = member.slot, identity.role, True
        c.guest = not join.token
        self.joined += 1
        if identity.staff:
            self.staff_conns.add(c.id)
        if member.seat >= 0:
            c.cell = self.crowd.cell_of_slot.get(member.slot, -1)
            if c.cell < 0:
                c.cell = self.crowd.add(member.slot, member.seat)
        now_us = self.media_us(now)
        welcome = Welcome(
            version,
            self.room.room_id,
            member.slot,
            identity.user_id,
            identity.name,
            identity.role,
            member.seat,
            member.resume,
            now_us,
            self.room.log.last_seq,
            self.rules.pose_hz,
            result.resumed,
            list(self.edge_urls),
        )
        payloads = [codec.encode(welcome)]
        if result.resume_failed:
            failed = ProtocolError(ErrorCode.RESUME_FAILED, result.resume_error, 1)
            payloads.append(self.error_payload(failed))
        if result.replay is None or identity.staff:
            # Staff get a keyframe even on a resume: private updates they missed are not
            # in the log, so their copy is rebuilt from the keyframe and the snapshot below.
            payloads.extend(self.keyframe_since(now))
            own = self.own_questions(identity)
            if own is not None:
                payloads.append(own)
        else:
            payloads.extend(result.replay)
        payloads.extend(self.private_snapshot(identity))
        payloads.extend(self._waiting_for(identity.user_id))
        if self.answer is not None and self.answer.start is not None:
            payloads.extend(self.ring.unplayed(now_us))  # the speech still to be heard
        if identity.staff and self.answer is not None and self.answer.draft is not None:
            payloads.append(codec.encode(self.answer.draft))
        c.stay = Attended(
            f"{self.wall_epoch:.3f}-{c.id}",
            identity.user_id,
            identity.name,
            identity.role,
            join.client,
            self.wall(now),
        )
        self.counters.joins += 1
        if result.resumed:
            self.counters.resumes += 1
        self.do(
            Admit(c.id, member.slot, identity.role, c.cell, tuple(payloads)),
            Persist((c.stay,)),
            Log(
                "joined",
                {
                    "user": identity.user_id,
                    "role": identity.role,
                    "slot": member.slot,
                    "seat": member.seat,
                    "resumed": result.resumed,
                },
            ),
        )

    def _identify(self, token: str, guest: str = "") -> Identity:
        if not token:
            if not self.rules.allow_anonymous_spectators:
                raise ProtocolError(ErrorCode.AUTH_INVALID, "this room needs a token")
            # A browser's guest id keeps one identity (mutes, bans, their own questions)
            # across reloads; a client without one is a new guest each time.
            user = f"guest-{guest}" if guest else f"anon-{secrets.token_hex(4)}"
            name = f"Guest {user[-4:]}"
            identity = Identity(user, name, "spectator", self.room.room_id, 0.0)
        else:
            identity = self.identify(token)
        if identity.user_id in self.banned:
            raise ProtocolError(ErrorCode.BANNED, "you may not join this room")
        return identity

    def own_questions(self, identity: Identity) -> bytes | None:
        """A Board of what the joiner asked or voted for beyond the Keyframe's top (the most
        recent ``BOARD_PAGE_MAX``), or None when the Keyframe holds them all. Only questions
        on everyone's board (or for the staff, on theirs): the asker's own questions waiting
        for approval come in ``private_snapshot``."""
        ids = self.mine.get(identity.user_id)
        if not ids:
            return None
        in_keyframe = set(self.qa.public.open_ids(0, BOARD_TOP))
        in_keyframe.update(self.qa.public.recent_closed(BOARD_RECENT))
        rest = sorted(ids - in_keyframe)[-BOARD_PAGE_MAX:]
        infos = self.qa.shown(rest, identity.staff)
        if not infos:
            return None
        return codec.encode(Board(0, 0, self.qa.open_count(identity.staff), infos))

    def private_snapshot(self, identity: Identity) -> list[bytes]:
        """What the keyframe leaves out that this person may see, as private updates (seq 0).

        Staff get every spectator (for People) and the questions waiting for approval (the
        first ``BOARD_TOP`` and the lately closed); anyone else gets their own questions
        that were never approved.
        """
        questions = self.qa.hidden(None if identity.staff else identity.user_id)
        out = [codec.encode(QuestionChanged(0, q)) for q in questions]
        if identity.staff:
            out = [codec.encode(Joined(0, p)) for p in self.room.unlisted()] + out
        return out

    def keyframe(self, now: float) -> bytes:
        """The room's state now, as one Keyframe (built at most once per event and tick)."""
        seq = self.room.log.last_seq
        cached = self._keyframe
        if cached is not None and cached[0] == self.tick_no and cached[1] == seq:
            return cached[2]
        return self._build_keyframe(now)

    def keyframe_since(self, now: float) -> list[bytes]:
        """A Keyframe for a joiner, then the sequenced events since it was built.

        A crowd arriving at once would otherwise rebuild the same large frame (everyone in
        the hall, the coarse crowd, the board) for every attendee, since each of them is
        a sequenced event: O(attendees) a join, and the room's loop stalls for seconds
        under a few thousand joins. So one Keyframe serves a tick's joiners, each also
        given the few events after it (SPEC §5: a Keyframe sets ``seq``; events follow).
        """
        cached = self._keyframe
        if cached is not None and cached[0] == self.tick_no:
            since = self.room.log.since(cached[1])
            if since is not None and len(since) <= KEYFRAME_CATCH_UP:
                return [cached[2], *since]
        return [self._build_keyframe(now)]

    def _build_keyframe(self, now: float) -> bytes:
        answer = self.answer
        frame = Keyframe(
            self.room.log.last_seq,
            self.media_us(now),
            self.room.participants(),
            self.crowd.coarse_all(),
            self.qa.board(also=(answer.question.id,) if answer is not None else ()),
            answer.start if answer is not None else None,
            self.qa.mode,
            self.qa.review,
            self.event.phase,
            self.event.starts_at,
        )
        encoded = codec.encode(frame)
        self._keyframe = (self.tick_no, frame.seq, encoded)
        return encoded

    # ------------------------------------------------------------ errors and closes

    def _reject(self, c: Conn, exc: ProtocolError, now: float) -> None:
        if exc.fatal or not c.joined:
            self.fail(c, exc)
            return
        if c.rejects.add(now):
            self.fail(c, ProtocolError(ErrorCode.FLOODING, "too many bad or excess messages"))
            return
        if exc.code is ErrorCode.RATE_LIMITED:
            self.notify_rate(c, now, exc)
            return
        self.send(c.id, self.error_payload(exc))

    def notify_rate(self, c: Conn, now: float, exc: ProtocolError) -> None:
        """One RATE_LIMITED a second is enough to tell the client; more would add to the flood."""
        if now - c.last_rate_error >= 1.0:
            c.last_rate_error = now
            self.send(c.id, self.error_payload(exc))

    def fail(self, c: Conn, exc: ProtocolError) -> None:
        """Send the error as fatal and close the connection with its code."""
        if c.closing:
            return
        self.counters.count_close(exc.code.name)
        self.send(c.id, self.error_payload(exc, fatal=True))
        self.close(c, exc.code.close_code, exc.reason)
        self.do(Log("closed", {"code": exc.code.name, "reason": exc.reason, "slot": c.slot}))

    def close(self, c: Conn, code: int, reason: str) -> None:
        c.closing = True
        self.do(Close(c.id, code, close_reason(reason)))

    def shutdown(self) -> None:
        """The server is stopping: every client hears why, then is closed."""
        for c in list(self.conns.values()):
            self.fail(c, ProtocolError(ErrorCode.SERVER_SHUTDOWN, "server stopping"))

    # ------------------------------------------------------------ members

    def member(self, c: Conn) -> Member:
        """The member a connection speaks for (it must still be the member's connection)."""
        member = self.room.members.get(c.slot)
        if member is None or member.connection_id != c.id:
            raise ProtocolError(ErrorCode.NOT_JOINED, "not in the room")
        return member

    def conn_of(self, member: Member) -> Conn | None:
        c = self.conns.get(member.connection_id)
        return c if c is not None and c.joined and not c.closing else None

    def leave(self, c: Conn, now: float) -> None:
        """A Leave: gone for good."""
        self._end_mic_of(c, "disconnected", now)
        self.crowd.remove(c.slot)
        self.room.leave(c.slot)
        self._unjoin(c, now)
        self.close(c, 1000, "left")

    def remove_member(self, slot: int, reason: ProtocolError, now: float) -> None:
        """Kick or ban: close the member's connection with the reason and free the seat."""
        member = self.room.members.get(slot)
        if member is None:
            return
        c = self.conns.get(member.connection_id)
        if c is not None:
            self._end_mic_of(c, "revoked", now)
            self.fail(c, reason)
            self._unjoin(c, now)
        self.crowd.remove(slot)
        self.room.leave(slot)

    def set_hand(self, slot: int, raised: bool) -> None:
        self.room.set_hand(slot, raised)
        self.crowd.set_hand(slot, raised)

    def action(
        self, c: Conn, now: float, action: str, question: int = 0, detail: str = ""
    ) -> Record:
        """An audit record of a staff member's action."""
        m = self.member(c)
        record = ActionRecorded(
            self.wall(now), m.identity.user_id, m.identity.role, action, question, detail,
            m.identity.name,
        )  # fmt: skip
        self.studio.audited(record)
        return record

    # ================================================================ questions

    def submit(self, member: Member, text: str, language: str, now: float, slot: int) -> Submitted:
        """A question from a member (typed, or spoken at the live mic): in memory but on
        nobody's board until stored; the records to store and what undoes it if that fails."""
        user = member.identity.user_id
        twin = self.qa.find_duplicate(normalise(text), user)
        had_voted = twin is not None and user in twin.voters
        question, merged = self.qa.submit(
            text,
            asker_id=user,
            asker_name=member.identity.name,
            asker_slot=slot,
            language=language or self.detect_language(text),
            now=self.wall(now),
            pending=True,
        )
        undo: Effect = (
            VoteRestored(question.id, user, had_voted) if merged else QuestionDropped(question.id)
        )
        records: list[Record] = [question.record(), VoteCast(question.id, user)]
        self.mine.setdefault(user, set()).add(question.id)
        return Submitted(question, merged, records, (undo,))

    def limited_as(self, c: Conn, member: Member) -> str:
        """Whose limits a request counts against: the person's, or for a guest (who gets a
        new identity by dropping the guest cookie) every guest's from the same address."""
        if c.guest:
            return f"guests@{c.address}"
        return member.identity.user_id

    def allow(
        self, buckets: dict[str, TokenBucket], user: str, rate: float, burst: float, now: float
    ) -> bool:
        bucket = buckets.get(user)
        if bucket is None:
            bucket = buckets[user] = TokenBucket(rate, burst, now)
        return bucket.allow(now)

    def _flush_board(self) -> None:
        """One QuestionChanged per question changed since the last tick (latest wins).

        A question not yet approved goes only to the staff and its asker, outside the log.
        """
        for qid in sorted(self._dirty):
            q = self.qa.questions.get(qid)
            if q is None:
                continue
            if q.public:
                self.room.emit(QuestionChanged(self.room.log.next_seq(), q.info()))
                continue
            private = QuestionChanged(0, q.info())
            self.room.tell_staff(private)
            asker = self.room.member_of(q.asker_id)
            c = self.conn_of(asker) if asker is not None else None
            if c is not None and c.id not in self.staff_conns:
                self.send(c.id, private)
        self._dirty.clear()

    def _flush_private(self) -> None:
        """The staff's private updates of this tick, in one write to each."""
        payloads = self.room.drain_private()
        if payloads:
            for conn in sorted(self.staff_conns):
                self._effects.append(Send(conn, tuple(payloads)))

    # ================================================================ the clone's turns (onstage)

    def stop_turn(self, now: float) -> None:
        onstage.stop_turn(self, now)

    def turn_event(self, answer_id: int, event: TurnEvent, now: float) -> None:
        onstage.turn_event(self, answer_id, event, now)

    # ================================================================ live mics (live_mics)

    def announce_mic(self, change: MicChange, now: float) -> None:
        live_mics.announce_mic(self, change, now)

    def end_mic(self, change: MicChange, now: float, submit: bool = True) -> None:
        live_mics.end_mic(self, change, now, submit)

    def _end_mic_of(self, c: Conn, reason: str, now: float) -> None:
        live_mics.end_mic_of(self, c, reason, now)

    def mic_answered(self, slot: int, generation: int, conn: int, ref: int, sdp: str) -> None:
        live_mics.mic_answered(self, slot, generation, conn, ref, sdp)

    def mic_refused(
        self, slot: int, generation: int, conn: int, ref: int, reason: str, now: float
    ) -> None:
        live_mics.mic_refused(self, slot, generation, conn, ref, reason, now)

    def mic_state(self, slot: int, generation: int, state: str, now: float) -> None:
        live_mics.mic_state(self, slot, generation, state, now)

    def mic_lost(self, slot: int, generation: int, reason: str, now: float, ref: int = 0) -> None:
        live_mics.mic_lost(self, slot, generation, reason, now, ref)

    def mic_transcript(self, slot: int, text: str, now: float) -> None:
        live_mics.mic_transcript(self, slot, text, now)

    # ================================================================ the tick

    def tick(self, now: float) -> None:
        """One room tick: deadlines, the clone's turn, then one Ship for every edge."""
        self.tick_no += 1
        if now - self._last_expire >= 1.0:
            self._last_expire = now
            for slot in self.room.expire(now):
                self.crowd.remove(slot)
        self._expire_joins(now)
        for change in self.mics.expire(now):
            self.end_mic(change, now)
        now_us = self.media_us(now)
        stage, stage_first, stage_ends = onstage.stage_tick(self, now, now_us)
        self._flush_board()
        self._flush_private()
        places = self.room.drain_places()
        if places:  # written as they change; read only by an authority taking over
            self.do(Persist(tuple(PlaceHeld(*p) for p in places)))
        events = tuple(self.room.drain())
        if self.tick_no % self.plan.crowd_every == 0:
            near = self.crowd.near_frames(now_us)
            far = self.crowd.far_frame(now_us)
        else:
            near, far = {}, None
        broadcasts, self._broadcasts = tuple(self._broadcasts), []
        self.do(
            Ship(
                self.tick_no, now_us, events, near, far, stage, stage_first, stage_ends, broadcasts
            )
        )

    def _expire_joins(self, now: float) -> None:
        pending = self._pending_joins
        while pending and (pending[0].joined or pending[0].closing or pending[0].join_by <= now):
            c = pending.popleft()
            if not c.joined and not c.closing and c.id in self.conns:
                self.fail(c, ProtocolError(ErrorCode.JOIN_TIMEOUT, "no Join received in time"))

    def poses(self, slots: bytes, flags: bytes, records: bytes, bytes_in: int) -> None:
        """Validated, rate-limited poses from a fan-out edge, written at once."""
        n = self.crowd.set_poses(slots, flags, records)
        self.counters.messages_in += n
        self.counters.bytes_in += bytes_in

    # ================================================================ views

    def count_by_role(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.conns.values():
            if c.joined and c.role is not None:
                counts[c.role] = counts.get(c.role, 0) + 1
        return counts
