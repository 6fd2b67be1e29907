"""HTTP on the room's port under abuse: bad paths, other methods, and the pages' headers.

Raw requests over a socket to a real server on 127.0.0.1, so nothing in between cleans
them up; every answer is a 4xx with a reason, never a 500 or a traceback in the log.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from townhall.server.app import TownhallServer

from .conftest import make_settings


async def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def get(path: bytes, method: bytes = b"GET") -> bytes:
    return method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


@pytest.fixture
def tracebacks(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    caplog.set_level(logging.DEBUG)
    return caplog.records


BAD_PATHS = [
    b"/assets/a\x00b.js",
    b"/assets/\x00",
    b"/assets/%00",
    b"/assets/..%2f..%2fetc%2fpasswd",
    b"/assets/../../pyproject.toml",
    b"/assets/\x01\x1f\x7f",
    b"/assets/a\\..\\b",
    b"/assets/",
    b"/watch\x00",
    b"/\x00",
]


@pytest.mark.parametrize("path", BAD_PATHS, ids=[repr(p) for p in BAD_PATHS])
async def test_bad_static_paths_are_not_found_not_a_crash(
    tmp_path: Path, path: bytes, tracebacks: list[logging.LogRecord]
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        status, _, _ = await raw_http(srv.port, get(path))
        assert status in (400, 404), status
        assert srv.metrics.tick_errors == 0
    assert not [r for r in tracebacks if r.exc_info], [r.getMessage() for r in tracebacks]


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"PATCH", b"OPTIONS", b"TRACE"])
@pytest.mark.parametrize("path", [b"/watch", b"/moderate", b"/healthz", b"/assets/watch.js", b"/"])
async def test_other_methods_get_405_with_allow(tmp_path: Path, method: bytes, path: bytes) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        status, headers, _ = await raw_http(srv.port, get(path, method))
        assert status == 405
        assert headers["allow"] == "GET, HEAD"


async def test_websocket_path_allows_get_only(tmp_path: Path) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        status, headers, _ = await raw_http(srv.port, get(b"/ws", b"POST"))
        assert status == 405 and headers["allow"] == "GET"


async def test_head_is_get_without_the_body(tmp_path: Path) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        status, got, full = await raw_http(srv.port, get(b"/watch"))
        assert status == 200 and full
        status, headers, body = await raw_http(srv.port, get(b"/watch", b"HEAD"))
        assert status == 200 and body == b""
        assert headers["content-length"] == got["content-length"] == str(len(full))


@pytest.mark.parametrize("page", [b"/watch", b"/moderate"])
async def test_pages_carry_csp_and_may_not_be_framed(tmp_path: Path, page: bytes) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        status, headers, _ = await raw_http(srv.port, get(page))
        assert status == 200
        csp = {d.split(" ", 1)[0]: d for d in headers["content-security-policy"].split("; ")}
        assert csp["frame-ancestors"] == "frame-ancestors 'none'"
        assert csp["script-src"] == "script-src 'self'"  # no inline script, no eval
        assert "'unsafe-inline'" not in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"  # page URLs carry tokens
        status, headers, _ = await raw_http(srv.port, get(b"/healthz"))
        assert headers["x-content-type-options"] == "nosniff"
