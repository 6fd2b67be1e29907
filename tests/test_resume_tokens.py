"""Signed resume tokens: another authority of the room (a standby that took over, a restart)
gives a member back its slot and seat (also across a restart of a single server: real sockets,
SQLite); a forged, expired, other-room or other-user token never
gets anyone's place (core/resume.py, core/room.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from townhall.plugin.client import RoomClient
from townhall.server.app import TownhallServer
from townhall.server.core.identity import Identity
from townhall.server.core.resume import ResumeClaim, ResumeTokens
from townhall.server.core.room import Room

from .conftest import TokenMaker, make_settings
from .waiting import eventually

SECRET = "the room's shared secret"
T0 = 1_700_000_000.0  # wall clock of the first authority's start


def who(n: int, role: str = "attendee") -> Identity:
    return Identity(f"u{n}", f"User {n}", role, "main", 0.0)


def authority(
    started: float, secret: str = SECRET, room: str = "main", window: float = 60.0
) -> Room:
    tokens = ResumeTokens(secret, room, ttl_s=3600.0, window_s=window, started=started)
    return Room(room, seat_count=10, resume_window_s=window, tokens=tokens)


def seated(room: Room, n: int, wall: float) -> tuple[int, int, str]:
    m = room.join(who(n), 0.0, n, wall=wall).member
    return m.slot, m.seat, m.resume


def test_a_new_authority_gives_back_slot_and_seat_with_a_keyframe() -> None:
    old = authority(T0)
    for n in (1, 2, 3):
        seated(old, n, T0 + 1)
    slot, seat, token = seated(old, 4, T0 + 2)
    assert (slot, seat) == (3, 3)
    new = authority(T0 + 100)  # took over after the old one died
    result = new.join(who(4), 0.0, 9, resume=token, last_seq=57, wall=T0 + 103)
    assert result.resumed and not result.resume_failed
    assert (result.member.slot, result.member.seat) == (slot, seat)
    assert result.replay is None  # the old log is gone: a keyframe, not a replay
    assert result.member.resume != token
    # A fresh joiner gets the lowest free places, never the restored ones.
    fresh = new.join(who(5), 0.0, 10, wall=T0 + 104).member
    assert (fresh.slot, fresh.seat) == (0, 0)
    others = [new.join(who(n), 0.0, n, wall=T0 + 104).member for n in (6, 7, 8)]
    assert [m.slot for m in others] == [1, 2, 4]
    assert [m.seat for m in others] == [1, 2, 4]
    # And the token the new authority issued works with it like any resume.
    member = result.member
    new.disconnect(member.slot, 9, 5.0)
    again = new.join(who(4), 6.0, 11, resume=member.resume, wall=T0 + 110)
    assert again.resumed and (again.member.slot, again.member.seat) == (slot, seat)


def test_a_forged_signature_joins_afresh_never_in_the_claimed_seat() -> None:
    old = authority(T0)
    seated(old, 8, T0)
    seated(old, 9, T0)
    _, seat, token = seated(old, 1, T0)
    assert seat == 2
    payload = token.split(".")[1]
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["u"] = "u2"  # Mallory rewrites the token to claim u1's seat as herself
    forged_payload = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    forged = token.replace(payload, forged_payload)
    new = authority(T0 + 10)
    result = new.join(who(2), 0.0, 2, resume=forged, wall=T0 + 11)
    assert result.resume_failed and not result.resumed
    assert "signature" in result.resume_error
    assert (result.member.slot, result.member.seat) == (0, 0)  # fresh, not u1's seat 2
    # u1 comes back with the real token: its seat is still there for it.
    back = new.join(who(1), 0.0, 1, resume=token, wall=T0 + 12)
    assert back.resumed and back.member.seat == seat


@pytest.mark.parametrize(
    ("make", "user", "wall", "reason"),
    [
        (lambda: authority(T0, secret="another secret"), 1, T0 + 5, "signature is wrong"),
        (lambda: authority(T0, room="other"), 1, T0 + 5, "another room"),
        (lambda: authority(T0), 2, T0 + 5, "someone else's"),
        (lambda: authority(T0), 1, T0 + 3601, "expired"),
        (lambda: authority(T0, window=60.0), 1, T0 + 61, "resume window is over"),
    ],
    ids=["other-secret", "other-room", "other-user", "expired", "past-window"],
)
def test_a_token_that_does_not_check_out_gets_a_fresh_place_and_a_reason(
    make: object, user: int, wall: float, reason: str
) -> None:
    old = authority(T0 - 10)
    seated(old, 9, T0 - 9)
    slot, seat, token = seated(old, 1, T0 - 9)
    assert (slot, seat) == (1, 1)
    new = make()  # type: ignore[operator]
    assert isinstance(new, Room)
    new.join(who(7), 0.0, 7, wall=T0)  # slot 0, seat 0
    new.join(who(8), 0.0, 8, wall=T0)  # slot 1, seat 1 (the token's): a fresh place is 2
    result = new.join(who(user), 0.0, 5, resume=token, wall=wall)
    assert result.resume_failed and not result.resumed
    assert reason in result.resume_error, result.resume_error
    assert (result.member.slot, result.member.seat) == (2, 2)


def test_a_seat_taken_meanwhile_is_not_taken_from_its_holder() -> None:
    old = authority(T0)
    _, seat, token = seated(old, 1, T0)
    new = authority(T0 + 10)
    holder = new.join(who(2), 0.0, 2, wall=T0 + 11).member
    assert holder.seat == seat
    result = new.join(who(1), 0.0, 1, resume=token, wall=T0 + 12)
    assert result.resume_failed and "seat was taken" in result.resume_error
    assert result.member.seat != seat and holder.seat == seat


def test_our_own_token_for_a_member_whose_window_ran_out_is_not_a_resume() -> None:
    room = authority(T0)
    m = room.join(who(1), 0.0, 1, wall=T0).member
    token = m.resume
    room.disconnect(m.slot, 1, 1.0)
    room.expire(100.0)
    room.drain()
    result = room.join(who(1), 101.0, 2, resume=token, wall=T0 + 101)
    assert result.resume_failed and "window is over" in result.resume_error


def test_the_claim_is_checked_like_input() -> None:
    tokens = ResumeTokens(SECRET, "main", ttl_s=10.0, window_s=60.0, started=T0)
    for junk in ("", "r1.", "r1.a.b", "x" * 5000, "r1.!!!.???", "r1.e30.AAAA"):
        assert isinstance(tokens.check(junk, "u1", T0), str)
    # Signed by us but not the shape of a claim (an older version's, say): refused.
    body = base64.urlsafe_b64encode(b'{"r":"main","u":"u1"}').rstrip(b"=").decode()
    mac = base64.urlsafe_b64encode(tokens._mac(body)).rstrip(b"=").decode()
    assert tokens.check(f"r1.{body}.{mac}", "u1", T0) == "not a resume token of this room"
    other = ResumeTokens(SECRET, "main", ttl_s=10.0, window_s=60.0, started=T0)
    claim = other.check(tokens.mint("u1", 3, 4, T0), "u1", T0 + 1)
    assert claim == ResumeClaim("u1", 3, 4, tokens.session)


def test_the_places_an_earlier_authority_stored_are_kept_for_their_owners() -> None:
    old = authority(T0)
    members = {n: seated(old, n, T0) for n in (1, 2, 3)}
    places = old.drain_places()  # what the store got: a keyed hash per user, never the id
    assert [(slot, seat) for _, slot, seat in places] == [(0, 0), (1, 1), (2, 2)]
    assert not any("u1" in holder for holder, _, _ in places)

    new = authority(T0 + 10)
    new.hold(places, until=60.0)
    # Someone new comes first: none of the kept places, not even with a forged claim.
    payload = members[1][2].split(".")[1]
    forged = f"r1.{payload}.{'A' * 43}"
    mallory = new.join(who(9), 1.0, 9, resume=forged, wall=T0 + 11)
    assert mallory.resume_failed and "signature" in mallory.resume_error
    assert (mallory.member.slot, mallory.member.seat) == (3, 3)
    # Its owner without a resume token (the app restarted): its place all the same.
    two = new.join(who(2), 2.0, 2, wall=T0 + 12)
    assert (two.member.slot, two.member.seat) == (1, 1) and not two.resume_failed
    # Its owner with its token: its place, and a resume.
    one = new.join(who(1), 3.0, 1, resume=members[1][2], wall=T0 + 13)
    assert one.resumed and (one.member.slot, one.member.seat) == (0, 0)
    assert new.join(who(8), 4.0, 8, wall=T0 + 14).member.seat == 4  # 2 is still u3's
    changes = new.drain_places()
    assert [(slot, seat) for _, slot, seat in changes] == [(3, 3), (1, 1), (0, 0), (4, 4)]

    # u3 does not come back within the window: its place is let go, in the store too.
    assert new.expire(59.0) == []
    assert new.join(who(7), 59.5, 7, wall=T0 + 69).member.seat == 5
    new.expire(60.0)
    assert new.drain_places()[-1] == (places[2][0], -1, -1)
    new.drain()
    late = new.join(who(6), 61.0, 6, wall=T0 + 71).member
    assert (late.slot, late.seat) == (2, 2)
    # Leaving frees a place in the store as well.
    new.leave(late.slot)
    assert new.tokens is not None
    assert new.drain_places()[-1] == (new.tokens.holder("u6"), -1, -1)


def test_rows_that_do_not_fit_the_hall_are_let_go() -> None:
    room = authority(T0)
    room.hold([("a", 0, 0), ("b", 0, 1), ("c", 1, 99), ("d", 70000, 2), ("e", 3, 0)], 60.0)
    assert [h for h, _, _ in room.drain_places()] == ["b", "c", "d", "e"]
    assert room.join(who(1), 0.0, 1).member.seat == 1  # only a's (slot 0, seat 0) is kept


async def test_a_restarted_server_gives_attendees_back_their_seats(
    tmp_path: Path, token: TokenMaker
) -> None:
    """The same with real sockets and a real store (SQLite): the server stops and a new one
    starts on its database; attendees resume in their places, someone new sits elsewhere."""
    settings = make_settings(tmp_path)
    first = TownhallServer(settings)
    await first.start()
    ann = RoomClient(first.ws_url, token("ann"))
    bob = RoomClient(first.ws_url, token("bob"))
    try:
        seats = {c: await c.connect() for c in (ann, bob)}
        assert {w.seat for w in seats.values()} == {0, 1}
        await eventually(lambda: len(first.store.load_places()) == 2, 20, "places stored")
    finally:
        await first.stop()
    await ann.wait_closed()
    second = TownhallServer(settings)
    await second.start()
    newcomer = RoomClient(second.ws_url, token("cy"))
    try:
        assert (await newcomer.connect()).seat == 2  # not ann's or bob's
        for client, before in seats.items():
            client.url = second.ws_url
            after = await client.reconnect()
            assert after.resumed and (after.slot, after.seat) == (before.slot, before.seat)
    finally:
        for c in (ann, bob, newcomer):
            await c.close()
        await second.stop()
