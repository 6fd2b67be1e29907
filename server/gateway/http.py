"""Plain HTTP routes served on the WebSocket port: health, metrics, the scene."""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

WS_PATH = "/ws"


def response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("Connection", "close"),
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def json_response(data: object, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return response(status, json.dumps(data).encode(), "application/json")


def text_response(text: str, status: HTTPStatus = HTTPStatus.OK) -> Response:
    return response(status, text.encode(), "text/plain; charset=utf-8")


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
        upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
        if path == WS_PATH:
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
                    return prefixed(request)
        if route is None:
            return text_response(f"no such page: {path}\n", HTTPStatus.NOT_FOUND)
        return route(request)
