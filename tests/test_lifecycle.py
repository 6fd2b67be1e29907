"""The event's lifecycle: doors open, live, on hold, ended (issue 14, item 2).

The transition table edge by edge (after h11's ``test_state.py``), then the room authority
without I/O: what each phase lets through, hold cutting after the sentence being said,
resume, the closing of the board, a mic queued behind the clone's answer, the keyframe and
the stored phase after a restart.
"""

from __future__ import annotations

import itertools

import pytest

from townhall.plugin.state import RoomState
from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.messages import (
    Ack,
    Ask,
    Control,
    Error,
    EventState,
    Keyframe,
    Mic,
    MicChanged,
    Moderate,
    StageEnd,
    StagePacket,
    Vote,
)
from townhall.server.core.authority import RoomAuthority, Saved
from townhall.server.core.crowd import Crowd
from townhall.server.core.effects import Persist, Ship, StartTurn, StopTurn
from townhall.server.core.lifecycle import EVENTS, PHASES, TRANSITIONS, Lifecycle, parse_start
from townhall.server.core.rules import RoomRules
from townhall.server.core.stage import PACKET_US
from townhall.server.core.tickplan import TickPlan
from townhall.server.core.transitions import IllegalTransition
from townhall.server.core.turns import Finished, Said, Voiced
from townhall.server.store.records import AnswerRecorded, SettingSaved

from .test_authority import SEATS, _segment, identify, join, make_room, sent_to, store_all

# ------------------------------------------------------------------ the table

LEGAL = {
    ("doors", "start"): "live",
    ("doors", "end"): "ended",
    ("live", "hold"): "hold",
    ("live", "end"): "ended",
    ("hold", "resume"): "live",
    ("hold", "end"): "ended",
    ("ended", "open"): "doors",
}


@pytest.mark.parametrize(("phase", "event"), list(itertools.product(PHASES, EVENTS)))
def test_every_edge_of_the_table(phase: str, event: str) -> None:
    life = Lifecycle(phase)  # type: ignore[arg-type]
    if (phase, event) in LEGAL:
        assert life.move(event) == phase  # type: ignore[arg-type]
        assert life.phase == LEGAL[(phase, event)]
    else:
        with pytest.raises(IllegalTransition) as info:
            life.move(event)  # type: ignore[arg-type]
        assert info.value.code is ErrorCode.NOT_ALLOWED
        assert life.phase == phase  # nothing half-changed


def test_the_table_is_the_one_documented() -> None:
    table = {(p, e): to for p, moves in TRANSITIONS.items() for e, to in moves.items()}
    assert table == LEGAL


def test_only_live_lets_the_clone_start_and_only_ended_closes_the_board() -> None:
    for phase in PHASES:
        life = Lifecycle(phase)
        assert life.clone_may_start is (phase == "live")
        if phase == "ended":
            with pytest.raises(Refused) as info:
                life.check_open("questions are")
            assert info.value.code is ErrorCode.EVENT_ENDED
        else:
            life.check_open("questions are")


@pytest.mark.parametrize("value", ["soon", "-5", "1e9", "1234567890123", "²", "١٧٦٥"])
def test_a_start_time_must_be_unix_seconds(value: str) -> None:
    with pytest.raises(Refused) as info:
        parse_start(value)
    assert info.value.code is ErrorCode.BAD_MESSAGE
    assert parse_start("") == 0 and parse_start("1765033200") == 1765033200


# ------------------------------------------------------------------ the room


def control(room: RoomAuthority, conn: int, action: str, value: str, now: float) -> list[object]:
    """A moderator's Control, stored; returns what was released."""
    room.receive(conn, Control(7, action, value), now)  # type: ignore[arg-type]
    return store_all(room, room.effects())


def shipped_events(room: RoomAuthority, now: float) -> list[object]:
    room.tick(now)
    out: list[object] = []
    for e in room.effects():
        if isinstance(e, Ship):
            out += [codec.decode_server(p) for p in e.events]
        elif isinstance(e, Persist):
            out += store_all(room, [e])
    return out


def lobby() -> RoomAuthority:
    room = make_room(clone=True, phase="doors", starts_at=1765033200)
    join(room, 9, "mo:moderator", 0.5)
    return room


def test_the_lobby_takes_questions_but_the_clone_waits_until_live() -> None:
    room = lobby()
    kf = next(m for m in sent_to(join(room, 1, "ann:spectator", 1.0), 1) if isinstance(m, Keyframe))
    assert (kf.phase, kf.starts_at) == ("doors", 1765033200)
    room.receive(1, Ask(1, "What is our plan for next year?"), 1.0)
    assert Ack(1, 1) in sent_to(store_all(room, room.effects()), 1)
    room.tick(1.1)
    assert not [e for e in room.effects() if isinstance(e, StartTurn)]
    released = control(room, 9, "event", "start", 1.2)
    assert Ack(7) in sent_to(released, 9)
    room.tick(1.3)
    effects = room.effects()
    assert [e for e in effects if isinstance(e, StartTurn)]
    events = [codec.decode_server(p) for e in effects if isinstance(e, Ship) for p in e.events]
    assert EventState(events[0].seq, "live", 1765033200) in events  # type: ignore[union-attr]


