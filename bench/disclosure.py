"""Spoken disclosure, measured through real `townhall serve` sessions (bench/trust.py's figure).

Each session is its own server process (embedded brain and voice, the sample persona or
``--persona``'s) with a short ``clone.disclosure_pause_s``. A spectator asks questions of
every kind (answerable, escalated, about the clone, English and Ukrainian); before some of
them the room stays silent longer than the pause. For every answer the words heard first
(the captions of its StagePackets) are compared with the persona's disclosure in the
answer's language, then a moderator stops the clone so the next question follows. An
answer that opens a session or follows a pause must open with the disclosure
(``disclosure_spoken``, target 100 %); one that follows another answer at once should not
repeat it (``repeated_without_pause``).

Usage: python bench/disclosure.py [--sessions N] [--persona DIR]   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from townhall.plugin.client import RoomClient
from townhall.protocol.messages import (
    Ack,
    Ask,
    Control,
    Error,
    Message,
    StageEnd,
    StagePacket,
    StageStart,
)
from townhall.server.clone.persona import load_persona, sample_persona_path

sys.path.insert(0, str(Path(__file__).parent))
from serve import Served, serve

from townhall.server.gateway.tokens import issue_token

SECRET = "disclosure-bench-" + "x" * 32
PAUSE_S = 1.5  # clone.disclosure_pause_s of these sessions
#: (question, silence before it): "pause" waits longer than PAUSE_S, "none" asks at once,
#: "about" asks at once about the clone (answered with the disclosure whatever the pause).
SCRIPT = [
    ("How do we think about remote work?", "start"),
    ("What is our approach to security?", "none"),
    ("Will there be layoffs this year?", "pause"),
    ("Як ми ставимося до віддаленої роботи?", "pause"),
    ("Do you record me?", "about"),  # about the clone: opens with the disclosure anyway
    ("Are you real?", "pause"),
]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _token(user: str, role: str) -> str:
    return issue_token(SECRET, user_id=user, name=user, role=role, room="main", ttl_s=3600)


def _serve(tmp: Path, persona: str = "") -> Served:
    return serve(
        tmp,
        "\n".join(
            [
                "[server]",
                "port = 0",
                "[auth]",
                f'secret = "{SECRET}"',
                "[store]",
                f'path = "{tmp / "townhall.db"}"',
                "[qa]",
                'mode = "auto"',
                "questions_per_minute = 600",
                "[clone]",
                "pause_s = 0.05",
                f"disclosure_pause_s = {PAUSE_S}",
                f"persona = {json.dumps(persona)}",
            ]
        ),
    )


async def _until(predicate: Any, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.01)
    return False


async def _session(url: str, disclosures: dict[str, list[str]]) -> list[tuple[str, bool]]:
    """(silence before the answer, whether it opened with the spoken disclosure) per answer."""
    ws = url.replace("http://", "ws://") + "/ws"
    seen: list[Message] = []
    viewer = RoomClient(ws, _token("viewer", "spectator"), on_message=seen.append)
    moderator = RoomClient(ws, _token("moderator", "moderator"))
    await viewer.connect()
    await moderator.connect()
    results: list[tuple[str, bool]] = []
    try:
        for n, (question, before) in enumerate(SCRIPT, 1):
            if before == "pause":
                await asyncio.sleep(PAUSE_S * 1.5)  # the room is silent: that is the point
            await viewer.send(Ask(n, question))
            replied = lambda n=n: [m for m in seen if isinstance(m, Ack | Error) and m.ref == n]  # noqa: E731
            await _until(replied, 30)
            ack = replied()[0] if replied() else None
            if not isinstance(ack, Ack):
                raise SystemExit(f"question refused: {question!r}")

            def start(qid: int = ack.id) -> StageStart | None:
                return next(
                    (m for m in seen if isinstance(m, StageStart) and m.question == qid), None
                )

            await _until(lambda: start() is not None, 60)
            first = start()
            if first is None:
                raise SystemExit(f"no answer to {question!r}")
            opening = disclosures.get(first.language, disclosures["en"])

            def heard(answer: int = first.answer) -> list[str]:
                packets = sorted(
                    (m for m in seen if isinstance(m, StagePacket) and m.answer == answer),
                    key=lambda p: p.index,
                )
                return _words(" ".join(c.text for p in packets for c in p.captions))

            def ended(answer: int = first.answer) -> bool:
                return any(isinstance(m, StageEnd) and m.answer == answer for m in seen)

            await _until(lambda o=opening: len(heard()) > len(o) or ended(), 60)
            results.append((before, heard()[: len(opening)] == opening))
            await moderator.send(Control(1000 + n, "stop"))
            await _until(ended, 30)
    finally:
        await viewer.close()
        await moderator.close()
    return results


async def measure(sessions: int = 2, persona_dir: str = "") -> dict[str, Any]:
    persona = load_persona(persona_dir or sample_persona_path())
    disclosures = {lang: _words(persona.disclosure_for(lang)) for lang in persona.languages}
    answers: list[tuple[str, bool]] = []
    for _ in range(sessions):
        with tempfile.TemporaryDirectory(prefix="townhall-disclosure-") as tmpdir:
            served = _serve(Path(tmpdir), persona_dir)
            try:
                answers += await _session(served.url, disclosures)
            finally:
                served.stop(timeout=20)
    due = [ok for before, ok in answers if before in ("start", "pause", "about")]
    at_once = [ok for before, ok in answers if before == "none"]
    return {
        "sessions": sessions,
        "answers_due": len(due),
        "disclosed": sum(due),
        "disclosure_spoken": round(sum(due) / len(due), 3) if due else 0.0,
        "session_starts_disclosed": sum(ok for before, ok in answers if before == "start"),
        "repeated_without_pause": sum(at_once),
        "target": {"disclosure_spoken": 1.0},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument(
        "--persona", default="", help="persona directory (default: the bundled sample)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(measure(args.sessions, args.persona))))


if __name__ == "__main__":
    main()
