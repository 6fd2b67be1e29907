"""The room core: who is here, where they sit, what happened in what order.

Pure logic (no sockets, no event loop): the asyncio shell feeds it events with
the current time and sends what it returns. Sequenced events are encoded once
here and queued in ``outbox`` for the fan-out to write to everyone. Spectators'
comings and goings are for the staff only (the People list): they go to ``private``
with ``seq`` 0, outside the log (SPEC §5 "Private updates").
"""

from __future__ import annotations

import heapq
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.limits import MAX_SLOT, NO_SEAT
from townhall.protocol.messages import (
    HandChanged,
    Joined,
    Left,
    Participant,
    ParticipantChanged,
    SequencedMessage,
)
from townhall.server.core.eventlog import EventLog
from townhall.server.core.identity import Identity
from townhall.server.core.resume import ResumeClaim, ResumeTokens
from townhall.server.core.transitions import move

Presence = Literal["connected", "away", "gone"]
PresenceEvent = Literal["drop", "rejoin", "leave", "expire"]
# A member's place outlives its connection: dropped, it waits away for the resume window.
TRANSITIONS: dict[Presence, dict[PresenceEvent, Presence]] = {
    "connected": {"drop": "away", "rejoin": "connected", "leave": "gone"},
    "away": {"rejoin": "connected", "leave": "gone", "expire": "gone"},
    "gone": {},
}

FLAG_HAND_RAISED = 0x01
FLAG_AWAY = 0x02
FLAG_MUTED = 0x04


@dataclass
class Member:
    """A participant's place in the room, which outlives any one connection."""

    slot: int
    identity: Identity
    seat: int
    resume: str
    presence: Presence = "connected"
    away_since: float = 0.0
    hand_raised: bool = False
    muted: bool = False
    connection_id: int = 0

    @property
    def connected(self) -> bool:
        return self.presence == "connected"

    def move(self, event: PresenceEvent) -> None:
        self.presence = move(TRANSITIONS, f"slot {self.slot}", self.presence, event)

    @property
    def visible(self) -> bool:
        """Seen by others in the hall (attendees and staff; not spectators)."""
        return self.identity.role != "spectator"

    @property
    def flags(self) -> int:
        return (
            (FLAG_HAND_RAISED if self.hand_raised else 0)
            | (0 if self.connected else FLAG_AWAY)
            | (FLAG_MUTED if self.muted else 0)
        )

    def participant(self) -> Participant:
        i = self.identity
        return Participant(self.slot, i.user_id, i.name, i.role, self.seat, self.flags)


@dataclass
class JoinResult:
    """What the shell needs to answer a Join."""

    member: Member
    resumed: bool
    replay: list[bytes] | None  # events to resend after a resume; None means send a keyframe
    replaced_connection: int = 0  # a live connection of the same user to close with REPLACED
    resume_failed: bool = False
    resume_error: str = "resume not possible; joined afresh"


