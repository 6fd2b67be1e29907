"""Resume tokens any authority of the room can verify: signed, bounded, bound to user and room.

A resume token used to be a random string the authority remembered, so a standby that took
over (or a restarted server) knew none and every attendee got a fresh seat. Now the token
says what it resumes (room, user, slot, seat, the issuing authority's session) and carries
an HMAC-SHA256 under a key derived from the room's secret (``auth.secret``), which every
authority of the room shares. One authority still keeps the latest token of each member
(single use); a token from *another* session of the room is honoured, once its signature,
room, user and lifetime check out, by giving back its slot and seat when they are free, and
only within the resume window after this authority started: the issuing authority is gone,
so its clients dropped about when this one took over.

Pure: no clock of its own (the caller passes wall-clock seconds), no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

PREFIX = "r1."
KEY_LABEL = b"townhall resume token v1"  # a key of its own, never the join tokens' key
MAX_TOKEN = 1024


@dataclass(frozen=True)
class ResumeClaim:
    """What a verified token from another session of the room asks back."""

    user: str
    slot: int
    seat: int
    session: str


class ResumeTokens:
    """Mints and checks one room's resume tokens for one authority session."""

    def __init__(
        self,
        secret: str,
        room: str,
        *,
        ttl_s: float,
        window_s: float,
        started: float,
        session: str = "",
    ) -> None:
        self.key = hmac.new(secret.encode(), KEY_LABEL, hashlib.sha256).digest()
        self.room = room
        self.ttl_s = ttl_s  # a token's lifetime from when it was issued
        self.window_s = window_s  # another session's tokens: this long after we started
        self.started = started  # wall-clock seconds this session started
        self.session = session or secrets.token_hex(6)

    def mint(self, user: str, slot: int, seat: int, wall: float) -> str:
        body = {
            "r": self.room,
            "u": user,
            "l": slot,
            "t": seat,
            "s": self.session,
            "x": round(wall + self.ttl_s, 3),
            "n": secrets.token_hex(4),  # two tokens of one member never repeat
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{PREFIX}{payload}.{_b64(self._mac(payload))}"

    def check(self, token: str, user: str, wall: float) -> ResumeClaim | str:
        """The claim of a valid token from another session of this room, else why not
        (a short reason for the client's RESUME_FAILED)."""
        if len(token) > MAX_TOKEN or not token.startswith(PREFIX) or token.count(".") != 2:
            return "not a resume token of this room"
        payload, _, mac = token[len(PREFIX) :].partition(".")
        try:
            given = _unb64(mac)
        except ValueError:
            return "not a resume token of this room"
        if not hmac.compare_digest(given, self._mac(payload)):
            return "the resume token's signature is wrong"
        try:
            body = json.loads(_unb64(payload))
        except ValueError:
            return "not a resume token of this room"
        claim = _claim(body)
        if claim is None:
            return "not a resume token of this room"
        expires = body["x"]
        if body["r"] != self.room:
            return "the resume token is for another room"
        if claim.user != user:
            return "the resume token is someone else's"
        if wall >= expires:
            return "the resume token has expired"
        if claim.session == self.session:
            return "the resume window is over"  # ours, for a member no longer here
        if wall - self.started > self.window_s:
            return "the resume window is over"
        return claim

    def holder(self, user: str) -> str:
        """A stable key for a user's place in the store that does not reveal the user id."""
        return hmac.new(self.key, b"holder\0" + user.encode(), hashlib.sha256).hexdigest()[:32]

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.key, payload.encode(), hashlib.sha256).digest()


def _claim(body: object) -> ResumeClaim | None:
    """A signed body is ours, but checked like input all the same (an older version's)."""
    if not isinstance(body, dict):
        return None
    room, user, slot, seat = body.get("r"), body.get("u"), body.get("l"), body.get("t")
    session, expires = body.get("s"), body.get("x")
    if not (isinstance(room, str) and isinstance(user, str) and isinstance(session, str)):
        return None
    if not (_int(slot) and _int(seat)) or not isinstance(expires, int | float):
        return None
    assert isinstance(slot, int) and isinstance(seat, int)
    return ResumeClaim(user, slot, seat, session)


def _int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(str(exc)) from exc
