"""/watch and /moderate in the attendee's language: Chromium with locale uk-UA gets Ukrainian
from the catalogue, the switch on the page changes it (and is remembered)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from townhall.server.app import TownhallServer

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker, make_settings

OPEN = "() => document.getElementById('status').dataset.state === 'open'"
BUILT = ("dist/watch.html", "dist/assets/watch.js", "dist/moderate.html", "dist/assets/moderate.js")


@pytest.fixture(scope="session", autouse=True)
def built_pages() -> None:
    ensure_built("watch", BUILT)
    ensure_built("moderate", BUILT)


async def test_pages_speak_ukrainian_to_a_ukrainian_browser_and_switch(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    async with TownhallServer(make_settings(tmp_path, qa={"mode": "moderated"})) as srv:
        context = await browser.new_context(locale="uk-UA", viewport={"width": 1280, "height": 760})
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(f"{srv.url}/watch?token={token('spec', role='spectator', name='Оля')}")
        await page.wait_for_function(
            "() => document.getElementById('status').dataset.state === 'open'"
        )
        assert await page.evaluate("document.documentElement.lang") == "uk"
        assert await page.locator("#status").inner_text() == "Наживо"
        assert await page.locator("#board-title").inner_text() == "Запитання"
        assert await page.locator("#ask-button").inner_text() == "Запитати"
        assert await page.locator("label[for=ask-input]").inner_text() == (
            "Поставте запитання ШІ-клону керівника"
        )
        assert "Відкритих запитань ще немає" in await page.locator("#empty-board").inner_text()
        assert await page.locator("#lang").input_value() == "uk"
        await page.fill("#ask-input", "Коли відкриється новий офіс у Львові?")
        await page.click("#ask-button")
        await page.locator("#ask-status[data-kind=ok]").wait_for()
        assert "модератор його перегляне" in await page.locator("#ask-status").inner_text()
        badge = page.locator("#questions .badge").first
        await badge.wait_for()
        assert await badge.inner_text() == "чекає на модератора"
        await page.screenshot(path=str(artifact("watch-uk.png")))

        # The moderator console, in Ukrainian too.
        mod = await context.new_page()
        mod.on("pageerror", lambda exc: errors.append(str(exc)))
        await mod.goto(f"{srv.url}/moderate?token={token('mod', role='moderator', name='Мо')}")
        await mod.locator("#conn[data-state=open]").wait_for()
        assert await mod.locator("#conn").inner_text() == "Під’єднано"
        assert await mod.locator("#queue-h").inner_text() == "Черга"
        assert await mod.locator("#stop").inner_text() == "Зупинити клона"
        assert await mod.locator("#settings-h").inner_text() == "Налаштування кімнати"
        assert await mod.locator("#recordings-h").inner_text() == "Записи"
        row = mod.locator("#queue-list li").first
        await row.wait_for()
        assert await row.locator(".badge").first.inner_text() == "чекає на схвалення"
        assert await row.locator("button.primary").first.inner_text() == "Схвалити"
        assert "запитує Оля" in await row.inner_text()
        assert await mod.locator("#stage-body .idle").inner_text() == "Клон зараз не говорить."
        await mod.screenshot(path=str(artifact("moderate-uk.png")), full_page=True)

        # The event's lifecycle in Ukrainian: the Event panel, the hold card and status on /watch.
        await expect(mod.locator("#event-h")).to_have_text("Захід: Наживо")
        await mod.locator("#event-buttons button[data-event=hold]").click()
        await expect(mod.locator("#event-phase")).to_have_text("Пауза")
        await expect(mod.locator("#event-result")).to_have_text(
            "✓ Пауза: клон завершує речення і чекає."
        )
        await expect(mod.locator("#event-buttons button[data-event=resume]")).to_have_text(
            "Продовжити"
        )
        await expect(page.locator("#event-card[data-phase=hold] #event-title")).to_have_text(
            "Пауза"
        )
        assert "залишаються в черзі" in await page.locator("#event-detail").inner_text()
        await expect(page.locator("#status")).to_have_text("Пауза")
        await page.screenshot(path=str(artifact("watch-uk-hold.png")))
        await mod.locator("#event-buttons button[data-event=resume]").click()
        await expect(page.locator("#event-card")).to_be_hidden()
        await expect(page.locator("#status")).to_have_text("Наживо")

        # The switch: English from now on, remembered over the browser's language.
        await page.select_option("#lang", "en")
        await page.wait_for_function("() => document.documentElement.lang === 'en'")
        await page.wait_for_function(
            "() => document.getElementById('status').dataset.state === 'open'"
        )
        assert await page.locator("#board-title").inner_text() == "Questions"
        assert await page.locator("#status").inner_text() == "Live"
        await page.reload()
        await page.wait_for_function(
            "() => document.getElementById('status').dataset.state === 'open'"
        )
        assert await page.locator("#ask-button").inner_text() == "Ask"
        assert not errors, errors
        await context.close()