def test_a_move_the_table_has_not_is_refused_with_its_reason() -> None:
    room = lobby()
    room.receive(9, Control(3, "event", "resume"), 1.0)
    (error,) = sent_to(room.effects(), 9)
    assert isinstance(error, Error) and error.code == ErrorCode.NOT_ALLOWED
    assert error.reason == "the event is doors: cannot resume" and error.ref == 3
    room.receive(9, Control(4, "event", "party"), 1.0)
    (error,) = sent_to(room.effects(), 9)
    assert isinstance(error, Error) and error.code == ErrorCode.BAD_MESSAGE
    assert room.event.phase == "doors"


def test_only_staff_move_the_event() -> None:
    room = lobby()
    join(room, 1, "ann:spectator", 1.0)
    room.receive(1, Control(3, "event", "start"), 1.0)
    (error,) = sent_to(room.effects(), 1)
    assert isinstance(error, Error) and error.code == ErrorCode.NOT_ALLOWED
    assert room.event.phase == "doors"


def speaking(room: RoomAuthority, now: float) -> tuple[int, int]:
    """Start an answer of two sentences of one second each; returns (answer id, its start)."""
    join(room, 1, "ann:spectator", now)
    room.receive(1, Ask(1, "What is our plan for next year?"), now)
    store_all(room, room.effects())
    room.tick(now)
    turn = next(e for e in room.effects() if isinstance(e, StartTurn))
    at = room.media_us(now + 0.01) + room.plan.lead_us
    room.turn_event(turn.answer_id, Said("One.", "approved", (), "en", "AI"), now + 0.01)
    room.turn_event(turn.answer_id, Voiced(_segment(50), at), now + 0.01)
    room.turn_event(turn.answer_id, Said("Two.", "approved", (), "en", "AI"), now + 0.01)
    room.turn_event(turn.answer_id, Voiced(_segment(50), at + 1_000_000), now + 0.01)
    return turn.answer_id, at


def test_hold_finishes_the_sentence_being_said_then_waits_and_resume_continues() -> None:
    room = make_room(clone=True)
    join(room, 9, "mo:moderator", 0.5)
    answer, at = speaking(room, 1.0)
    room.receive(1, Ask(2, "And what about the canteen menu?"), 1.0)
    store_all(room, room.effects())
    room.tick(1.2)
    room.effects()
    control(room, 9, "event", "hold", 1.3)  # in the first sentence
    packets: list[StagePacket] = []
    ends: list[StageEnd] = []
    now = 1.35
    while now < 4.0:
        room.tick(now)
        for e in room.effects():
            assert not isinstance(e, StartTurn), "the clone took a new question on hold"
            if isinstance(e, Ship):
                packets += [codec.decode_server(p) for p in e.stage]  # type: ignore[misc]
                ends += [m for m in map(codec.decode_server, e.events) if isinstance(m, StageEnd)]
            elif isinstance(e, Persist):
                answers = [r for r in e.records if isinstance(r, AnswerRecorded)]
                assert not answers or answers[0].outcome == "stopped"
                store_all(room, [e])
        now += 0.05
    # The first sentence played to its end and nothing of the second was sent.
    assert packets[-1].media_time_us + PACKET_US == at + 1_000_000
    assert [(m.answer, m.outcome) for m in ends] == [(answer, "stopped")]
    assert room.answer is None and room.event.phase == "hold"
    control(room, 9, "event", "resume", 4.0)
    room.tick(4.05)
    (turn,) = [e for e in room.effects() if isinstance(e, StartTurn)]
    assert turn.question.text == "And what about the canteen menu?"


def test_hold_before_the_clone_speaks_puts_the_question_back_first_in_line() -> None:
    room = make_room(clone=True)
    join(room, 9, "mo:moderator", 0.5)
    join(room, 1, "ann:spectator", 1.0)
    room.receive(1, Ask(1, "What is our plan for next year?"), 1.0)
    store_all(room, room.effects())
    room.tick(1.0)
    turn = next(e for e in room.effects() if isinstance(e, StartTurn))
    room.receive(9, Control(7, "event", "hold"), 1.1)
    effects = room.effects()
    assert StopTurn(turn.answer_id) in effects and room.answer is None
    store_all(room, effects)
    assert room.qa.questions[1].state == "approved"
    room.turn_event(turn.answer_id, Finished("done"), 1.2)  # the runner's late word: ignored
    room.tick(1.3)
    assert not [e for e in room.effects() if isinstance(e, StartTurn)]
    control(room, 9, "event", "resume", 1.4)
    room.tick(1.5)
    (again,) = [e for e in room.effects() if isinstance(e, StartTurn)]
    assert again.question.text == "What is our plan for next year?"


