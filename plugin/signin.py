"""Headset sign-in: the device authorization grant (RFC 8628) through the room server.

A headset has no keyboard worth typing a password on, so it asks the server to start a
device sign-in (``GET /auth/device``), shows the person a short code and a web address to
open on their phone or laptop, and polls (``GET /auth/device/poll``) until they have
approved it at the company's identity provider. The server holds the provider's client
credentials and answers a room token, which the headset then joins with as usual.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

HTTP_TIMEOUT_S = 15.0


class SignInFailed(Exception):
    """The device sign-in did not give a token; the message says why in one line."""


@dataclass(frozen=True)
class DeviceCode:
    """What the person must see: the code and where to enter it."""

    user_code: str
    verification_uri: str
    verification_uri_complete: str
    expires_in: int

    def instructions(self) -> str:
        return f"To sign in, open {self.verification_uri} and enter the code {self.user_code}"


@dataclass(frozen=True)
class SignedIn:
    token: str
    name: str
    role: str


def http_base(ws_url: str) -> str:
    """``ws://host:port/ws`` -> ``http://host:port`` (the server's pages and /auth/)."""
    parts = urllib.parse.urlsplit(ws_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    return urllib.parse.urlunsplit((scheme, parts.netloc, "", "", ""))


def _get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        server = url.split("/auth")[0]
        raise SignInFailed(f"cannot reach the server at {server}: {reason}") from None
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise SignInFailed(f"the server answered {status} without JSON: is sign-in on?")
    return status, doc


async def device_sign_in(
    ws_url: str,
    show: Callable[[DeviceCode], None],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SignedIn:
    """Start a device sign-in, ``show`` the code, poll until approved; the room token."""
    base = http_base(ws_url)
    status, doc = await asyncio.to_thread(_get, base + "/auth/device")
    if status != 200:
        raise SignInFailed(f"sign-in could not start: {doc.get('reason', status)}")
    code = DeviceCode(
        str(doc["user_code"]),
        str(doc["verification_uri"]),
        str(doc.get("verification_uri_complete") or doc["verification_uri"]),
        int(doc.get("expires_in", 600)),
    )
    show(code)
    handle = urllib.parse.quote(str(doc["handle"]), safe="")
    interval = float(doc.get("interval", 5))
    while True:
        await sleep(interval)
        status, doc = await asyncio.to_thread(_get, f"{base}/auth/device/poll?handle={handle}")
        state = doc.get("status")
        if status == 200 and state == "pending":
            interval = float(doc.get("interval", interval))
            continue
        if status == 200 and state == "ok":
            return SignedIn(str(doc["token"]), str(doc.get("name", "")), str(doc.get("role", "")))
        raise SignInFailed(f"sign-in failed: {doc.get('reason', state or status)}")
