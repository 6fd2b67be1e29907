"""Sign-in routes: the browser's authorization code flow with PKCE and the headset's device
authorization grant (RFC 8628), both ending in the server's own short-lived room token.

- ``GET /auth/login?next=/moderate``: a fresh state, nonce and PKCE verifier are kept here
  (ten minutes at most), the state is also set in an HttpOnly cookie that binds it to this
  browser, and the browser goes to the provider's authorization endpoint.
- ``GET /auth/callback?code=…&state=…``: the state must be one this server issued to this
  browser; the code is exchanged with the verifier; the ID token is checked (signature,
  issuer, audience, times, nonce); the groups must allow the page's role; the browser goes to
  the page with a room token (``/moderate?token=…``), as a hand-made link would.
- ``GET /auth/device``: starts a device sign-in with the provider (the server holds the
  client's credentials, so a headset needs only the server's URL); answers the user code, the
  verification URL and a ``handle`` to poll with.
- ``GET /auth/device/poll?handle=…``: ``pending`` until the person approves on another
  device, then a room token for an attendee.

Pages are guarded by role (``PAGE_ROLES``): with sign-in on, a page asked for without a
token goes to ``/auth/login`` first, except /watch while anonymous viewing is allowed.
Every failure is a short page (or JSON for the device) with one line saying why and the
HTTP status, never a traceback.
"""

from __future__ import annotations

import hashlib
import html
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from websockets.http11 import Request, Response

from townhall.protocol.limits import MAX_NAME_CHARS, MAX_USER_ID_CHARS
from townhall.protocol.messages import Role
from townhall.server.gateway.addresses import AddressLimits
from townhall.server.gateway.http import json_response, protect_page, response
from townhall.server.gateway.oidc import (
    DEVICE_GRANT,
    BadIdToken,
    NotAllowed,
    OidcConfig,
    Person,
    Provider,
    SignInError,
    person_from_claims,
)

log = logging.getLogger("townhall.gateway.signin")

# The role each page needs; a new page (e.g. /studio) is one more line here.
PAGE_ROLES: dict[str, Role] = {
    "/watch": "spectator",
    "/moderate": "moderator",
    "/studio": "operator",
}
ROLE_WORDS: dict[Role, str] = {
    "spectator": "watch this event",
    "attendee": "attend this event",
    "moderator": "moderate this event",
    "operator": "operate this event",
}
STATE_COOKIE = "townhall_signin"
PENDING_TTL_S = 600.0
MAX_PENDING = 10_000  # sign-ins under way at once; the oldest is dropped past it
MAX_DEVICES = 1_000
DEVICE_ROLE: Role = "attendee"

PAGE_CSS = (
    "body{font:17px/1.5 system-ui,sans-serif;background:#f3f4f7;color:#1b1f2a;margin:0;"
    "display:grid;place-items:center;min-height:100vh}main{max-width:34rem;margin:2rem;"
    "padding:1.5rem 2rem;background:#fff;border-radius:10px;box-shadow:0 4px 24px #0002}"
    "h1{font-size:1.5rem;margin-top:0}#reason{font-size:1.1rem}small{color:#5b6275}"
    "a{color:#2456c9}"
)

Issue = Callable[[Person, Role], str]  # a room token for this person in this role


@dataclass
class Pending:
    nonce: str
    verifier: str
    next: str
    redirect_uri: str
    started: float


@dataclass
class DevicePending:
    device_code: str
    interval: float
    expires: float
    next_poll: float = 0.0


