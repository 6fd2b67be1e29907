"""kill -9 in the middle of a Q&A, restart: every acknowledged question and vote is there."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from bench.serve import Served, serve
from townhall.plugin.client import RoomClient
from townhall.protocol.messages import (
    Ack,
    Ask,
    Error,
    Keyframe,
    Message,
    QuestionChanged,
    QuestionInfo,
    StagePacket,
    StageStart,
    Vote,
)
from townhall.server.store.sqlite import SCHEMA, Store

from .conftest import SECRET, TokenMaker
from .waiting import eventually


def start_server(tmp_path: Path) -> Served:
    return serve(
        tmp_path,
        "\n".join(
            [
                "[server]",
                "port = 0",
                "[auth]",
                f'secret = "{SECRET}"',
                "[store]",
                f'path = "{tmp_path / "townhall.db"}"',
                "[qa]",
                'mode = "auto"',
                "votes_per_s = 1000",
                "questions_per_minute = 6000",
                "[clone]",
                "pause_s = 0.1",
            ]
        ),
    )


@contextlib.contextmanager
def running(tmp_path: Path) -> Iterator[Served]:
    """The server on this database until the block ends (a clean stop, if not killed)."""
    served = start_server(tmp_path)
    try:
        yield served
    finally:
        served.stop()


async def test_kill_9_mid_answer_loses_nothing_acknowledged(
    tmp_path: Path, token: TokenMaker
) -> None:
    acked_questions: dict[int, str] = {}
    acked_votes: set[tuple[int, str]] = set()
    stage_seen = asyncio.Event()
    with running(tmp_path) as served:
        ws_url = served.ws_url
        clients: list[tuple[RoomClient, str, list[Message]]] = []
        for n in range(4):
            seen: list[Message] = []
            user = f"user{n}"
            c = RoomClient(ws_url, token(user, role="spectator"), on_message=seen.append)
            await c.connect()
            clients.append((c, user, seen))

        async def chatter(client: RoomClient, user: str, seen: list[Message], n: int) -> None:
            ref = 0
            pending: dict[int, tuple[str, object]] = {}
            try:
                while True:
                    ref += 1
                    # at most 8 asks each: the joiner's keyframe below holds the top
                    # BOARD_TOP (50) open questions, and all of them must fit in it
                    if ref % 3 == 1 and ref < 3 * 8:
                        text = f"Question {n}-{ref}: what is the plan for team {n * 100 + ref}?"
                        pending[ref] = ("ask", text)
                        await client.send(Ask(ref, text))
                    elif acked_questions:
                        qid = sorted(acked_questions)[ref % len(acked_questions)]
                        pending[ref] = ("vote", qid)
                        await client.send(Vote(ref, qid))
                    for m in seen:
                        if isinstance(m, Ack) and m.ref in pending:
                            kind, value = pending.pop(m.ref)
                            if kind == "ask":
                                acked_questions[m.id] = str(value)
                            else:
                                acked_votes.add((m.id, user))
                        if isinstance(m, StagePacket):
                            stage_seen.set()
                    seen.clear()
                    await asyncio.sleep(0.01)
            except Exception:
                return

        tasks = [asyncio.create_task(chatter(c, u, s, n)) for n, (c, u, s) in enumerate(clients)]
        await asyncio.wait_for(stage_seen.wait(), 90)  # the clone is speaking (busy: slow)
        await eventually(lambda: len(acked_questions) >= 10 and len(acked_votes) >= 10, 20)
        served.kill()  # mid-traffic: requests in flight are not acked
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(acked_questions) >= 10 and len(acked_votes) >= 10

    db = sqlite3.connect(tmp_path / "townhall.db")
    stored = dict(db.execute("SELECT id, text FROM questions"))
    for qid, text in acked_questions.items():
        assert stored.get(qid) == text
    votes = set(db.execute("SELECT question_id, voter FROM votes"))
    assert acked_votes <= votes
    db.close()

    # The restarted server shows them all, and takes up the answer cut short again.
    with running(tmp_path) as served:
        seen: list[Message] = []
        c = RoomClient(served.ws_url, token("after", role="spectator"), on_message=seen.append)
        await c.connect()
        await eventually(lambda: any(isinstance(m, Keyframe) for m in seen))
        keyframe = next(m for m in seen if isinstance(m, Keyframe))
        board = {q.id for q in keyframe.questions}
        answered = {
            qid
            for (qid,) in sqlite3.connect(tmp_path / "townhall.db").execute(
                "SELECT id FROM questions WHERE state IN ('answered', 'escalated')"
            )
        }
        assert set(acked_questions) - answered <= board
        await c.close()


def replies(seen: list[Message], ref: int) -> list[Message]:
    return [m for m in seen if isinstance(m, Ack | Error) and m.ref == ref]


async def test_a_question_the_locked_database_refused_is_never_shown_voted_or_inherited(
    tmp_path: Path, token: TokenMaker
) -> None:
    with running(tmp_path) as served:
        seen: list[Message] = []
        ann = RoomClient(served.ws_url, token("ann", role="spectator"), on_message=seen.append)
        await ann.connect()
        await ann.send(Ask(1, "What is the plan for the Lisbon office?"))
        await eventually(lambda: replies(seen, 1), 20)
        (first,) = replies(seen, 1)
        assert isinstance(first, Ack)
        lock = sqlite3.connect(tmp_path / "townhall.db", isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # every write of the server waits, then fails
        try:
            await ann.send(Ask(2, "Will the canteen reopen this year?"))
            await eventually(lambda: replies(seen, 2), 30)  # the busy timeout runs out
            (ask_reply,) = replies(seen, 2)
            assert isinstance(ask_reply, Error)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        refused_id = first.id + 1  # the id the server had given it in memory
        bob_seen: list[Message] = []
        bob = RoomClient(served.ws_url, token("bob", role="spectator"), on_message=bob_seen.append)
        await bob.connect()
        await eventually(lambda: first.id in bob.state.questions, 20)
        await bob.send(Vote(3, refused_id))
        await eventually(lambda: replies(bob_seen, 3), 20)
        (vote_reply,) = replies(bob_seen, 3)
        assert isinstance(vote_reply, Error), vote_reply
        await bob.sync_clock(1)  # everything the server sent before this has arrived
        assert set(bob.state.questions) == {first.id}
        assert set(ann.state.questions) == {first.id}
        await bob.close()
        await ann.close()
    db = sqlite3.connect(tmp_path / "townhall.db")
    assert set(db.execute("SELECT question_id FROM votes")) == {(first.id,)}
    db.close()

    with running(tmp_path) as served:
        seen = []
        cy = RoomClient(served.ws_url, token("cy", role="spectator"), on_message=seen.append)
        await cy.connect()
        await cy.send(Ask(1, "How are we using AI tools in our daily work?"))
        await eventually(lambda: replies(seen, 1), 20)
        (ack,) = replies(seen, 1)
        assert isinstance(ack, Ack) and ack.id != first.id
        changed = await eventually_question(seen, ack.id)
        assert changed.votes == 1  # its own, nothing inherited
        await cy.close()


async def eventually_question(seen: list[Message], qid: int) -> QuestionInfo:
    def found() -> QuestionInfo | None:
        for m in reversed(seen):
            if isinstance(m, QuestionChanged) and m.question.id == qid:
                return m.question
        return None

    await eventually(lambda: found() is not None, 20)
    info = found()
    assert info is not None
    return info


def test_new_ids_start_after_every_id_a_stored_row_mentions(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "t.db")
    db.executescript(SCHEMA)
    db.execute("INSERT INTO votes VALUES ('main', 7, 'u1')")  # a vote whose question was lost
    db.commit()
    db.close()
    assert Store(str(tmp_path / "t.db"), "main").load().max_question_id == 7


async def test_kill_9_mid_answer_the_restarted_room_recovers_its_stage(
    tmp_path: Path, token: TokenMaker
) -> None:
    with running(tmp_path) as served:
        seen: list[Message] = []
        ann = RoomClient(served.ws_url, token("ann", role="spectator"), on_message=seen.append)
        await ann.connect()
        await ann.send(Ask(1, "What is the plan for the Lisbon office?"))
        await eventually(lambda: any(isinstance(m, StagePacket) for m in seen), 30)
        (start,) = [m for m in seen if isinstance(m, StageStart)]
        served.kill()  # the clone is speaking
    db = sqlite3.connect(tmp_path / "townhall.db")
    assert db.execute("SELECT state, answer_id FROM questions").fetchall() == [
        ("answering", start.answer)
    ]
    db.close()

    with running(tmp_path) as served:
        seen = []
        bob = RoomClient(served.ws_url, token("bob", role="spectator"), on_message=seen.append)
        await bob.connect()

        # Asked again, under a new answer id: the stage is not stuck on the one cut short.
        # On a busy machine the answer may have begun before bob joined: then his Keyframe
        # carries its StageStart rather than a StageStart of its own.
        def started() -> StageStart | None:
            for m in seen:
                if isinstance(m, StageStart):
                    return m
                if isinstance(m, Keyframe) and m.stage is not None:
                    return m.stage
            return None

        await eventually(lambda: started() is not None, 30, "the question asked again")
        again = started()
        assert again is not None
        assert again.question == start.question and again.answer > start.answer
        await bob.close()
    db = sqlite3.connect(tmp_path / "townhall.db")
    outcomes = dict(db.execute("SELECT id, outcome FROM answers"))
    assert outcomes[start.answer] == "interrupted"
    db.close()
