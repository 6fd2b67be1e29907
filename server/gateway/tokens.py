"""Join tokens: HS256 JSON Web Tokens (PyJWT), so any language can mint or check one.

Claims: ``sub`` (user id), ``name``, ``role``, ``room``, ``iat``, ``exp``.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

import jwt

from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.limits import MAX_NAME_CHARS, MAX_USER_ID_CHARS
from townhall.protocol.messages import ROLES
from townhall.server.core.identity import Identity
from townhall.server.ops.config import AuthSettings

ALGORITHM = "HS256"


def resolve_secret(auth: AuthSettings) -> str:
    """The configured secret, else the secret file's (created with a random one if absent)."""
    if auth.secret:
        return auth.secret
    path = Path(auth.secret_file)
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def issue_token(
    secret: str,
    *,
    user_id: str,
    name: str,
    role: str,
    room: str,
    ttl_s: float,
    now: float | None = None,
) -> str:
    """Mint a token; raises ValueError for a role or name the protocol cannot carry."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not 0 < len(name) <= MAX_NAME_CHARS:
        raise ValueError(f"name must be 1..{MAX_NAME_CHARS} characters")
    if not 0 < len(user_id) <= MAX_USER_ID_CHARS:
        raise ValueError(f"user id must be 1..{MAX_USER_ID_CHARS} characters")
    if ttl_s <= 0:
        raise ValueError("ttl must be positive")
    issued = int(time.time() if now is None else now)
    claims = {
        "sub": user_id,
        "name": name,
        "role": role,
        "room": room,
        "iat": issued,
        "exp": issued + int(ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str, room: str, now: float | None = None) -> Identity:
    """Check signature, expiry, room and claim types; raise ProtocolError with the reason."""
    # With an explicit ``now`` (tests, replay) expiry is checked below against it.
    options: jwt.types.Options = {
        "require": ["sub", "name", "role", "room", "exp"],
        "verify_exp": now is None,
    }
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options=options)
    except jwt.ExpiredSignatureError:
        raise ProtocolError(ErrorCode.AUTH_EXPIRED, "token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise ProtocolError(ErrorCode.AUTH_INVALID, f"token rejected: {exc}") from None
    if now is not None and float(claims["exp"]) <= now:
        raise ProtocolError(ErrorCode.AUTH_EXPIRED, "token has expired")
    user_id, name, role = claims["sub"], claims["name"], claims["role"]
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_CHARS:
        raise ProtocolError(ErrorCode.AUTH_INVALID, "token sub must be a short string")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise ProtocolError(ErrorCode.AUTH_INVALID, "token name must be 1..64 characters")
    if role not in ROLES:
        raise ProtocolError(ErrorCode.AUTH_INVALID, f"token role {role!r} is unknown")
    if claims["room"] != room:
        raise ProtocolError(ErrorCode.WRONG_ROOM, f"token is for room {claims['room']!r}")
    return Identity(user_id, name, role, room, float(claims["exp"]))
