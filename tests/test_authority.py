"""The room authority without any I/O: messages and ticks in, typed effects out.

No sockets, no event loop, no database: the tests play the shell, feeding events with
the time and reading ``effects()``, as python-websockets' tests drive its ``Protocol``.
"""

from __future__ import annotations

import pytest

from townhall.plugin.state import RoomState
from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import (
    Ack,
    Ask,
    Control,
    Error,
    Join,
    Keyframe,
    Message,
    Moderate,
    Pose,
    QuestionChanged,
    StageEnd,
    StagePacket,
    StageStart,
    Vote,
    Welcome,
)
from townhall.server.core.authority import KEYFRAME_CATCH_UP, RoomAuthority
from townhall.server.core.crowd import Crowd
from townhall.server.core.effects import (
    Admit,
    Close,
    Persist,
    Send,
    Ship,
    StartTurn,
    StopTurn,
)
from townhall.server.core.identity import Identity
from townhall.server.core.rules import RoomRules
from townhall.server.core.stage import PACKET_US, Segment
from townhall.server.core.tickplan import TickPlan
from townhall.server.core.turns import Finished, Said, Voiced
from townhall.server.store.records import AnswerRecorded, QuestionSaved, VoteCast

SEATS = [(float(i), 0.0, 5.0) for i in range(8)]


def identify(token: str) -> Identity:
    """Tokens here are "user:role"."""
    if ":" not in token:
        raise ProtocolError(ErrorCode.AUTH_INVALID, "token rejected")
    user, role = token.split(":")
    return Identity(user, user.title(), role, "main", 0.0)  # type: ignore[arg-type]


def make_room(**rules: object) -> RoomAuthority:
    base = {"plan": TickPlan(tick_hz=20, crowd_hz=10), "pause_s": 0.0}
    return RoomAuthority(
        RoomRules(**(base | rules)),  # type: ignore[arg-type]
        Crowd(list(range(len(SEATS))), 10, 8.0),
        SEATS,
        identify,
    )


def decoded(payloads: tuple[bytes, ...]) -> list[Message]:
    return [codec.decode_server(p) for p in payloads]


def sent_to(effects: list[object], conn: int) -> list[Message]:
    out: list[Message] = []
    for e in effects:
        if isinstance(e, Send | Admit) and e.conn == conn:
            out += decoded(e.payloads)
    return out


def join(room: RoomAuthority, conn: int, token: str, now: float = 0.0) -> list[object]:
    room.connect(conn, now)
    room.receive(conn, Join(1, 1, token), now)
    return list(room.effects())


def store_all(room: RoomAuthority, effects: list[object]) -> list[object]:
    """Play the store: every Persist commits; returns what the authority then released."""
    for e in effects:
        if isinstance(e, Persist):
            room.stored(e, True)
    return list(room.effects())


def test_join_admits_with_welcome_then_keyframe() -> None:
    room = make_room()
    effects = join(room, 1, "ann:attendee")
    admit = next(e for e in effects if isinstance(e, Admit))
    first, second = decoded(admit.payloads)
    assert isinstance(first, Welcome) and first.role == "attendee" and first.seat == 0
    assert isinstance(second, Keyframe)
    assert admit.cell >= 0 and admit.role == "attendee"


def test_a_bad_token_is_an_error_then_a_close_with_its_code() -> None:
    room = make_room()
    effects = join(room, 1, "nonsense")
    error = sent_to(effects, 1)[0]
    assert isinstance(error, Error) and error.fatal and error.code == ErrorCode.AUTH_INVALID
    close = next(e for e in effects if isinstance(e, Close))
    assert close.code == ErrorCode.AUTH_INVALID.close_code


