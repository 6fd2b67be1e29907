"""/studio's Insights over HTTP: ``GET /studio/insights.json?token=T`` (operators only).

Read from the store (answers, escalations, the lifecycle moves in the audit, the statements'
topics) and grouped by core/insights.py: all time, per event, per UTC day and ISO week.
Reading a long history takes a while, so the server calls ``handle`` in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.http11 import Request, Response

from townhall.protocol.errors import ProtocolError
from townhall.server.core.identity import Identity
from townhall.server.core.insights import AnswerFact, EscalationFact, PhaseMove, insights
from townhall.server.gateway.http import json_response
from townhall.server.store.records import AnswerRecorded, EscalationRecorded, InboxResolved

PATH = "/studio/insights.json"

# Raises ProtocolError for a bad token.
Verify = Callable[[str], Identity]


class InsightSource(Protocol):
    """The room's store."""

    def load_answers(self) -> list[AnswerRecorded]: ...

    def load_inbox(self) -> list[tuple[EscalationRecorded, InboxResolved | None]]: ...

    def load_phase_moves(self) -> list[tuple[float, str]]: ...


def _error(status: HTTPStatus, code: str, reason: str) -> Response:
    return json_response({"code": code, "reason": reason}, status)


class InsightRoutes:
    def __init__(
        self, store: InsightSource, verify: Verify, topics: Callable[[], dict[str, str]]
    ) -> None:
        self.store = store
        self.verify = verify
        self.topics = topics  # statement id -> its topic

    @staticmethod
    def wants(request: Request) -> bool:
        return urlsplit(request.path).path == PATH

    def handle(self, request: Request) -> Response:
        token = parse_qs(urlsplit(request.path).query).get("token", [""])[0]
        try:
            who = self.verify(token)
        except ProtocolError as exc:
            return _error(HTTPStatus.UNAUTHORIZED, exc.code.name, exc.reason)
        if who.role != "operator":
            return _error(HTTPStatus.FORBIDDEN, "NOT_ALLOWED", "operators only")
        answers = [AnswerFact(a.ended, a.label, a.sources) for a in self.store.load_answers()]
        escalations = [
            EscalationFact(e.time, e.question_id, e.question, e.reason)
            for e, _ in self.store.load_inbox()
        ]
        moves = [PhaseMove(t, event) for t, event in self.store.load_phase_moves()]
        return json_response(insights(answers, escalations, moves, self.topics()))
