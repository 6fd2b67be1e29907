"""Tell the persona's escalation contact about a new inbox item: a JSON POST to a webhook.

Off the event loop (a thread per notification, a short timeout): a slow or dead endpoint
delays nobody's answer; a failure is logged, the item is in the inbox all the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request

from townhall.server.core.effects import Escalated

log = logging.getLogger("townhall.notify")
TIMEOUT_S = 5.0


class Notifier:
    """Posts ``Escalated`` effects to ``url`` for ``contact`` (the persona's)."""

    def __init__(self, url: str, contact: str, room: str) -> None:
        self.url = url
        self.contact = contact
        self.room = room
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0

    def __call__(self, e: Escalated) -> None:
        body = {
            "room": self.room,
            "contact": self.contact,
            "question": e.question,
            "text": e.text,
            "reason": e.reason,
            "language": e.language,
            "asker": e.asker,
        }
        task = asyncio.get_running_loop().create_task(self._post(body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: dict[str, object]) -> None:
        try:
            await asyncio.to_thread(self._send, json.dumps(body).encode())
            self.sent += 1
        except Exception as exc:  # any failure is logged, never raised
            log.warning("escalation webhook failed", extra={"url": self.url, "error": str(exc)})

    def _send(self, data: bytes) -> None:
        request = urllib.request.Request(
            self.url, data, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()

    async def close(self) -> None:
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
