"""The built web pages (/watch, /moderate) and their assets, served on the room's port.

`make setup` builds them with npm into ``server/web/dist``; nothing is fetched from a CDN
when a page runs. Paths are resolved inside the dist folder only; a path with a control
character (a NUL would make the file system call raise) or a backslash is simply not found.
Pages carry the Content-Security-Policy and framing protection of ``http.protect_page``.
"""

from __future__ import annotations

import mimetypes
from http import HTTPStatus
from pathlib import Path

from websockets.http11 import Response

from townhall.server.gateway.http import protect_page, response, text_response

DIST = Path(__file__).parent.parent / "web" / "dist"
PAGES = {"/watch": "watch.html", "/moderate": "moderate.html", "/studio": "studio.html"}
ASSET_PREFIX = "/assets/"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".map": "application/json",
    ".vrm": "model/gltf-binary",
    ".glb": "model/gltf-binary",
    ".wasm": "application/wasm",
}


class StaticFiles:
    """Serves the pages and assets from one folder; 404 outside it, 503 when not built."""

    def __init__(self, root: Path = DIST) -> None:
        self.root = root.resolve()

    def page(self, path: str) -> Response:
        return protect_page(self._file(self.root / PAGES[path], cache=False))

    def asset(self, path: str) -> Response:
        name = path[len(ASSET_PREFIX) :]
        if not name or "\\" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            return text_response("no such asset\n", HTTPStatus.NOT_FOUND)
        try:
            target = (self.root / "assets" / name).resolve()
        except (OSError, ValueError):
            return text_response("no such asset\n", HTTPStatus.NOT_FOUND)
        if not target.is_relative_to(self.root / "assets"):
            return text_response("no such asset\n", HTTPStatus.NOT_FOUND)
        return self._file(target, cache=True)

    def _file(self, target: Path, cache: bool) -> Response:
        if not self.root.exists():
            return text_response(
                "The web pages are not built: run `make setup` (npm builds server/web).\n",
                HTTPStatus.SERVICE_UNAVAILABLE,
            )
        try:
            body = target.read_bytes()
        except (OSError, ValueError):  # missing, a directory, unreadable
            return text_response("not found\n", HTTPStatus.NOT_FOUND)
        kind = TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0]
        resp = response(HTTPStatus.OK, body, kind or "application/octet-stream")
        if cache:
            resp.headers["Cache-Control"] = "public, max-age=3600"
        return resp
