"""/studio: the leader trains the clone. Operators only (moderators may read the inbox).

Every change is stored with an audit record (who, when) before it is acknowledged; a new
statement version reaches the clone (``StatementsChanged``) only once stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from townhall.protocol.errors import ErrorCode, Refused
from townhall.protocol.limits import MAX_ANSWER_CHARS, STUDIO_PAGE_MAX, clip
from townhall.protocol.messages import (
    STAFF,
    AnswerReview,
    FollowUp,
    InboxAnswer,
    Role,
    StatementSave,
    StudioItems,
    StudioList,
)
from townhall.server.core.dispatch import handles
from townhall.server.core.effects import (
    Broadcast,
    Effect,
    Sequenced,
    StatementsChanged,
    StatementsUndone,
)
from townhall.server.core.studio import LeaderTurn, info, today
from townhall.server.store.records import (
    AnswerRecorded,
    InboxResolved,
    Record,
    StatementVersion,
)

if TYPE_CHECKING:
    from townhall.server.core.authority import Conn, RoomAuthority

OPERATOR: frozenset[Role] = frozenset({"operator"})


@handles(StudioList, roles=STAFF)
def studio_list(room: RoomAuthority, c: Conn, m: StudioList, now: float) -> None:
    studio, wall = room.studio, room.wall(now)
    if m.what != "inbox" and c.role != "operator":
        raise Refused(ErrorCode.NOT_ALLOWED, f"only an operator may list {m.what}")
    reply = StudioItems(m.ref, m.what)
    if m.what == "inbox":
        reply.inbox = studio.inbox.listed()[:STUDIO_PAGE_MAX]
    elif m.what == "statements":
        found = studio.book.search(m.query)[:STUDIO_PAGE_MAX]
        reply.statements = [info(v, wall, studio.book) for v in found]
    elif m.what == "history":
        if m.query not in studio.history:
            raise Refused(ErrorCode.NOT_FOUND, f"no statement {m.query!r}")
        reply.statements = [info(v, wall) for v in studio.history[m.query]][-STUDIO_PAGE_MAX:]
    elif m.what == "answers":
        reply.answers = sorted(studio.answers.values(), key=lambda a: -a.answer)[:STUDIO_PAGE_MAX]
    else:
        reply.audit = list(studio.audit)[-STUDIO_PAGE_MAX:][::-1]
    room.send(c.id, reply)


def _store_statements(
    room: RoomAuthority,
    c: Conn,
    versions: list[StatementVersion],
    records: list[Record],
    then: list[Effect],
    about: int,
    ref: int,
    now: float,
) -> None:
    """Store new versions with ``records``; then the clone, the studios and the sender learn.
    If the store refuses them, the book goes back (nothing was acknowledged)."""
    wall = room.wall(now)
    previous: list[tuple[StatementVersion, StatementVersion | None]] = []
    for v in versions:
        history = room.studio.history.get(v.id, [])
        previous.append((v, history[-1] if history else None))
        room.studio.saved(v)
    changed = StudioItems(0, "statements", statements=[info(v, wall) for v in versions])
    room.persist(
        [*versions, *records],
        StatementsChanged(tuple(versions)),
        Broadcast(room.encode(changed), OPERATOR),
        *then,
        conn=c.id,
        about=about,
        ref=ref,
        undo=(StatementsUndone(tuple(previous)),),
    )


@handles(StatementSave, roles=OPERATOR)
def statement_save(room: RoomAuthority, c: Conn, m: StatementSave, now: float) -> None:
    book, wall = room.studio.book, room.wall(now)
    sid = m.statement or book.next_id()
    try:
        version = book.save(
            statement_id=sid, base_version=m.version, topic=m.topic, text=m.text,
            language=m.language, tags=tuple(t.strip().lower() for t in m.tags),
            review_by=m.review_by, translations=tuple(m.translations),
            author=room.member(c).identity.name or room.member(c).identity.user_id,
            now=wall, date=today(wall), retired=m.retire,
        )  # fmt: skip
    except Refused as exc:
        if exc.code == ErrorCode.CONFLICT and sid in book.current:
            current = StudioItems(m.ref, "statements", statements=[info(book.current[sid], wall)])
            room.send(c.id, current)
        raise
    action = "studio:statement:retire" if m.retire else "studio:statement:save"
    record = room.action(c, now, action, 0, f"{sid} v{version.version}: {clip(m.text, 200)}")
    _store_statements(room, c, [version], [record], [room.ack(c.id, m.ref, version.version)],
                      StatementSave.TYPE, m.ref, now)  # fmt: skip


@handles(InboxAnswer, roles=OPERATOR)
def inbox_answer(room: RoomAuthority, c: Conn, m: InboxAnswer, now: float) -> None:
    studio, wall = room.studio, room.wall(now)
    item = studio.inbox.open_item(m.question)
    text = m.text.strip()
    if not text:
        raise Refused(ErrorCode.BAD_MESSAGE, "an answer (or a reason to decline) is needed")
    if m.action == "publish" and not room.rules.clone:
        raise Refused(ErrorCode.NOT_ALLOWED, "the clone is off here: post the answer instead")
    answer_id = 0
    records: list[Record] = []
    then: list[Effect] = []
    question = room.qa.questions.get(m.question)
    qtext = question.text if question is not None else item.text
    language = item.language or "en"
    if m.action != "decline":
        answer_id = room.next_answer_id
        room.next_answer_id += 1
        answer = AnswerRecorded(answer_id, m.question, text, "leader", (), language, wall, wall,
                                "done")  # fmt: skip
        studio.record_answer(answer, qtext)
        follow = FollowUp(0, m.question, "answer", clip(text, MAX_ANSWER_CHARS), "leader", qtext)
        if m.action == "publish":
            # Recorded when it has been spoken (onstage.finish), like every answer.
            studio.leader_turns.append(LeaderTurn(answer_id, m.question, text, language))
        elif m.action == "post":
            records.append(answer)
            then.append(Sequenced(follow))
        else:
            records.append(answer)
            then += room.deliver_to(item.asker_id, m.question, follow)
    resolved = InboxResolved(wall, m.question, m.action, text, room.member(c).identity.user_id,
                             answer_id)  # fmt: skip
    records.append(resolved)
    records.append(room.action(c, now, f"inbox:{m.action}", m.question, clip(text, 200)))
    done = studio.inbox.resolve(resolved)
    update = StudioItems(0, "inbox", inbox=[done])
    room.persist(records, *then, room.to_staff(update), room.ack(c.id, m.ref, answer_id),
                 conn=c.id, about=InboxAnswer.TYPE, ref=m.ref)  # fmt: skip


@handles(AnswerReview, roles=OPERATOR)
def answer_review(room: RoomAuthority, c: Conn, m: AnswerReview, now: float) -> None:
    studio, wall = room.studio, room.wall(now)
    answer = studio.answers.get(m.answer)
    if answer is None:
        raise Refused(ErrorCode.NOT_FOUND, f"no answer {m.answer}")
    book = studio.book
    who = room.member(c).identity.name or room.member(c).identity.user_id
    versions: list[StatementVersion] = []
    then: list[Effect] = []
    text = m.text.strip()
    if m.action in ("endorse", "correct"):
        if m.action == "correct" and not text:
            raise Refused(ErrorCode.BAD_MESSAGE, "a correction needs the corrected text")
        text = text or answer.text
        language = answer.language if answer.language in book.languages else book.languages[0]
        sources = [s for s in answer.sources if s in book.current]
        supersedes = (
            ",".join(sources) if m.action == "correct" and sources else f"answer:{m.answer}"
        )
        versions.append(
            book.save(
                statement_id=book.next_id(), base_version=0, topic=m.topic or "leader",
                text=clip(text, 1200), language=language, tags=(), review_by="",
                translations=(), author=who, now=wall, date=today(wall), supersedes=supersedes,
            )
        )  # fmt: skip
        if m.action == "correct":
            for sid in sources:  # the corrected statements fall silent
                old = book.current[sid]
                versions.append(
                    book.save(
                        statement_id=sid, base_version=old.version, topic=old.topic,
                        text=old.text, language=old.language, tags=old.tags,
                        review_by=old.review_by, translations=old.translations, author=who,
                        now=wall, date=old.date, supersedes=old.supersedes, retired=True,
                    )
                )  # fmt: skip
    elif m.action == "retract" and not (m.notice or text):
        text = ""
    review = {"endorse": "endorsed", "correct": "corrected", "retract": "retracted"}[m.action]
    if m.notice and m.action != "endorse":
        kind: Literal["correction", "retraction"] = (
            "correction" if m.action == "correct" else "retraction"
        )
        notice = text or "The leader has withdrawn this answer."
        then.append(
            Sequenced(
                FollowUp(
                    0,
                    answer.question,
                    kind,
                    clip(notice, MAX_ANSWER_CHARS),
                    "leader",
                    answer.question_text,
                )
            )
        )
    detail = f"answer {m.answer}" + (f" -> {versions[0].id}" if versions else "")
    detail += f": {clip(text, 200)}" if text else ""
    record = room.action(c, now, f"studio:{m.action}", answer.question, detail)
    studio.answers[m.answer] = msgspec.structs.replace(answer, review=review)
    then.append(room.ack(c.id, m.ref, m.answer))
    _store_statements(room, c, versions, [record], then, AnswerReview.TYPE, m.ref, now)