@dataclass
class Room:
    """Membership, seats and the sequenced event log of one room."""

    room_id: str
    seat_count: int
    resume_window_s: float = 60.0
    event_log_size: int = 4096
    max_members: int = MAX_SLOT + 1
    members: dict[int, Member] = field(default_factory=dict)
    outbox: list[bytes] = field(default_factory=list)
    private: list[bytes] = field(default_factory=list)  # for the staff only, seq 0
    # Signed resume tokens (core/resume.py) that another authority of the room honours;
    # None: random ones only this room knows (a room of its own, e.g. in tests).
    tokens: ResumeTokens | None = None

    def __post_init__(self) -> None:
        self.log = EventLog(self.event_log_size)
        self._by_user: dict[str, Member] = {}
        self._by_resume: dict[str, Member] = {}
        self._seat_of_user: dict[str, int] = {}  # remembered for the room's life
        self._seat_taken: list[bool] = [False] * self.seat_count
        self._free_seats: list[int] = list(range(self.seat_count))
        self._free_slots: list[int] = list(range(min(self.max_members, MAX_SLOT + 1)))
        # Freed slots wait for the next drain: within one tick a slot is never both left and
        # taken, so a private and a sequenced event about one slot cannot cross.
        self._cooling: list[int] = []
        self._participants: list[Participant] | None = None
        self._wall = 0.0  # the current join's wall-clock time, for the tokens it mints
        # Places kept for the members of an earlier authority (``hold``): holder -> (slot, seat).
        self._held: dict[str, tuple[int, int]] = {}
        self._held_slots: set[int] = set()
        self._held_until = 0.0
        self.place_changes: list[tuple[str, int, int]] = []  # for the store (drain_places)

    # ------------------------------------------------------------ joining and leaving

    def join(
        self,
        identity: Identity,
        now: float,
        connection_id: int,
        resume: str = "",
        last_seq: int = 0,
        muted: bool = False,
        wall: float = 0.0,
    ) -> JoinResult:
        """Admit a verified identity, resuming its old place when the resume token fits.

        ``wall`` (unix seconds) dates the signed tokens: their lifetime, and for a token of
        another authority of the room (a failover, a restart) the resume window."""
        self._wall = wall
        if resume:
            member = self._by_resume.get(resume)
            if member is not None and member.identity.user_id == identity.user_id:
                return self._resume(member, identity, connection_id, last_seq)
        existing = self._by_user.get(identity.user_id)
        if existing is not None:
            # Same person again without a (valid) resume token: take over the old place.
            replaced = existing.connection_id if existing.connected else 0
            self._rebind(existing, identity, connection_id)
            return JoinResult(existing, False, None, replaced, resume_failed=bool(resume))
        why, claim = "", None
        if resume and self.tokens is not None:
            checked = self.tokens.check(resume, identity.user_id, wall)
            if isinstance(checked, ResumeClaim):
                claim = checked
            else:
                why = checked
        held = self._unhold(identity.user_id)
        if held is not None:  # its own place, kept for it since this authority took over
            member = self._admit(identity, connection_id, muted, *held)
            if why:
                failed = f"{why}; your place was kept"
                return JoinResult(member, False, None, resume_failed=True, resume_error=failed)
            return JoinResult(member, claim is not None, None)
        if claim is not None:
            return self._restore(claim, identity, connection_id, muted)
        member = self._admit(identity, connection_id, muted)
        if why:
            failed = f"{why}; joined afresh"
            return JoinResult(member, False, None, resume_failed=True, resume_error=failed)
        return JoinResult(member, False, None, resume_failed=bool(resume))

    # ------------------------------------------------------------ places kept at a takeover

    def hold(self, places: Sequence[tuple[str, int, int]], until: float) -> None:
        """Keep the places (holder, slot, seat) the members of an earlier authority had, as
        its store says, for their owners until ``until`` (on the ``now`` clock): meanwhile
        nobody else gets those slots and seats. Rows that do not fit are let go."""
        if self.tokens is None:
            return
        limit = min(self.max_members, MAX_SLOT + 1)
        for holder, slot, seat in places:
            fits = 0 <= slot < limit and slot not in self._held_slots and holder not in self._held
            if seat != NO_SEAT:
                fits = fits and 0 <= seat < self.seat_count and not self._seat_taken[seat]
            if not fits:
                self.place_changes.append((holder, -1, NO_SEAT))
                continue
            self._held[holder] = (slot, seat)
            self._held_slots.add(slot)
            if seat != NO_SEAT:
                self._seat_taken[seat] = True
        self._held_until = until

    def _unhold(self, user_id: str) -> tuple[int, int] | None:
        """The place kept for this user, now theirs to take (None: none kept)."""
        if not self._held or self.tokens is None:
            return None
        place = self._held.pop(self.tokens.holder(user_id), None)
        if place is not None:
            slot, seat = place
            self._held_slots.discard(slot)
            if seat != NO_SEAT:
                self._seat_taken[seat] = False
        return place

    def _release_held(self, now: float) -> None:
        """The resume window after the takeover is over: places not taken back are free."""
        if not self._held or now < self._held_until:
            return
        for holder, (slot, seat) in self._held.items():
            heapq.heappush(self._free_slots, slot)
            if seat != NO_SEAT:
                self._seat_taken[seat] = False
                heapq.heappush(self._free_seats, seat)
            self.place_changes.append((holder, -1, NO_SEAT))
        self._held.clear()
        self._held_slots.clear()

    def drain_places(self) -> list[tuple[str, int, int]]:
        """Places taken and freed (slot -1) since the last call, for the store."""
        out, self.place_changes = self.place_changes, []
        return out

    def _restore(
        self, claim: ResumeClaim, identity: Identity, connection_id: int, muted: bool
    ) -> JoinResult:
        """A member of another authority's session comes back: its slot and seat if free.
        Its events are not in this log, so it gets a keyframe, never a replay."""
        member = self._admit(identity, connection_id, muted, claim.slot, claim.seat)
        if member.slot == claim.slot and member.seat == claim.seat:
            return JoinResult(member, True, None)
        why = "your seat was taken meanwhile; joined afresh"
        return JoinResult(member, False, None, resume_failed=True, resume_error=why)

    def _resume(
        self, member: Member, identity: Identity, connection_id: int, last_seq: int
    ) -> JoinResult:
        replaced = member.connection_id if member.connected else 0
        self._rebind(member, identity, connection_id)
        return JoinResult(member, True, self.log.since(last_seq), replaced)

    def _rebind(self, member: Member, identity: Identity, connection_id: int) -> None:
        del self._by_resume[member.resume]
        member.resume = self._token(identity.user_id, member.slot, member.seat)
        self._by_resume[member.resume] = member
        member.identity = identity
        self._participants = None
        member.move("rejoin")
        member.away_since = 0.0
        member.connection_id = connection_id

    def _token(self, user: str, slot: int, seat: int) -> str:
        if self.tokens is None:
            return secrets.token_urlsafe(18)
        return self.tokens.mint(user, slot, seat, self._wall)

    def _admit(
        self,
        identity: Identity,
        connection_id: int,
        muted: bool = False,
        slot_wanted: int = -1,
        seat_wanted: int = NO_SEAT,
    ) -> Member:
        slot = self._take_slot(slot_wanted)
        seat = NO_SEAT
        if identity.role == "attendee":
            try:
                seat = self._take_seat(identity.user_id, seat_wanted)
            except ProtocolError:
                heapq.heappush(self._free_slots, slot)
                raise
        member = Member(
            slot,
            identity,
            seat,
            self._token(identity.user_id, slot, seat),
            muted=muted,
            connection_id=connection_id,
        )
        self.members[slot] = member
        self._by_user[identity.user_id] = member
        self._by_resume[member.resume] = member
        if self.tokens is not None:
            self.place_changes.append((self.tokens.holder(identity.user_id), slot, seat))
        self._emit_joined(member)
        return member

    def _take_slot(self, wanted: int = -1) -> int:
        """``wanted`` if it is free (a restored member's), else the lowest free one. Taking a
        slot out of the middle of the heap would cost O(n): it stays there, and a slot popped
        that is already someone's (or still cooling) is passed over."""
        limit = min(self.max_members, MAX_SLOT + 1)
        if 0 <= wanted < limit and self._slot_free(wanted):
            return wanted
        while self._free_slots:
            slot = heapq.heappop(self._free_slots)
            if self._slot_free(slot):
                return slot
        raise ProtocolError(ErrorCode.ROOM_FULL, "the room has no free participant slot")

    def _slot_free(self, slot: int) -> bool:
        return (
            slot not in self.members and slot not in self._cooling and slot not in self._held_slots
        )

    def _take_seat(self, user_id: str, wanted: int = NO_SEAT) -> int:
        remembered = self._seat_of_user.get(user_id)
        if 0 <= wanted < self.seat_count and not self._seat_taken[wanted]:
            seat = wanted
        elif remembered is not None and not self._seat_taken[remembered]:
            seat = remembered
        else:
            while self._free_seats and self._seat_taken[self._free_seats[0]]:
                heapq.heappop(self._free_seats)
            if not self._free_seats:
                raise ProtocolError(ErrorCode.ROOM_FULL, "every seat in the hall is taken")
            seat = heapq.heappop(self._free_seats)
        self._seat_taken[seat] = True
        self._seat_of_user[user_id] = seat
        return seat

    def disconnect(self, slot: int, connection_id: int, now: float) -> None:
        """The connection dropped: keep slot and seat for the resume window."""
        member = self.members.get(slot)
        if member is None or member.connection_id != connection_id or not member.connected:
            return  # already replaced by a newer connection
        member.move("drop")
        member.away_since = now
        self._participants = None
        if member.hand_raised:
            self.set_hand(slot, False)

    def leave(self, slot: int, event: PresenceEvent = "leave") -> None:
        """Gone for good: free the slot and seat and tell everyone."""
        member = self.members.get(slot)
        if member is None:
            return
        member.move(event)
        del self.members[slot]
        del self._by_user[member.identity.user_id]
        del self._by_resume[member.resume]
        if self.tokens is not None:
            self.place_changes.append((self.tokens.holder(member.identity.user_id), -1, NO_SEAT))
        if member.seat != NO_SEAT:
            self._seat_taken[member.seat] = False
            heapq.heappush(self._free_seats, member.seat)
        self._cooling.append(slot)
        if member.visible:
            self.emit(Left(self.log.next_seq(), slot))
        else:
            self.tell_staff(Left(0, slot))

    def expire(self, now: float) -> list[int]:
        """Remove members whose resume window has run out; returns their slots."""
        self._release_held(now)
        gone = [
            m.slot
            for m in self.members.values()
            if not m.connected and now - m.away_since >= self.resume_window_s
        ]
        for slot in gone:
            self.leave(slot, "expire")
        return gone

    # ------------------------------------------------------------ state changes

    def set_hand(self, slot: int, raised: bool) -> None:
        member = self.members[slot]
        if member.hand_raised == raised:
            return
        member.hand_raised = raised
        self.emit(HandChanged(self.log.next_seq(), slot, raised))

    def set_muted(self, slot: int, muted: bool) -> None:
        """A muted participant may not ask or raise a hand; a raised hand goes down."""
        member = self.members[slot]
        if member.muted == muted:
            return
        if muted and member.hand_raised:
            self.set_hand(slot, False)
        member.muted = muted
        if member.visible:
            self.emit(ParticipantChanged(self.log.next_seq(), member.participant()))
        else:
            self.tell_staff(ParticipantChanged(0, member.participant()))

    # ------------------------------------------------------------ views

    def participants(self) -> list[Participant]:
        """Everyone visible in the hall, for keyframes; cached until membership or flags change.

        Spectators watch from outside the hall: they are not listed, and their comings
        and goings are not broadcast, so a join costs O(1) messages, not O(audience).
        """
        if self._participants is None:
            self._participants = [m.participant() for m in self.members.values() if m.visible]
        return self._participants

    def count_by_role(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for m in self.members.values():
            counts[m.identity.role] = counts.get(m.identity.role, 0) + 1
        return counts

    def unlisted(self) -> list[Participant]:
        """Everyone the keyframe leaves out (spectators): the staff's People list has them too."""
        return [m.participant() for m in self.members.values() if not m.visible]

    def member_of(self, user_id: str) -> Member | None:
        return self._by_user.get(user_id)

    def drain(self) -> list[bytes]:
        """Sequenced events produced since the last drain, encoded, in order."""
        for slot in self._cooling:
            heapq.heappush(self._free_slots, slot)
        self._cooling.clear()
        out, self.outbox = self.outbox, []
        return out

    def drain_private(self) -> list[bytes]:
        """The staff's private updates since the last call, encoded, in order."""
        out, self.private = self.private, []
        return out

    def tell_staff(self, message: SequencedMessage) -> None:
        """A private update (``seq`` 0): for the staff only, never logged or replayed."""
        self.private.append(codec.encode(message))

    # ------------------------------------------------------------ internals

    def _emit_joined(self, member: Member) -> None:
        if member.visible:
            self.emit(Joined(self.log.next_seq(), member.participant()))
        else:
            self.tell_staff(Joined(0, member.participant()))

    def emit(self, message: SequencedMessage) -> None:
        """Log a sequenced message (its ``seq`` from ``log.next_seq()``) and queue it for all."""
        if isinstance(message, Joined | Left | HandChanged | ParticipantChanged):
            self._participants = None
        payload = codec.encode(message)
        self.log.append(message.seq, payload)
        self.outbox.append(payload)
