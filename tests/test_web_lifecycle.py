"""The event's lifecycle in a real Chromium against a real server on 127.0.0.1.

A moderator drives lobby -> live -> hold -> resume -> ended from /moderate's Event panel
(with the keyboard too); /watch shows each phase: the lobby with its countdown, nothing over
the stage while live, the hold card, the closing card with the Ask form closed. The phase
is stored: after a restart the closing card is still up. Screenshots go to the artifacts.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ack, Ask, Error, Moderate, StageStart
from townhall.server.app import TownhallServer

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker, make_settings
from .test_clone_stage import Viewer
from .test_web_traps import profile
from .waiting import eventually

expect.set_options(timeout=15_000)
# The pages here draw nothing (see conftest): they run beside the drawing tests.
pytestmark = pytest.mark.light

STATUS = {"doors": "Doors open", "live": "Live", "hold": "On hold", "ended": "Ended"}


@pytest.fixture(scope="session", autouse=True)
def built_pages() -> None:
    ensure_built("watch", ("dist/watch.html", "dist/assets/watch.js"))
    ensure_built("moderate", ("dist/moderate.html", "dist/assets/moderate.js"))


async def watch(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    """A /watch page, connected (its header names the phase, not always "Live")."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{url}/watch")
    await expect(page.locator("#status")).to_have_attribute("data-state", "open")
    return page, errors


async def phase_card(page: Page, phase: str, title: str) -> None:
    await expect(page.locator("#status")).to_have_text(STATUS[phase])
    card = page.locator("#event-card")
    await expect(card).to_be_visible()
    await expect(card).to_have_attribute("data-phase", phase)
    await expect(page.locator("#event-title")).to_have_text(title)


async def test_a_moderator_drives_the_event_and_watch_shows_each_phase(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    starts_at = int(time.time()) + 15 * 60
    settings = make_settings(
        tmp_path,
        room={"phase": "doors", "starts_at": str(starts_at)},
        clone={"enabled": True, "pause_s": 0.1},
        qa={"mode": "moderated"},
    )
    async with TownhallServer(settings) as srv:
        console = await browser.new_page(viewport={"width": 1440, "height": 1100})
        errors: list[str] = []
        console.on("pageerror", lambda exc: errors.append(str(exc)))
        await console.goto(f"{srv.url}/moderate?token={token('mod', role='moderator')}")
        await expect(console.locator("#conn")).to_have_text("Connected")
        page, watch_errors = await watch(await profile(browser), srv.url)
        await page.set_viewport_size({"width": 1280, "height": 800})
        phase = console.locator("#event-phase")

        # The lobby: the countdown runs, the board takes questions, the clone waits.
        await expect(phase).to_have_text("Doors open")
        await phase_card(page, "doors", "Doors are open")
        await expect(page.locator("#event-clock")).to_contain_text(
            re.compile(r"Starts at .*, in 1[45] min \d\d s")
        )
        spectator = Viewer(srv.ws_url, token("sam", role="spectator", name="Sam"))
        moderator = Viewer(srv.ws_url, token("mo2", role="moderator"))
        await spectator.client.connect()
        await moderator.client.connect()
        ack = await spectator.request(lambda ref: Ask(ref, "What is our plan for next year?"))
        assert isinstance(ack, Ack)
        approved = await moderator.request(lambda ref: Moderate(ref, "approve", ack.id))
        assert isinstance(approved, Ack)
        await page.screenshot(path=str(artifact("lifecycle-doors.png")))
        assert not spectator.of(StageStart) and srv.authority.answer is None

        # Live, from the keyboard: the card goes, the clone takes the question.
        go_live = console.get_by_role("button", name="Go live")
        await go_live.focus()
        await console.keyboard.press("Enter")
        await expect(phase).to_have_text("Live")
        await expect(page.locator("#event-card")).to_be_hidden()
        await expect(page.locator("#status")).to_have_text("Live")
        await eventually(lambda: bool(spectator.of(StageStart)), timeout=30)
        await page.screenshot(path=str(artifact("lifecycle-live.png")))

        # Hold: the clone ends its sentence and waits; the hold card is up.
        await console.get_by_role("button", name="Hold").click()
        await expect(phase).to_have_text("On hold")
        await phase_card(page, "hold", "On hold")
        await eventually(lambda: srv.authority.answer is None, timeout=30)
        await expect(page.locator("#now-answering")).to_be_hidden()  # the answer ended
        await page.screenshot(path=str(artifact("lifecycle-hold.png")))

        # Resume: live again, no card.
        await console.get_by_role("button", name="Resume").click()
        await expect(phase).to_have_text("Live")
        await expect(page.locator("#event-card")).to_be_hidden()

        # Ended: the closing card, the Ask form closed, an Ask refused with its code.
        await console.get_by_role("button", name="End the event").click()
        await expect(phase).to_have_text("Ended")
        await phase_card(page, "ended", "This town hall has ended")
        await expect(page.locator("#ask-input")).to_be_disabled()
        await expect(page.locator("#ask-status")).to_contain_text("questions are closed")
        refused = await spectator.request(lambda ref: Ask(ref, "One more question, please?"))
        assert isinstance(refused, Error) and refused.code == ErrorCode.EVENT_ENDED
        await page.screenshot(path=str(artifact("lifecycle-ended.png")))
        await console.screenshot(path=str(artifact("lifecycle-moderate.png")))
        for viewer in (spectator, moderator):
            await viewer.client.close()
        await page.close()
        await console.close()
        assert not errors and not watch_errors, (errors, watch_errors)

    # The phase is stored: after a restart /watch still shows the closing card.
    async with TownhallServer(settings) as srv:
        assert srv.authority.event.phase == "ended"
        assert srv.authority.event.starts_at == starts_at
        page, _ = await watch(await profile(browser), srv.url)
        await phase_card(page, "ended", "This town hall has ended")
        await page.close()
