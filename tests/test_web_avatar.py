"""A persona may name its clone's VRM model: the server serves it and /watch loads it,
falling back to the procedural figure (and saying so) when the model cannot be loaded.
Without a model of its own, the persona's avatar is built from its appearance."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Browser

from townhall.server.app import TownhallServer
from townhall.server.clone.persona import check_persona, load_persona, sample_persona_path

from .browser import browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import TokenMaker, http_get, make_settings


@pytest.fixture(scope="module", autouse=True)
def built_watch_page() -> None:
    ensure_built("watch", ("dist/watch.html", "dist/assets/watch.js"))


def persona_with_avatar(tmp_path: Path, model: bytes) -> Path:
    persona = tmp_path / "persona"
    shutil.copytree(sample_persona_path(), persona)
    (persona / "clone.vrm").write_bytes(model)
    with open(persona / "persona.toml", "a", encoding="utf-8") as fh:
        fh.write('\n[avatar]\nvrm = "clone.vrm"\n')
    return persona


def test_persona_avatar_field(tmp_path: Path) -> None:
    persona = persona_with_avatar(tmp_path, b"glTF")
    assert load_persona(persona).avatar_vrm == (persona / "clone.vrm").resolve()
    (persona / "clone.vrm").unlink()
    ok, report = check_persona(persona)
    assert not ok and "avatar.vrm" in report and "clone.vrm" in report


async def test_watch_loads_the_personas_model_or_says_why_not(
    tmp_path: Path,
    token: TokenMaker,
    browser: Browser,  # noqa: F811
) -> None:
    persona = persona_with_avatar(tmp_path, b"not really a VRM model")
    settings = make_settings(tmp_path, clone={"enabled": True, "persona": str(persona)})
    async with TownhallServer(settings) as srv:
        status, kind, body = await asyncio.to_thread(http_get, srv.url + "/avatar.json")
        assert status == 200 and '"/avatar.vrm"' in body
        status, kind, _ = await asyncio.to_thread(http_get, srv.url + "/avatar.vrm")
        assert status == 200 and kind == "model/gltf-binary"
        page = await browser.new_page()
        requested: list[str] = []
        page.on("request", lambda r: requested.append(r.url))
        await page.goto(f"{srv.url}/watch?token={token('v', role='spectator')}")
        await page.get_by_text("could not be loaded").wait_for(timeout=15_000)
        assert any(url.endswith("/avatar.vrm") for url in requested)
        await page.close()


async def test_without_a_model_the_avatar_is_built_from_the_appearance(tmp_path: Path) -> None:
    async with TownhallServer(make_settings(tmp_path, clone={"enabled": True})) as srv:
        status, _, body = await asyncio.to_thread(http_get, srv.url + "/avatar.json")
        assert status == 200 and '"source": "built"' in body
        status, kind, _ = await asyncio.to_thread(http_get_head, srv.url + "/avatar.vrm")
        assert status == 200 and kind == "model/gltf-binary"


def http_get_head(url: str) -> tuple[int, str, int]:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers["Content-Type"], len(resp.read())
