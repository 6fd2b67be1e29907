"""Tell the persona's escalation contact about a new inbox item: a JSON POST to a webhook
and an e-mail over SMTP, each where configured.

Off the event loop (a thread per notification, a short timeout): a slow or dead endpoint
delays nobody's answer; a failure is logged, the item is in the inbox all the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import smtplib
import urllib.request
from email.message import EmailMessage

from townhall.server.core.effects import Escalated

log = logging.getLogger("townhall.notify")
TIMEOUT_S = 5.0


def address_of(contact: str) -> str:
    """The e-mail address in a contact such as ``Office of the CEO <ceo@example.com>``."""
    found = re.search(r"<([^<>@\s]+@[^<>\s]+)>", contact) or re.search(
        r"[^<>\s]+@[^<>\s]+", contact
    )
    if found is None:
        return ""
    return found.group(1) if found.re.groups else found.group(0)


class Notifier:
    """Posts ``Escalated`` effects to ``url`` and mails them over ``smtp`` (``host:port``)
    to ``contact`` (the persona's); either may be empty."""

    def __init__(
        self, url: str, contact: str, room: str, smtp: str = "", sender: str = "townhall@localhost"
    ) -> None:
        self.url = url
        self.contact = contact
        self.room = room
        self.smtp = smtp
        self.sender = sender
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
        if self.url:
            try:
                await asyncio.to_thread(self._send, json.dumps(body).encode())
                self.sent += 1
            except Exception as exc:  # any failure is logged, never raised
                log.warning("escalation webhook failed", extra={"url": self.url, "error": str(exc)})
        to = address_of(self.contact)
        if self.smtp and to:
            try:
                await asyncio.to_thread(self._mail, to, body)
                self.sent += 1
            except Exception as exc:  # any failure is logged, never raised
                log.warning(
                    "escalation e-mail failed", extra={"smtp": self.smtp, "error": str(exc)}
                )

    def _mail(self, to: str, body: dict[str, object]) -> None:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = to
        mail["Subject"] = (
            f"Townhall {self.room}: question {body['question']} escalated ({body['reason']})"
        )
        mail.set_content(
            f"{body['asker'] or 'Someone'} asked ({body['language']}):\n\n{body['text']}\n\n"
            f"Reason: {body['reason']}\nAnswer it in /studio.\n"
        )
        host, _, port = self.smtp.rpartition(":")
        with smtplib.SMTP(host or self.smtp, int(port or 25), timeout=TIMEOUT_S) as client:
            client.send_message(mail)

    def _send(self, data: bytes) -> None:
        request = urllib.request.Request(
            self.url, data, {"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            response.read()

    async def close(self) -> None:
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
