"""Insights over one event and over time, counted by a real server from its store.

Event 1: an approved answer and a knowledge gap; the operator ends it, opens a new event
and starts it; event 2: another approved answer. /studio/insights.json groups them per
event (the lifecycle moves in the audit), per day and per week; /studio shows the table.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from townhall.protocol.messages import Ack, Ask, Control
from townhall.server.app import TownhallServer
from townhall.server.core.insights import (
    AnswerFact,
    EscalationFact,
    PhaseMove,
    by_event,
    day_of,
    insights,
    week_of,
)
from townhall.server.store.sqlite import load_all_statements

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker, http_get
from .test_clone_stage import Viewer, clone_settings, wait_answer
from .test_studio import GAP
from .test_web_studio import BUILT, open_studio

expect.set_options(timeout=15_000)
# The pages here draw nothing (see conftest): they run beside the drawing tests.
pytestmark = pytest.mark.light


@pytest.fixture(scope="session", autouse=True)
def built_pages() -> None:
    ensure_built("studio", BUILT)


def test_events_are_cut_at_open_moves_and_time_by_utc_day_and_iso_week() -> None:
    day = 86400.0
    monday = datetime(2026, 12, 7, tzinfo=UTC).timestamp()  # a Monday
    answers = [
        AnswerFact(monday + 10, "approved", ("S1", "S2")),
        AnswerFact(monday + 20, "escalated", ()),
        AnswerFact(monday + 8 * day, "approved", ("S1",)),
    ]
    escalations = [
        EscalationFact(monday + 15, 7, "When is the picnic?", "no_material"),
        EscalationFact(monday + 8 * day + 5, 9, "Salaries?", "budget:daily"),
    ]
    moves = [
        PhaseMove(monday + 1, "start"),
        PhaseMove(monday + 100, "end"),
        PhaseMove(monday + 7 * day, "open"),
        PhaseMove(monday + 8 * day, "start"),
    ]
    topics = {"S1": "remote work", "S2": "office"}
    one, two = by_event(answers, escalations, moves, topics)
    assert (one.start, one.live, one.ended) == (monday + 1, monday + 1, monday + 100)
    assert one.labels == {"approved": 1, "escalated": 1}
    assert one.topics == {"remote work": 1, "office": 1}
    assert one.gaps == ["When is the picnic?"] and one.reasons == {"no_material": 1}
    assert (two.start, two.live, two.ended) == (monday + 7 * day, monday + 8 * day, 0.0)
    assert two.reasons == {"budget": 1} and two.gaps == []
    assert day_of(monday) == "2026-12-07" and week_of(monday) == "2026-W50"
    assert week_of(monday + 6 * day) == "2026-W50" and week_of(monday + 7 * day) == "2026-W51"
    found = insights(answers, escalations, moves, topics)
    assert [d["key"] for d in found["days"]] == ["2026-12-07", "2026-12-15"]
    assert [(w["key"], w["answers"]) for w in found["weeks"]] == [("2026-W50", 2), ("2026-W51", 1)]
    assert found["all"]["topics"] == [("remote work", 2), ("office", 1)]
    # Nothing yet: one empty event, no days.
    empty = insights([], [], [], {})
    assert [e["answers"] for e in empty["events"]] == [0] and empty["days"] == []


async def get(url: str) -> tuple[int, dict[str, object]]:
    status, _, body = await asyncio.to_thread(http_get, url)
    return status, json.loads(body)


async def test_a_real_server_counts_per_event_and_over_time_and_the_page_shows_it(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    async with TownhallServer(clone_settings(tmp_path, fast=True, mode="auto")) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        operator = Viewer(srv.ws_url, token("boss", role="operator", name="Dana"))
        await spectator.connect()
        await operator.connect()

        async def ask(text: str) -> tuple[str, tuple[str, ...]]:
            ack = await spectator.request(lambda ref: Ask(ref, text))
            assert isinstance(ack, Ack)
            _start, end = await wait_answer(spectator, ack.id)
            return end.label, tuple(end.sources)

        label1, sources1 = await ask("How do we think about remote work?")
        label2, _ = await ask(GAP)
        assert (label1, label2) == ("approved", "escalated")
        for move in ("end", "open", "start"):
            assert isinstance(
                await operator.request(lambda ref, m=move: Control(ref, "event", m)), Ack
            )
        label3, sources3 = await ask("What is our plan for the office?")
        assert label3 == "approved"
        for v in (spectator, operator):
            await v.client.close()
        persona = srv.persona.id
        topic = {v.id: v.topic for v in load_all_statements(str(tmp_path / "townhall.db"), persona)}

        url = f"{srv.url}/studio/insights.json?token="
        status, found = await get(url + token("boss", "operator", "Dana"))
        assert status == 200, found
        one, two = found["events"]  # type: ignore[misc]
        assert one["answers"] == 2 and one["labels"] == {"approved": 1, "escalated": 1}
        assert one["escalations"] == 1 and one["ended"] > 0
        [reason] = one["reasons"]
        assert one["gaps"] == ([GAP] if reason == "no_material" else [])
        assert [t for t, _ in one["topics"]] == sorted({topic[s] for s in sources1})
        assert two["answers"] == 1 and two["labels"] == {"approved": 1} and two["escalations"] == 0
        assert two["start"] >= one["ended"] and two["live"] >= two["start"] and two["ended"] == 0
        assert {t for t, _ in two["topics"]} == {topic[s] for s in sources3}
        assert found["all"]["answers"] == 3  # type: ignore[index]
        [today] = found["days"]  # type: ignore[misc]
        assert today["answers"] == 3 and today["escalations"] == 1
        assert [w["answers"] for w in found["weeks"]] == [3]  # type: ignore[attr-defined]

        # Operators only, with a code and a reason.
        status, body = await get(url + token("mod", "moderator", "Mo"))
        assert (status, body["code"]) == (403, "NOT_ALLOWED")
        status, body = await get(url + "garbage")
        assert status == 401 and body["code"] and body["reason"]

        # The page shows the same numbers, newest event first, and by day.
        page, errors = await open_studio(browser, srv.url, token("boss", "operator", "Dana"))
        await page.get_by_role("tab", name="Insights").click()
        rows = page.locator("#ins-periods tbody tr")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0).locator("th")).to_contain_text("event 2")
        await expect(rows.nth(0).locator("th")).to_contain_text("not ended")
        await expect(rows.nth(1)).to_contain_text("approved: 1, escalated: 1")
        await expect(rows.nth(1)).to_contain_text("ended")
        if reason == "no_material":
            await expect(rows.nth(1).locator("td").nth(3)).to_contain_text(GAP)
        await page.screenshot(path=str(artifact("studio-insights-events.png")), full_page=True)
        await page.select_option("#ins-by", "days")
        await expect(rows).to_have_count(1)
        await expect(rows.nth(0).locator("th")).to_have_text(today["key"])
        await expect(rows.nth(0).locator("td").nth(0)).to_contain_text("3 — ")
        assert not errors, errors
