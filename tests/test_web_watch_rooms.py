"""/watch of one room through an edge that serves several (real Chromium, real processes).

NATS with JetStream on 127.0.0.1:4222; authorities of rooms east and west, and one edge
whose own room is east and which has never served west. West's authority serves the page;
the page joins west through that edge (``/watch?ws=``), which its policy allows because
every edge of the deployment says where it serves (``townhall.edges.E``). The page shows
west's board, and nothing of east's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.async_api import Browser, expect

from townhall.protocol.messages import Ask

from .browser import browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker
from .test_bus_edges import health, until
from .test_clone_stage import Viewer
from .test_edge_rooms import Rooms, two_rooms
from .test_web_watch import BUILT


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    ensure_built("watch", BUILT)
    # The page comes from west's authority (its port is picked at start): the edge lets
    # any origin open its WebSocket here; a deployment names the pages' origins instead.
    async with two_rooms(tmp_path, allowed_origins="*") as deployment:
        yield deployment


async def test_watch_joins_a_room_through_an_edge_that_never_served_it(
    rooms: Rooms,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    east, west, edge = rooms.east, rooms.west, rooms.edge
    await until(
        lambda: health(rooms.http(west)),
        lambda h: edge.url in h["deployment_edges"],  # type: ignore[operator]
        "west's authority knows the edge",
    )
    assert west not in await rooms.edge_rooms()
    east_asker = Viewer(edge.url, token("ada", room=east))
    await east_asker.connect()
    await east_asker.request(lambda ref: Ask(ref, "Is the east lift fixed?"))

    page = await (await browser.new_context()).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    query = urlencode({"token": token("viewer", "spectator", room=west), "ws": edge.url})
    await page.goto(f"{rooms.http(west)}/watch?{query}")
    await expect(page.locator("#status")).to_have_text("Live", timeout=20_000)
    connection: dict[str, Any] = await page.evaluate("townhallDebug.connection")
    assert connection["url"] == edge.url
    assert west in await rooms.edge_rooms()

    west_asker = Viewer(edge.url, token("cyd", room=west))
    await west_asker.connect()
    await west_asker.request(lambda ref: Ask(ref, "Does the west office have bike racks?"))
    await expect(page.locator("#questions li")).to_have_count(1)
    await expect(page.locator("#questions")).to_contain_text("bike racks")
    await expect(page.locator("#questions")).not_to_contain_text("east lift")
    assert not errors, errors
    for viewer in (east_asker, west_asker):
        await viewer.client.close()