def test_a_question_is_acknowledged_only_once_stored_and_shown_with_the_next_tick() -> None:
    room = make_room()
    join(room, 1, "ann:spectator")
    room.receive(1, Ask(7, "What is the plan for the new office?"), 1.0)
    (persist,) = room.effects()
    assert isinstance(persist, Persist)
    saved, vote = persist.records
    assert isinstance(saved, QuestionSaved) and saved.state == "approved"
    assert vote == VoteCast(saved.id, "ann")
    assert [e for e in persist.then if isinstance(e, Send)] != []  # the Ack waits in then
    room.tick(1.01)
    ship = next(e for e in room.effects() if isinstance(e, Ship))
    assert not any(isinstance(codec.decode_server(p), QuestionChanged) for p in ship.events)
    released = store_all(room, [persist])
    assert sent_to(released, 1) == [Ack(7, saved.id, False)]
    room.tick(1.06)
    ship = next(e for e in room.effects() if isinstance(e, Ship))
    changed = [codec.decode_server(p) for p in ship.events]
    assert [type(m) for m in changed] == [QuestionChanged]


def test_a_failed_commit_answers_with_a_store_error_and_nothing_shows() -> None:
    room = make_room()
    join(room, 1, "ann:spectator")
    room.receive(1, Ask(9, "Will the canteen reopen this year?"), 1.0)
    (persist,) = room.effects()
    assert isinstance(persist, Persist)
    room.stored(persist, False)
    (error,) = sent_to(room.effects(), 1)
    assert isinstance(error, Error) and error.code == ErrorCode.STORE and error.ref == 9
    room.tick(1.1)
    ship = next(e for e in room.effects() if isinstance(e, Ship))
    assert ship.events == ()


def test_votes_on_one_question_in_one_tick_go_out_once() -> None:
    room = make_room()
    join(room, 1, "ann:spectator")
    room.receive(1, Ask(1, "How do we grow next year?"), 1.0)
    store_all(room, room.effects())
    for n in range(2, 8):
        join(room, n, f"v{n}:spectator")
        room.receive(n, Vote(1, 1), 1.0)
        store_all(room, room.effects())
    room.tick(1.05)
    ship = next(e for e in room.effects() if isinstance(e, Ship))
    changed = [codec.decode_server(p) for p in ship.events]
    assert len(changed) == 1
    assert isinstance(changed[0], QuestionChanged) and changed[0].question.votes == 7


def test_roles_are_checked_before_any_handler() -> None:
    room = make_room()
    join(room, 1, "sam:spectator")
    room.receive(1, Pose(0, bytes(30)), 1.0)
    (error,) = sent_to(room.effects(), 1)
    assert isinstance(error, Error) and error.code == ErrorCode.NOT_ALLOWED
    assert error.about == Pose.TYPE and not error.fatal


def test_a_connection_that_never_joins_is_closed_at_its_deadline() -> None:
    room = make_room(join_timeout_s=2.0)
    room.connect(1, 0.0)
    room.tick(1.0)
    assert not [e for e in room.effects() if isinstance(e, Close)]
    room.tick(2.5)
    (close,) = [e for e in room.effects() if isinstance(e, Close)]
    assert close.code == ErrorCode.JOIN_TIMEOUT.close_code


def test_bytes_in_go_through_decoding_and_limits() -> None:
    room = make_room()
    join(room, 1, "ann:spectator")
    room.receive_data(1, b"\xc1", 1.0)  # not msgpack
    (error,) = sent_to(room.effects(), 1)
    assert isinstance(error, Error) and error.code == ErrorCode.BAD_FRAME


# ------------------------------------------------------------------ the clone's turn


def _segment(frames: int) -> Segment:
    return Segment("approved", [bytes([i % 250]) for i in range(frames)], [], [(0.0, 0.2, "Hi")])


def start_answer(room: RoomAuthority, now: float) -> StartTurn:
    join(room, 1, "ann:spectator", now)
    room.receive(1, Ask(1, "What is our plan for next year?"), now)
    store_all(room, room.effects())
    room.tick(now)
    return next(e for e in room.effects() if isinstance(e, StartTurn))


