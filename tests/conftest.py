"""Shared fixtures: a real server on 127.0.0.1 and helpers to mint tokens for it."""

from __future__ import annotations

import os
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from townhall.server.app import TownhallServer
from townhall.server.gateway.tokens import issue_token
from townhall.server.ops.config import AuthSettings, Settings, load_settings
from townhall.server.store.base import RoomStore
from townhall.server.store.factory import open_store

from .browser import shared_chromium  # noqa: F401  (one Chromium per test process)

SECRET = "test-secret-" + "x" * 32

os.environ.setdefault("PYTHONHASHSEED", "0")
# The fitted intent model is cached (server/clone/brain/intent_cache.py): in the checkout,
# not the user's home, and shared by every server the tests start, in or out of process.
os.environ.setdefault(
    "TOWNHALL_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".townhall" / "cache")
)

# Tests that draw, in Chromium (the ``browser`` fixture) or on an X display (``display``),
# take a whole core of software GL each: two at once on a small machine slow both past what
# they wait for. Under pytest-xdist (``make test`` runs four workers, ``--dist loadgroup``)
# they form one group that one worker runs one after the other, started first since it is
# the longest. A test that starts Chromium itself joins with ``GUI`` (or ``PAGES``).
# Browser tests whose pages draw nothing (``pytest.mark.light``: /moderate and /studio, or
# /watch without WebGL) are light: they form a second group, "pages", that another worker
# runs beside the drawing one; the remaining workers take everything else. (pytest-xdist
# joins every group a test is marked with into one: a test is in one group only.)
GUI_FIXTURES = frozenset({"browser", "display"})
GUI = pytest.mark.xdist_group("gui")
PAGES = pytest.mark.xdist_group("pages")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "light: the Chromium pages of this test draw nothing (no WebGL, no X display); it "
        "runs in the 'pages' group beside the drawing tests rather than among them",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    """Fit the clone's intent model once, before any test: on a fresh clone the cache above
    is empty, and the servers the workers start at once would each fit it (seconds of CPU
    apiece on a machine the suite already keeps busy). Under pytest-xdist this runs in the
    controller, before the workers start; the workers find the model cached."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from townhall.server.clone.brain.intent import IntentClassifier
    from townhall.server.clone.persona import sample_persona_path

    IntentClassifier.for_directories(sample_persona_path() / "intents")


def _group(item: pytest.Item) -> tuple[object, ...]:
    marker = item.get_closest_marker("xdist_group")
    return () if marker is None else marker.args


def _draws(item: pytest.Item) -> bool:
    return bool(GUI_FIXTURES.intersection(getattr(item, "fixturenames", ()))) or _group(item) in (
        GUI.args,
        PAGES.args,
    )


def _light(item: pytest.Item) -> bool:
    light = item.get_closest_marker("light") is not None or _group(item) == PAGES.args
    return light and "display" not in getattr(item, "fixturenames", ())


# Before pytest-xdist's own hook, which turns each test's group into the node id it schedules
# by: its worker plugin registers after this conftest, so it would run first and miss the
# groups added here (tests/test_test_groups.py).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    drawing = [i for i in items if _draws(i)]
    gui = [i for i in drawing if not _light(i)]
    pages = [i for i in drawing if _light(i)]
    for item in gui:
        if _group(item) != GUI.args:
            item.add_marker(GUI)
    for item in pages:
        if _group(item) != PAGES.args:
            item.add_marker(PAGES)
    chosen = set(drawing)
    items[:] = gui + pages + [i for i in items if i not in chosen]


def make_settings(tmp_path: Path, **sections: dict[str, object]) -> Settings:
    """Defaults with a fixed secret, port 0, and any section overrides given."""
    base = load_settings(None, env={})
    base = replace(
        base,
        auth=AuthSettings(secret=SECRET, secret_file=str(tmp_path / "secret")),
        server=replace(base.server, port=0, host="127.0.0.1"),
        store=replace(base.store, path=str(tmp_path / "townhall.db")),
        clone=replace(base.clone, enabled=False),
    )
    for name, values in sections.items():
        base = replace(base, **{name: replace(getattr(base, name), **values)})
    return base


TokenMaker = Callable[..., str]


@pytest.fixture
def token() -> TokenMaker:
    def make(
        user: str = "u1",
        role: str = "attendee",
        name: str = "",
        room: str = "main",
        ttl: float = 600,
    ) -> str:
        return issue_token(SECRET, user_id=user, name=name or user, role=role, room=room, ttl_s=ttl)

    return make


@pytest.fixture(params=[0, 2], ids=["one-process", "2-workers"])
async def server(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TownhallServer]:
    """A running server, once with everything in one process, once with fan-out workers."""
    settings = make_settings(tmp_path, server={"workers": request.param})
    async with TownhallServer(settings) as srv:
        yield srv


def http_get(url: str) -> tuple[int, str, str]:
    """Blocking GET (run it in a thread from async tests); returns status, type, body."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


# The room's store on each backend: ``open_room_store(room)`` opens the same database again
# (as a restarted server would); PostgreSQL gets a fresh database per test (tests/postgres.py).
OpenStore = Callable[..., RoomStore]


@pytest.fixture(params=["sqlite", "postgresql"])
def open_room_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    if request.param == "sqlite":
        path = str(tmp_path / "t.db")
        yield lambda room="main", **kw: open_store("", path, room, **kw)
        return
    from .postgres import fresh_database

    with fresh_database() as url:
        yield lambda room="main", **kw: open_store(url, "", room, **kw)
