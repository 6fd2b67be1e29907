"""The relying party's side of OpenID Connect: the provider's metadata and keys, the token
endpoint, and the ID token's checks, with Authlib (PKCE, grant URIs, ID token claims) and
joserfc (signatures, key sets) rather than hand-written OAuth.

Talking to the provider is a few form POSTs and JSON GETs, done with the standard library
in a thread (``asyncio.to_thread``) so the event loop never waits on the network. Every
failure is a :class:`SignInError` carrying the HTTP status the person gets and one line
saying why, never a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from townhall.protocol.messages import Role
from townhall.server.ops.config import AuthSettings

HTTP_TIMEOUT_S = 8.0
METADATA_TTL_S = 3600.0
CLOCK_LEEWAY_S = 60
MAX_RESPONSE_BYTES = 1 << 20
# Asymmetric algorithms only: an ID token signed with the client secret (HS256) or not at
# all ("none") is refused.
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class OidcConfigError(ValueError):
    """A sign-in setting that cannot work; ``key`` names it."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key} {reason}")
        self.key, self.reason = key, reason


class SignInError(Exception):
    """Sign-in failed: ``status`` is what the person's browser or headset gets."""

    status = HTTPStatus.BAD_REQUEST

    def __init__(self, reason: str, status: HTTPStatus | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.page = ""  # the page the person was signing in to, when known
        if status is not None:
            self.status = status


class ProviderUnreachable(SignInError):
    status = HTTPStatus.BAD_GATEWAY


class BadIdToken(SignInError):
    status = HTTPStatus.UNAUTHORIZED


class NotAllowed(SignInError):
    status = HTTPStatus.FORBIDDEN


def _groups(text: str) -> frozenset[str]:
    return frozenset(g.strip() for g in text.split(",") if g.strip())


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class OidcConfig:
    """The sign-in settings, checked once at start."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: str
    role_claim: str
    name_claim: str
    attendee_groups: frozenset[str]
    moderator_groups: frozenset[str]
    operator_groups: frozenset[str]
    token_ttl_s: int

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> OidcConfig | None:
        """None when sign-in is off; raises :class:`OidcConfigError` for what cannot work."""
        issuer = auth.oidc_issuer.strip()
        if not issuer:
            return None
        parts = urllib.parse.urlsplit(issuer)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OidcConfigError("auth.oidc_issuer", f"must be an https URL, not {issuer!r}")
        if parts.scheme == "http" and not _loopback(parts.hostname):
            raise OidcConfigError(
                "auth.oidc_issuer", "must use https (http only on a loopback address)"
            )
        if not auth.oidc_client_id:
            raise OidcConfigError("auth.oidc_client_id", "is needed when auth.oidc_issuer is set")
        if not auth.oidc_client_secret:
            raise OidcConfigError(
                "auth.oidc_client_secret", "is needed when auth.oidc_issuer is set"
            )
        if "openid" not in auth.oidc_scopes.split():
            raise OidcConfigError("auth.oidc_scopes", "must include openid")
        if not auth.oidc_role_claim.strip():
            raise OidcConfigError("auth.oidc_role_claim", "must name a claim")
        moderators = _groups(auth.oidc_moderator_groups)
        operators = _groups(auth.oidc_operator_groups)
        if not moderators and not operators:
            raise OidcConfigError(
                "auth.oidc_moderator_groups",
                "is empty (and so is auth.oidc_operator_groups): nobody could moderate",
            )
        return cls(
            issuer=issuer.rstrip("/"),
            client_id=auth.oidc_client_id,
            client_secret=auth.oidc_client_secret,
            scopes=" ".join(auth.oidc_scopes.split()),
            role_claim=auth.oidc_role_claim.strip(),
            name_claim=auth.oidc_name_claim.strip() or "name",
            attendee_groups=_groups(auth.oidc_attendee_groups),
            moderator_groups=moderators,
            operator_groups=operators,
            token_ttl_s=auth.signed_in_ttl_s,
        )


RANK: dict[Role, int] = {"spectator": 0, "attendee": 0, "moderator": 1, "operator": 2}


@dataclass(frozen=True)
class Person:
    """Who the provider signed in, and the highest role their groups give."""

    subject: str
    name: str
    groups: frozenset[str]
    may_attend: bool
    rank: int  # 0 attend/watch, 1 moderate, 2 operate

    def may(self, role: Role) -> bool:
        return self.may_attend and self.rank >= RANK[role]


def person_from_claims(config: OidcConfig, claims: dict[str, Any]) -> Person:
    """Groups from the configured claim (a list, or one string with spaces or commas)."""
    raw = claims.get(config.role_claim)
    if isinstance(raw, str):
        groups = frozenset(raw.replace(",", " ").split())
    elif isinstance(raw, list):
        groups = frozenset(str(g) for g in raw if isinstance(g, str | int))
    else:
        groups = frozenset()
    rank = 2 if groups & config.operator_groups else 1 if groups & config.moderator_groups else 0
    may_attend = rank > 0 or not config.attendee_groups or bool(groups & config.attendee_groups)
    name = ""
    for claim in (config.name_claim, "name", "preferred_username", "email", "sub"):
        value = claims.get(claim)
        if isinstance(value, str) and value.strip():
            name = value.strip()
            break
    return Person(str(claims["sub"]), name, groups, may_attend, rank)


@dataclass
class Provider:
    """The identity provider as the server sees it: metadata and keys, fetched on first
    use and kept for an hour; the keys are fetched again once when a token names a key
    that is not in them (the provider rotated its keys)."""

    config: OidcConfig
    _metadata: dict[str, Any] | None = None
    _metadata_at: float = 0.0
    _keys: KeySet | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def metadata(self) -> dict[str, Any]:
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._metadata_at > METADATA_TTL_S:
                url = self.config.issuer + "/.well-known/openid-configuration"
                status, doc = await asyncio.to_thread(_http, url, None, None)
                if status != 200:
                    raise ProviderUnreachable(
                        f"the identity provider's discovery document at {url} answered {status}"
                    )
                if str(doc.get("issuer", "")).rstrip("/") != self.config.issuer:
                    raise ProviderUnreachable(
                        f"the identity provider says its issuer is {doc.get('issuer')!r}, not "
                        f"{self.config.issuer!r} (auth.oidc_issuer)"
                    )
                for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(doc.get(key), str):
                        raise ProviderUnreachable(
                            f"the identity provider's discovery document has no {key}"
                        )
                self._metadata, self._metadata_at = doc, time.monotonic()
            return self._metadata

    async def keys(self, refresh: bool = False) -> KeySet:
        meta = await self.metadata()
        if self._keys is None or refresh:
            status, doc = await asyncio.to_thread(_http, meta["jwks_uri"], None, None)
            if status != 200 or not isinstance(doc.get("keys"), list):
                raise ProviderUnreachable("the identity provider's key set could not be read")
            try:
                self._keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
            except (JoseError, ValueError) as exc:
                reason = f"the identity provider's key set is unusable: {exc}"
                raise ProviderUnreachable(reason) from None
        return self._keys

    async def token(self, form: dict[str, str]) -> dict[str, Any]:
        """POST to the token endpoint with the client's credentials (client_secret_basic);
        an OAuth error comes back as the dict (``error``) for the caller to judge."""
        meta = await self.metadata()
        status, doc = await asyncio.to_thread(
            _http, meta["token_endpoint"], form, (self.config.client_id, self.config.client_secret)
        )
        if status != 200 and "error" not in doc:
            raise ProviderUnreachable(f"the identity provider's token endpoint answered {status}")
        return doc

    async def device_authorization(self) -> dict[str, Any]:
        meta = await self.metadata()
        url = meta.get("device_authorization_endpoint")
        if not isinstance(url, str):
            raise SignInError(
                "the identity provider offers no device sign-in (no device_authorization_endpoint)",
                HTTPStatus.NOT_IMPLEMENTED,
            )
        form = {"scope": self.config.scopes}
        creds = (self.config.client_id, self.config.client_secret)
        status, doc = await asyncio.to_thread(_http, url, form, creds)
        if status != 200:
            raise ProviderUnreachable(
                f"the identity provider refused a device sign-in: "
                f"{doc.get('error_description') or doc.get('error') or status}"
            )
        for key in ("device_code", "user_code", "verification_uri"):
            if not isinstance(doc.get(key), str):
                raise ProviderUnreachable(f"the identity provider's device answer has no {key}")
        return doc

    async def id_token_claims(self, id_token: object, nonce: str | None) -> dict[str, Any]:
        """The ID token's claims once its signature, issuer, audience, times and nonce hold."""
        if not isinstance(id_token, str) or not id_token:
            raise BadIdToken("the identity provider sent no ID token (is openid in the scopes?)")
        keys = await self.keys()
        try:
            token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
        except (JoseError, ValueError):
            keys = await self.keys(refresh=True)  # a key the provider has rotated in
            try:
                token = jwt.decode(id_token, keys, algorithms=ALGORITHMS)
            except (JoseError, ValueError) as exc:
                raise BadIdToken(f"the ID token's signature does not verify ({exc})") from None
        claims = CodeIDToken(
            token.claims,
            token.header,
            options={
                "iss": {"essential": True, "value": self.config.issuer},
                "aud": {"essential": True, "value": self.config.client_id},
            },
            # Without a nonce (the device grant sends none) there is none to compare.
            params={"client_id": self.config.client_id, **({"nonce": nonce} if nonce else {})},
        )
        try:
            claims.validate(leeway=CLOCK_LEEWAY_S)
        except JoseError as exc:
            raise BadIdToken(_claim_reason(exc)) from None
        return dict(claims)


def _claim_reason(exc: JoseError) -> str:
    text = str(exc)
    if "nonce" in text:
        return "the ID token's nonce does not match this sign-in (a replayed or mixed-up reply)"
    if "iss" in text:
        return "the ID token was issued by another provider (iss)"
    if "aud" in text:
        return "the ID token is for another client (aud)"
    if "exp" in text or "expired" in text:
        return "the ID token has expired"
    return f"the ID token was not accepted: {text}"


def _http(
    url: str, form: dict[str, str] | None, basic: tuple[str, str] | None
) -> tuple[int, dict[str, Any]]:
    """GET (or POST ``form``) and parse the JSON answer; network faults become
    :class:`ProviderUnreachable` with the reason."""
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Accept", "application/json")
    if basic is not None:
        pair = ":".join(urllib.parse.quote(p, safe="") for p in basic)
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    host = urllib.parse.urlsplit(url).netloc
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
            status, body = resp.status, resp.read(MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(MAX_RESPONSE_BYTES)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ProviderUnreachable(
            f"the identity provider at {host} could not be reached ({reason})"
        ) from None
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        raise ProviderUnreachable(f"the identity provider at {host} answered {status} without JSON")
    return status, doc
