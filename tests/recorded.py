"""A recorded event of two answers: what the recording, replay and export tests start from.

A spectator asks two questions, a moderator approves each, the clone answers both, and the
recorder has flushed both chapters to the file (waited on, not slept on).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from townhall.protocol.messages import StageEnd, StageStart
from townhall.server.app import TownhallServer
from townhall.server.ops.config import recording_folder
from townhall.server.store.recording import index

from .conftest import TokenMaker
from .test_clone_stage import Viewer, ask_and_approve, clone_settings, wait_answer
from .waiting import eventually

QUESTIONS = ("How do we think about remote work?", "What is our plan for the office?")


def recording_settings(tmp_path: Path, fast: bool = False):  # type: ignore[no-untyped-def]
    """The clone on, and the recording flushed every 50 ms (the tests wait on the file);
    ``fast``: the clone speaks at 450 wpm (``clone_settings``), the answers are shorter."""
    s: Any = clone_settings(tmp_path, fast=fast)
    return replace(s, recording=replace(s.recording, flush_s=0.05))


@dataclass(frozen=True)
class Recorded:
    """The two answers as the spectator saw them, and the recording's id and file."""

    spectator: Viewer
    moderator: Viewer
    questions: tuple[int, int]
    starts: tuple[StageStart, StageStart]
    ends: tuple[StageEnd, StageEnd]
    id: str
    path: Path

    async def close(self) -> None:
        for v in (self.spectator, self.moderator):
            await v.client.close()


async def record_two_answers(
    srv: TownhallServer, token: TokenMaker, questions: tuple[str, str] = QUESTIONS
) -> Recorded:
    """Ask, approve and hear two answers; return once the file holds both chapters."""
    assert srv.recorder is not None
    spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
    moderator = Viewer(srv.ws_url, token("mod", role="moderator", name="Mo"))
    await spectator.connect()
    await moderator.connect()
    asked: list[int] = []
    heard: list[tuple[StageStart, StageEnd]] = []
    for text in questions:
        asked.append(await ask_and_approve(spectator, moderator, text))
        heard.append(await wait_answer(spectator, asked[-1]))
    path = recording_folder(srv.settings) / f"{srv.recorder.id}.threc"
    await eventually(lambda: len(index(path).chapters) == 2, 10, "two chapters in the file")
    return Recorded(
        spectator,
        moderator,
        (asked[0], asked[1]),
        (heard[0][0], heard[1][0]),
        (heard[0][1], heard[1][1]),
        srv.recorder.id,
        path,
    )
