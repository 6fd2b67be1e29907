"""The pure room core: seats, slots, resume, sequenced events."""

from __future__ import annotations

import msgpack
import pytest

from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.server.core.eventlog import EventLog
from townhall.server.core.ratelimit import RejectCounter, TokenBucket
from townhall.server.core.room import Room
from townhall.server.gateway.tokens import Identity


def who(n: int, role: str = "attendee") -> Identity:
    return Identity(f"u{n}", f"User {n}", role, "main", 0.0)


def events(room: Room) -> list[list[object]]:
    return [msgpack.unpackb(p) for p in room.drain()]


def test_attendees_get_distinct_seats_spectators_none() -> None:
    room = Room("main", seat_count=10)
    a = room.join(who(1), 0.0, 1).member
    b = room.join(who(2), 0.0, 2).member
    s = room.join(who(3, "spectator"), 0.0, 3).member
    assert {a.seat, b.seat} == {0, 1}
    assert s.seat == -1
    assert len({a.slot, b.slot, s.slot}) == 3
    # Spectators watch from outside the hall: only the two attendees are announced.
    assert [e[0] for e in events(room)] == [68, 68]
    assert [p.slot for p in room.participants()] == [a.slot, b.slot]


def test_full_hall_refuses_attendees_not_spectators() -> None:
    room = Room("main", seat_count=2)
    room.join(who(1), 0.0, 1)
    room.join(who(2), 0.0, 2)
    with pytest.raises(ProtocolError) as info:
        room.join(who(3), 0.0, 3)
    assert info.value.code is ErrorCode.ROOM_FULL
    assert room.join(who(4, "spectator"), 0.0, 4).member.seat == -1


def test_resume_keeps_slot_seat_and_replays_missed_events() -> None:
    room = Room("main", seat_count=10)
    first = room.join(who(1), 0.0, 1).member
    slot, seat, token = first.slot, first.seat, first.resume
    last_seen = room.log.last_seq
    room.disconnect(slot, 1, now=1.0)
    room.join(who(2), 1.5, 2)
    result = room.join(who(1), 2.0, 3, resume=token, last_seq=last_seen)
    assert result.resumed
    assert (result.member.slot, result.member.seat) == (slot, seat)
    assert result.member.resume != token  # resume tokens are single-use
    assert result.replay is not None
    assert [msgpack.unpackb(p)[0] for p in result.replay] == [68]


def test_resume_after_log_overflow_needs_keyframe() -> None:
    room = Room("main", seat_count=100, event_log_size=16)
    m = room.join(who(1), 0.0, 1).member
    room.disconnect(m.slot, 1, 0.0)
    for n in range(2, 40):
        room.join(who(n), 0.0, n)
    result = room.join(who(1), 1.0, 99, resume=m.resume, last_seq=1)
    assert result.resumed and result.replay is None


def test_wrong_resume_token_joins_afresh_but_same_seat() -> None:
    room = Room("main", seat_count=10)
    m = room.join(who(1), 0.0, 1).member
    seat = m.seat
    room.disconnect(m.slot, 1, 0.0)
    result = room.join(who(1), 1.0, 2, resume="bogus")
    assert not result.resumed and result.resume_failed
    assert result.member.seat == seat


def test_someone_elses_resume_token_is_not_honoured() -> None:
    room = Room("main", seat_count=10)
    victim = room.join(who(1), 0.0, 1).member
    result = room.join(who(2), 0.0, 2, resume=victim.resume)
    assert not result.resumed
    assert result.member.slot != victim.slot


def test_expiry_frees_seat_but_remembers_it_for_the_user() -> None:
    room = Room("main", seat_count=10, resume_window_s=60)
    m = room.join(who(1), 0.0, 1).member
    room.join(who(2), 0.0, 2)
    seat = m.seat
    room.disconnect(m.slot, 1, 10.0)
    assert room.expire(69.0) == []
    assert room.expire(70.0) == [m.slot]
    room.drain()
    assert room.join(who(1), 80.0, 3).member.seat == seat


def test_second_connection_of_same_user_replaces_first() -> None:
    room = Room("main", seat_count=10)
    m = room.join(who(1), 0.0, 1).member
    again = room.join(who(1), 0.0, 2)
    assert again.replaced_connection == 1
    assert again.member.slot == m.slot
    # the old connection's disconnect must not mark the new one away
    room.disconnect(m.slot, 1, 1.0)
    assert room.members[m.slot].connected


def test_hand_events_are_sequenced_and_deduplicated() -> None:
    room = Room("main", seat_count=10)
    m = room.join(who(1), 0.0, 1).member
    room.drain()
    room.set_hand(m.slot, True)
    room.set_hand(m.slot, True)
    room.set_hand(m.slot, False)
    evs = events(room)
    assert [(e[0], e[3]) for e in evs] == [(70, True), (70, False)]
    assert evs[1][1] == evs[0][1] + 1


def test_leave_emits_left_and_frees_slot() -> None:
    room = Room("main", seat_count=1)
    m = room.join(who(1), 0.0, 1).member
    room.leave(m.slot)
    assert events(room)[-1] == [69, room.log.last_seq, m.slot]
    assert room.join(who(2), 0.0, 2).member.seat == 0


def test_event_log_since() -> None:
    log = EventLog(4)
    for _ in range(6):
        s = log.next_seq()
        log.append(s, bytes([s]))
    assert log.since(6) == []
    assert log.since(4) == [b"\x05", b"\x06"]
    assert log.since(2) == [b"\x03", b"\x04", b"\x05", b"\x06"]
    assert log.since(1) is None
    assert log.since(7) is None


def test_token_bucket_and_reject_counter() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert sum(bucket.allow(0.0) for _ in range(20)) == 5
    assert bucket.allow(0.1)
    counter = RejectCounter(limit=3, window_s=10)
    assert [counter.add(t) for t in (0, 1, 2, 3)] == [False, False, False, True]
    assert not counter.add(20)