def test_the_tick_ships_speech_a_lead_ahead_and_records_the_answer_after_it_played() -> None:
    room = make_room(clone=True)
    turn = start_answer(room, 1.0)
    assert turn.question.text == "What is our plan for next year?"
    lead = room.plan.lead_us
    at = room.media_us(1.01) + lead
    room.turn_event(
        turn.answer_id, Said("We grow.", "approved", ("S1",), "en", "I am an AI."), 1.01
    )
    room.turn_event(turn.answer_id, Voiced(_segment(10), at), 1.01)  # 200 ms of speech
    room.turn_event(turn.answer_id, Finished("done"), 1.02)
    shipped: list[StagePacket] = []
    started: list[StageStart] = []
    ended: list[StageEnd] = []
    now = 1.05
    while now < 1.6:
        room.tick(now)
        for e in room.effects():
            if isinstance(e, Ship):
                packets = [codec.decode_server(p) for p in e.stage]
                assert all(isinstance(p, StagePacket) for p in packets)
                for p in packets:
                    assert p.media_time_us <= room.media_us(now) + lead  # never further ahead
                shipped += packets  # type: ignore[arg-type]
                events = [codec.decode_server(p) for p in e.events]
                started += [m for m in events if isinstance(m, StageStart)]
                ended += [m for m in events if isinstance(m, StageEnd)]
            if isinstance(e, Persist) and any(isinstance(r, AnswerRecorded) for r in e.records):
                assert room.media_us(now) >= at + 200_000  # the speech has played out
                (answer,) = [r for r in e.records if isinstance(r, AnswerRecorded)]
                assert answer.outcome == "done" and answer.sources == ("S1",)
                store_all(room, [e])
        now += 0.05
    assert [p.index for p in shipped] == list(range(5)) and shipped[0].media_time_us == at
    assert len(started) == 1 and started[0].disclosure == "I am an AI."
    assert [m.outcome for m in ended] == ["done"] and ended[0].text == "We grow."


def test_a_stop_cuts_the_turn_and_nothing_more_is_shipped() -> None:
    room = make_room(clone=True)
    turn = start_answer(room, 1.0)
    join(room, 9, "mo:moderator", 1.0)
    at = room.media_us(1.01) + room.plan.lead_us
    room.turn_event(turn.answer_id, Said("Long.", "approved", (), "en", "AI"), 1.01)
    room.turn_event(turn.answer_id, Voiced(_segment(100), at), 1.01)  # two seconds
    room.tick(1.05)
    room.effects()
    room.receive(9, Control(3, "stop"), 1.1)
    effects = room.effects()
    assert StopTurn(turn.answer_id) in effects
    released = store_all(room, effects)
    assert Ack(3) in sent_to(released, 9)
    room.turn_event(turn.answer_id, Voiced(_segment(10), at + 2_000_000), 1.12)  # too late
    room.tick(1.15)
    (ship,) = [e for e in room.effects() if isinstance(e, Ship)]
    assert ship.stage == ()
    ends = [m for m in map(codec.decode_server, ship.events) if isinstance(m, StageEnd)]
    assert [m.outcome for m in ends] == ["stopped"]


def test_a_client_that_resumes_mid_answer_gets_the_speech_still_to_play() -> None:
    room = make_room(clone=True)
    turn = start_answer(room, 1.0)
    effects = join(room, 5, "bob:spectator", 1.0)
    welcome = sent_to(effects, 5)[0]
    assert isinstance(welcome, Welcome)
    at = room.media_us(1.01) + room.plan.lead_us
    room.turn_event(turn.answer_id, Said("Hello.", "approved", (), "en", "AI"), 1.01)
    room.turn_event(turn.answer_id, Voiced(_segment(50), at), 1.01)  # one second
    room.tick(1.05)
    room.effects()
    room.disconnect(5, 1.06)
    room.connect(6, 1.1)
    room.receive(6, Join(1, 1, "bob:spectator", welcome.resume, welcome.seq), 1.1)
    replay = [m for m in sent_to(room.effects(), 6) if isinstance(m, StagePacket)]
    assert replay and all(p.media_time_us + PACKET_US > room.media_us(1.1) for p in replay)


