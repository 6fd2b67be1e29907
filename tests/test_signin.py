"""Sign-in with the company's identity provider, against a real OpenID provider on
127.0.0.1 (tests/oidc_provider.py, built from Authlib's server components): the browser's
code flow with PKCE in Chromium, the headset's device grant, the ID token's checks, and
the one-line errors a person sees."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from playwright.async_api import Browser, Page, expect

from townhall.plugin.client import JoinRejected, RoomClient
from townhall.plugin.signin import DeviceCode, SignInFailed, device_sign_in
from townhall.protocol.errors import ErrorCode
from townhall.server.app import TownhallServer
from townhall.server.gateway.oidc import (
    BadIdToken,
    OidcConfig,
    Provider,
    person_from_claims,
)
from townhall.server.gateway.tokens import issue_token
from townhall.server.ops.cli import main
from townhall.server.ops.config import AuthSettings, ConfigError, load_settings

from .browser import artifact, browser, ensure_built  # noqa: F401  (the fixture)
from .conftest import SECRET, make_settings
from .oidc_provider import CLIENT_ID, CLIENT_SECRET, LocalProvider

expect.set_options(timeout=15_000)


@pytest.fixture(scope="module", autouse=True)
def built_pages() -> None:
    ensure_built("moderate", ("dist/moderate.html", "dist/assets/moderate.js"))


@pytest.fixture
def provider() -> Iterator[LocalProvider]:
    p = LocalProvider().start()
    try:
        yield p
    finally:
        p.stop()


def auth(issuer: str, **more: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "secret": SECRET,
        "oidc_issuer": issuer,
        "oidc_client_id": CLIENT_ID,
        "oidc_client_secret": CLIENT_SECRET,
        "oidc_moderator_groups": "townhall-moderators",
        "oidc_operator_groups": "townhall-operators",
    }
    values.update(more)
    return values


@pytest.fixture
async def server(
    provider: LocalProvider, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[TownhallServer]:
    extra = getattr(request, "param", {})
    settings = make_settings(tmp_path)
    settings = make_settings(
        tmp_path,
        auth={**auth(provider.issuer, **extra), "secret_file": settings.auth.secret_file},
    )
    async with TownhallServer(settings) as srv:
        provider.register(srv.url + "/auth/callback")
        yield srv


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def get(url: str, cookie: str = "") -> tuple[int, dict[str, str], str]:
    """GET without following redirects: status, headers, body."""
    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


async def sign_in(page: Page, user: str, password: str) -> None:
    await expect(page.locator("h1")).to_have_text("Sign in")
    await page.fill("#username", user)
    await page.fill("#password", password)
    await page.click("button[type=submit]")


# ---------------------------------------------------------------- the browser


@pytest.mark.light  # /moderate and the provider's form only
async def test_moderator_signs_in_and_lands_on_moderate(
    server: TownhallServer,
    provider: LocalProvider,
    browser: Browser,  # noqa: F811
) -> None:
    page = await browser.new_page(viewport={"width": 900, "height": 700})
    await page.goto(f"{server.url}/moderate")
    # Sent to the provider's own login form, with PKCE and a nonce in the request.
    assert page.url.startswith(provider.issuer + "/authorize?")
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))
    assert query["code_challenge_method"] == "S256" and query["nonce"] and query["state"]
    assert query["redirect_uri"] == server.url + "/auth/callback"
    await expect(page.locator("#username")).to_be_visible()
    await page.screenshot(path=str(artifact("signin-provider-form.png")))
    await sign_in(page, "alice", "alice-pw")
    await page.wait_for_url(f"{server.url}/moderate?token=*")
    await expect(page.locator("#conn")).to_have_text("Connected")
    await expect(page.locator("#who")).to_contain_text("Alice Moderator · moderator")
    await page.screenshot(path=str(artifact("signin-moderate.png")))
    # The state was used once: the same reply again is refused.
    assert server.signin.pending == {}


@pytest.mark.light  # /moderate and the provider's form only
async def test_user_in_no_moderator_group_is_refused(
    server: TownhallServer,
    browser: Browser,  # noqa: F811
) -> None:
    page = await browser.new_page(viewport={"width": 900, "height": 500})
    await page.goto(f"{server.url}/moderate")
    async with page.expect_response(lambda r: "/auth/callback" in r.url) as reply:
        await sign_in(page, "bob", "bob-pw")
    assert (await reply.value).status == 403
    await expect(page.locator("h1")).to_have_text("Sign-in failed")
    await expect(page.locator("#reason")).to_have_text(
        "Bob Employee is not in a group allowed to moderate this event "
        "(townhall-moderators, townhall-operators)"
    )
    again = page.get_by_role("link", name="Sign in again")
    await expect(again).to_have_attribute("href", "/auth/login?next=%2Fmoderate")
    await page.screenshot(path=str(artifact("signin-refused.png")))
    assert "Traceback" not in await page.content()


async def test_operator_may_moderate_and_anyone_signed_in_may_watch(
    server: TownhallServer,
    browser: Browser,  # noqa: F811
) -> None:
    page = await browser.new_page()
    await page.goto(f"{server.url}/moderate")
    await sign_in(page, "olga", "olga-pw")
    await page.wait_for_url(f"{server.url}/moderate?token=*")
    await expect(page.locator("#who")).to_contain_text("Olga Operator · moderator")
    # The sign-in for /watch gives a spectator's token (anonymous viewing is off here).
    page = await browser.new_page()
    await page.goto(f"{server.url}/auth/login?next=/watch")
    await sign_in(page, "bob", "bob-pw")
    await page.wait_for_url(f"{server.url}/watch?token=*")
    token = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["token"][0]
    assert server._verify(token).role == "spectator"
    assert server._verify(token).name == "Bob Employee"


@pytest.mark.parametrize("server", [{"anonymous_viewing": False}], indirect=True)
async def test_watch_without_anonymous_viewing_asks_to_sign_in(server: TownhallServer) -> None:
    status, headers, _ = await asyncio.to_thread(get, server.url + "/watch")
    assert status == 302 and headers["Location"] == "/auth/login?next=%2Fwatch"
    status, _, _ = await asyncio.to_thread(get, server.url + "/moderate?token=x")
    assert status == 200  # a link with a token: the Join checks it
    # The room itself refuses a Join without a token, so the guard is not just the page's.
    client = RoomClient(server.ws_url, "")
    with pytest.raises(JoinRejected) as refused:
        await client.connect()
    assert refused.value.error.code == ErrorCode.AUTH_INVALID


async def test_a_reloaded_page_whose_token_ran_out_signs_in_again(
    server: TownhallServer,
) -> None:
    old = issue_token(SECRET, user_id="u", name="U", role="moderator", room="main", ttl_s=60,
                      now=time.time() - 3600)  # fmt: skip
    status, headers, _ = await asyncio.to_thread(get, f"{server.url}/moderate?token={old}")
    assert status == 302 and headers["Location"] == "/auth/login?next=%2Fmoderate"
    fresh = issue_token(SECRET, user_id="u", name="U", role="moderator", room="main", ttl_s=60)
    status, _, _ = await asyncio.to_thread(get, f"{server.url}/moderate?token={fresh}")
    assert status == 200


async def test_xr_sign_in_against_a_server_without_it_says_so(tmp_path: Path) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        with pytest.raises(SignInFailed, match="sign-in is not configured on this server"):
            await device_sign_in(srv.ws_url, lambda code: None)


async def test_watch_with_anonymous_viewing_needs_no_sign_in(server: TownhallServer) -> None:
    status, _, _ = await asyncio.to_thread(get, server.url + "/watch")
    assert status == 200
    status, headers, _ = await asyncio.to_thread(get, server.url + "/moderate")
    assert status == 302 and headers["Location"] == "/auth/login?next=%2Fmoderate"


# ---------------------------------------------------------------- errors a person sees


async def test_bad_state_is_one_line_and_400(server: TownhallServer) -> None:
    status, headers, body = await asyncio.to_thread(
        get, server.url + "/auth/callback?code=abc&state=made-up"
    )
    assert status == 400 and headers["Content-Type"].startswith("text/html")
    assert "unknown or too old (bad state)" in body and "Traceback" not in body


async def test_state_from_another_browser_is_refused(server: TownhallServer) -> None:
    status, headers, _ = await asyncio.to_thread(get, server.url + "/auth/login?next=/moderate")
    assert status == 302
    state = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(headers["Location"]).query))["state"]
    assert f"townhall_signin={state}" in headers["Set-Cookie"]
    assert "HttpOnly" in headers["Set-Cookie"]
    # The reply arrives without the cookie that binds the state to the browser that began.
    status, _, body = await asyncio.to_thread(
        get, f"{server.url}/auth/callback?code=abc&state={state}", "townhall_signin=other"
    )
    assert status == 400 and "started in another browser (bad state)" in body


@pytest.mark.light  # /moderate and the provider's form only
async def test_bad_nonce_is_refused(
    server: TownhallServer,
    provider: LocalProvider,
    browser: Browser,  # noqa: F811
) -> None:
    provider.nonce_override = "a-nonce-of-another-sign-in"
    page = await browser.new_page()
    await page.goto(f"{server.url}/moderate")
    async with page.expect_response(lambda r: "/auth/callback" in r.url) as reply:
        await sign_in(page, "alice", "alice-pw")
    assert (await reply.value).status == 401
    await expect(page.locator("#reason")).to_contain_text("nonce does not match")


async def test_provider_unreachable_is_502(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once closed
    settings = make_settings(tmp_path, auth=auth(f"http://127.0.0.1:{closed}"))
    async with TownhallServer(settings) as srv:
        status, _, body = await asyncio.to_thread(get, srv.url + "/auth/login?next=/moderate")
        assert status == 502
        assert f"the identity provider at 127.0.0.1:{closed} could not be reached" in body
        status, _, body = await asyncio.to_thread(get, srv.url + "/auth/device")
        assert status == 502 and json.loads(body)["status"] == "error"


async def test_sign_in_starts_are_limited_per_address(
    provider: LocalProvider, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, auth=auth(provider.issuer), limits={"connects_per_address_per_min": 2}
    )
    async with TownhallServer(settings) as srv:
        for _ in range(2):
            status, _, _ = await asyncio.to_thread(get, srv.url + "/auth/device")
            assert status == 200
        status, headers, body = await asyncio.to_thread(get, srv.url + "/auth/login")
        assert status == 429 and headers["Retry-After"] == "60"
        assert "too many sign-ins from your address" in body


async def test_sign_in_off_says_so(tmp_path: Path) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        status, _, body = await asyncio.to_thread(get, srv.url + "/auth/login")
        assert status == 404 and "sign-in is not configured" in body
        status, _, _ = await asyncio.to_thread(get, srv.url + "/moderate")
        assert status == 200  # hand-made tokens, as before
        status, headers, _ = await asyncio.to_thread(get, srv.url + "/auth/page.css")
        assert status == 200 and headers["Content-Type"].startswith("text/css")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOWNHALL_AUTH_OIDC_ISSUER": "http://idp.invalid"}, "must use https"),
        (
            {"TOWNHALL_AUTH_OIDC_ISSUER": "https://idp.invalid"},
            "auth.oidc_client_id is needed",
        ),
        (
            {
                "TOWNHALL_AUTH_OIDC_ISSUER": "https://idp.invalid",
                "TOWNHALL_AUTH_OIDC_CLIENT_ID": "th",
                "TOWNHALL_AUTH_OIDC_CLIENT_SECRET": "s",
            },
            "auth.oidc_moderator_groups is empty",
        ),
        (
            {
                "TOWNHALL_AUTH_OIDC_ISSUER": "https://idp.invalid",
                "TOWNHALL_AUTH_OIDC_CLIENT_ID": "th",
                "TOWNHALL_AUTH_OIDC_CLIENT_SECRET": "s",
                "TOWNHALL_AUTH_OIDC_MODERATOR_GROUPS": "mods",
                "TOWNHALL_AUTH_OIDC_SCOPES": "profile",
            },
            "auth.oidc_scopes must include openid",
        ),
    ],
)
def test_misconfiguration_is_one_line_and_exit_2(
    env: dict[str, str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(None, env=env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["config"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("townhall: ") and message in err


# ---------------------------------------------------------------- the headset


async def test_headset_signs_in_with_the_device_grant(
    server: TownhallServer, provider: LocalProvider
) -> None:
    shown: list[DeviceCode] = []

    def show(code: DeviceCode) -> None:
        shown.append(code)
        # The person opens the address on a phone and approves with the provider's form.
        form = urllib.parse.urlencode(
            {"user_code": code.user_code, "username": "bob", "password": "bob-pw"}
        ).encode()
        with urllib.request.urlopen(code.verification_uri, data=form, timeout=10) as resp:
            assert b"Device signed in" in resp.read()

    signed = await device_sign_in(server.ws_url, show)
    assert shown[0].verification_uri == provider.issuer + "/device"
    assert "enter the code " + shown[0].user_code in shown[0].instructions()
    assert (signed.name, signed.role) == ("Bob Employee", "attendee")
    client = RoomClient(server.ws_url, signed.token)
    welcome = await client.connect()
    try:
        assert welcome.role == "attendee"
    finally:
        await client.close()


async def test_declined_device_sign_in_says_why(
    server: TownhallServer, provider: LocalProvider
) -> None:
    def show(code: DeviceCode) -> None:
        provider.approve_device(code.user_code, "alice", approved=False)

    with pytest.raises(SignInFailed, match="declined on the identity provider"):
        await device_sign_in(server.ws_url, show)


async def test_device_poll_with_an_unknown_handle_is_410(server: TownhallServer) -> None:
    status, _, body = await asyncio.to_thread(get, server.url + "/auth/device/poll?handle=x")
    assert status == 410 and json.loads(body)["status"] == "expired"


async def test_polling_faster_than_the_interval_does_not_reach_the_provider(
    server: TownhallServer, provider: LocalProvider
) -> None:
    status, _, body = await asyncio.to_thread(get, server.url + "/auth/device")
    handle = json.loads(body)["handle"]
    before = provider.token_requests
    for _ in range(3):
        status, _, body = await asyncio.to_thread(
            get, f"{server.url}/auth/device/poll?handle={handle}"
        )
        assert status == 200 and json.loads(body)["status"] == "pending"
    assert provider.token_requests - before == 1


# ---------------------------------------------------------------- the ID token's checks


def oidc_config(issuer: str) -> OidcConfig:
    config = OidcConfig.from_settings(AuthSettings(**auth(issuer)))
    assert config is not None
    return config


def id_token(key: RSAKey, **claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "u", "iat": now, "exp": now + 300, "nonce": "n1"}
    given = {k: v for k, v in {**base, **claims}.items() if v is not None}
    return jwt.encode({"alg": "RS256", "kid": "test-key"}, given, key)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "http://127.0.0.1:1", "aud": CLIENT_ID}, "issued by another provider"),
        ({"aud": "another-client"}, "for another client"),
        ({"aud": CLIENT_ID, "exp": int(time.time()) - 3600}, "has expired"),
        ({"aud": CLIENT_ID, "nonce": "n2"}, "nonce does not match"),
        ({"aud": CLIENT_ID, "nonce": None}, "nonce does not match"),  # left out
        ({"aud": [CLIENT_ID, "other"], "azp": "other"}, "azp"),
    ],
)
async def test_id_token_claims_are_checked(
    provider: LocalProvider, claims: dict[str, Any], reason: str
) -> None:
    checker = Provider(oidc_config(provider.issuer))
    token = id_token(provider.key, **{"iss": provider.issuer, **claims})
    with pytest.raises(BadIdToken, match=reason):
        await checker.id_token_claims(token, "n1")


async def test_id_token_signed_by_another_key_is_refused(provider: LocalProvider) -> None:
    checker = Provider(oidc_config(provider.issuer))
    other = RSAKey.generate_key(2048, parameters={"kid": "test-key"})
    token = id_token(other, iss=provider.issuer, aud=CLIENT_ID)
    with pytest.raises(BadIdToken, match="signature does not verify"):
        await checker.id_token_claims(token, "n1")
    good = id_token(provider.key, iss=provider.issuer, aud=CLIENT_ID)
    assert (await checker.id_token_claims(good, "n1"))["sub"] == "u"


def test_roles_come_from_the_configured_claim() -> None:
    config = OidcConfig.from_settings(
        AuthSettings(
            **auth("https://idp.invalid"),
            oidc_role_claim="roles",
            oidc_attendee_groups="staff",
        )
    )
    assert config is not None
    mod = person_from_claims(config, {"sub": "a", "roles": ["staff", "townhall-moderators"]})
    assert mod.may("moderator") and not mod.may("operator") and mod.may("attendee")
    op = person_from_claims(config, {"sub": "o", "roles": "townhall-operators"})
    assert op.may("operator") and op.may("moderator")
    guest = person_from_claims(config, {"sub": "g", "roles": ["contractors"], "email": "g@x"})
    assert not guest.may("spectator") and guest.name == "g@x"
    other_claim = person_from_claims(config, {"sub": "x", "groups": ["townhall-moderators"]})
    assert not other_claim.may("moderator")
