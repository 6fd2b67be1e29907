"""A big board: the room's indexes stay the board's order, keyframes stay small, the rest
comes on request, and a room takes at most ``qa.max_questions``.

Pure: the queue and the authority without I/O (bench/board.py measures the real server).
"""

from __future__ import annotations

import random

import pytest

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.messages import (
    Ask,
    Board,
    BoardRequest,
    Keyframe,
    Moderate,
    QuestionChanged,
    Vote,
)
from townhall.server.core.qa import BOARD_RECENT, BOARD_TOP, QaQueue, similarity

from .test_authority import join, make_room, sent_to, store_all

WORDS = "plan office budget hiring remote travel bonus laptop canteen parking roadmap AI".split()


def text(rng: random.Random) -> str:
    return "What about the " + " ".join(rng.sample(WORDS, rng.randint(2, 5))) + "?"


@pytest.mark.parametrize("seed", range(8))
def test_the_index_is_the_board_order_after_any_changes(seed: int) -> None:
    rng = random.Random(seed)
    q = QaQueue(mode=rng.choice(["auto", "moderated"]))
    for step in range(300):
        ids = list(q.questions)
        action = rng.random()
        try:
            if action < 0.35 or not ids:
                q.submit(text(rng), asker_id=f"u{step}", asker_name="x", now=step)
            elif action < 0.6:
                q.vote(rng.choice(ids), f"v{rng.randint(0, 30)}", rng.random() < 0.8)
            elif action < 0.7:
                q.approve(rng.choice(ids))
            elif action < 0.75:
                q.reject(rng.choice(ids))
            elif action < 0.8:
                q.pin(rng.choice(ids), rng.random() < 0.5)
            elif action < 0.85:
                q.move(rng.choice(ids), rng.randint(1, 10))
            elif action < 0.9:
                q.merge(rng.choice(ids), rng.choice(ids))
            elif action < 0.95:
                nxt = q.next_question()
                if nxt is not None:
                    q.take(nxt.id, step)
                    q.settle(nxt.id, rng.choice(["answer", "escalate", "skip"]))
            else:
                q.set_mode(rng.choice(["auto", "moderated"]))
        except Refused:
            pass
        assert q.index.open_ids() == [x.id for x in q.ordered()]
        # Everyone's board holds the approved; the rest is the staff's and the asker's.
        assert q.public.open_ids() == [x.id for x in q.ordered() if x.public]
        assert q.pending.open_ids() == [x.id for x in q.ordered() if not x.public]
        closed = sorted(x for x in q.questions if x not in q.index.open_ids())
        assert q.public.recent_closed(1000) == [x for x in closed if q.questions[x].public]
        assert q.pending.recent_closed(1000) == [x for x in closed if not q.questions[x].public]
        approved = [x for x in q.ordered() if x.state == "approved"]
        assert q.next_question() == (approved[0] if approved else None)


@pytest.mark.parametrize("seed", range(4))
def test_near_duplicates_found_by_the_index_are_those_a_scan_finds(seed: int) -> None:
    rng = random.Random(seed)
    q = QaQueue(merge_threshold=0.6)
    for n in range(150):
        candidate = text(rng)
        open_ = [x for x in q.questions.values() if x.state in ("submitted", "approved")]
        best, score = None, q.merge_threshold
        for x in open_:
            if not x.merged_into and similarity(candidate, x.text) >= score:
                best, score = x, similarity(candidate, x.text)
        assert q.find_duplicate(candidate) is best
        q.submit(candidate, asker_id=f"u{n}", asker_name="x", now=n)


def test_a_room_takes_at_most_max_questions() -> None:
    q = QaQueue(max_questions=3)
    for n in range(3):
        q.submit(f"Question number {n} about topic{n}", asker_id="u", asker_name="x", now=n)
    with pytest.raises(Refused) as info:
        q.submit("Something else entirely, please?", asker_id="u", asker_name="x", now=9)
    assert info.value.code is ErrorCode.BOARD_FULL and "at most 3" in info.value.reason
    again, merged = q.submit("Question number 1 about topic1", asker_id="v", asker_name="y", now=9)
    assert merged and again.votes == 2  # a vote for one on the board still counts


