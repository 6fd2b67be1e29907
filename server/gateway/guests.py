"""A guest's identity that sticks: one signed cookie per browser, set with the /watch page.

A spectator without a token used to be a new random guest on every page load, so a reload
got round the question rate limit and a ban did not hold. The page's response now carries
``townhall_guest=<id>.<signature>`` (HMAC-SHA256 under the server's secret, HttpOnly,
SameSite=Strict); the browser sends it back with the WebSocket handshake, and the room
joins that browser as ``guest-<id>`` every time. A cookie that does not verify is ignored
(and replaced on the next page load); clients without one stay one-time guests.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from websockets.datastructures import Headers

COOKIE = "townhall_guest"
MAX_AGE_S = 365 * 24 * 3600
_ID = re.compile(r"[0-9a-f]{16}")


#: A cookie value as it may be forwarded (an id of 16 and a signature of 32 hex digits).
MAX_VALUE_CHARS = 64


def cookie_values(headers: Headers) -> list[str]:
    """Every ``townhall_guest`` value the request carries, unverified (an edge forwards
    them to the room, which alone holds the key), each cut to ``MAX_VALUE_CHARS``."""
    values = []
    for header in headers.get_all("Cookie"):
        for part in header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                values.append(value.strip()[:MAX_VALUE_CHARS])
    return values[:3]


class GuestCookies:
    """Issues and verifies the guest cookie under a key derived from the server's secret."""

    def __init__(self, secret: str, secure: bool = False) -> None:
        self._key = hashlib.sha256(b"townhall guest cookie\0" + secret.encode()).digest()
        self.secure = secure

    def _sign(self, guest: str) -> str:
        return hmac.new(self._key, guest.encode(), hashlib.sha256).hexdigest()[:32]

    def read(self, headers: Headers) -> str:
        """The verified guest id from the request's cookies, or ""."""
        return next((g for g in map(self.verify, cookie_values(headers)) if g), "")

    def verify(self, value: str) -> str:
        """The guest id of one cookie value (``<id>.<signature>``) if it verifies, else ""."""
        guest, _, signature = value.strip().partition(".")
        if _ID.fullmatch(guest) and hmac.compare_digest(signature, self._sign(guest)):
            return guest
        return ""

    def issue(self) -> str:
        """A ``Set-Cookie`` value for a new guest."""
        guest = secrets.token_hex(8)
        flags = f"Path=/; Max-Age={MAX_AGE_S}; HttpOnly; SameSite=Strict"
        if self.secure:
            flags += "; Secure"
        return f"{COOKIE}={guest}.{self._sign(guest)}; {flags}"
