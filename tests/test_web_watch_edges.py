"""/watch joined through an edge moves on when that edge dies (real Chromium, real processes).

NATS with JetStream on 127.0.0.1:4222, one authority (it serves the page) and two edges.
The page joins through edge A (``/watch?ws=``); ``kill -9`` of A and the page is live again
through edge B, resumed (the same seat, the room's sequence carried on), and still works.
"""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, expect

from townhall.protocol.messages import Ask

from .browser import browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker
from .test_bus_edges import Deployment, health, until
from .test_clone_stage import Viewer
from .test_edge_moves import MOVE_LIMIT_S, deployed, edge_urls
from .test_web_traps import profile
from .test_web_watch import BUILT

# The page draws nothing here (see conftest): it runs beside the drawing tests.
pytestmark = pytest.mark.light


@pytest.fixture
async def edges(tmp_path: Path) -> AsyncIterator[Deployment]:
    ensure_built("watch", BUILT)
    # The page comes from the authority's origin (its port is picked at start): edges let
    # any origin open their WebSocket here; a deployment names the page's origin instead.
    async with deployed(tmp_path, clone=False, allowed_origins="*") as deployment:
        yield deployment


async def test_watch_moves_to_another_edge_when_its_edge_dies(
    edges: Deployment,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    edge_a, edge_b = edges.edges
    await until(lambda: health(edges.http), lambda h: len(edge_urls(h)) == 2, "both edges")
    page = await (await profile(browser)).new_page()  # no WebGL: the connection is tested
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    query = urlencode({"token": token("viewer", "spectator", room=edges.room), "ws": edge_a.url})
    await page.goto(f"{edges.http}/watch?{query}")
    await expect(page.locator("#status")).to_have_text("Live", timeout=20_000)
    before: dict[str, Any] = await page.evaluate("townhallDebug.connection")
    assert before["url"] == edge_a.url and not before["resumed"]

    asker = Viewer(edge_b.url, token("ada", room=edges.room))
    await asker.connect()
    await asker.request(lambda ref: Ask(ref, "Will the canteen open on Saturdays?"))
    await expect(page.locator("#questions li")).to_have_count(1)

    edge_a.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    await edge_a.process.wait()
    await page.wait_for_function(
        "(url) => townhallDebug.connection.url === url && townhallDebug.connection.resumed",
        arg=edge_b.url,
        timeout=MOVE_LIMIT_S * 1000,
    )
    await expect(page.locator("#status")).to_have_text("Live")
    assert time.monotonic() - killed_at < MOVE_LIMIT_S
    after: dict[str, Any] = await page.evaluate("townhallDebug.connection")
    assert after["slot"] == before["slot"] and after["lastSeq"] >= before["lastSeq"]
    # The room goes on through B: a new question reaches the page, in sequence.
    await asker.request(lambda ref: Ask(ref, "Can we bring our dogs to the office?"))
    await expect(page.locator("#questions li")).to_have_count(2)
    final: dict[str, Any] = await page.evaluate("townhallDebug.connection")
    assert final["lastSeq"] > after["lastSeq"]
    # The only errors are the dead edge's (the browser logs a refused WebSocket).
    assert all("WebSocket" in e for e in errors), errors
    await asker.client.close()
