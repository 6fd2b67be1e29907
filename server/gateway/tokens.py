"""Join tokens: HS256 JSON Web Tokens (PyJWT), so any language can mint or check one.

Claims: ``sub`` (user id), ``name``, ``role``, ``room``, ``iat``, ``nbf``, ``exp``.

PyJWT checks the signature; the claims are checked here, strictly, because a token is
often minted by someone else's code: the three times must be JSON numbers (a string or
``1e300`` would otherwise make a token that never expires), the token must be valid now,
and its lifetime (``exp - iat``, and what is left of it) may not exceed the room's
maximum. A bad signature or an unreadable token is ``AUTH_INVALID``; one past ``exp`` is
``AUTH_EXPIRED``; any other claim the room cannot accept is ``BAD_TOKEN``.
"""

from __future__ import annotations

import math
import os
import secrets
import stat
import time
from pathlib import Path

import jwt

from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.protocol.limits import MAX_NAME_CHARS, MAX_USER_ID_CHARS
from townhall.protocol.messages import ROLES
from townhall.server.core.identity import Identity
from townhall.server.ops.config import AuthSettings, ConfigError

ALGORITHM = "HS256"
REQUIRED = ("sub", "name", "role", "room", "iat", "nbf", "exp")
CLOCK_LEEWAY_S = 60.0  # issuers' clocks may run a little ahead of ours
DEFAULT_MAX_LIFETIME_S = 24 * 3600.0


class SecretMissing(ConfigError):
    """No secret to sign with where one must already exist (the server's own)."""


def resolve_secret(auth: AuthSettings, create: bool = True) -> str:
    """The configured secret, else the secret file's.

    The server (``create``) makes the file with a random secret if absent. Commands that
    sign for a running server (``townhall token``, ``bots``) must use the server's: a new
    secret would sign links the server refuses. They look for a relative ``secret_file`` in
    this directory and then in each parent (as the server's, if run from inside the
    directory it was started in; up to the user's home, never through a world-writable
    directory or onto another filesystem: :func:`_trusted_dirs`), and otherwise raise
    :class:`SecretMissing` saying how to point at the server's.
    """
    if auth.secret:
        return auth.secret
    path = Path(auth.secret_file)
    if not create:
        found = _find_upwards(path)
        if found is None:
            raise SecretMissing(
                f"no secret at {path.absolute()}: the server writes it to {auth.secret_file} in "
                "the directory it runs in; run this from there, or point at it with "
                "TOWNHALL_AUTH_SECRET_FILE=/that/dir/.townhall/secret (or auth.secret_file in "
                "--config)"
            )
        return found
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


def _find_upwards(path: Path) -> str | None:
    """The secret in ``path``, or for a relative path in the nearest parent that has it."""
    places = [path] if path.is_absolute() else [d / path for d in _trusted_dirs(Path.cwd())]
    for place in places:
        try:
            value = place.read_text().strip()
        except OSError:
            continue
        if value:
            return value
    return None


def _trusted_dirs(here: Path) -> list[Path]:
    """``here`` and its parents, as far as a secret found in them can be the user's own.

    The search stops below a world-writable directory (a shared ``/tmp``: anyone could have
    left a ``.townhall/secret`` there, and tokens signed with it would be someone else's),
    at the user's home (nothing above it is theirs) and at another filesystem, as git stops
    looking for a repository (``GIT_DISCOVERY_ACROSS_FILESYSTEM``).
    """
    home = Path.home()
    dirs = [here]
    try:
        device = here.stat().st_dev
    except OSError:
        return dirs
    for parent in here.parents:
        if dirs[-1] == home:
            break
        try:
            info = parent.stat()
        except OSError:
            break
        if info.st_dev != device or info.st_mode & stat.S_IWOTH:
            break
        dirs.append(parent)
    return dirs


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
        "nbf": issued,
        "exp": issued + int(ttl_s),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(
    secret: str,
    token: str,
    room: str,
    now: float | None = None,
    max_lifetime_s: float = DEFAULT_MAX_LIFETIME_S,
) -> Identity:
    """Check signature, claims and times; raise ProtocolError with the code and reason."""
    # Only the signature here: PyJWT converts claim types loosely ("1e3" would pass).
    options: jwt.types.Options = {
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_sub": False,
        "verify_jti": False,
        "require": [],
    }
    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], options=options)
    except jwt.InvalidTokenError as exc:
        raise ProtocolError(ErrorCode.AUTH_INVALID, f"token rejected: {exc}") from None
    now = time.time() if now is None else now
    for claim in REQUIRED:
        if claim not in claims:
            raise _bad(f"token lacks the {claim!r} claim")
    iat, nbf, exp = (_seconds(claims, claim) for claim in ("iat", "nbf", "exp"))
    if exp <= now:
        raise ProtocolError(ErrorCode.AUTH_EXPIRED, "token has expired")
    if iat > now + CLOCK_LEEWAY_S:
        raise _bad("token is issued in the future (iat)")
    if nbf > now + CLOCK_LEEWAY_S:
        raise _bad("token is not valid yet (nbf)")
    if exp <= iat:
        raise _bad("token expires before it is issued")
    limit = max_lifetime_s
    if exp - iat > limit or exp - now > limit + CLOCK_LEEWAY_S:
        raise _bad(f"token lives longer than this room allows ({limit:.0f} s)")
    user_id, name, role = claims["sub"], claims["name"], claims["role"]
    if not isinstance(user_id, str) or not 0 < len(user_id) <= MAX_USER_ID_CHARS:
        raise _bad(f"token sub must be 1..{MAX_USER_ID_CHARS} characters")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS:
        raise _bad(f"token name must be 1..{MAX_NAME_CHARS} characters")
    if role not in ROLES:
        raise _bad("token role is unknown")
    if not isinstance(claims["room"], str):
        raise _bad("token room must be a string")
    if claims["room"] != room:
        raise ProtocolError(ErrorCode.WRONG_ROOM, "token is for another room")
    return Identity(user_id, name, role, room, exp)


def _seconds(claims: dict[str, object], claim: str) -> float:
    value = claims[claim]
    # bool is an int in Python; JSON true is not a time.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _bad(f"token {claim!r} must be a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds < 2**53:
        raise _bad(f"token {claim!r} is out of range")
    return seconds


def _bad(reason: str) -> ProtocolError:
    return ProtocolError(ErrorCode.BAD_TOKEN, reason)
