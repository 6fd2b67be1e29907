"""The recordings over HTTP: the list for moderators, and one recording for the player.

``GET /recordings.json?token=T`` lists them (moderators and operators);
``GET /recordings/ID.json?token=T`` is one recording's index (extent and chapters) and
``GET /recordings/ID.threc?token=T`` its entries, read by /watch?recording=ID. The token is
any valid join token for the room (none where the room admits anonymous spectators).
Reading and indexing a long recording takes a while, so the server runs these off the
event loop (``handle`` is called in a thread).
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request, Response

from townhall.protocol.errors import ProtocolError
from townhall.protocol.messages import STAFF
from townhall.server.core.identity import Identity
from townhall.server.gateway.http import Router, json_response, response
from townhall.server.store.recording import (
    SUFFIX,
    RecordingError,
    RecordingIndex,
    index,
    list_recordings,
    path_of,
    valid_id,
    whole_bytes,
)

PREFIX = "/recordings"

# (None: a guest where the room allows them); raises ProtocolError for a bad token.
Verify = Callable[[str], Identity | None]


def _error(status: HTTPStatus, code: str, reason: str) -> Response:
    return json_response({"code": code, "reason": reason}, status)


class RecordingRoutes:
    def __init__(self, folder: Path, verify: Verify) -> None:
        self.folder = folder
        self.verify = verify
        self._index: dict[str, tuple[tuple[int, int], RecordingIndex]] = {}

    def mount(self, router: Router) -> None:
        router.add(f"{PREFIX}.json", self.handle)
        router.add_prefix(f"{PREFIX}/", self.handle)

    @staticmethod
    def wants(request: Request) -> bool:
        return request.path.startswith(PREFIX)

    def handle(self, request: Request) -> Response:
        parts = urlsplit(request.path)
        token = parse_qs(parts.query).get("token", [""])[0]
        try:
            who = self.verify(token)
        except ProtocolError as exc:
            return _error(HTTPStatus.UNAUTHORIZED, exc.code.name, exc.reason)
        path = parts.path
        if path == f"{PREFIX}.json":
            if who is None or who.role not in STAFF:
                return _error(HTTPStatus.FORBIDDEN, "NOT_ALLOWED", "moderators only")
            return json_response(
                {"recordings": [r.to_json() for r in list_recordings(self.folder)]}
            )
        name = path.removeprefix(f"{PREFIX}/")
        stem, dot, ext = name.rpartition(".")
        if not dot or not valid_id(stem) or ext not in ("json", SUFFIX.lstrip(".")):
            return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", "no such recording")
        file = path_of(self.folder, stem)
        if not file.is_file():
            return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no recording {stem}")
        try:
            if ext == "json":
                return json_response(self._index_of(stem, file).to_json())
            return response(HTTPStatus.OK, whole_bytes(file), "application/octet-stream")
        except (RecordingError, OSError) as exc:
            return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", str(exc))

    def _index_of(self, stem: str, file: Path) -> RecordingIndex:
        stat = file.stat()
        key = (stat.st_size, stat.st_mtime_ns)
        cached = self._index.get(stem)
        if cached is not None and cached[0] == key:
            return cached[1]
        found = index(file)
        self._index[stem] = (key, found)
        return found
