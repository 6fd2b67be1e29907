"""The clone on stage, as the room runs it: when a turn starts, where its speech goes, how it ends.

Functions of the ``RoomAuthority`` (sans-I/O like it): a turn starts on a tick when an
approved question waits, no mic is open and the pause after the last answer is over; its
``Voiced`` segments go on the stage timeline one stage lead ahead on the media clock (later,
if they came late: never after they are due); each tick takes the packets due within the
lead into the ring and the Ship; the answer is recorded when its speech has played out, or at
once when it was stopped, skipped or failed, and StageEnd is shown once that is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from townhall.protocol import codec
from townhall.protocol.limits import (
    MAX_ANSWER_CHARS,
    MAX_QUESTION_CHARS,
    MAX_REASON_CHARS,
    MAX_SOURCES,
    clip,
    first,
)
from townhall.protocol.messages import (
    STAFF,
    Draft,
    Outcome,
    ReviewDecision,
    StageEnd,
    StageStart,
    StudioItems,
)
from townhall.server.core import live_mics
from townhall.server.core.effects import (
    BoardChanged,
    Effect,
    Log,
    ReviewTurn,
    Sequenced,
    StartTurn,
    StopTurn,
    TurnQuestion,
)
from townhall.server.core.qa import Question, QuestionEvent
from townhall.server.core.stage import StageTimeline
from townhall.server.core.turns import Answer, Drafted, Finished, Said, TurnEvent, Voiced
from townhall.server.store.records import (
    AnswerMedia,
    AnswerRecorded,
    EscalationRecorded,
    Record,
)

if TYPE_CHECKING:
    from townhall.server.core.authority import RoomAuthority

HEAD_HEIGHT_M = 1.2  # a seated asker's eyes, above the seat's floor point


def close_interrupted(room: RoomAuthority, now: float) -> None:
    """On start: an answer the last run left on stage (a crash, a kill -9) is recorded as
    ``interrupted`` and its question goes back to the queue, or to the human leader when
    ``clone.interrupted`` is ``escalate``; stored before anyone joins."""
    escalate = room.rules.interrupted == "escalate"
    cut = room.qa.close_interrupted(escalate)
    if not cut:
        return
    wall = room.wall(now)
    records: list[Record] = []
    for q in cut:
        language = q.language or "en"
        records.append(
            AnswerRecorded(q.answer_id, q.id, "", "escalated", (), language, wall, wall,
                           "interrupted")
        )  # fmt: skip
        if escalate:
            records.append(
                EscalationRecorded(wall, q.id, q.text, "answer_interrupted", language,
                                   "the server stopped while the clone was answering")
            )  # fmt: skip
        records.append(q.record())
    room.persist(records, BoardChanged(tuple(q.id for q in cut)))
    room.do(
        Log(
            "interrupted answers closed",
            {"questions": [q.id for q in cut], "then": "escalated" if escalate else "requeued"},
        )
    )


def stop_turn(room: RoomAuthority, now: float) -> None:
    """A moderator's stop: the answer ends now; speech not yet played is not sent."""
    answer = room.answer
    if answer is None:
        return
    room.do(StopTurn(answer.id))
    if answer.timeline is not None:
        room.ring.drop_answer(answer.id)
    finish(room, answer, "stopped", now)


def hold_turn(room: RoomAuthority, now: float) -> None:
    """A moderator's hold: the clone finishes the sentence it is saying and starts nothing
    new. An answer not yet speaking goes back to the queue (it is asked again on resume)."""
    answer = room.answer
    if answer is None or answer.finished is not None:
        return  # nothing on stage, or the answer is already complete and playing out
    if answer.leader and answer.timeline is None:
        return  # the leader's published words are not a queued question: they play, then hold
    room.do(StopTurn(answer.id))
    if answer.timeline is None:
        room.answer = None
        q = room.qa.settle(answer.question.id, "requeue")
        room.persist([q.record()], BoardChanged((q.id,)))
        return
    answer.timeline.cut_after(room.media_us(now))
    answer.finished, answer.held = "done", True


