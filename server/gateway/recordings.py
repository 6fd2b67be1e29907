"""The recordings over HTTP: the list for moderators, and one recording for the player.

``GET /recordings.json?token=T`` lists them (moderators and operators);
``GET /recordings/ID.json?token=T`` is one recording's index (extent and chapters) and
``GET /recordings/ID.threc?token=T`` its entries, read by /watch?recording=ID. The token is
any valid join token for the room (none where the room admits anonymous spectators).
``answer-N`` (never a recording's name: those end in a UTC time) is one answer as it was heard,
built from its stored stage packets (store/replay.py) for /studio's "Play": moderators and
operators only, since an answer the leader retracted is still in it.
Reading and indexing a long recording takes a while, so the server runs these off the
event loop (``handle`` is called in a thread).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Protocol
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
from townhall.server.store.records import AnswerRecorded
from townhall.server.store.replay import answer_index, answer_recording

PREFIX = "/recordings"
ANSWER_ID = re.compile(r"^answer-(\d{1,9})$")

# (None: a guest where the room allows them); raises ProtocolError for a bad token.
Verify = Callable[[str], Identity | None]


class AnswerSource(Protocol):
    """Where answers and their packets are kept (the room's store)."""

    room: str

    def load_answer(self, answer_id: int) -> tuple[AnswerRecorded, str] | None: ...

    def load_media(self, answer_id: int) -> tuple[bytes, ...]: ...


def _error(status: HTTPStatus, code: str, reason: str) -> Response:
    return json_response({"code": code, "reason": reason}, status)


class RecordingRoutes:
    def __init__(
        self,
        folder: Path,
        verify: Verify,
        answers: AnswerSource | None = None,
        lead_us: int = 0,
    ) -> None:
        self.folder = folder
        self.verify = verify
        self.answers = answers
        self.lead_us = lead_us
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
        answer = ANSWER_ID.match(stem)
        if answer is not None:
            if who is None or who.role not in STAFF:
                return _error(HTTPStatus.FORBIDDEN, "NOT_ALLOWED", "moderators and operators only")
            return self._answer(int(answer.group(1)), ext == "json")
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

    def _answer(self, answer_id: int, want_index: bool) -> Response:
        found = self.answers.load_answer(answer_id) if self.answers is not None else None
        if found is None or self.answers is None:
            return _error(HTTPStatus.NOT_FOUND, "NOT_FOUND", f"no answer {answer_id}")
        answer, question = found
        packets = self.answers.load_media(answer_id)
        if not packets:
            return _error(
                HTTPStatus.NOT_FOUND, "NOT_FOUND", f"answer {answer_id} was not heard on stage"
            )
        room = self.answers.room
        data = answer_recording(room, answer, question, packets, self.lead_us)
        if want_index:
            found_index = answer_index(room, answer, question, packets, self.lead_us, len(data))
            return json_response(found_index.to_json())
        return response(HTTPStatus.OK, data, "application/octet-stream")
