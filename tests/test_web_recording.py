"""/watch?recording=ID in Chromium: a recorded event plays with chapters, seeking, captions and
labels, through the live page's own code; /moderate lists the recordings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from townhall.server.app import TownhallServer

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker
from .recorded import record_two_answers, recording_settings

BUILT = ("dist/watch.html", "dist/assets/watch.js", "dist/moderate.html")


@pytest.fixture(scope="session", autouse=True)
def built_pages() -> None:
    ensure_built("watch", BUILT)
    ensure_built("moderate", BUILT)


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


async def test_a_recording_plays_seeks_to_a_chapter_and_shows_its_captions(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    async with TownhallServer(recording_settings(tmp_path)) as srv:
        assert srv.recorder is not None
        rec = await record_two_answers(srv, token)
        end2 = rec.ends[1]
        await rec.close()

        # /moderate lists the recording with a link that plays it.
        mod = token("mod-2", role="moderator", name="Mo")
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{srv.url}/moderate?token={mod}")
        link = page.locator(f'#recordings li[data-recording="{srv.recorder.id}"] a')
        await link.wait_for(timeout=20_000)
        href = await link.get_attribute("href")
        assert href is not None and href.startswith(f"/watch?recording={srv.recorder.id}&token=")
        assert "2 answers" in await page.locator("#recordings").inner_text()

        # Play it: two chapters, the question texts; seek to chapter 2.
        await page.goto(srv.url + href)
        await page.wait_for_function("() => window.townhallDebug && townhallDebug.player")
        chapters = page.locator("#chapters .chapter")
        assert await chapters.count() == 2
        assert "What is our plan for the office?" in await chapters.nth(1).inner_text()
        assert await page.locator("#ask-form").is_hidden()
        await chapters.nth(1).click()
        said = words(end2.text)
        await page.wait_for_function(
            "() => townhallDebug.captions.split(' ').filter(Boolean).length >= 3",
            timeout=20_000,
        )
        shown = await page.evaluate("townhallDebug.captions")
        assert words(shown) <= said, (shown, end2.text)
        assert await page.locator("#label").inner_text() == "Approved answer"
        now = await page.locator("#question-now").inner_text()
        assert "What is our plan for the office?" in now
        assert await page.locator("#chapters li").nth(1).get_attribute("aria-current") == "true"
        position = await page.locator("#position").inner_text()
        assert re.match(r"^\d+:\d\d / \d+:\d\d$", position), position
        await page.wait_for_function("() => townhallDebug.audioPeak() > 0.01", timeout=20_000)
        await page.screenshot(path=str(artifact("watch-recording.png")))

        # The seek bar jumps back to the start; then pause holds still and play goes on.
        # (Seeking first: on a busy machine the recording may play out, which pauses it,
        # between reading the button and clicking it. From the start the whole recording
        # is still to play, so the button toggles whichever way it stands.)
        await page.evaluate("townhallDebug.player.conn.seek(townhallDebug.player.conn.startUs)")
        # Back before the second chapter: it is no longer the current one (the first may be
        # again by the time this is read, if the recording has played on to it).
        await expect(page.locator("#chapters li").nth(1)).not_to_have_attribute(
            "aria-current", "true"
        )
        play = page.locator("#play")
        before = await play.inner_text()
        assert before in ("Play", "Pause"), before
        other = "Play" if before == "Pause" else "Pause"
        await play.click()
        await expect(play).to_have_text(other)
        await play.click()
        await expect(play).to_have_text(before)
        assert not errors, errors
        await context.close()
