"""Plain HTTP routes served on the WebSocket port: health, metrics, the scene, the pages.

Every route is read-only: GET and HEAD are answered, any other method gets 405 with an
``Allow`` header (websockets parses the request line of any method and hands it here).
Every response says ``nosniff`` and sends no referrer (page links carry join tokens).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from urllib.parse import urlsplit

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

WS_PATH = "/ws"
READ_METHODS = ("GET", "HEAD")


# The pages load their scripts, styles, workers and worklets from /assets on this origin,
# talk to this origin's WebSocket (CSP Level 3 'self' covers ws: and wss: of the origin),
# draw decoded video frames and textures from blob: and data: URLs, and may not be framed.
# A room served by edges over NATS lets /watch reach those edges' WebSockets too.
def page_csp(edges: Sequence[str] = ()) -> str:
    """The pages' policy; ``edges``: WebSocket URLs the page may also connect to."""
    origins = dict.fromkeys(_origin(u) for u in edges if _origin(u))
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            " ".join(["connect-src 'self'", *origins]),
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def _origin(url: str) -> str:
    """ws[s]://host[:port] of a WebSocket URL, or "" if it is not one (no path, no quotes)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc or not _NETLOC.match(parts.netloc):
        return ""
    return f"{parts.scheme}://{parts.netloc}"


_NETLOC = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")
PAGE_CSP = page_csp()


def response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def protect_page(resp: Response, edges: Sequence[str] = ()) -> Response:
    """Headers an HTML page gets: what it may load, and that no other site may frame it."""
    for name in ("Content-Security-Policy", "X-Frame-Options"):
        if name in resp.headers:
            del resp.headers[name]  # protected again: once each (Headers keeps every value)
    resp.headers["Content-Security-Policy"] = page_csp(edges) if edges else PAGE_CSP
    resp.headers["X-Frame-Options"] = "DENY"  # frame-ancestors for browsers without CSP 2
    return resp


def json_response(data: object, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return response(status, json.dumps(data).encode(), "application/json")


def text_response(text: str, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return response(status, text.encode(), "text/plain; charset=utf-8")


def method_not_allowed(allow: tuple[str, ...]) -> Response:
    resp = text_response(
        f"this route answers {' and '.join(allow)} only\n", HTTPStatus.METHOD_NOT_ALLOWED
    )
    resp.headers["Allow"] = ", ".join(allow)
    return resp


def without_body(resp: Response) -> Response:
    """The answer to HEAD: GET's status and headers (Content-Length included), no body."""
    return Response(resp.status_code, resp.reason_phrase, resp.headers, b"")


Route = Callable[[Request], Response]


class Router:
    """Maps GET paths to handlers; the WebSocket path passes through to the handshake."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.prefixes: dict[str, Route] = {}

    def add(self, path: str, route: Route) -> None:
        self.routes[path] = route

    def add_prefix(self, prefix: str, route: Route) -> None:
        """Every GET path under ``prefix`` (e.g. /assets/) goes to ``route``."""
        self.prefixes[prefix] = route

    def __call__(self, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        method = request.method
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if path == WS_PATH:
            if method != "GET":
                return method_not_allowed(("GET",))
            if upgrade:
                return None
            return text_response(
                "This endpoint speaks WebSocket (see protocol/SPEC.md).\n",
                HTTPStatus.UPGRADE_REQUIRED,
            )
        route = self.routes.get(path)
        if route is None:
            for prefix, prefixed in self.prefixes.items():
                if path.startswith(prefix):
                    route = prefixed
                    break
        if route is None:
            return text_response("no such page\n", HTTPStatus.NOT_FOUND)
        if method not in READ_METHODS:
            return method_not_allowed(READ_METHODS)
        resp = route(request)
        return without_body(resp) if method == "HEAD" else resp
