"""Every edge of the room's state machines, and every illegal move refused (h11 style).

Each table is walked exhaustively: for every (state, event) pair the move either lands
where the table says or raises IllegalTransition and leaves the state as it was.
"""

from __future__ import annotations

from typing import get_args

import pytest

from townhall.protocol.errors import ErrorCode, Refused
from townhall.server.core import mics, qa, room
from townhall.server.core.identity import Identity
from townhall.server.core.mics import MicBoard
from townhall.server.core.qa import QaQueue, Question
from townhall.server.core.room import Member, Room
from townhall.server.core.transitions import IllegalTransition, move

TABLES = [
    ("question", qa.TRANSITIONS, get_args(qa.QuestionEvent)),
    ("member", room.TRANSITIONS, get_args(room.PresenceEvent)),
    ("mic", mics.TRANSITIONS, get_args(mics.MicEvent)),
]


@pytest.mark.parametrize(("name", "table", "events"), TABLES, ids=[t[0] for t in TABLES])
def test_every_pair_moves_as_the_table_says_or_raises(
    name: str, table: dict[str, dict[str, str]], events: tuple[str, ...]
) -> None:
    states = list(table)
    for state in states:
        for event in events:
            if event in table[state]:
                assert move(table, name, state, event) == table[state][event]
                assert table[state][event] in states
            else:
                with pytest.raises(IllegalTransition) as info:
                    move(table, name, state, event)
                assert info.value.code is ErrorCode.NOT_ALLOWED
                assert state in info.value.reason and event in info.value.reason


def test_every_state_is_reachable_and_the_end_states_are_final() -> None:
    for _, table, _ in TABLES:
        reached = {"submitted", "connected", "granted"} & set(table)
        frontier = list(reached)
        while frontier:
            for target in table[frontier.pop()].values():
                if target not in reached:
                    reached.add(target)
                    frontier.append(target)
        assert reached == set(table)
    assert not qa.TRANSITIONS["answered"] and not qa.TRANSITIONS["rejected"]
    assert not qa.TRANSITIONS["escalated"] and not room.TRANSITIONS["gone"]
    assert not mics.TRANSITIONS["ended"]


# ------------------------------------------------------------------ questions, edge by edge

QUESTION_EDGES = [
    (state, event, target) for state, row in qa.TRANSITIONS.items() for event, target in row.items()
]


def _question_in(state: str) -> tuple[QaQueue, Question]:
    """A queue holding one question brought to ``state`` through legal moves only."""
    q = QaQueue(mode="moderated")
    question, _ = q.submit("What is our plan for next year?", asker_id="u", asker_name="U", now=1)
    path = {
        "submitted": [],
        "approved": ["approve"],
        "answering": ["approve", "take"],
        "answered": ["approve", "take", "answer"],
        "escalated": ["approve", "take", "escalate"],
        "rejected": ["reject"],
    }[state]
    for event in path:
        if event == "approve":
            q.approve(question.id)
        elif event == "reject":
            q.reject(question.id)
        elif event == "take":
            q.take(question.id, 1)
        else:
            q.settle(question.id, event)  # type: ignore[arg-type]
    assert question.state == state
    return q, question


@pytest.mark.parametrize(("state", "event", "target"), QUESTION_EDGES)
def test_question_edge_through_the_queue(state: str, event: str, target: str) -> None:
    q, question = _question_in(state)
    if event == "approve":
        q.approve(question.id)
    elif event == "reject":
        q.reject(question.id)
    elif event == "merge":
        other, _ = q.submit("Something else entirely, please?", asker_id="v", asker_name="V", now=2)
        q.merge(question.id, other.id)
        assert question.merged_into == other.id and other.votes == 2
    elif event == "take":
        q.take(question.id, 7)
        assert question.answer_id == 7
    elif event == "requeue":
        assert q.close_interrupted() == [question]
    else:
        q.settle(question.id, event)  # type: ignore[arg-type]
    assert question.state == target


