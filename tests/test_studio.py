"""/studio over real sockets: the inbox, the leader's answers, statements, and the clone
learning from them (issue 13)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import (
    Ack,
    AnswerReview,
    Ask,
    Error,
    FollowUp,
    InboxAnswer,
    StageEnd,
    StageStart,
    StatementSave,
    StudioItems,
    StudioList,
)
from townhall.server.app import TownhallServer

from .conftest import TokenMaker
from .test_clone_stage import Viewer, clone_settings, wait_answer
from .waiting import eventually

GAP = "When is the summer picnic this year?"
PARAPHRASE = "What date do we hold the summer picnic?"
LEADER = "The summer picnic is on the twelfth of July at the lake, families welcome."


async def studio_list(viewer: Viewer, what: str, query: str = "") -> StudioItems | Error:
    """Send StudioList; its answer is StudioItems (or Error) with the same ref."""
    viewer._ref += 1
    ref = viewer._ref
    await viewer.client.send(StudioList(ref, what, query))  # type: ignore[arg-type]

    def found() -> list[Any]:
        return [m for m in viewer.messages if isinstance(m, StudioItems | Error) and m.ref == ref]

    await eventually(lambda: bool(found()), timeout=10)
    return found()[0]  # type: ignore[no-any-return]


def live_inbox(viewer: Viewer, question: int) -> list[Any]:
    return [
        i for m in viewer.of(StudioItems) if m.ref == 0 for i in m.inbox if i.question == question
    ]


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "2-workers"])
async def test_escalation_to_inbox_publish_endorse_and_the_clone_learns(
    tmp_path: Path, token: TokenMaker, workers: int
) -> None:
    settings = clone_settings(tmp_path, fast=True, mode="auto")
    settings = replace(settings, server=replace(settings.server, workers=workers))
    async with TownhallServer(settings) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        leader = Viewer(srv.ws_url, token("boss", role="operator", name="Dana"))
        moderator = Viewer(srv.ws_url, token("mod", role="moderator", name="Mo"))
        for v in (spectator, leader, moderator):
            await v.connect()
        ack = await spectator.request(lambda ref: Ask(ref, GAP))
        assert isinstance(ack, Ack)
        _start, end = await wait_answer(spectator, ack.id)
        assert end.label == "escalated"
        await eventually(lambda: bool(live_inbox(leader, ack.id)), timeout=10)
        item = live_inbox(leader, ack.id)[0]
        assert item.reason and (item.asker_name, item.language) == ("Sam", "en")
        # then what the clone said instead of answering
        await eventually(lambda: bool(live_inbox(leader, ack.id)[-1].said), timeout=10)
        # moderators may read the inbox, not answer it
        listed = await studio_list(moderator, "inbox")
        assert isinstance(listed, StudioItems) and listed.inbox[0].question == ack.id
        assert isinstance(await studio_list(moderator, "statements"), Error)
        refused = await moderator.request(lambda ref: InboxAnswer(ref, ack.id, "publish", LEADER))
        assert isinstance(refused, Error) and refused.code == ErrorCode.NOT_ALLOWED

        published = await leader.request(lambda ref: InboxAnswer(ref, ack.id, "publish", LEADER))
        assert isinstance(published, Ack) and published.id
        twice = await leader.request(lambda ref: InboxAnswer(ref, ack.id, "post", LEADER))
        assert isinstance(twice, Error) and twice.code == ErrorCode.CONFLICT

        def leader_spoke() -> bool:
            return any(e.answer == published.id for e in spectator.of(StageEnd))

        await eventually(leader_spoke, timeout=30)
        said = next(s for s in spectator.of(StageStart) if s.answer == published.id)
        spoken = next(e for e in spectator.of(StageEnd) if e.answer == published.id)
        assert said.label == "leader" and spoken.label == "leader" and spoken.text == LEADER

        endorsed = await leader.request(lambda ref: AnswerReview(ref, published.id, "endorse"))
        assert isinstance(endorsed, Ack)

        def new_statements() -> list[Any]:
            return [s for m in leader.of(StudioItems) for s in m.statements if s.text == LEADER]

        await eventually(new_statements, timeout=10)  # the live change, once stored
        new = new_statements()
        assert new and new[0].author == "Dana" and new[0].version == 1

        again = await spectator.request(lambda ref: Ask(ref, PARAPHRASE))
        assert isinstance(again, Ack)
        _start, end = await wait_answer(spectator, again.id)
        assert end.label == "approved" and end.sources == [new[0].id] and end.text == LEADER

        db = sqlite3.connect(tmp_path / "townhall.db")
        actions = [r[0] for r in db.execute("SELECT action FROM actions ORDER BY seq")]
        assert "inbox:publish" in actions and "studio:endorse" in actions
        for v in (spectator, leader, moderator):
            await v.client.close()


async def test_statement_versions_conflict_and_clear_errors(
    tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(clone_settings(tmp_path, fast=True, mode="auto")) as srv:
        a = Viewer(srv.ws_url, token("op1", role="operator", name="Ann"))
        b = Viewer(srv.ws_url, token("op2", role="operator", name="Ben"))
        spectator = Viewer(srv.ws_url, token("spec", role="spectator"))
        for v in (a, b, spectator):
            await v.connect()
        reply = await studio_list(a, "statements", "remote")
        assert isinstance(reply, StudioItems)
        s = next(x for x in reply.statements if x.language == "en")

        def save(text: str, version: int) -> Any:
            return lambda ref: StatementSave(ref, s.id, version, s.topic, text, s.language, s.tags)

        first = await a.request(save("Remote work stays: two office days a week.", s.version))
        assert isinstance(first, Ack) and first.id == s.version + 1
        stale = await b.request(save("Remote work ends.", s.version))
        assert isinstance(stale, Error) and stale.code == ErrorCode.CONFLICT
        assert "two office days a week" in stale.reason and "Ann" in stale.reason
        unknown = await a.request(lambda ref: StatementSave(ref, "NOPE1", 3, "x", "text", "en"))
        assert isinstance(unknown, Error) and unknown.code == ErrorCode.NOT_FOUND
        huge = await a.request(lambda ref: StatementSave(ref, "", 0, "x", "y" * 1201, "en"))
        assert isinstance(huge, Error) and huge.code == ErrorCode.BAD_MESSAGE
        denied = await spectator.request(save("mine now", first.id))
        assert isinstance(denied, Error) and denied.code == ErrorCode.NOT_ALLOWED
        history = await studio_list(a, "history", s.id)
        assert isinstance(history, StudioItems)
        versions = history.statements
        assert [h.version for h in versions] == [1, 2] and versions[1].author == "Ann"
        missing = await studio_list(a, "history", "NOPE1")
        assert isinstance(missing, Error) and missing.code == ErrorCode.NOT_FOUND
        for v in (a, b, spectator):
            await v.client.close()


async def test_correction_notice_reaches_room_and_transcript(
    tmp_path: Path, token: TokenMaker
) -> None:
    from townhall.server.ops.transcript import export

    async with TownhallServer(clone_settings(tmp_path, fast=True, mode="auto")) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        leader = Viewer(srv.ws_url, token("boss", role="operator", name="Dana"))
        for v in (spectator, leader):
            await v.connect()
        ack = await spectator.request(lambda ref: Ask(ref, "How do we think about remote work?"))
        assert isinstance(ack, Ack)
        start, end = await wait_answer(spectator, ack.id)
        assert end.label == "approved"
        # the answer as heard is kept for replay: the very packets the spectator got
        heard = [codec.encode(p) for p in spectator.packets(start.answer)]
        await eventually(lambda: bool(srv.store.load_media(start.answer)))
        assert list(srv.store.load_media(start.answer)) == heard
        fixed = "Remote work: three office days a week from June."
        corrected = await leader.request(
            lambda ref: AnswerReview(ref, start.answer, "correct", fixed, "remote", True)
        )
        assert isinstance(corrected, Ack)
        await eventually(lambda: any(f.kind == "correction" for f in spectator.of(FollowUp)))
        again = await spectator.request(lambda ref: Ask(ref, "What is our view on remote work?"))
        assert isinstance(again, Ack)
        _, end2 = await wait_answer(spectator, again.id)
        assert end2.text == fixed
        for v in (spectator, leader):
            await v.client.close()
    text = export(tmp_path / "townhall.db", "main", "md")
    assert "studio:correct" in text and fixed in text
