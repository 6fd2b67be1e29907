"""The demo's audience: people who ask the sample questions, and a narrator who prints
what the clone says, so `make demo` shows a town hall in the terminal too."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable

from townhall.plugin.client import RoomClient
from townhall.protocol.limits import clip
from townhall.protocol.messages import (
    Ask,
    Error,
    Message,
    QuestionChanged,
    QuestionInfo,
    StageEnd,
    StageStart,
    Vote,
)
from townhall.server.app import TownhallServer
from townhall.server.clone.persona import sample_persona_path
from townhall.server.gateway.tokens import issue_token

Say = Callable[[str], None]
ASKERS = ("Olena", "Marcus", "Priya", "Tom", "Ines")


def sample_questions() -> list[str]:
    lines = (sample_persona_path() / "questions.txt").read_text(encoding="utf-8").splitlines()
    return [q.strip() for q in lines if q.strip() and not q.startswith("#")]


def narrate(say: Say, board: dict[int, QuestionInfo]) -> Callable[[Message], None]:
    """Print what the clone says; keep the board as the room shows it in ``board``."""

    def on_message(message: Message) -> None:
        if isinstance(message, QuestionChanged):
            board[message.question.id] = message.question
        if isinstance(message, StageStart):
            sources = f" {', '.join(message.sources)}" if message.sources else ""
            head = f"clone ▶ [{message.label}{sources}] ({message.language})"
            say(f"{head} Q: {message.question_text}")
        elif isinstance(message, StageEnd):
            say(f"clone ■ {message.outcome}: {clip(message.text, 160)}")

    return on_message


async def run_audience(server: TownhallServer, say: Say, every_s: float = 12.0) -> None:
    """Ask a sample question every ``every_s`` seconds (first after 3 s), voting on each."""
    room = server.room.room_id

    def token(name: str) -> str:
        return issue_token(
            server.secret, user_id=f"demo-{name.lower()}", name=name, role="spectator",
            room=room, ttl_s=server.settings.auth.default_ttl_s,
        )  # fmt: skip

    board: dict[int, QuestionInfo] = {}
    narrator = RoomClient(server.ws_url, token("Narrator"), on_message=narrate(say, board))
    askers = [RoomClient(server.ws_url, token(name)) for name in ASKERS]
    await narrator.connect()
    for asker in askers:
        await asker.connect()
    refs = itertools.count(1)
    try:
        await asyncio.sleep(3.0)
        for n, text in enumerate(itertools.cycle(sample_questions())):
            asker = askers[n % len(askers)]
            say(f"audience: {ASKERS[n % len(ASKERS)]} asks: {text}")
            await asker.send(Ask(next(refs), text))
            await asyncio.sleep(0.5)
            waiting = [q for q in board.values() if q.state in ("submitted", "approved")]
            top = max(waiting, key=lambda q: (q.votes, -q.id), default=None)
            for voter in askers[: (n % 3) + 1]:
                if top is not None:
                    await voter.send(Vote(next(refs), top.id))
            errors = [e for a in askers for e in a.errors if isinstance(e, Error)]
            for e in errors:
                say(f"audience: the server said {e.reason}")
            for a in askers:
                a.errors.clear()
            await asyncio.sleep(every_s)
    finally:
        for client in (narrator, *askers):
            with contextlib.suppress(Exception):
                await client.close()