class SignIn:
    """The /auth/ routes and the page guard."""

    def __init__(
        self,
        config: OidcConfig | None,
        issue: Issue,
        public_url: str = "",
        expired: Callable[[str], bool] = lambda token: False,
        anonymous_viewing: bool = True,
        starts_per_address_per_min: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.provider = Provider(config) if config is not None else None
        self.issue = issue
        self.expired = expired  # whether a link's room token has run out
        self.public_url = public_url.rstrip("/")
        self.anonymous_viewing = anonymous_viewing
        self.clock = clock
        self.pending: OrderedDict[str, Pending] = OrderedDict()
        self.devices: OrderedDict[str, DevicePending] = OrderedDict()
        # Each start costs the provider a request and us a pending entry: per address.
        self.starts = AddressLimits(starts_per_address_per_min)

    @property
    def enabled(self) -> bool:
        return self.config is not None

    # ------------------------------------------------------------ pages

    def guard(self, request: Request) -> Response | None:
        """None serves the page; else the redirect to sign in first."""
        path = request.path.split("?", 1)[0]
        role = PAGE_ROLES.get(path)
        if role is None or not self.enabled:
            return None
        token = _query(request).get("token")
        if token and not self.expired(token):
            return None  # a link with a token: the room checks it at the Join
        if token:  # a signed-in page reloaded after its token ran out: sign in again
            return _redirect("/auth/login?" + urlencode({"next": path}))
        if role == "spectator" and self.anonymous_viewing:
            return None
        return _redirect("/auth/login?" + urlencode({"next": path}))

    # ------------------------------------------------------------ routes

    def handles(self, path: str) -> bool:
        return path.startswith("/auth/")

    async def handle(self, request: Request, address: str = "") -> Response:
        path = request.path.split("?", 1)[0]
        if request.method != "GET":  # a HEAD would start a sign-in all the same
            resp = _page("Sign-in", "This address answers GET only.", HTTPStatus.METHOD_NOT_ALLOWED)
            resp.headers["Allow"] = "GET"
            return resp
        if path == "/auth/page.css":
            resp = response(HTTPStatus.OK, PAGE_CSS.encode(), "text/css; charset=utf-8")
            resp.headers["Cache-Control"] = "public, max-age=3600"
            return resp
        device = path.startswith("/auth/device")
        if self.provider is None:
            reason = "sign-in is not configured on this server (auth.oidc_issuer)"
            if device:
                return json_response({"status": "error", "reason": reason}, HTTPStatus.NOT_FOUND)
            return _page("Sign-in", reason, HTTPStatus.NOT_FOUND)
        if path in ("/auth/login", "/auth/device") and not self.starts.allow(address, self.clock()):
            reason = "too many sign-ins from your address; try again in a minute"
            if device:
                resp = json_response(
                    {"status": "error", "reason": reason}, HTTPStatus.TOO_MANY_REQUESTS
                )
            else:
                resp = _page("Sign-in", reason, HTTPStatus.TOO_MANY_REQUESTS)
            resp.headers["Retry-After"] = "60"
            return resp
        try:
            if path == "/auth/login":
                return await self._login(request)
            if path == "/auth/callback":
                return await self._callback(request)
            if path == "/auth/device":
                return await self._device_start()
            if path == "/auth/device/poll":
                return await self._device_poll(request)
        except SignInError as exc:
            log.info("sign-in failed", extra={"reason": exc.reason, "path": path})
            if device:
                return json_response({"status": "error", "reason": exc.reason}, exc.status)
            retry = "/auth/login?" + urlencode(
                {"next": exc.page or _query(request).get("next", "/watch")}
            )
            return _page("Sign-in failed", exc.reason, exc.status, retry=retry)
        return _page("Sign-in", "no such sign-in address", HTTPStatus.NOT_FOUND)

    # ------------------------------------------------------------ browser

    async def _login(self, request: Request) -> Response:
        assert self.provider is not None and self.config is not None
        query = _query(request)
        target = query.get("next", "/watch")
        if target not in PAGE_ROLES:
            raise SignInError(f"there is no page {target!r} to sign in to")
        meta = await self.provider.metadata()
        state, nonce, verifier = generate_token(32), generate_token(32), generate_token(64)
        redirect_uri = self._base(request) + "/auth/callback"
        self._expire()
        self.pending[state] = Pending(nonce, verifier, target, redirect_uri, self.clock())
        while len(self.pending) > MAX_PENDING:
            self.pending.popitem(last=False)
        url = prepare_grant_uri(
            meta["authorization_endpoint"],
            self.config.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self.config.scopes,
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        resp = _redirect(url)
        secure = "; Secure" if redirect_uri.startswith("https:") else ""
        resp.headers["Set-Cookie"] = (
            f"{STATE_COOKIE}={state}; Path=/auth/; Max-Age={int(PENDING_TTL_S)}; "
            f"HttpOnly; SameSite=Lax{secure}"
        )
        return resp

    async def _callback(self, request: Request) -> Response:
        assert self.provider is not None and self.config is not None
        query = _query(request)
        state = query.get("state", "")
        self._expire()
        pending = self.pending.pop(state, None) if state else None
        if pending is None:
            raise SignInError(
                "this sign-in reply is unknown or too old (bad state); please sign in again"
            )
        try:
            return await self._finish(request, query, state, pending)
        except SignInError as exc:
            exc.page = pending.next  # "sign in again" goes back to the page they wanted
            raise

    async def _finish(
        self, request: Request, query: dict[str, str], state: str, pending: Pending
    ) -> Response:
        assert self.provider is not None and self.config is not None
        if not secrets.compare_digest(_cookie(request, STATE_COOKIE), state):
            raise SignInError(
                "this sign-in reply was started in another browser (bad state); "
                "please sign in again"
            )
        if "error" in query:
            detail = query.get("error_description") or query["error"]
            raise NotAllowed(f"the identity provider did not sign you in: {detail}")
        code = query.get("code")
        if not code:
            raise SignInError("the identity provider's reply has no code")
        tokens = await self.provider.token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": pending.redirect_uri,
                "code_verifier": pending.verifier,
            }
        )
        if "error" in tokens:
            detail = tokens.get("error_description") or tokens["error"]
            raise BadIdToken(f"the identity provider refused the sign-in code: {detail}")
        claims = await self.provider.id_token_claims(tokens.get("id_token"), pending.nonce)
        person = person_from_claims(self.config, claims)
        role = PAGE_ROLES[pending.next]
        self._allow(person, role)
        token = self.issue(person, role)
        log.info("signed in", extra={"sub": person.subject, "role": role})
        resp = _redirect(pending.next + "?" + urlencode({"token": token}))
        resp.headers["Set-Cookie"] = f"{STATE_COOKIE}=; Path=/auth/; Max-Age=0; HttpOnly"
        return resp

    def _allow(self, person: Person, role: Role) -> None:
        if person.may(role):
            return
        config = self.config
        assert config is not None
        if not person.may_attend:
            wanted = config.attendee_groups
        elif role == "operator":
            wanted = config.operator_groups
        else:
            wanted = config.moderator_groups | config.operator_groups
        raise NotAllowed(
            f"{person.name or person.subject} is not in a group allowed to "
            f"{ROLE_WORDS[role]} ({', '.join(sorted(wanted))})"
        )

    # ------------------------------------------------------------ device

    async def _device_start(self) -> Response:
        assert self.provider is not None
        doc = await self.provider.device_authorization()
        now = self.clock()
        expires_in = _number(doc.get("expires_in"), 600.0)
        interval = _number(doc.get("interval"), 5.0)
        handle = secrets.token_urlsafe(32)
        self._expire()
        self.devices[handle] = DevicePending(doc["device_code"], interval, now + expires_in)
        while len(self.devices) > MAX_DEVICES:
            self.devices.popitem(last=False)
        body = {
            "handle": handle,
            "user_code": doc["user_code"],
            "verification_uri": doc["verification_uri"],
            "verification_uri_complete": doc.get("verification_uri_complete")
            or doc["verification_uri"],
            "expires_in": int(expires_in),
            "interval": interval,
        }
        return json_response(body)

    async def _device_poll(self, request: Request) -> Response:
        assert self.provider is not None and self.config is not None
        handle = _query(request).get("handle", "")
        self._expire()
        pending = self.devices.get(handle)
        if pending is None:
            return json_response(
                {"status": "expired", "reason": "this device sign-in is unknown or has expired"},
                HTTPStatus.GONE,
            )
        now = self.clock()
        if now < pending.next_poll:
            # Faster than the provider allows: answer for it rather than get it annoyed.
            return json_response({"status": "pending", "interval": pending.interval})
        pending.next_poll = now + pending.interval
        doc = await self.provider.token(
            {"grant_type": DEVICE_GRANT, "device_code": pending.device_code}
        )
        error = doc.get("error")
        if error in ("authorization_pending", "slow_down"):
            if error == "slow_down":
                pending.interval += 5.0
            return json_response({"status": "pending", "interval": pending.interval})
        del self.devices[handle]
        if error == "access_denied":
            raise NotAllowed("the sign-in was declined on the identity provider")
        if error == "expired_token":
            return json_response(
                {"status": "expired", "reason": "the code expired before it was approved"},
                HTTPStatus.GONE,
            )
        if error:
            raise BadIdToken(f"the identity provider refused the device sign-in: {error}")
        claims = await self.provider.id_token_claims(doc.get("id_token"), None)
        person = person_from_claims(self.config, claims)
        self._allow(person, DEVICE_ROLE)
        token = self.issue(person, DEVICE_ROLE)
        log.info("signed in", extra={"sub": person.subject, "role": DEVICE_ROLE})
        return json_response(
            {"status": "ok", "token": token, "name": person.name, "role": DEVICE_ROLE}
        )

    # ------------------------------------------------------------ helpers

    def _expire(self) -> None:
        now = self.clock()
        while self.pending:
            state, first = next(iter(self.pending.items()))
            if now - first.started <= PENDING_TTL_S:
                break
            del self.pending[state]
        for handle in [h for h, d in self.devices.items() if d.expires < now]:
            del self.devices[handle]

    def _base(self, request: Request) -> str:
        if self.public_url:
            return self.public_url
        return "http://" + request.headers.get("Host", "127.0.0.1")