def start_leader_turn(room: RoomAuthority, now: float) -> bool:
    """The leader's words published from /studio go on stage before the next question."""
    turns = room.studio.leader_turns
    while turns:
        lt = turns.popleft()
        question = room.qa.questions.get(lt.question)
        if question is None:
            continue
        room.answer = Answer(lt.answer_id, question, now, room.wall(now), leader=True)
        room.answer.language = lt.language
        turn = TurnQuestion(question.id, question.text, lt.language, asker_gaze(room, question))
        room.do(StartTurn(lt.answer_id, turn, script=lt.text))
        return True
    return False


def start_turn(room: RoomAuthority, now: float) -> None:
    if start_leader_turn(room, now):
        return
    question = room.qa.next_question()
    if question is None:
        return
    answer_id = room.next_answer_id
    room.next_answer_id += 1
    room.qa.take(question.id, answer_id)
    room.answer = Answer(answer_id, question, now, room.wall(now))
    room.persist([question.record()], BoardChanged((question.id,)))
    turn = TurnQuestion(question.id, question.text, question.language, asker_gaze(room, question))
    room.do(StartTurn(answer_id, turn, room.qa.review))


def asker_gaze(room: RoomAuthority, question: Question) -> tuple[float, float, float] | None:
    if question.asker_slot < 0:
        return None
    member = room.room.members.get(question.asker_slot)
    if member is None or member.seat < 0 or member.identity.user_id != question.asker_id:
        return None
    x, y, z = room.seat_positions[member.seat]
    return (x, y + HEAD_HEIGHT_M, z)


def turn_event(room: RoomAuthority, answer_id: int, event: TurnEvent, now: float) -> None:
    """What the clone's turn reports; events of a turn already ended are ignored."""
    answer = room.answer
    if answer is None or answer.id != answer_id or answer.finished is not None:
        return
    if isinstance(event, Drafted):
        q = answer.question
        draft = Draft(
            answer.id,
            q.id,
            clip(q.text, MAX_QUESTION_CHARS),
            clip(event.text, MAX_ANSWER_CHARS),
            event.label,
            first(event.sources, MAX_SOURCES),
            event.language,
        )
        decided = answer.on_draft or (None if room.qa.review else "speak")
        if decided is not None:  # review was turned off, or Next pressed, while it drafted
            answer.reviewed = draft
            room.do(ReviewTurn(answer.id, decided))
            return
        answer.draft = draft
        room.broadcast(answer.draft, STAFF)
    elif isinstance(event, Said):
        answer.draft = None
        if not answer.spoken:
            answer.language, answer.disclosure = event.language, event.disclosure
        answer.spoken.append(event.text)
        answer.labels.append(event.label)
        answer.sources.extend(s for s in event.sources if s not in answer.sources)
    elif isinstance(event, Voiced):
        place(room, answer, event, now)
    elif isinstance(event, Finished):
        answer.draft = None
        if event.outcome == "done" and answer.timeline is not None:
            answer.timeline.closed = True
            answer.finished = "done"  # recorded once the speech has played out (tick)
        else:
            finish(room, answer, event.outcome, now)


def place(room: RoomAuthority, answer: Answer, event: Voiced, now: float) -> None:
    # Rendering took longer than the turn planned (a busy machine): the speech goes
    # later rather than reach anyone after it is due. Its frames are relative to it.
    at_us = max(event.at_us, room.media_us(now) + room.plan.lead_us)
    if answer.timeline is None:
        answer.timeline = StageTimeline(answer.id, start_us=at_us)
        q = answer.question
        answer.start = StageStart(
            0,
            answer.id,
            q.id,
            clip(q.text, MAX_QUESTION_CHARS),
            answer.label() if answer.labels else "approved",
            first(answer.sources, MAX_SOURCES),
            answer.language or q.language or "en",
            clip(answer.disclosure, MAX_REASON_CHARS),
            q.asker_slot,
            at_us,
        )
        room.emit(answer.start)
        answer.start = logged_start(room, answer.start)
    answer.timeline.append(event.segment, at_us)


def logged_start(room: RoomAuthority, start: StageStart) -> StageStart:
    return msgspec.structs.replace(start, seq=room.room.log.last_seq)