@pytest.mark.parametrize("outcome", ["skipped", "failed"])
def test_a_turn_that_ends_early_is_recorded_at_once(outcome: str) -> None:
    room = make_room(clone=True)
    turn = start_answer(room, 1.0)
    room.turn_event(turn.answer_id, Finished(outcome), 1.1)  # type: ignore[arg-type]
    (persist,) = [e for e in room.effects() if isinstance(e, Persist)]
    answers = [r for r in persist.records if isinstance(r, AnswerRecorded)]
    assert answers[0].outcome == outcome
    state = next(r for r in persist.records if isinstance(r, QuestionSaved)).state
    assert state == {"skipped": "rejected", "failed": "escalated"}[outcome]


def test_errors_are_counted_when_sent_not_when_prepared() -> None:
    room = make_room()
    join(room, 1, "ann:spectator")
    room.receive(1, Ask(1, "What is the plan for the canteen?"), 1.0)
    (persist,) = room.effects()
    assert isinstance(persist, Persist)
    room.stored(persist, True)
    room.effects()  # the Ack
    assert "STORE" not in room.counters.errors_sent
    room.receive(1, Ask(2, "Where do we meet next quarter?"), 1.1)
    (persist,) = room.effects()
    assert isinstance(persist, Persist)
    room.stored(persist, False)
    assert room.counters.errors_sent["STORE"] == 1


# ------------------------------------------------------------------ nothing unstored is shown


def keyframe_of(effects: list[object], conn: int) -> Keyframe:
    return next(m for m in sent_to(effects, conn) if isinstance(m, Keyframe))


def test_a_question_not_yet_stored_is_on_no_board_and_takes_no_vote() -> None:
    room = make_room(clone=True)
    join(room, 1, "ann:spectator")
    room.receive(1, Ask(1, "Will the canteen reopen this year?"), 1.0)
    (persist,) = room.effects()
    assert isinstance(persist, Persist)
    qid = next(r for r in persist.records if isinstance(r, QuestionSaved)).id
    assert keyframe_of(join(room, 2, "bob:spectator", 1.1), 2).questions == []
    room.receive(2, Vote(5, qid), 1.2)
    (error,) = sent_to(room.effects(), 2)
    assert isinstance(error, Error) and error.ref == 5 and error.code != ErrorCode.INTERNAL
    room.receive(2, Ask(6, "Will the canteen reopen this year??"), 1.2)  # its twin: no merge
    (twin,) = room.effects()
    assert isinstance(twin, Persist)
    assert next(r for r in twin.records if isinstance(r, QuestionSaved)).id != qid
    room.tick(1.3)  # the clone takes nothing that is not stored
    assert not [e for e in room.effects() if isinstance(e, StartTurn)]
    room.stored(persist, False)
    room.effects()
    assert qid not in room.qa.questions
    room.receive(1, Ask(2, "Where do we meet next quarter?"), 1.4)
    (again,) = room.effects()
    assert isinstance(again, Persist)
    assert next(r for r in again.records if isinstance(r, QuestionSaved)).id > qid + 1


def test_a_vote_the_store_refused_is_taken_back() -> None:
    room = make_room()
    join(room, 1, "ann:spectator")
    room.receive(1, Ask(1, "How do we grow next year?"), 1.0)
    store_all(room, room.effects())
    join(room, 2, "bob:spectator", 1.0)
    room.receive(2, Vote(2, 1), 1.1)
    (persist,) = room.effects()
    assert isinstance(persist, Persist) and room.qa.questions[1].votes == 2
    room.stored(persist, False)
    assert isinstance(sent_to(room.effects(), 2)[0], Error)
    assert room.qa.questions[1].votes == 1
    room.tick(1.2)
    assert keyframe_of(join(room, 3, "cy:spectator", 1.2), 3).questions[0].votes == 1


