"""A real ``townhall serve`` with its record in PostgreSQL: kill -9, restart, every acknowledged
question and vote is there; a store it cannot use stops it with one line, no traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.serve import Served, serve
from townhall.plugin.client import RoomClient
from townhall.protocol.messages import Ack, Ask, Error, Keyframe, Message, Vote
from townhall.server.clone.persona import load_persona, sample_persona_path
from townhall.server.ops.cli import main as cli

from .conftest import SECRET, TokenMaker
from .postgres import fresh_database
from .test_cli import CLI
from .test_store_postgres import free_port
from .waiting import eventually


@pytest.fixture
def url() -> Iterator[str]:
    with fresh_database() as url:
        yield url


def start(tmp_path: Path, url: str) -> Served:
    return serve(
        tmp_path,
        "\n".join(
            [
                "[server]",
                "port = 0",
                "[auth]",
                f'secret = "{SECRET}"',
                "[store]",
                f'url = "{url}"',
                f'path = "{tmp_path / "unused.db"}"',
                "[qa]",
                'mode = "auto"',
                "[clone]",
                "enabled = false",  # questions stay on the board: nothing is answered away
            ]
        ),
        stderr=tmp_path / "server.log",
    )


def replies(seen: list[Message], ref: int) -> list[Message]:
    return [m for m in seen if isinstance(m, Ack | Error) and m.ref == ref]


async def test_kill_9_then_restart_keeps_every_acknowledged_question_and_vote(
    tmp_path: Path, url: str, token: TokenMaker
) -> None:
    served = start(tmp_path, url)
    try:
        seen: list[Message] = []
        ann = RoomClient(served.ws_url, token("ann", role="spectator"), on_message=seen.append)
        await ann.connect()
        await ann.send(Ask(1, "Will the Lisbon office stay open?"))
        await eventually(lambda: replies(seen, 1), 20)
        (asked,) = replies(seen, 1)
        assert isinstance(asked, Ack)
        bob_seen: list[Message] = []
        bob = RoomClient(served.ws_url, token("bob", role="spectator"), on_message=bob_seen.append)
        await bob.connect()
        await eventually(lambda: asked.id in bob.state.questions, 20)
        await bob.send(Vote(2, asked.id))
        await eventually(lambda: replies(bob_seen, 2), 20)
        (voted,) = replies(bob_seen, 2)
        assert isinstance(voted, Ack)
        served.kill()  # acknowledged means committed: nothing to flush
    finally:
        served.kill()
    assert not (tmp_path / "unused.db").exists()  # the record went to PostgreSQL alone
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT id, text FROM questions").fetchall() == [
            (asked.id, "Will the Lisbon office stay open?")
        ]
        votes = set(conn.execute("SELECT question_id, voter FROM votes").fetchall())
    assert {(asked.id, "ann"), (asked.id, "bob")} <= votes

    served = start(tmp_path, url)
    try:
        seen = []
        cy = RoomClient(served.ws_url, token("cy", role="spectator"), on_message=seen.append)
        await cy.connect()
        await eventually(lambda: any(isinstance(m, Keyframe) for m in seen), 20)
        keyframe = next(m for m in seen if isinstance(m, Keyframe))
        (board,) = [q for q in keyframe.questions if q.id == asked.id]
        assert board.text == "Will the Lisbon office stay open?" and board.votes == 2
        await cy.send(Ask(3, "And the Porto office?"))
        await eventually(lambda: replies(seen, 3), 20)
        (again,) = replies(seen, 3)
        assert isinstance(again, Ack) and again.id > asked.id  # ids never repeat
        await cy.close()
    finally:
        served.stop()


def serve_once(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "townhall.toml").write_text(f'[store]\nurl = "{url}"\n[server]\nport = 0\n')
    return subprocess.run(
        [*CLI, "serve", "--config", "townhall.toml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "TOWNHALL_AUTH_SECRET": SECRET},
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return lines[0]


def test_serve_with_an_unreachable_or_bad_store_url_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    line = one_line(serve_once(tmp_path, f"postgresql://th:pw@127.0.0.1:{port}/record"))
    assert line.startswith(f"townhall: cannot open database postgresql://th@127.0.0.1:{port}/")
    assert "pw" not in line.split("/record", 1)[0].split("th@", 1)[1]
    line = one_line(serve_once(tmp_path, "mysql://127.0.0.1/record"))
    assert line == (
        "townhall: townhall.toml:2: store.url must be empty (SQLite) or start with postgresql://"
    )


def test_offline_commands_that_read_sqlite_say_so_when_the_record_is_in_postgresql(
    tmp_path: Path,
) -> None:
    (tmp_path / "townhall.toml").write_text('[store]\nurl = "postgresql://127.0.0.1/x"\n')
    result = subprocess.run(
        [*CLI, "transcript", "main", "--config", "townhall.toml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert one_line(result) == (
        "townhall: transcript: reads a SQLite file, and store.url puts the record in "
        "PostgreSQL; pass --db FILE for a SQLite copy"
    )


def test_persona_import_and_export_use_postgresql_when_store_url_is_set(
    tmp_path: Path, url: str
) -> None:
    (tmp_path / "townhall.toml").write_text(f'[store]\nurl = "{url}"\n')
    persona = tmp_path / "dana"
    shutil.copytree(sample_persona_path(), persona)
    n = len(load_persona(persona).statements)
    config = ["--config", str(tmp_path / "townhall.toml")]
    assert cli(["persona", "import", str(persona), *config]) == 0
    with psycopg.connect(url) as conn:
        (stored,) = conn.execute("SELECT COUNT(*) FROM statements WHERE persona = 'dana'")
    assert stored == (n,)
    out = tmp_path / "review" / "dana"
    assert cli(["persona", "export", str(out), "--persona", str(persona), *config]) == 0
    assert {s.id for s in load_persona(out).statements} == {
        s.id for s in load_persona(persona).statements
    }
