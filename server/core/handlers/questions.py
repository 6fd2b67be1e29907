"""Asking, voting and moderating questions: applied at once, acknowledged once stored."""

from __future__ import annotations

from typing import TYPE_CHECKING

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.messages import STAFF, Ask, Board, BoardRequest, Moderate, Role, Vote
from townhall.server.core.dispatch import handles
from townhall.server.core.effects import BoardChanged, QuestionsRestored, VoteRestored
from townhall.server.store.records import Record, VoteCast, VoteWithdrawn

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority

ASKERS: frozenset[Role] = frozenset({"attendee", "spectator"})
VOTERS: frozenset[Role] = frozenset({"attendee", "spectator", "moderator"})


@handles(Ask, roles=ASKERS)
def ask(room: RoomAuthority, c: Conn, message: Ask, now: float) -> None:
    member = room.member(c)
    room.event.check_open("questions are")
    if member.muted:
        raise Refused(ErrorCode.NOT_ALLOWED, "you are muted", Ask.TYPE, message.ref)
    per_minute, burst = room.rules.questions_per_minute, 3.0
    if c.guest:
        per_minute = burst = room.rules.guest_questions_per_minute
    if not room.allow(room.ask_limits, room.limited_as(c, member), per_minute / 60.0, burst, now):
        who = "guests from your address ask" if c.guest else "you ask"
        raise Refused(ErrorCode.RATE_LIMITED, f"{who} too many questions; wait a minute")
    slot = c.slot if c.role == "attendee" else -1
    new = room.submit(member, message.text, message.language, now, slot)
    room.persist(
        new.records,
        BoardChanged((new.question.id,)),
        room.ack(c.id, message.ref, new.question.id, new.merged),
        conn=c.id,
        about=Ask.TYPE,
        ref=message.ref,
        undo=new.undo,
    )


@handles(Vote, roles=VOTERS)
def vote(room: RoomAuthority, c: Conn, message: Vote, now: float) -> None:
    member = room.member(c)
    room.event.check_open("votes are")
    user = member.identity.user_id
    if not room.allow(
        room.vote_limits, room.limited_as(c, member), room.rules.votes_per_s, 10, now
    ):
        raise Refused(ErrorCode.RATE_LIMITED, "too many votes; slow down")
    had_voted = room.qa.has_voted(message.question, user)
    if c.guest:
        guest_vote(room, c, message, user, had_voted)
    question = room.qa.vote(message.question, user, message.up)
    mine = room.mine.setdefault(user, set())
    if message.up:
        mine.add(question.id)
    else:
        mine.discard(question.id)
    record = VoteCast(question.id, user) if message.up else VoteWithdrawn(question.id, user)
    room.persist(
        [record],
        BoardChanged((question.id,)),
        room.ack(c.id, message.ref, question.id),
        conn=c.id,
        about=Vote.TYPE,
        ref=message.ref,
        undo=(VoteRestored(question.id, user, had_voted),),
    )


@handles(BoardRequest)
def board(room: RoomAuthority, c: Conn, message: BoardRequest, now: float) -> None:
    """A page of the board beyond the Keyframe's top."""
    qa = room.qa
    staff = c.role in STAFF  # the staff page through the whole queue, the rest the approved
    page = qa.page(message.offset, message.count, staff)
    room.send(c.id, Board(message.ref, message.offset, qa.open_count(staff), page))


def guest_vote(room: RoomAuthority, c: Conn, message: Vote, user: str, had_voted: bool) -> None:
    """Guests from one address cast at most ``guest_votes_per_question`` votes for a question
    (reconnecting makes a new guest, not a new vote)."""
    key = (room.qa.get(message.question).merged_into or message.question, c.address)
    voters = room.guest_votes.setdefault(key, set())
    if not message.up:
        voters.discard(user)
    elif not had_voted and user not in voters:
        if len(voters) >= room.rules.guest_votes_per_question:
            raise Refused(
                ErrorCode.NOT_ALLOWED, "guests from your address have voted for this question"
            )
        voters.add(user)


@handles(Moderate, roles=STAFF)
def moderate(room: RoomAuthority, c: Conn, message: Moderate, now: float) -> None:
    room.event.check_open("the board is")
    q, action = room.qa, message.action
    # What the rows were, to put back if the store refuses the change (a move re-ranks all).
    touched = [message.question, message.target] if action == "merge" else [message.question]
    if action == "move":
        touched = [x.id for x in q.ordered()]
    before = [q.questions[i].record() for i in touched if i in q.questions]
    voters_before = set(q.questions[message.target].voters) if action == "merge" else set()
    if action == "approve":
        changed = q.approve(message.question)
    elif action == "reject":
        changed = q.reject(message.question)
    elif action == "edit":
        changed = q.edit(message.question, message.text)
    elif action == "merge":
        changed = q.merge(message.question, message.target)
    elif action == "move":
        changed = q.move(message.question, message.target)
    else:
        changed = q.pin(message.question, action == "pin")
    records: list[Record] = [q.questions[i].record() for i in changed]
    added: tuple[tuple[int, str], ...] = ()
    if action == "merge":
        target = q.questions[message.target]
        records += [VoteCast(target.id, v) for v in sorted(target.voters)]
        added = tuple((target.id, v) for v in sorted(target.voters - voters_before))
    detail = message.text if action == "edit" else str(message.target or "")
    records.append(room.action(c, now, action, message.question, detail))
    room.persist(
        records,
        BoardChanged(tuple(changed)),
        room.ack(c.id, message.ref, message.question),
        conn=c.id,
        about=Moderate.TYPE,
        ref=message.ref,
        undo=(QuestionsRestored(tuple(before), added),),
    )