def finish(room: RoomAuthority, answer: Answer, outcome: Outcome, now: float) -> None:
    """Record the answer, move its question on, and announce the end once stored."""
    room.answer = None
    q = answer.question
    label = answer.label()
    text = clip(" ".join(answer.spoken), MAX_ANSWER_CHARS)
    sources, language = tuple(answer.sources), answer.language or q.language or "en"
    draft = answer.reviewed
    if outcome == "skipped" and not answer.spoken and draft is not None:
        # Skipped at review, never spoken: the record keeps what was drafted, under the
        # draft's own label (with nothing said, label() would call it escalated).
        label, text, sources = draft.label, draft.text, tuple(draft.sources)
        language = draft.language or language
    event: QuestionEvent = "answer"
    if outcome == "skipped":
        event = "skip"
    elif outcome == "failed" or (outcome == "done" and label == "escalated"):
        event = "escalate"
    if not answer.leader:  # the leader's words answer a question the clone escalated
        room.qa.settle(q.id, event)
    records: list[Record] = []
    wall = room.wall(now)
    if outcome == "failed":
        # A failed answer is not retried in a loop: it goes to the human leader instead.
        failed = EscalationRecorded(
            wall, q.id, q.text, "answer_failed", answer.language or q.language or "en",
            "the clone could not finish this answer (see the server log)", text,
        )  # fmt: skip
        records.append(failed)
        if not answer.leader:
            item = room.studio.inbox.add(failed, q.asker_id, q.asker_name)
            room.broadcast(StudioItems(0, "inbox", inbox=[item]), STAFF)
    recorded = AnswerRecorded(
        answer.id, q.id, text, label, sources, language, answer.started_wall, wall, outcome
    )
    records.append(recorded)
    if answer.packets:  # replayable in /studio as it was heard
        records.append(AnswerMedia(answer.id, tuple(answer.packets)))
    room.studio.record_answer(recorded, q.text)
    said = room.studio.inbox.said(q.id, text)
    if said is not None:  # the inbox shows what the clone said instead of answering
        room.broadcast(StudioItems(0, "inbox", inbox=[said]), STAFF)
    then: list[Effect] = []
    if not answer.leader:
        records.append(q.record())
        then.append(BoardChanged((q.id,)))
    if answer.start is not None:
        # Announced once stored: whoever sees StageEnd can rely on the record being there.
        end = StageEnd(0, answer.id, outcome, text, label, first(sources, MAX_SOURCES))
        then.append(Sequenced(end))
    room.persist(records, *then)
    room.next_turn_at = now if answer.hurry else now + room.rules.pause_s


def release_draft(room: RoomAuthority, decision: ReviewDecision) -> Answer | None:
    """Settle the answer's review without a moderator's Review (review off: speak; Next: skip).

    Returns the answer whose waiting draft was released now, if any; a turn still drafting
    gets the decision when its draft comes. Without this, turning review off or pressing
    Next while a draft waited left the clone waiting for a Review nobody would send.
    """
    answer = room.answer
    if answer is None or answer.timeline is not None or answer.finished is not None:
        return None
    if answer.draft is None:
        answer.on_draft = decision
        return None
    answer.reviewed, answer.draft = answer.draft, None
    return answer


def stage_tick(
    room: RoomAuthority, now: float, now_us: int
) -> tuple[tuple[bytes, ...], int, tuple[int, ...]]:
    """Start a turn if one is due; take the packets due within the lead."""
    answer = room.answer
    if answer is None:
        if room.queued_mics:
            live_mics.start_queued(room, now)
        free = not room.mics.busy and not room.queued_mics
        if room.rules.clone and room.event.clone_may_start and free and now >= room.next_turn_at:
            start_turn(room, now)
        return (), room.ring.next_number, ()
    timeline = answer.timeline
    if timeline is None:
        return (), room.ring.next_number, ()
    packets = timeline.due(now_us, room.plan.lead_us)
    first_number = room.ring.next_number
    payloads = []
    ends = []
    for packet in packets:
        payload = codec.encode(packet)
        end = packet.media_time_us + packet.duration_us
        room.ring.add(answer.id, end, payload)
        answer.packets.append(payload)
        payloads.append(payload)
        ends.append(end)
    if payloads and not answer.first_shipped:
        answer.first_shipped = True
        room.counters.observe("time_to_first_audio_s", now - answer.taken_at)
    if answer.finished == "done" and timeline.done() and now_us >= timeline.end_us:
        finish(room, answer, "stopped" if answer.held else "done", now)
    return tuple(payloads), first_number, tuple(ends)