def test_ended_stops_the_clone_and_freezes_the_board_with_a_clear_code() -> None:
    room = make_room(clone=True)
    join(room, 9, "mo:moderator", 0.5)
    answer, _ = speaking(room, 1.0)
    room.receive(9, Control(7, "event", "end"), 1.2)
    assert StopTurn(answer) in room.effects() and room.answer is None
    for message in (Ask(5, "One more question please?"), Vote(6, 1)):
        room.receive(1, message, 1.3)
        (error,) = sent_to(room.effects(), 1)
        assert isinstance(error, Error) and error.code == ErrorCode.EVENT_ENDED
        assert "the event has ended" in error.reason
    room.receive(9, Moderate(8, "pin", 1), 1.3)
    (error,) = sent_to(room.effects(), 9)
    assert isinstance(error, Error) and error.code == ErrorCode.EVENT_ENDED
    room.tick(1.4)
    assert not [e for e in room.effects() if isinstance(e, StartTurn)]
    # The doors may open again for a new event: the board takes questions once more.
    control(room, 9, "event", "open", 2.0)
    room.receive(1, Ask(9, "A question for the next event?"), 2.1)
    assert Ack(9, 2) in sent_to(store_all(room, room.effects()), 1)


def test_the_phase_and_start_are_stored_and_come_back_after_a_restart() -> None:
    room = lobby()
    room.receive(9, Control(7, "schedule", "1765040400"), 1.0)
    effects = room.effects()
    records = [r for e in effects if isinstance(e, Persist) for r in e.records]
    assert SettingSaved("starts_at", "1765040400") in records
    store_all(room, effects)
    room.receive(9, Control(8, "event", "start"), 1.1)
    effects = room.effects()
    records = [r for e in effects if isinstance(e, Persist) for r in e.records]
    assert SettingSaved("phase", "live") in records
    settings = {"starts_at": "1765040400", "phase": "live"}  # as the store keeps them
    again = RoomAuthority(
        RoomRules(plan=TickPlan(tick_hz=20, crowd_hz=10), phase="doors", starts_at=5),
        Crowd(list(range(len(SEATS))), 10, 8.0),
        SEATS,
        identify,
        saved=Saved(settings=settings),
    )
    assert (again.event.phase, again.event.starts_at) == ("live", 1765040400)
    kf = next(m for m in sent_to(join(again, 1, "ann:spectator"), 1) if isinstance(m, Keyframe))
    assert (kf.phase, kf.starts_at) == ("live", 1765040400)


def test_a_mic_granted_while_the_clone_talks_follows_its_answer() -> None:
    room = make_room(clone=True, mics=True)
    join(room, 9, "mo:moderator", 0.5)
    join(room, 2, "bob:attendee", 0.5)
    bob = room.room.member_of("bob")
    assert bob is not None
    room.receive(2, Ask(1, "And what about the canteen menu?"), 0.6)  # queued after ann's
    store_all(room, room.effects())
    answer, at = speaking(room, 1.0)
    room.receive(9, Mic(4, "grant", bob.slot), 1.1)
    released = store_all(room, room.effects())
    assert Ack(4, bob.slot) in sent_to(released, 9)  # queued, not MIC_BUSY
    assert not room.mics.mics and bob.slot in room.queued_mics
    queued = [m for m in shipped_events(room, 1.15) if isinstance(m, MicChanged)]
    assert [(m.slot, m.state) for m in queued] == [(bob.slot, "queued")]  # bob knows
    room.turn_event(answer, Finished("done"), 1.2)
    granted: list[MicChanged] = []
    now = 1.25
    while now < 4.0 and not granted:
        granted += [m for m in shipped_events(room, now) if isinstance(m, MicChanged)]
        now += 0.05
    assert room.media_us(now) >= at + 2_000_000  # only once the answer has played out
    assert [(m.slot, m.state) for m in granted] == [(bob.slot, "granted")]
    room.tick(now + 1.0)
    assert not [e for e in room.effects() if isinstance(e, StartTurn)]  # the mic goes first


def test_a_queued_mic_can_be_revoked_before_it_starts() -> None:
    room = make_room(clone=True, mics=True)
    join(room, 9, "mo:moderator", 0.5)
    join(room, 2, "bob:attendee", 0.5)
    bob = room.room.member_of("bob")
    assert bob is not None
    speaking(room, 1.0)
    room.receive(9, Mic(4, "grant", bob.slot), 1.1)
    store_all(room, room.effects())
    room.receive(9, Mic(5, "revoke", bob.slot), 1.2)
    assert Ack(5, bob.slot) in sent_to(store_all(room, room.effects()), 9)
    assert not room.queued_mics
    changes = [m for m in shipped_events(room, 1.3) if isinstance(m, MicChanged)]
    assert [(m.state, m.reason) for m in changes] == [("queued", ""), ("ended", "revoked")]


def test_the_headset_client_state_follows_the_phase() -> None:
    state = RoomState()
    state.apply(Keyframe(3, 0, [], b"", phase="doors", starts_at=1765033200))
    assert (state.phase, state.starts_at) == ("doors", 1765033200)
    state.apply(EventState(4, "live", 1765033200))
    assert state.phase == "live"
    state.apply(EventState(6, "ended", 0))  # a gap: not applied, a keyframe is asked for
    assert state.phase == "live" and state.needs_keyframe
