"""/studio in a real Chromium against a real server: the whole loop of issue 13.

A Python spectator asks something the clone escalates; the leader, in the studio page,
sees it in the inbox, answers and publishes it; the spectator hears it under the label
``leader``; the leader endorses it; the same question in other words is answered from the
new statement, cited. A second test corrects an answer from the page and finds the
correction notice in the transcript.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from townhall.protocol.messages import Ack, Ask, FollowUp, StageEnd, StageStart
from townhall.server.app import TownhallServer
from townhall.server.ops.transcript import export

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker
from .test_clone_stage import Viewer, clone_settings, wait_answer
from .test_studio import GAP, LEADER, PARAPHRASE
from .test_web_watch import BUILT as WATCH_BUILT
from .test_web_watch import open_watch
from .waiting import eventually

BUILT = ("dist/studio.html", "dist/assets/studio.js", "dist/assets/studio.css")
expect.set_options(timeout=15_000)


@pytest.fixture(scope="session", autouse=True)
def built_pages() -> None:
    ensure_built("studio", BUILT)
    ensure_built("watch", WATCH_BUILT)


async def open_studio(browser: Browser, url: str, token: str) -> tuple[Page, list[str]]:  # noqa: F811
    page = await browser.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((url, url.replace("http", "ws", 1), "data:"))
            else errors.append(f"request to {r.url}")
        ),
    )
    await page.goto(f"{url}/studio?token={token}")
    await expect(page.locator("#conn")).to_have_text("Connected")
    return page, errors


async def test_the_whole_loop_in_the_browser(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    async with TownhallServer(clone_settings(tmp_path, fast=True, mode="auto")) as srv:
        page, errors = await open_studio(browser, srv.url, token("boss", "operator", "Dana"))
        # before anything happened, Insights says so in words, not as a numbered list item
        await page.get_by_role("tab", name="Insights").click()
        empty_gaps = page.locator("#ins-gaps li.empty")
        await expect(empty_gaps).to_have_text("no knowledge gaps")
        style = await empty_gaps.evaluate("li => getComputedStyle(li).listStyleType")
        assert style == "none", style
        await page.locator("#tab-inbox").click()
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        await spectator.connect()
        ack = await spectator.request(lambda ref: Ask(ref, GAP))
        assert isinstance(ack, Ack)
        asked = time.monotonic()
        item = page.locator(f"#inbox-list li[data-question='{ack.id}']")
        await expect(item).to_be_visible()
        seen_s = time.monotonic() - asked  # reported, not asserted (a busy machine)
        await expect(item).to_contain_text("Sam")
        await expect(item.locator(".said")).to_contain_text("The clone said")
        await expect(page.locator("#inbox-count")).to_have_text("1")
        await page.screenshot(path=str(artifact("studio-inbox.png")), full_page=True)

        # a second spectator watches in the browser
        watch, watch_errors = await open_watch(browser, srv.url, token("w2", "spectator", "Wu"))
        await expect(watch.locator("#status")).to_have_text("Live")

        # keyboard only: focus the answer box, type, choose "publish", send
        await item.locator("textarea").focus()
        await page.keyboard.type(LEADER)
        await page.keyboard.press("Tab")
        await page.keyboard.press("Tab")
        await page.keyboard.press("Enter")
        await expect(item).to_have_attribute("data-state", "publish")

        def leader_spoke() -> bool:
            return any(e.label == "leader" for e in spectator.of(StageEnd))

        await eventually(leader_spoke, timeout=30)
        start = next(s for s in spectator.of(StageStart) if s.label == "leader")
        end = next(e for e in spectator.of(StageEnd) if e.answer == start.answer)
        assert end.text == LEADER and start.question == ack.id
        label = watch.locator("#label")
        await expect(label).to_have_attribute("data-label", "leader")
        await expect(label).to_have_text("The leader's own words")
        await expect(watch.locator("#transcript")).to_contain_text("picnic is on the twelfth")
        await watch.screenshot(path=str(artifact("studio-watch-leader.png")))
        assert not watch_errors, watch_errors

        await page.get_by_role("tab", name="Answers").click()
        row = page.locator(f"#answers-list li[data-answer='{start.answer}']")
        await expect(row.locator(".badge")).to_have_text("leader")
        await row.get_by_role("button", name="Endorse").click()
        await expect(row).to_contain_text("endorsed")
        await page.get_by_role("tab", name="Statements").click()
        new = page.locator("#statements-list li", has_text=LEADER)
        await expect(new).to_contain_text("approved by Dana")
        statement_id = await new.get_attribute("data-statement")
        await new.scroll_into_view_if_needed()
        await page.screenshot(path=str(artifact("studio-statements.png")))

        again = await spectator.request(lambda ref: Ask(ref, PARAPHRASE))
        assert isinstance(again, Ack)
        _, end = await wait_answer(spectator, again.id)
        assert end.label == "approved" and end.sources == [statement_id] and end.text == LEADER

        await page.get_by_role("tab", name="Insights").click()
        await expect(page.locator("#ins-labels")).to_contain_text("leader")
        await page.screenshot(path=str(artifact("studio-insights.png")), full_page=True)
        await page.get_by_role("tab", name="Audit").click()
        await expect(page.locator("#audit-list")).to_contain_text("studio:endorse")
        assert not errors, errors
        artifact("studio-loop.json").write_text(json.dumps({"inbox_visible_s": seen_s}))
        await spectator.client.close()


@pytest.mark.light  # /studio only
async def test_a_correction_from_the_page_reaches_the_room_and_the_transcript(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    fixed = "Remote work: three office days a week from June."
    async with TownhallServer(clone_settings(tmp_path, fast=True, mode="auto")) as srv:
        page, errors = await open_studio(browser, srv.url, token("boss", "operator", "Dana"))
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        await spectator.connect()
        ack = await spectator.request(lambda ref: Ask(ref, "How do we think about remote work?"))
        assert isinstance(ack, Ack)
        start, _ = await wait_answer(spectator, ack.id)
        await page.get_by_role("tab", name="Answers").click()
        row = page.locator(f"#answers-list li[data-answer='{start.answer}']")
        await row.get_by_role("button", name="Correct…").click()
        box = row.locator("textarea")
        await expect(box).to_be_focused()
        await box.fill(fixed)
        await row.get_by_role("button", name="Save correction").click()
        await expect(row).to_contain_text("corrected")
        await page.screenshot(path=str(artifact("studio-answers.png")), full_page=True)
        await eventually(lambda: any(f.kind == "correction" for f in spectator.of(FollowUp)))
        assert not errors, errors
        await spectator.client.close()
    text = export(tmp_path / "townhall.db", "main", "md")
    assert "studio:correct" in text and fixed in text


@pytest.mark.light  # /studio only
async def test_statements_edit_conflict_history_and_a_moderator_reads_only(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    from townhall.protocol.messages import StatementSave

    async with TownhallServer(clone_settings(tmp_path, fast=True, mode="auto")) as srv:
        page, errors = await open_studio(browser, srv.url, token("boss", "operator", "Dana"))
        await page.get_by_role("tab", name="Statements").click()
        await page.locator("#statement-query").fill("remote-first")
        row = page.locator("#statements-list li[data-statement='S10']")
        await expect(row).to_be_visible()
        await row.get_by_role("button", name="Edit").click()
        await expect(page.locator("#sf-text")).to_be_focused()
        # meanwhile another operator saves version 2
        other = Viewer(srv.ws_url, token("ops2", role="operator", name="Ann"))
        await other.connect()
        s10 = srv.authority.studio.book.current["S10"]
        saved = await other.request(
            lambda ref: StatementSave(ref, "S10", 1, s10.topic, "Hybrid now.", "en", list(s10.tags))
        )
        assert isinstance(saved, Ack)
        await page.locator("#sf-text").fill("Remote forever.")
        await page.locator("#sf-text").press("Tab")
        await page.get_by_role("button", name="Save", exact=True).click()
        await expect(page.locator("#sf-result")).to_contain_text("CONFLICT")
        await expect(page.locator("#sf-result")).to_contain_text("Ann")
        await page.locator("#statement-query").fill("S10")
        await expect(row).to_contain_text("Hybrid now.")  # the current text, shown live
        await row.get_by_role("button", name="History").click()
        await expect(row.locator(".history li")).to_have_count(2)
        # a moderator sees the inbox and nothing else
        mod, mod_errors = await open_studio(browser, srv.url, token("mo", "moderator", "Mo"))
        await expect(mod.get_by_role("tab", name="Inbox")).to_be_visible()
        await expect(mod.get_by_role("tab", name="Statements")).to_be_hidden()
        assert not errors and not mod_errors, errors + mod_errors
        await other.client.close()