def test_keyframes_carry_the_top_of_the_board_and_the_joiners_own_questions() -> None:
    room = make_room()
    join(room, 1, "ann:spectator")
    for n in range(400):
        join(room, 100 + n, f"a{n}:spectator")
        room.receive(100 + n, Ask(1, f"Question number {n} about topic{n}"), 1.0)
        store_all(room, room.effects())
    join(room, 2, "bob:spectator")
    room.receive(2, Vote(1, 7), 1.0)  # to the top of the board
    room.receive(2, Ask(2, "When does the new canteen open?"), 1.0)  # the last of 401
    store_all(room, room.effects())
    room.tick(1.1)
    room.effects()
    room.disconnect(2, 1.2)
    effects = join(room, 3, "bob:spectator", 1.3)
    messages = sent_to(effects, 3)
    keyframe = next(m for m in messages if isinstance(m, Keyframe))
    assert len(keyframe.questions) <= BOARD_TOP + BOARD_RECENT
    assert [x.id for x in keyframe.questions[:2]] == [7, 1]  # two votes, then the oldest
    board = next(m for m in messages if isinstance(m, Board))
    assert board.ref == 0 and board.open == 401
    assert [x.id for x in board.questions] == [401]  # bob's own, not in the keyframe
    room.receive(3, BoardRequest(9, 100, 50), 1.4)
    (page,) = sent_to(room.effects(), 3)
    assert isinstance(page, Board) and page.ref == 9 and page.offset == 100
    order = [x.id for x in room.qa.ordered()]
    assert [x.id for x in page.questions] == order[100:150]


def test_a_duplicate_check_compares_with_a_few_questions_not_all() -> None:
    q = QaQueue()
    for n in range(1000):  # every one holds "question", "subject" and "plan"
        q.submit(f"Question {n} on subject s{n}x: what is the plan?", asker_id="u", asker_name="x",
                 now=n)  # fmt: skip
    words = q.questions[501].words()  # "Question 500 ..."
    assert len(q.index.candidates(words)) <= 2
    assert q.find_duplicate("question 500 on subject s500x, what is the plan") is q.questions[501]


def test_a_big_moderated_board_shows_questions_waiting_for_approval_only_to_staff_and_asker() -> (
    None
):
    room = make_room(mode="moderated")
    join(room, 1, "mod:moderator")
    for n in range(120):  # 120 waiting, from 120 askers; the staff approve every third
        join(room, 100 + n, f"a{n}:spectator")
        room.receive(100 + n, Ask(1, f"Question number {n} about topic{n}"), 1.0)
        store_all(room, room.effects())
    approved = list(range(1, 121, 3))
    for qid in approved:
        room.receive(1, Moderate(qid, "approve", qid), 1.0)
    store_all(room, room.effects())
    room.tick(1.1)
    room.effects()
    # A newcomer's keyframe and pages: approved questions only, counted as such.
    messages = sent_to(join(room, 2, "bob:spectator", 1.2), 2)
    keyframe = next(m for m in messages if isinstance(m, Keyframe))
    assert sorted(x.id for x in keyframe.questions) == approved
    assert not [m for m in messages if isinstance(m, QuestionChanged)]
    room.receive(2, BoardRequest(9, 0, 100), 1.3)
    (page,) = sent_to(room.effects(), 2)
    assert isinstance(page, Board) and page.open == len(approved)
    assert sorted(x.id for x in page.questions) == approved
    # An asker gets their own question privately (seq 0), after a reload too.
    room.disconnect(101, 1.4)
    mine = sent_to(join(room, 201, "a1:spectator", 1.5), 201)
    assert [(m.seq, m.question.id) for m in mine if isinstance(m, QuestionChanged)] == [(0, 2)]
    # A near duplicate of someone else's waiting question is a new question, not a vote.
    room.receive(2, Ask(2, "Question number 1 about topic1"), 1.6)
    store_all(room, room.effects())
    assert room.qa.questions[2].votes == 1 and len(room.qa.questions) == 121
    # The staff get the first 50 waiting as private updates and page through the whole queue.
    messages = sent_to(join(room, 3, "mia:moderator", 1.7), 3)
    waiting = [m.question.id for m in messages if isinstance(m, QuestionChanged)]
    assert len(waiting) == BOARD_TOP and not set(waiting) & set(approved)
    room.receive(3, BoardRequest(7, 0, 100), 1.8)
    (page,) = sent_to(room.effects(), 3)
    assert isinstance(page, Board) and page.open == 121
    assert [x.id for x in page.questions] == [x.id for x in room.qa.ordered()][:100]
