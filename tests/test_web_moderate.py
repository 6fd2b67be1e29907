"""The moderator console (/moderate) in a real Chromium against a real server on 127.0.0.1.

The console runs the queue, the clone, review, room settings and people over the wire
protocol; these tests drive it the way a moderator would (clicks and keys) and check what
the server did, while Python clients play the audience.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from townhall.plugin.client import JoinRejected, RoomClient
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.messages import Ask, StageEnd, StageStart
from townhall.server.app import TownhallServer
from townhall.server.gateway.tokens import issue_token

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import SECRET, TokenMaker, make_settings
from .test_clone_stage import Viewer, clone_settings
from .waiting import eventually

BUILT = ("dist/moderate.html", "dist/assets/moderate.js", "dist/assets/moderate.css")
REMOTE_WORK = "How do we think about remote work?"

# A loaded CI machine runs Chromium, the server and the clone on few cores: wait longer.
expect.set_options(timeout=10_000)
# The pages here draw nothing (see conftest): they run beside the drawing tests.
pytestmark = pytest.mark.light


@pytest.fixture(scope="session", autouse=True)
def built_pages() -> None:
    """Build the pages with npm when dist/ is missing or older than the sources."""
    ensure_built("moderate", BUILT)


async def open_console(browser: Browser, url: str, token: str | None) -> tuple[Page, list[str]]:  # noqa: F811
    """A console page; returns it and a list that collects its script errors."""
    page = await browser.new_page(viewport={"width": 1440, "height": 1100})
    errors: list[str] = []
    # The page may load nothing from anywhere but this server.
    page.on(
        "request",
        lambda r: (
            None
            if r.url.startswith((url, url.replace("http", "ws", 1), "data:"))
            else errors.append(f"request to {r.url}")
        ),
    )
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    query = "" if token is None else f"?token={token}"
    await page.goto(f"{url}/moderate{query}")
    return page, errors


def question_row(page: Page, qid: int):  # type: ignore[no-untyped-def]
    return page.locator(f"#queue-list li[data-id='{qid}']")


@pytest.fixture
async def clone_server(tmp_path: Path) -> AsyncIterator[TownhallServer]:
    async with TownhallServer(clone_settings(tmp_path)) as srv:
        yield srv


async def test_console_runs_the_queue_and_the_clone(
    clone_server: TownhallServer,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    srv = clone_server
    page, errors = await open_console(browser, srv.url, token("mod", role="moderator", name="Mo"))
    await expect(page.locator("#conn")).to_have_text("Connected")
    await expect(page.locator("#who")).to_contain_text("Mo · moderator")
    await expect(page.locator("#queue-empty")).to_be_visible()
    await expect(page.locator("input[name=mode][value=moderated]")).to_be_checked()

    sam = Viewer(srv.ws_url, token("sam", role="spectator", name="Sam"))
    ann = Viewer(srv.ws_url, token("ann", role="spectator", name="Ann"))
    await sam.connect()
    await ann.connect()
    ids = []
    for who, text in (
        (sam, REMOTE_WORK),
        (sam, "What is our approach to security?"),
        (sam, "What are the plans for the office in Lviv?"),
        (ann, "Can you tell us more about hiring for next year?"),
    ):
        ack = await who.request(lambda ref, text=text: Ask(ref, text))
        assert type(ack).__name__ == "Ack", ack
        ids.append(ack.id)
    q1, q2, q3, q4 = ids

    # Every question shows up, in the clone's order, with its asker.
    await expect(page.locator("#queue-list > li")).to_have_count(4)
    await expect(question_row(page, q1)).to_contain_text(REMOTE_WORK)
    await expect(question_row(page, q1)).to_contain_text("asked by Sam")
    await expect(question_row(page, q4)).to_contain_text("asked by Ann")
    await expect(page.locator("#queue-summary")).to_have_text(
        "4 open questions, 4 waiting for approval"
    )

    # Edit: a bad edit shows the server's error next to the question; a good one is stored.
    await page.get_by_role("button", name=f"Edit question {q2}").click()
    field = page.get_by_role("textbox", name=f"New text for question {q2}")
    await expect(field).to_be_focused()
    await expect(field).to_have_value("What is our approach to security?")
    await field.fill("ab")
    await field.press("Enter")
    result = question_row(page, q2).locator(".result")
    await expect(result).to_contain_text("BAD_MESSAGE, code 2")
    await expect(page.locator("#status")).to_contain_text(f"Could not edit question {q2}")
    edited = "What is our approach to security in the cloud?"
    await field.fill(edited)
    await field.press("Enter")
    await eventually(lambda: srv.authority.qa.questions[q2].text == edited)
    await expect(question_row(page, q2).locator(".q-text")).to_have_text(edited)
    await expect(result).to_contain_text(f"Question {q2} edited")

    # Pin: the pinned question goes first.
    await page.get_by_role("button", name=f"Pin question {q3}").click()
    await eventually(lambda: srv.authority.qa.questions[q3].pinned)
    await expect(page.locator("#queue-list > li").first).to_have_attribute("data-id", str(q3))
    await expect(question_row(page, q3)).to_contain_text("pinned")

    # Merge q4 into q2: q4 leaves the queue for "Done", its voters count for q2.
    await page.get_by_role("button", name=f"Merge into… question {q4}").click()
    await page.get_by_label(f"Question to merge question {q4} into").select_option(str(q2))
    await question_row(page, q4).get_by_role("button", name="Merge", exact=True).click()
    await eventually(lambda: srv.authority.qa.questions[q4].merged_into == q2)
    assert srv.authority.qa.questions[q2].votes == 2
    await expect(question_row(page, q4)).to_have_count(0)
    await expect(page.locator("#done-list")).to_contain_text(f"merged into #{q2}")
    await expect(page.locator("#done-count")).to_have_text("1")

    # Move q1 to position 2 (after the pinned one).
    await page.get_by_role("button", name=f"Move to… question {q1}").click()
    position = page.get_by_role("spinbutton", name=f"New position for question {q1}")
    await position.fill("2")
    await position.press("Enter")
    await eventually(lambda: srv.authority.qa.questions[q1].rank == 2)
    await expect(page.locator("#queue-list > li").nth(1)).to_have_attribute("data-id", str(q1))
    order = await page.locator("#queue-list > li").evaluate_all(
        "els => els.map(e => +e.dataset.id)"
    )
    assert order == [q.id for q in srv.authority.qa.ordered()] == [q3, q1, q2]

    # Approve with the keyboard: the clone takes it and the console shows it speaking.
    approve = page.get_by_role("button", name=f"Approve question {q1}")
    await approve.focus()
    await page.keyboard.press("Enter")
    stage = page.locator("#stage-body")
    await expect(stage).to_contain_text("Speaking now", timeout=20_000)
    await expect(stage).to_contain_text(REMOTE_WORK)
    await expect(stage.locator(".stage-label")).to_have_text("approved")
    await expect(stage).to_contain_text("Approved statements")
    started = next(s for s in sam.of(StageStart) if s.question == q1)
    await expect(stage).to_contain_text(", ".join(started.sources))
    assert srv.authority.qa.questions[q1].state == "answering"
    await expect(stage.locator(".captions")).not_to_be_empty(timeout=10_000)
    await expect(page.locator("#done-list")).not_to_contain_text(REMOTE_WORK)
    await page.screenshot(path=str(artifact("moderate.png")), full_page=True)

    # Stop: the answer ends as "stopped" for everyone, and the console says so.
    await page.get_by_role("button", name="Stop the clone").click()
    await eventually(lambda: any(e.answer == started.answer for e in sam.of(StageEnd)), 10)
    end = next(e for e in sam.of(StageEnd) if e.answer == started.answer)
    assert end.outcome == "stopped"
    await expect(stage).to_contain_text("The clone is not speaking.")
    await expect(page.locator("#stage-result")).to_contain_text("The clone was stopped.")
    await expect(page.locator("#stage-last summary")).to_contain_text("stopped")
    await expect(page.get_by_role("button", name="Stop the clone")).to_be_disabled()

    assert not errors, errors
    for v in (sam, ann):
        await v.client.close()


async def test_review_edit_is_what_the_clone_speaks(
    clone_server: TownhallServer,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    srv = clone_server
    page, errors = await open_console(browser, srv.url, token("mod", role="moderator"))
    await expect(page.locator("#conn")).to_have_text("Connected")
    review = page.get_by_role("switch", name="Review answers")
    await expect(review).not_to_be_checked()
    await review.check()
    await eventually(lambda: srv.authority.qa.review)
    await expect(page.locator("#review-mode")).to_contain_text("Review is on")
    await expect(page.locator("#settings-result")).to_contain_text("Review is on")

    sam = Viewer(srv.ws_url, token("sam", role="spectator", name="Sam"))
    await sam.connect()
    ack = await sam.request(lambda ref: Ask(ref, REMOTE_WORK))
    qid = ack.id  # type: ignore[union-attr]
    await page.get_by_role("button", name=f"Approve question {qid}").click()

    draft = page.locator("#drafts > li")
    await expect(draft).to_have_count(1, timeout=15_000)
    await expect(draft).to_contain_text(REMOTE_WORK)
    await expect(draft.locator(".draft-text")).not_to_be_empty()
    await expect(draft).to_contain_text("Sources: ")
    assert not sam.of(StageStart)  # nothing is spoken before the decision
    await page.screenshot(path=str(artifact("moderate-review.png")), full_page=True)

    edited = "We trust people to choose where they work best."
    await page.get_by_role("button", name=f"Edit the draft answer to question {qid}").click()
    box = page.get_by_role("textbox", name=f"Edited answer to question {qid}")
    await expect(box).to_be_focused()
    await box.fill(edited)
    await page.get_by_role("button", name="Speak edited text").click()
    await expect(page.locator("#review-result")).to_contain_text("edited answer")
    await expect(page.locator("#stage-body")).to_contain_text("Speaking now", timeout=10_000)
    # Spoken as the moderators' words, under their own label: never "Approved statements".
    await expect(page.locator("#stage-body .label-moderator")).to_have_text(
        "Written by the moderators"
    )
    await page.screenshot(path=str(artifact("moderate-speaking-edit.png")), full_page=True)

    def spoken() -> bool:
        starts = [s for s in sam.of(StageStart) if s.question == qid]
        return bool(starts) and any(e.answer == starts[0].answer for e in sam.of(StageEnd))

    await eventually(spoken, 20)
    start = next(s for s in sam.of(StageStart) if s.question == qid)
    end = next(e for e in sam.of(StageEnd) if e.answer == start.answer)
    assert end.outcome == "done" and end.text.endswith(edited)  # after the spoken disclosure
    assert (start.label, end.label, end.sources) == ("moderator", "moderator", [])
    await expect(page.locator("#drafts > li")).to_have_count(0)
    await expect(page.locator("#stage-last")).to_contain_text(edited)
    assert not errors, errors
    await sam.client.close()


async def test_links_that_cannot_moderate_say_why(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        expired = issue_token(
            SECRET, user_id="old", name="Old", role="moderator", room="main",
            ttl_s=60, now=time.time() - 3600,
        )  # fmt: skip
        cases = [
            (None, "This page needs your moderator link"),
            ("not-a-token", "This link is not valid"),
            (expired, "Your link has expired"),
            (token("w", role="moderator", room="elsewhere"), "This link is for another room"),
            (token("spec", role="spectator", name="Sam"), "Moderators only"),
        ]
        for tok, title in cases:
            page, errors = await open_console(browser, srv.url, tok)
            notice = page.locator("#notice")
            await expect(notice.locator("h2")).to_have_text(title)
            await expect(notice).to_be_visible()
            await expect(page.locator("#console")).to_be_hidden()
            if title == "Moderators only":
                await expect(notice).to_contain_text("You joined as Sam, a spectator")
            await page.close()
            # The browser logs the failed socket itself; the page's own code must not fail.
            assert not [e for e in errors if "WebSocket" not in e], errors


async def test_people_hands_and_reconnecting(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    async with TownhallServer(make_settings(tmp_path, qa={"mode": "moderated"})) as srv:
        page, errors = await open_console(
            browser, srv.url, token("mod", role="moderator", name="Mo")
        )
        await expect(page.locator("#conn")).to_have_text("Connected")
        ada = RoomClient(srv.ws_url, token("ada", role="attendee", name="Ada"))
        bo = RoomClient(srv.ws_url, token("bo", role="attendee", name="Bo"))
        for client in (ada, bo):
            await client.connect()
        await bo.raise_hand()
        await ada.raise_hand()
        hands = page.locator("#hands > li")
        await expect(hands).to_have_count(2)
        # In the order the hands went up, each with its Grant mic button (tests/test_rtc_browser).
        await expect(hands.nth(0)).to_contain_text("Bo")
        await expect(hands.nth(1)).to_contain_text("Ada")
        await expect(hands.nth(0).get_by_role("button", name="Grant mic to Bo")).to_be_enabled()
        await expect(page.locator("#people-count")).to_have_text("3")
        await expect(page.locator("#people-rows")).to_contain_text("Mo (you)")

        # Mute Ada: her hand goes down and the table says so.
        ada_slot = ada.welcome.slot  # type: ignore[union-attr]
        await page.get_by_role("button", name="Mute Ada").click()
        await eventually(lambda: srv.room.members[ada_slot].muted)
        row = page.locator(f"#people-rows tr[data-slot='{ada_slot}']")
        status = row.locator("td").nth(3)
        await expect(status).to_have_text("muted")
        await expect(hands).to_have_count(1)
        await expect(page.get_by_role("button", name="Unmute Ada")).to_be_visible()

        # Kick Bo: two presses; Bo is closed with KICKED and leaves the list.
        kick = page.get_by_role("button", name="Kick Bo")
        await kick.click()
        confirm = page.get_by_role("button", name="Confirm: kick Bo")
        await expect(confirm).to_be_visible()
        await confirm.press("Enter")
        await eventually(lambda: bo.closed, 5)
        assert bo.close_code == 4000 + ErrorCode.KICKED
        await expect(page.locator("#people-result")).to_contain_text("Bo was removed")
        await expect(page.locator("#people-count")).to_have_text("2")

        # A dropped console reconnects by itself, resuming, and keeps working.
        session = next(s for s in srv.fanout.sessions.values() if s.role == "moderator")
        dropped = ProtocolError(ErrorCode.SLOW_CONSUMER, "dropped for the test")
        srv.authority.fail(srv.authority.conns[session.id], dropped)
        srv.host.run()
        await expect(page.locator("#conn")).to_have_text("Reconnecting…")
        await expect(page.locator("#status")).to_contain_text("reconnecting")
        await expect(page.locator("#conn")).to_have_text("Connected", timeout=10_000)
        await expect(page.locator("#status")).to_contain_text("Reconnected")
        await page.get_by_role("button", name="Unmute Ada").click()
        await eventually(lambda: not srv.room.members[ada_slot].muted)
        await expect(status).to_have_text("present")

        # Banned users cannot come back.
        await page.get_by_role("button", name="Ban Ada").click()
        await page.get_by_role("button", name="Confirm: ban Ada").click()
        await eventually(lambda: ada.closed, 5)
        with pytest.raises(JoinRejected):
            await RoomClient(srv.ws_url, token("ada", role="attendee", name="Ada")).connect()
        assert not errors, errors