@pytest.mark.parametrize("state", ["answering", "answered", "rejected", "escalated"])
def test_closed_questions_refuse_moderation_and_votes(state: str) -> None:
    q, question = _question_in(state)
    for act in (q.approve, q.reject, q.pin):
        with pytest.raises(Refused):
            act(question.id)
    with pytest.raises(Refused):
        q.vote(question.id, "someone")
    assert question.state == state


def test_an_illegal_settle_leaves_the_question_as_it_was() -> None:
    q, question = _question_in("approved")
    with pytest.raises(IllegalTransition):
        q.settle(question.id, "answer")  # not answering yet
    assert question.state == "approved"


# ------------------------------------------------------------------ members, edge by edge


def _room_with_member() -> tuple[Room, Member]:
    r = Room("main", seat_count=4)
    result = r.join(Identity("u", "U", "attendee", "main", 0.0), 0.0, connection_id=1)
    return r, result.member


def test_member_edges() -> None:
    r, m = _room_with_member()
    assert m.presence == "connected"
    r.join(Identity("u", "U", "attendee", "main", 0.0), 1.0, 2)  # rejoin while connected
    assert m.presence == "connected" and m.connection_id == 2
    r.disconnect(m.slot, 2, 2.0)  # drop
    assert m.presence == "away"
    r.join(Identity("u", "U", "attendee", "main", 0.0), 3.0, 3, resume=m.resume)  # rejoin
    assert m.presence == "connected"
    r.disconnect(m.slot, 3, 4.0)
    assert r.expire(4.0 + r.resume_window_s) == [m.slot]  # expire
    assert m.presence == "gone"
    r2, m2 = _room_with_member()
    r2.leave(m2.slot)  # leave while connected
    assert m2.presence == "gone"
    r3, m3 = _room_with_member()
    r3.disconnect(m3.slot, 1, 1.0)
    r3.leave(m3.slot)  # leave while away
    assert m3.presence == "gone" and m3.slot not in r3.members


def test_member_illegal_moves_raise() -> None:
    r, m = _room_with_member()
    with pytest.raises(IllegalTransition):
        m.move("expire")  # a connected member does not expire
    r.leave(m.slot)
    for event in ("drop", "rejoin", "leave", "expire"):
        with pytest.raises(IllegalTransition):
            m.move(event)  # type: ignore[arg-type]


# ------------------------------------------------------------------ mics, edge by edge


def test_mic_edges() -> None:
    board = MicBoard(max_live=1, accept_timeout_s=5, connect_timeout_s=5, time_limit_s=60)
    granted = board.grant(3, "u", 0.0)
    assert granted.state == "granted"
    assert board.offer(3, "u", 1.0).state == "connecting"  # offer
    change = board.connected(3, granted.generation, 2.0)  # connected
    assert change is not None and change.state == "live"
    ended = board.end(3, "released")  # end from live
    assert ended is not None and ended.state == "ended" and ended.reason == "released"
    board.grant(4, "v", 3.0)
    declined = board.end(4, "released")  # end from granted
    assert declined is not None and declined.reason == "declined"
    board.grant(5, "w", 4.0)
    board.offer(5, "w", 4.0)
    failed = board.end(5, "failed")  # end from connecting
    assert failed is not None and failed.state == "ended"


def test_mic_illegal_moves_are_refused() -> None:
    board = MicBoard()
    g = board.grant(3, "u", 0.0)
    assert board.connected(3, g.generation, 1.0) is None  # connected before offer: no move
    assert board.get(3) is not None and board.get(3).state == "granted"  # type: ignore[union-attr]
    board.offer(3, "u", 1.0)
    with pytest.raises(Refused):
        board.offer(3, "u", 2.0)  # a second offer
    with pytest.raises(Refused) as info:
        board.grant(4, "v", 2.0)  # one mic at a time
    assert info.value.code is ErrorCode.MIC_BUSY
    mic = board.get(3)
    assert mic is not None
    board.end(3, "revoked")
    with pytest.raises(IllegalTransition):
        mic.move("connected")  # an ended mic stays ended