def test_a_moderation_the_store_refused_is_taken_back() -> None:
    room = make_room(mode="moderated")
    join(room, 1, "ann:spectator")
    room.receive(1, Ask(1, "How do we grow next year?"), 1.0)
    room.receive(1, Ask(2, "What happens to the Lisbon office?"), 1.0)
    store_all(room, room.effects())
    join(room, 9, "mo:moderator", 1.0)
    for ref, action, target in [(3, "merge", 2), (4, "approve", 0), (5, "pin", 0)]:
        room.receive(9, Moderate(ref, action, 1, "", target), 1.1)  # type: ignore[arg-type]
        (persist,) = [e for e in room.effects() if isinstance(e, Persist)]
        room.stored(persist, False)
        room.effects()
    first, second = room.qa.questions[1], room.qa.questions[2]
    assert (first.state, first.merged_into, first.pinned) == ("submitted", 0, False)
    assert second.votes == 1


# ------------------------------------------------------------------ after a crash


@pytest.mark.parametrize("then", ["requeue", "escalate"])
def test_an_answer_a_crash_cut_short_is_closed_on_start(then: str) -> None:
    from townhall.server.core.authority import Saved
    from townhall.server.core.qa import Question

    cut = Question(4, "What is our plan?", "en", "ann", "Ann", -1, 1.0, "answering", {"ann"})
    cut.answer_id = 3
    room = RoomAuthority(
        RoomRules(clone=True, pause_s=0.0, interrupted=then),  # type: ignore[arg-type]
        Crowd(list(range(len(SEATS))), 10, 8.0),
        SEATS,
        identify,
        saved=Saved([cut], max_answer_id=2, max_question_id=4),
    )
    (persist,) = [e for e in room.effects() if isinstance(e, Persist)]
    (answer,) = [r for r in persist.records if isinstance(r, AnswerRecorded)]
    assert (answer.answer_id, answer.question_id, answer.outcome) == (3, 4, "interrupted")
    (saved,) = [r for r in persist.records if isinstance(r, QuestionSaved)]
    assert saved.state == {"requeue": "approved", "escalate": "escalated"}[then]
    store_all(room, [persist])
    room.tick(1.0)
    turns = [e for e in room.effects() if isinstance(e, StartTurn)]
    if then == "requeue":
        assert [(t.answer_id, t.question.id) for t in turns] == [(4, 4)]  # a new answer id
    else:
        assert turns == []


# ------------------------------------------------------------------ a crowd joining at once


def test_joiners_of_one_tick_share_a_keyframe_and_get_the_events_after_it() -> None:
    room = make_room()
    join(room, 1, "ann:attendee")
    first = keyframe_of(join(room, 2, "bob:attendee", 0.01), 2)
    messages = sent_to(join(room, 3, "cy:attendee", 0.02), 3)
    welcome, keyframe = messages[0], messages[1]
    assert isinstance(welcome, Welcome) and isinstance(keyframe, Keyframe)
    assert keyframe == first  # the same frame, not built again
    state = RoomState()
    for m in messages:
        state.apply(m)
    assert state.seq == welcome.seq > keyframe.seq and not state.needs_keyframe
    room.tick(0.05)
    room.effects()
    fresh = keyframe_of(join(room, 4, "dee:spectator", 0.06), 4)
    assert fresh.seq == state.seq and fresh.participants == list(state.participants.values())


def test_a_crowd_joining_in_one_tick_builds_few_keyframes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every attendee's join is an event; a keyframe each would cost O(attendees) a join."""
    seats = [(float(i % 20), float(i // 20), 5.0) for i in range(300)]
    room = RoomAuthority(
        RoomRules(plan=TickPlan(tick_hz=20, crowd_hz=10), pause_s=0.0),
        Crowd(list(range(len(seats))), 10, 8.0),
        seats,
        identify,
    )
    built = 0
    build = room._build_keyframe

    def counted(now: float) -> bytes:
        nonlocal built
        built += 1
        return build(now)

    monkeypatch.setattr(room, "_build_keyframe", counted)
    for conn in range(1, 301):
        messages = sent_to(join(room, conn, f"u{conn}:attendee", 1.0), conn)
        state = RoomState()
        for m in messages:
            state.apply(m)
        assert state.seq == room.room.log.last_seq and len(state.participants) == conn
    assert built <= 300 // KEYFRAME_CATCH_UP + 1
