"""/studio's durable side: persona import/export, review-by expiry, restart, audit, webhook,
follow-ups to an asker who comes back later."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sqlite3
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from aiosmtpd.controller import Controller

from townhall.protocol.messages import Ack, Ask, FollowUp, InboxAnswer, StatementSave, StudioItems
from townhall.server.app import TownhallServer
from townhall.server.clone.brain.embedded import EmbeddedBrain
from townhall.server.clone.persona import load_persona, sample_persona_path
from townhall.server.clone.statements import LiveBrain, version_of
from townhall.server.ops.cli import main as cli
from townhall.server.ops.persona_store import export_folder, import_folder
from townhall.server.store.records import StatementVersion
from townhall.server.store.sqlite import load_statements, statement_history

from .conftest import TokenMaker
from .test_clone_stage import Viewer, clone_settings, wait_answer
from .test_studio import GAP, studio_list
from .waiting import eventually


def test_import_export_round_trip_keeps_the_folder_format(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    persona = tmp_path / "dana"
    shutil.copytree(sample_persona_path(), persona)
    first = import_folder(persona, db)
    n = len(load_persona(persona).statements)
    assert first == {"added": n, "changed": 0, "retired": 0, "unchanged": 0}
    assert import_folder(persona, db)["unchanged"] == n  # nothing new: no new versions
    out = tmp_path / "review" / "dana"  # the same persona id (its folder's name), for git
    assert export_folder(persona, db, out) == n
    again = load_persona(out)  # the export is a valid persona folder with the same statements
    assert {(s.id, s.text, s.date) for s in again.statements} == {
        (s.id, s.text, s.date) for s in load_persona(persona).statements
    }
    # edit one, drop one, re-import: a new version and a retirement, the history kept
    en = out / "statements" / "en.toml"
    text = en.read_text().replace("win the mid-market", "win the mid-market and Europe")
    cut = text.index('[[statement]]\nid = "S02"')
    text = text[:cut] + text[text.index("[[statement]]", cut + 5) :]
    en.write_text(text)
    counts = import_folder(out, db)
    assert (counts["changed"], counts["retired"]) == (1, 1)
    history = statement_history(db, "dana", "S01")
    assert [v.version for v in history] == [1, 2] and "and Europe" in history[1].text
    assert statement_history(db, "dana", "S02")[-1].retired


def test_cli_import_export_and_audit(tmp_path: Path, capsys: Any) -> None:
    db = str(tmp_path / "t.db")
    persona = tmp_path / "sample"
    shutil.copytree(sample_persona_path(), persona)
    assert cli(["persona", "import", str(persona), "--db", db]) == 0
    assert "added" in capsys.readouterr().out
    assert (
        cli(["persona", "export", str(tmp_path / "x"), "--persona", str(persona), "--db", db]) == 0
    )
    assert (tmp_path / "x" / "statements" / "en.toml").exists()
    assert cli(["audit", "main", "--db", str(tmp_path / "missing.db")]) == 1


def test_a_statement_past_review_by_is_not_used_until_reapproved() -> None:
    persona = load_persona(sample_persona_path())
    versions = [version_of(persona.id, s) for s in persona.statements]
    picnic = StatementVersion(
        persona.id, "L1", 1, "leader", "The summer picnic is on the twelfth of July at the lake.",
        "en", "2026-01-01", (), "Dana", time.time(), review_by="2026-06-30",
    )  # fmt: skip
    today = ["2026-06-30"]
    brain = LiveBrain(EmbeddedBrain(persona), [*versions, picnic], today=lambda: today[0])

    async def first(question: str) -> Any:
        parts = [p async for p in brain.stream(question)]
        return parts[0]

    assert asyncio.run(first("When is the summer picnic?")).sources == ("L1",)
    today[0] = "2026-07-01"  # expired: the clone falls silent on it
    assert asyncio.run(first("When is the summer picnic?")).label == "escalated"
    brain.update([replace(picnic, version=2, review_by="2027-06-30")])  # re-approved
    assert asyncio.run(first("When is the summer picnic?")).sources == ("L1",)


class Hook(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.got.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


async def test_webhook_asker_delivery_restart_and_audit(
    tmp_path: Path, token: TokenMaker, capsys: Any
) -> None:
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{hook.server_address[1]}/escalations"
    mails: list[Any] = []

    class Mailbox:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mails.append(envelope)
            return "250 OK"

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=port)
    smtp.start()
    settings = clone_settings(tmp_path, fast=True, mode="auto")
    settings = replace(
        settings,
        clone=replace(settings.clone, escalation_webhook=url, escalation_smtp=f"127.0.0.1:{port}"),
    )
    Hook.got.clear()
    try:
        async with TownhallServer(settings) as srv:
            asker = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
            leader = Viewer(srv.ws_url, token("boss", role="operator", name="Dana"))
            await asker.connect()
            await leader.connect()
            ack = await asker.request(lambda ref: Ask(ref, GAP))
            assert isinstance(ack, Ack)
            await wait_answer(asker, ack.id)
            await eventually(lambda: bool(Hook.got), timeout=10)
            assert Hook.got[0]["question"] == ack.id and "ceo-office" in Hook.got[0]["contact"]
            await eventually(lambda: bool(mails), timeout=10)
            assert mails[0].rcpt_tos == ["ceo-office@kestrel.example"]
            assert GAP in mails[0].content.decode()
            await asker.client.close()  # the asker has gone
            sent = await leader.request(lambda ref: InboxAnswer(ref, ack.id, "asker", "July 12."))
            assert isinstance(sent, Ack)
            reply = await studio_list(leader, "statements", "remote")
            assert isinstance(reply, StudioItems)
            s = reply.statements[0]
            saved = await leader.request(
                lambda ref: StatementSave(
                    ref, s.id, s.version, s.topic, "Remote stays.", s.language
                )
            )
            assert isinstance(saved, Ack)
            await leader.client.close()
        # a restart: the inbox, the statement version and the waiting follow-up are kept
        async with TownhallServer(settings) as srv:
            leader = Viewer(srv.ws_url, token("boss", role="operator", name="Dana"))
            await leader.connect()
            inbox = await studio_list(leader, "inbox")
            assert isinstance(inbox, StudioItems)
            assert inbox.inbox[0].state == "asker" and inbox.inbox[0].answer_text == "July 12."
            assert srv.authority.studio.book.current[s.id].text == "Remote stays."
            back = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
            await back.connect()
            await eventually(lambda: bool(back.of(FollowUp)), timeout=10)
            assert back.of(FollowUp)[0].text == "July 12."
            await back.client.close()
            await leader.client.close()
    finally:
        hook.shutdown()
        smtp.stop()
    db = tmp_path / "townhall.db"
    assert load_statements(str(db), "sample")
    assert (
        sqlite3.connect(db)
        .execute("SELECT COUNT(*) FROM settings WHERE key LIKE 'delivered:%'")
        .fetchone()[0]
        == 1
    )
    assert cli(["audit", "main", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "inbox:asker" in out and "studio:statement:save" in out and "Dana" in out


async def test_kill_9_during_studio_work_loses_no_acknowledged_version(
    tmp_path: Path, token: TokenMaker
) -> None:
    from .test_durability import start_server

    served = start_server(tmp_path)
    proc, ws_url = served.proc, served.ws_url
    acked: dict[int, str] = {}
    try:
        seen: list[Any] = []
        from townhall.plugin.client import RoomClient

        op = RoomClient(ws_url, token("boss", role="operator", name="Dana"), on_message=seen.append)
        await op.connect()
        version, ref = 1, 0

        async def save_loop() -> None:
            nonlocal version, ref
            while True:
                ref += 1
                text = f"Remote work, revision {ref}."
                await op.send(StatementSave(ref, "S10", version, "remote", text, "en"))
                mine = ref
                await eventually(lambda mine=mine: any(getattr(m, "ref", -1) == mine for m in seen))
                reply = next(m for m in seen if getattr(m, "ref", -1) == mine)
                assert isinstance(reply, Ack), reply
                acked[reply.id] = text
                version = reply.id

        task = asyncio.create_task(save_loop())
        await eventually(lambda: len(acked) >= 10, 30)
        os.kill(proc.pid, signal.SIGKILL)  # a save may be in flight: it was not acknowledged
        proc.wait(timeout=10)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        if proc.poll() is None:
            proc.kill()
    history = {v.version: v.text for v in statement_history(str(tmp_path / "townhall.db"),
                                                              "sample", "S10")}  # fmt: skip
    for number, text in acked.items():
        assert history[number] == text
