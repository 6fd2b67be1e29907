"""The Q&A queue (pure) and its SQLite store: states, votes, merging, order, durability."""

from __future__ import annotations

import pytest

from townhall.protocol.errors import ErrorCode, Refused
from townhall.server.core.qa import QaQueue, similarity
from townhall.server.core.stage import PACKET_US, Segment, StageTimeline


def ask(q: QaQueue, text: str, who: str = "u1") -> int:
    question, _ = q.submit(text, asker_id=who, asker_name=who, now=1.0)
    return question.id


def test_auto_mode_approves_and_orders_by_votes() -> None:
    q = QaQueue(mode="auto")
    a = ask(q, "What is our plan for the next quarter?")
    b = ask(q, "Will the office in Lviv stay open?", "u2")
    q.vote(b, "u3")
    assert [x.id for x in q.ordered()] == [b, a]
    assert q.next_question().id == b  # type: ignore[union-attr]


def test_moderated_mode_waits_for_approval_then_follows_order() -> None:
    q = QaQueue(mode="moderated")
    a = ask(q, "How do we use AI tools safely?")
    b = ask(q, "What are the hiring plans this year?", "u2")
    assert q.next_question() is None
    q.approve(a)
    q.approve(b)
    q.vote(a, "u9")
    q.move(b, 1)
    assert q.next_question().id == b  # type: ignore[union-attr]
    q.pin(a)
    assert q.next_question().id == a  # type: ignore[union-attr]


def test_one_vote_per_person_and_withdraw() -> None:
    q = QaQueue()
    a = ask(q, "What about the roadmap for mobile?")
    for _ in range(3):
        q.vote(a, "u2")
    assert q.questions[a].votes == 2
    q.vote(a, "u2", up=False)
    assert q.questions[a].votes == 1


def test_near_duplicates_merge_and_combine_votes() -> None:
    q = QaQueue()
    first, merged = q.submit(
        "What is the roadmap for the mobile app?", asker_id="u1", asker_name="A", now=1.0
    )
    again, merged = q.submit(
        "what is the  roadmap for the Mobile App", asker_id="u2", asker_name="B", now=1.0
    )
    assert merged and again.id == first.id and first.votes == 2
    other, merged = q.submit(
        "When do we move to the new office?", asker_id="u3", asker_name="C", now=1.0
    )
    assert not merged and other.id != first.id
    assert similarity("Яка стратегія компанії на рік?", "яка стратегія компанії на рік") == 1.0


def test_moderator_merge_reject_edit() -> None:
    q = QaQueue(mode="moderated")
    a = ask(q, "How are we doing on security?")
    b = ask(q, "Tell us about security incidents", "u2")
    q.merge(b, into=a)
    assert q.questions[a].votes == 2 and q.questions[b].merged_into == a
    q.edit(a, "How are we doing on security this year?")
    assert q.questions[a].text.endswith("this year?")
    q.reject(a)
    with pytest.raises(Refused):
        q.approve(a)


@pytest.mark.parametrize("text", ["", "  a ", "x" * 501])
def test_bad_questions_are_refused(text: str) -> None:
    with pytest.raises(Refused) as info:
        QaQueue().submit(text, asker_id="u", asker_name="u", now=1.0)
    assert info.value.code is ErrorCode.BAD_MESSAGE


def test_votes_on_closed_questions_are_refused() -> None:
    q = QaQueue()
    a = ask(q, "What did we learn from last year?")
    q.take(a, answer_id=1)
    q.settle(a, "answer")
    with pytest.raises(Refused) as info:
        q.vote(a, "u2")
    assert info.value.code is ErrorCode.NOT_ALLOWED


def test_switch_to_auto_approves_waiting() -> None:
    q = QaQueue(mode="moderated")
    a = ask(q, "Is the hybrid policy changing?")
    assert q.set_mode("auto") == [a]
    assert q.questions[a].state == "approved"


def test_timeline_packets_hold_frames_on_the_media_clock() -> None:
    tl = StageTimeline(answer_id=1, start_us=1_000_000)
    seg = Segment(
        "approved", [bytes([i]) for i in range(5)], [(0.0, b"A"), (0.05, b"B")], [(0.0, 0.1, "Hi")]
    )
    start = tl.append(seg, not_before_us=0)
    assert start == 1_000_000
    packets = tl.due(now_us=1_000_000 + 10 * PACKET_US)
    assert [p.index for p in packets] == [0, 1, 2]
    assert [len(p.opus) for p in packets] == [2, 2, 1]
    assert packets[0].opus == [b"\x00", b"\x01"]
    assert packets[0].captions[0].text == "Hi" and packets[0].captions[0].start_us == 1_000_000
    assert packets[1].anim == b"B" and packets[1].anim_times_us == [10_000]
    # A late sentence starts on the 20 ms grid after a gap: 1.13 s -> 1.14 s, so the
    # packet at 1.12 s holds 20 ms of silence (no frame) and the sentence's first frame.
    assert tl.append(seg, not_before_us=1_000_000 + 130_000) == 1_140_000
    tl.closed = True
    rest = tl.due(now_us=10**9)
    assert rest[0].media_time_us == 1_000_000 + 3 * PACKET_US
    assert rest[0].opus == [b"\x00"] and rest[1].opus == [b"\x01", b"\x02"]
    assert tl.done()


def test_restore_puts_an_answer_cut_short_back_in_the_queue() -> None:
    q = QaQueue()
    a = ask(q, "What is the plan for the new office?")
    q.take(a, answer_id=3)
    restored = QaQueue()
    restored.restore(q.questions.values())
    assert restored.questions[a].state == "answering"  # until the room closes it
    assert restored.close_interrupted() == [restored.questions[a]]
    assert restored.questions[a].state == "approved"
    assert restored.next_question().id == a  # type: ignore[union-attr]
    assert restored.next_id == a + 1
