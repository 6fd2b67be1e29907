"""The attendance report from a real server: people join from headsets and browsers, leave,
come back, ask and vote; `townhall attendance ROOM --format csv|json`, named or anonymous."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from townhall.protocol.messages import Ack, Ask, Vote
from townhall.server.app import TownhallServer
from townhall.server.ops.attendance import export

from .conftest import TokenMaker, make_settings
from .test_clone_stage import Viewer
from .waiting import eventually

CLI = [sys.executable, "-m", "townhall.server.ops.cli"]


def viewer(url: str, token: str, client: str) -> Viewer:
    v = Viewer(url, token)
    v.client.client_info = client
    return v


async def run_event(tmp_path: Path, token: TokenMaker, anonymous: bool) -> dict[str, Any]:
    """Ada (headset) asks and leaves, then comes back from a browser; Sam (browser) votes
    and leaves; Mo (moderator console) stays to the end. Returns the live JSON report."""
    settings = make_settings(tmp_path, qa={"mode": "auto"})
    settings = replace(settings, attendance=replace(settings.attendance, anonymous=anonymous))
    async with TownhallServer(settings) as srv:
        ada = viewer(srv.ws_url, token("ada-1", role="attendee", name="Ada"), "townhall-xr/0.1")
        sam = viewer(srv.ws_url, token("sam-2", role="spectator", name="Sam"), "townhall-watch/0.1")
        mo = viewer(srv.ws_url, token("mo-3", role="moderator", name="Mo"), "townhall-moderate/0.1")
        for v in (ada, sam, mo):
            await v.connect()
        asked = await ada.request(lambda r: Ask(r, "When do the new offices open?"))
        assert isinstance(asked, Ack)
        asked2 = await ada.request(lambda r: Ask(r, "Will there be a bonus this year?"))
        assert isinstance(asked2, Ack)
        assert isinstance(await sam.request(lambda r: Vote(r, asked.id)), Ack)
        assert isinstance(await sam.request(lambda r: Vote(r, asked2.id)), Ack)
        assert isinstance(await mo.request(lambda r: Vote(r, asked.id)), Ack)
        await ada.client.leave()
        await sam.client.close()
        again = viewer(
            srv.ws_url, token("ada-1", role="attendee", name="Ada L."), "townhall-watch/0.1"
        )
        await again.connect()
        db = tmp_path / "townhall.db"

        def four_stays() -> bool:
            rows = sqlite3.connect(db).execute("SELECT left FROM attendance").fetchall()
            return len(rows) == 4 and sum(1 for (left,) in rows if left) == 2

        await eventually(four_stays, timeout=10)
        live: dict[str, Any] = json.loads(export(db, "main", "json", anonymous))
        await again.client.close()

        def three_left() -> bool:
            rows = sqlite3.connect(db).execute("SELECT left FROM attendance").fetchall()
            return sum(1 for (left,) in rows if left) == 3

        # Mo stays to the end: Ada's goodbye is recorded before Mo's connection closes.
        await eventually(three_left, timeout=10)
        await mo.client.close()
    return live


async def test_attendance_names_who_came_how_long_and_what_they_did(
    tmp_path: Path, token: TokenMaker
) -> None:
    live = await run_event(tmp_path, token, anonymous=False)
    by_user = {a["user"]: a for a in live["attendees"]}
    # While the event runs: Ada and Mo are present, Sam has left.
    assert (by_user["ada-1"]["present"], by_user["mo-3"]["present"]) == (True, True)
    assert by_user["sam-2"]["present"] is False and by_user["sam-2"]["last_left"]

    env = {**os.environ, "TOWNHALL_STORE_PATH": str(tmp_path / "townhall.db")}
    done = subprocess.run(
        [*CLI, "attendance", "main", "--format", "json"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["anonymous"] is False
    assert report["totals"] == {"people": 3, "sessions": 4, "questions": 2, "votes": 3}
    ada, sam, mo = report["attendees"]  # in order of first arrival
    assert (ada["user"], ada["name"], ada["roles"]) == ("ada-1", "Ada L.", ["attendee"])
    assert ada["clients"] == ["headset", "browser"] and ada["sessions"] == 2
    assert (ada["questions"], ada["votes"]) == (2, 0)
    assert (sam["user"], sam["clients"], sam["questions"], sam["votes"]) == (
        "sam-2",
        ["browser"],
        0,
        2,
    )
    assert (mo["clients"], mo["votes"], mo["roles"]) == (
        ["browser (moderator console)"],
        1,
        ["moderator"],
    )
    for a in (ada, sam, mo):
        assert a["present"] is False and a["last_left"] >= a["first_joined"]
        assert 0 < a["duration_s"] < 600
    # Mo stayed to the end: the last to leave. (Not necessarily the longest there: Ada and
    # Sam arrived first, and on a busy machine Mo's arrival may lag theirs by more than
    # Ada's time away.)
    assert mo["last_left"] >= max(ada["last_left"], sam["last_left"])

    csv_out = subprocess.run(
        [*CLI, "attendance", "main", "--format", "csv"], capture_output=True, text=True, env=env
    )
    rows = list(csv.DictReader(io.StringIO(csv_out.stdout)))
    assert [r["name"] for r in rows] == ["Ada L.", "Sam", "Mo"]
    assert rows[0]["clients"] == "headset; browser" and rows[0]["sessions"] == "2"
    assert rows[1]["votes"] == "2" and rows[1]["present"] == "no"

    anon = subprocess.run(
        [*CLI, "attendance", "main", "--anonymous"], capture_output=True, text=True, env=env
    )
    anon_rows = list(csv.DictReader(io.StringIO(anon.stdout)))
    assert "name" not in anon_rows[0] and all(r["user"].startswith("anon-") for r in anon_rows)
    assert "Ada" not in anon.stdout and "ada-1" not in anon.stdout
    assert [r["questions"] for r in anon_rows] == ["2", "0", "0"]

    bad = subprocess.run([*CLI, "attendance", "nope"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "no attendance for room 'nope' (rooms: main)" in bad.stderr
    assert "Traceback" not in bad.stderr


async def test_anonymous_attendance_stores_no_names_or_ids(
    tmp_path: Path, token: TokenMaker
) -> None:
    await run_event(tmp_path, token, anonymous=True)
    db = sqlite3.connect(tmp_path / "townhall.db")
    stored = db.execute("SELECT user_id, name, hashed FROM attendance").fetchall()
    assert all(user.startswith("anon-") and name == "" and hashed for user, name, hashed in stored)
    # The report is anonymous even when not asked to be, and still counts per person.
    report = json.loads(export(tmp_path / "townhall.db", "main", "json"))
    assert report["anonymous"] is True
    assert report["totals"] == {"people": 3, "sessions": 4, "questions": 2, "votes": 3}
    assert [a["questions"] for a in report["attendees"]] == [2, 0, 0]
    assert [a["votes"] for a in report["attendees"]] == [0, 2, 1]
    assert all("name" not in a for a in report["attendees"])
