"""/studio's "Play": an answer served by a real server, replayed as it was heard.

The answer's stage packets are kept as sent (``AnswerMedia``); ``/recordings/answer-N``
serves them as a one-answer recording to moderators and operators, and the Play button
embeds the /watch player on it: captions appear, the voice plays, the label is the one heard.
"""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from townhall.protocol import codec
from townhall.protocol.messages import Ack, Ask, StagePacket, StageStart
from townhall.server.app import TownhallServer
from townhall.server.store.recording import EVENT, META, STAGE, index, read_entries

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker
from .test_clone_stage import Viewer, clone_settings, wait_answer
from .test_web_studio import BUILT, open_studio
from .test_web_watch import BUILT as WATCH_BUILT

expect.set_options(timeout=15_000)


@pytest.fixture(scope="session", autouse=True)
def built_pages() -> None:
    ensure_built("studio", BUILT)
    ensure_built("watch", WATCH_BUILT)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


async def get(url: str) -> tuple[int, bytes]:
    return await asyncio.to_thread(_get, url)


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


async def test_an_answer_is_served_as_heard_to_staff_only_with_clear_errors(
    tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(clone_settings(tmp_path, fast=True, mode="auto")) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        await spectator.connect()
        ack = await spectator.request(lambda ref: Ask(ref, "How do we think about remote work?"))
        assert isinstance(ack, Ack)
        start, end = await wait_answer(spectator, ack.id)
        heard = [p for p in spectator.of(StagePacket) if p.answer == start.answer]
        await spectator.client.close()
        op = token("boss", "operator", "Dana")
        base = f"{srv.url}/recordings/answer-{start.answer}"

        status, body = await get(f"{base}.json?token={op}")
        assert status == 200, body
        idx = json.loads(body)
        assert idx["id"] == f"answer-{start.answer}"
        [chapter] = idx["chapters"]
        assert chapter["answer"] == start.answer and chapter["label"] == end.label
        assert chapter["text"] == "How do we think about remote work?"
        assert idx["start_us"] < chapter["start_us"] < chapter["end_us"] == idx["end_us"]

        status, data = await get(f"{base}.threc?token={op}")
        assert status == 200
        file = tmp_path / "replay.threc"
        file.write_bytes(data)
        entries = list(read_entries(file))
        assert [e.kind for e in entries[:2]] == [META, EVENT]
        first = codec.decode_server(entries[1].payload)
        assert isinstance(first, StageStart) and first.label == start.label
        assert first.question_text == start.question_text
        stage = [e for e in entries if e.kind == STAGE]
        packets = [codec.decode_server(e.payload) for e in stage]
        # The packets as sent: every one the spectator got, in order, byte for byte.
        assert [codec.encode(p) for p in heard] == [e.payload for e in stage][: len(heard)]
        assert len(stage) == len(heard)
        assert all(isinstance(p, StagePacket) for p in packets)
        assert all(e.at_us < p.media_time_us for e, p in zip(stage, packets, strict=True))  # type: ignore[union-attr]
        said = words(" ".join(c.text for p in packets for c in p.captions))  # type: ignore[union-attr]
        assert said and said <= words(end.text)
        assert index(file).chapters[0].answer == start.answer

        # Errors: a code and a reason.
        mod = token("mod", "moderator", "Mo")
        assert (await get(f"{base}.json?token={mod}"))[0] == 200
        status, body = await get(f"{base}.json?token={token('s2', 'spectator', 'Sue')}")
        assert status == 403 and json.loads(body)["code"] == "NOT_ALLOWED"
        status, body = await get(f"{srv.url}/recordings/answer-999.threc?token={op}")
        assert (status, json.loads(body)) == (404, {"code": "NOT_FOUND", "reason": "no answer 999"})
        status, body = await get(f"{base}.json?token=garbage")
        assert status == 401 and json.loads(body)["code"]
        status, body = await get(f"{srv.url}/recordings/answer-x1.json?token={op}")
        assert status == 404 and json.loads(body)["code"] == "NOT_FOUND"


async def test_play_in_the_studio_shows_the_captions_and_plays_the_voice(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
    token: TokenMaker,
) -> None:
    async with TownhallServer(clone_settings(tmp_path, mode="auto")) as srv:
        spectator = Viewer(srv.ws_url, token("spec", role="spectator", name="Sam"))
        await spectator.connect()
        ack = await spectator.request(lambda ref: Ask(ref, "What is our plan for the office?"))
        assert isinstance(ack, Ack)
        start, end = await wait_answer(spectator, ack.id)
        await spectator.client.close()
        page, errors = await open_studio(browser, srv.url, token("boss", "operator", "Dana"))
        await page.get_by_role("tab", name="Answers").click()
        row = page.locator(f"#answers-list li[data-answer='{start.answer}']")
        play = row.get_by_role("link", name="Play")
        href = await play.get_attribute("href")
        assert href is not None
        assert href.startswith(f"/watch?recording=answer-{start.answer}&token=")
        async with page.context.expect_page() as opened:
            await play.click()
        watch = await opened.value
        watch_errors: list[str] = []
        watch.on("pageerror", lambda exc: watch_errors.append(str(exc)))
        await watch.wait_for_function(
            "() => window.townhallDebug && townhallDebug.player"
            " && !townhallDebug.player.conn.paused"
        )
        await expect(watch.locator("#chapters .chapter")).to_have_count(1)
        await watch.wait_for_function(
            "() => townhallDebug.captions.split(' ').filter(Boolean).length >= 3", timeout=20_000
        )
        shown = await watch.evaluate("townhallDebug.captions")
        assert words(shown) <= words(end.text), (shown, end.text)
        await watch.wait_for_function("() => townhallDebug.audioPeak() > 0.01", timeout=20_000)
        await expect(watch.locator("#label")).to_have_text("Approved answer")
        now = await watch.locator("#question-now").inner_text()
        assert "What is our plan for the office?" in now
        await watch.screenshot(path=str(artifact("studio-play.png")))
        await page.screenshot(path=str(artifact("studio-answers-play.png")))
        assert not watch_errors, watch_errors
        assert not errors, errors