def user_id_of(person: Person) -> str:
    """The provider's subject, or a digest of it when it is longer than a user id may be."""
    if 0 < len(person.subject) <= MAX_USER_ID_CHARS:
        return person.subject
    return "sub-" + hashlib.sha256(person.subject.encode()).hexdigest()[:40]


def name_of(person: Person) -> str:
    return (person.name or person.subject)[:MAX_NAME_CHARS]


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return default
    return float(value)


def _query(request: Request) -> dict[str, str]:
    query = urlsplit(request.path).query
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=False).items()}


def _cookie(request: Request, name: str) -> str:
    for header in request.headers.get_all("Cookie"):
        for part in header.split(";"):
            key, _, value = part.strip().partition("=")
            if key == name:
                return value
    return ""


def _redirect(location: str) -> Response:
    resp = response(HTTPStatus.FOUND, b"", "text/plain; charset=utf-8")
    resp.headers["Location"] = location
    return resp


def _page(title: str, reason: str, status: HTTPStatus, retry: str | None = None) -> Response:
    """A page a person can read: the title, one line of reason, the status, a way back."""
    again = f'<p><a href="{html.escape(retry)}">Sign in again</a></p>' if retry else ""
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width">'
        '<link rel=stylesheet href="/auth/page.css">'
        f"<title>{html.escape(title)}</title>"
        f"<main><h1>{html.escape(title)}</h1>"
        f'<p id="reason">{html.escape(reason)}</p>'
        f"<p><small>HTTP {status.value} {html.escape(status.phrase)}</small></p>{again}</main>"
    )
    return protect_page(response(status, body.encode(), "text/html; charset=utf-8"))
