"""Token claims are checked strictly; display names are cleaned and staff look-alikes marked.

The join tests go through a real server on 127.0.0.1: a token the room cannot accept is
refused at Join with the code and a close, never let in.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from townhall.plugin.client import JoinRejected, RoomClient
from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.server.app import TownhallServer
from townhall.server.gateway.names import StaffLookalikes, clean_display_name
from townhall.server.gateway.tokens import verify_token

from .conftest import SECRET, TokenMaker, make_settings


class Rel(float):
    """A time given relative to the moment the token is made."""


def forge(**changes: Any) -> str:
    """A correctly signed token with the given claims changed (None: claim left out)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "u1",
        "name": "Ann",
        "role": "attendee",
        "room": "main",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key)
        elif isinstance(value, Rel):
            claims[key] = now + float(value)
        else:
            claims[key] = value
    return jwt.encode(claims, SECRET, algorithm="HS256")


BAD_CLAIMS = [
    {"exp": "9999999999"},  # a string: PyJWT alone would read it as a number
    {"exp": 1e300},  # never expires
    {"exp": True},
    {"exp": [4102444800]},  # a list, not a number (a fixed time: the test id must not change)
    {"exp": None},
    {"iat": None},
    {"nbf": None},
    {"iat": "now"},
    {"nbf": {"t": 1}},
    {"iat": Rel(3600)},  # issued in the future
    {"nbf": Rel(3600)},  # not valid yet
    {"iat": Rel(-30 * 24 * 3600)},  # a month-long token
    {"iat": Rel(-10), "exp": Rel(2 * 24 * 3600)},  # two days left
    {"iat": Rel(50), "exp": Rel(40)},  # expires before it is issued
    {"sub": 7},
    {"name": ""},
    {"name": "x" * 65},
    {"name": "\u202e\u2066\u200b"},  # nothing visible
    {"role": "ceo"},
    {"room": ["main"]},
]


@pytest.mark.parametrize("changes", BAD_CLAIMS, ids=[repr(c) for c in BAD_CLAIMS])
async def test_forged_claims_are_refused_at_join(tmp_path: Path, changes: dict[str, Any]) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        client = RoomClient(srv.ws_url, forge(**changes))
        with pytest.raises(JoinRejected) as info:
            await client.connect()
        assert info.value.error.code == ErrorCode.BAD_TOKEN, info.value.error.reason
        assert info.value.error.fatal
        assert client.connection is not None
        assert client.connection.close_code == ErrorCode.BAD_TOKEN.close_code
        assert not srv.room.members


def test_lifetime_limit_is_the_setting() -> None:
    token = forge(iat=Rel(-10), exp=Rel(3 * 3600))
    assert verify_token(SECRET, token, "main", max_lifetime_s=4 * 3600).user_id == "u1"
    with pytest.raises(ProtocolError) as info:
        verify_token(SECRET, token, "main", max_lifetime_s=2 * 3600)
    assert info.value.code is ErrorCode.BAD_TOKEN and "7200" in info.value.reason


def test_small_clock_skew_and_float_times_are_accepted() -> None:
    now = int(time.time())
    token = forge(iat=now + 20.5, nbf=now + 20.5, exp=now + 600.25)
    assert verify_token(SECRET, token, "main").expires_at == now + 600.25


def test_expired_and_badly_signed_keep_their_codes() -> None:
    with pytest.raises(ProtocolError) as info:
        verify_token(SECRET, forge(iat=Rel(-100), nbf=Rel(-100), exp=Rel(-1)), "main")
    assert info.value.code is ErrorCode.AUTH_EXPIRED
    with pytest.raises(ProtocolError) as info:
        verify_token("another-secret-" + "y" * 32, forge(), "main")
    assert info.value.code is ErrorCode.AUTH_INVALID


# ------------------------------------------------------------ display names


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Ann\u202e", "Ann"),  # right-to-left override
        ("\u2067Ann\u2069 Lee", "Ann Lee"),  # isolates
        ("Ann\x00\x07\x1b[31m", "Ann[31m"),  # C0 controls
        ("Ann\u200b\ufeff\u2060Lee", "AnnLee"),  # zero-width format characters
        ("Ann\u2028\u2029\x85  \t Lee", "Ann Lee"),  # line breaks and runs of spaces
        ("Z\u0301\u0302\u0303\u0304\u0305oe", "\u0179\u0302oe"),  # "zalgo" marks
        ("\u3164Ann", "Ann"),  # Hangul filler: invisible
        ("👩\u200d💻 Ann", "👩\u200d💻 Ann"),  # a joiner inside an emoji stays
        ("Олена Коваленко", "Олена Коваленко"),
    ],
)
def test_names_are_cleaned(raw: str, shown: str) -> None:
    assert clean_display_name(raw) == shown


LEADER = ["Dana Reyes", "Chief Executive Officer"]
IMITATIONS = [
    "Moderator", "MODERATOR", "M0derator", "Mоderator", "Ｍｏｄｅｒａｔｏｒ", "Mod\u200berator",
    "M o d e r a t o r", "𝐌𝐨𝐝𝐞𝐫𝐚𝐭𝐨𝐫", "Moderatr", "CEO", "C.E.O.", "СЕО", "the ceo", "Admin",
    "ADMlN", "Аdmin", "Адмін", "Админ", "Модератор", "Адміністратор", "Администратор",
    "Генеральний директор", "Ведучий", "Official Host", "Dana Reyes", "Dаnа Rеуеs",
    "dana_reyes", "Дана Рейес", "Chief Executive Officer", "Operator", "Organiser",
]  # fmt: skip
ORDINARY = [
    "Ann", "Simon Admiral", "Hostess Jo", "Staffan", "Cooper", "Moderna fan",
    "Operations Manager", "Administrative Assistant", "Olena Kovalenko", "Дмитро",
    "Dan Reynolds", "Daniela Reyes", "Modesto", "Hosting Team", "Marco", "Ceola",
]  # fmt: skip


@pytest.mark.parametrize("name", IMITATIONS)
def test_staff_lookalikes_are_marked(name: str) -> None:
    names = StaffLookalikes(LEADER)
    assert names.display_name(name, "attendee").endswith(" (attendee)")
    assert names.display_name(name, "spectator").endswith(" (spectator)")
    assert names.display_name(name, "moderator") == clean_display_name(name)


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_names_are_left_alone(name: str) -> None:
    assert StaffLookalikes(LEADER).display_name(name, "attendee") == name


def test_marked_name_fits_the_limit() -> None:
    shown = StaffLookalikes(LEADER).display_name("Moderator " + "x" * 54, "spectator")
    assert len(shown) <= 64 and shown.endswith(" (spectator)")


async def test_others_see_the_cleaned_marked_name(tmp_path: Path, token: TokenMaker) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        fake = RoomClient(srv.ws_url, token("fake", "attendee", "Mоderator\u202e"))
        mod = RoomClient(srv.ws_url, token("mod", "moderator", "Moderator"))
        welcome = await fake.connect()
        await mod.connect()
        assert welcome.name == "Mоderator (attendee)"
        shown = {p.slot: p.name for p in srv.room.participants()}
        assert shown[welcome.slot] == "Mоderator (attendee)"
        assert "Moderator" in shown.values()  # the real one is not marked
        await fake.close()
        await mod.close()
