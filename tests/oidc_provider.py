"""A real OpenID provider on 127.0.0.1 for the sign-in tests, built from Authlib's server
components: discovery, JWKS (an RSA key made at start), the authorization code grant with
PKCE and OpenID Connect ID tokens, the device authorization grant (RFC 8628) with its
verification page, and a login form. HTTP is the standard library's threading server in a
thread, so the server under test and the browser talk to it over real sockets.

Test support only: nothing in server/ imports it.
"""

from __future__ import annotations

import html
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from authlib.common.security import generate_token
from authlib.oauth2 import AuthorizationServer, OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import (
    DeviceAuthorizationEndpoint,
    DeviceCodeGrant,
    DeviceCredentialDict,
)
from authlib.oidc.core.grants import OpenIDCode, OpenIDToken
from joserfc.jwk import RSAKey

CLIENT_ID = "townhall"
CLIENT_SECRET = "townhall-test-secret"


@dataclass(frozen=True)
class User:
    username: str
    password: str
    name: str
    groups: tuple[str, ...]


USERS = {
    "alice": User("alice", "alice-pw", "Alice Moderator", ("staff", "townhall-moderators")),
    "bob": User("bob", "bob-pw", "Bob Employee", ("staff",)),
    "olga": User("olga", "olga-pw", "Olga Operator", ("staff", "townhall-operators")),
}


@dataclass
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == "client_secret_basic"

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", DeviceCodeGrant.GRANT_TYPE)


@dataclass
class Code:
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class _Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, method: str, uri: str, headers: Any, data: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self._data = data
        self.payload = BasicOAuth2Payload(data)

    @property
    def args(self) -> dict[str, str]:
        return self._data

    @property
    def form(self) -> dict[str, str]:
        return self._data


Reply = tuple[int, bytes, list[tuple[str, str]]]


class LocalProvider:
    """The provider: start(), then ``issuer``; stop() at the end."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key", "use": "sig"})
        self.codes: dict[str, Code] = {}
        self.devices: dict[str, DeviceCredentialDict] = {}
        self.device_grants: dict[str, tuple[User, bool]] = {}
        self.redirect_uris: list[str] = []
        self.nonce_override: str | None = None  # to test a reply for another sign-in
        self.token_requests = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.server = self._authorization_server()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> LocalProvider:
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def register(self, redirect_uri: str) -> None:
        self.redirect_uris.append(redirect_uri)

    def approve_device(self, user_code: str, username: str, approved: bool = True) -> None:
        """What the verification page does when a person signs in and approves."""
        self.device_grants[user_code] = (USERS[username], approved)

    # ------------------------------------------------------------ Authlib

    def _authorization_server(self) -> AuthorizationServer:
        provider = self

        class Server(AuthorizationServer):  # type: ignore[misc]
            def query_client(self, client_id: str) -> Client | None:
                if client_id != CLIENT_ID:
                    return None
                return Client(CLIENT_ID, CLIENT_SECRET, provider.redirect_uris)

            def save_token(self, token: dict[str, Any], request: Any) -> None:
                return None

            def create_oauth2_request(self, request: Any) -> OAuth2Request:
                return request

            def handle_response(self, status: int, body: Any, headers: Any) -> Reply:
                import json

                data = json.dumps(body).encode() if isinstance(body, dict) else str(body).encode()
                return status, data, list(headers)

            def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
                return None

        class CodeGrant(AuthorizationCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

            def save_authorization_code(self, code: str, request: Any) -> None:
                data = request.payload.data
                provider.codes[code] = Code(
                    code,
                    request.client.get_client_id(),
                    data.get("redirect_uri", ""),
                    data.get("scope", ""),
                    request.user,
                    data.get("nonce"),
                    data.get("code_challenge"),
                    data.get("code_challenge_method"),
                )

            def query_authorization_code(self, code: str, client: Client) -> Code | None:
                found = provider.codes.get(code)
                return found if found and found.client_id == client.client_id else None

            def delete_authorization_code(self, authorization_code: Code) -> None:
                provider.codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code: Code) -> User:
                return authorization_code.user

        class IdTokens:
            def resolve_client_private_key(self, client: Client) -> RSAKey:
                return provider.key

            def get_client_claims(self, client: Client) -> dict[str, Any]:
                return {"iss": provider.issuer, "aud": [client.client_id]}

            def get_encode_header(self, client: Client) -> dict[str, str]:
                return {"alg": "RS256", "kid": "test-key"}

            def exists_nonce(self, nonce: str, request: Any) -> bool:
                return False

            def generate_user_info(self, user: User, scope: str) -> dict[str, Any]:
                info: dict[str, Any] = {
                    "sub": f"user-{user.username}",
                    "name": user.name,
                    "preferred_username": user.username,
                    "groups": list(user.groups),
                }
                if provider.nonce_override is not None:
                    info["nonce"] = provider.nonce_override
                return info

        class OpenIDCodeExt(IdTokens, OpenIDCode):  # type: ignore[misc]
            pass

        class OpenIDTokenExt(IdTokens, OpenIDToken):  # type: ignore[misc]
            pass

        class DeviceEndpoint(DeviceAuthorizationEndpoint):  # type: ignore[misc]
            CLIENT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]
            INTERVAL = 1

            def get_verification_uri(self) -> str:
                return provider.issuer + "/device"

            def save_device_credential(self, client_id: str, scope: str, data: Any) -> None:
                cred = DeviceCredentialDict(
                    client_id=client_id,
                    scope=scope,
                    expires_at=time.time() + self.EXPIRES_IN,
                    **data,
                )
                provider.devices[data["device_code"]] = cred

        class DeviceGrant(DeviceCodeGrant):  # type: ignore[misc]
            TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic"]

            def query_device_credential(self, device_code: str) -> Any:
                return provider.devices.get(device_code)

            def query_user_grant(self, user_code: str) -> tuple[User, bool] | None:
                return provider.device_grants.get(user_code)

            def should_slow_down(self, credential: Any) -> bool:
                return False

        server = Server()
        server.register_token_generator(
            "default", BearerTokenGenerator(lambda *a, **k: generate_token(42))
        )
        server.register_grant(CodeGrant, [CodeChallenge(required=True), OpenIDCodeExt()])
        server.register_grant(DeviceGrant, [OpenIDTokenExt()])
        server.register_endpoint(DeviceEndpoint)
        return server

    def discovery(self) -> dict[str, Any]:
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": i + "/authorize",
            "token_endpoint": i + "/token",
            "jwks_uri": i + "/jwks",
            "device_authorization_endpoint": i + "/device_authorization",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", DeviceCodeGrant.GRANT_TYPE],
            "scopes_supported": ["openid", "profile", "email", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    # ------------------------------------------------------------ HTTP

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                self._serve("GET", {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                self._serve("POST", form)

            def _serve(self, method: str, form: dict[str, str]) -> None:
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                uri = provider.issuer + self.path
                status, body, headers = provider.route(
                    method, parts.path, uri, self.headers, query, form
                )
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def route(
        self,
        method: str,
        path: str,
        uri: str,
        headers: Any,
        query: dict[str, str],
        form: dict[str, str],
    ) -> Reply:
        import json

        if path == "/.well-known/openid-configuration":
            return 200, json.dumps(self.discovery()).encode(), [JSON]
        if path == "/jwks":
            keys = {"keys": [self.key.as_dict(private=False)]}
            return 200, json.dumps(keys).encode(), [JSON]
        if path == "/token" and method == "POST":
            self.token_requests += 1
            return self.server.create_token_response(_Request(method, uri, headers, form))  # type: ignore[no-any-return]
        if path == "/device_authorization" and method == "POST":
            request = _Request(method, uri, headers, form)
            return self.server.create_endpoint_response("device_authorization", request)  # type: ignore[no-any-return]
        if path == "/authorize":
            return self._authorize(method, uri, headers, query, form)
        if path == "/device":
            return self._device(method, query, form)
        return 404, b"not found", [TEXT]

    def _authorize(
        self, method: str, uri: str, headers: Any, query: dict[str, str], form: dict[str, str]
    ) -> Reply:
        params = dict(parse_qsl(form["request"])) if method == "POST" else query
        request = _Request("GET", uri.split("?", 1)[0] + "?" + urlencode(params), headers, params)
        try:
            grant = self.server.get_consent_grant(request)
        except OAuth2Error as exc:
            return (
                400,
                f"bad authorization request: {exc.description or exc.error}".encode(),
                [TEXT],
            )
        if method == "GET":
            return 200, login_form(urlencode(params), ""), [HTML]
        user = USERS.get(form.get("username", ""))
        if user is None or user.password != form.get("password"):
            return 200, login_form(urlencode(params), "Wrong user name or password."), [HTML]
        return self.server.create_authorization_response(  # type: ignore[no-any-return]
            request, grant_user=user, grant=grant
        )

    def _device(self, method: str, query: dict[str, str], form: dict[str, str]) -> Reply:
        if method == "GET":
            return 200, device_form(query.get("user_code", ""), ""), [HTML]
        user = USERS.get(form.get("username", ""))
        code = form.get("user_code", "")
        if user is None or user.password != form.get("password"):
            return 200, device_form(code, "Wrong user name or password."), [HTML]
        if not any(c.get_user_code() == code for c in self.devices.values()):
            return 200, device_form(code, "No device is waiting for this code."), [HTML]
        self.device_grants[code] = (user, form.get("decision") != "deny")
        return 200, page("Device signed in", "<p>You can go back to your headset.</p>"), [HTML]


JSON = ("Content-Type", "application/json")
TEXT = ("Content-Type", "text/plain; charset=utf-8")
HTML = ("Content-Type", "text/html; charset=utf-8")
STYLE = (
    "body{font:16px system-ui,sans-serif;background:#eef1f5;margin:0;display:grid;"
    "place-items:center;min-height:100vh}main{background:#fff;padding:32px 40px;"
    "border-radius:10px;box-shadow:0 4px 24px #0002;width:320px}h1{font-size:20px;"
    "margin:0 0 4px}p.who{color:#555;margin:0 0 20px}label{display:block;margin:12px 0 4px}"
    "input{width:100%;box-sizing:border-box;padding:8px;font-size:16px}button{margin-top:20px;"
    "width:100%;padding:10px;font-size:16px;background:#2456c9;color:#fff;border:0;"
    "border-radius:6px}.error{color:#b00020}"
)


def page(title: str, inner: str) -> bytes:
    return (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
        f"<style>{STYLE}</style><main><h1>{title}</h1>{inner}</main>"
    ).encode()


def login_form(request: str, error: str) -> bytes:
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return page(
        "Sign in",
        '<p class="who">Example Corp identity provider (test)</p>'
        f"{err}<form method=post action=/authorize>"
        f'<input type=hidden name=request value="{html.escape(request)}">'
        "<label for=username>User name</label><input id=username name=username autofocus>"
        "<label for=password>Password</label><input id=password name=password type=password>"
        "<button type=submit>Sign in</button></form>",
    )


def device_form(user_code: str, error: str) -> bytes:
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return page(
        "Sign in a device",
        f"{err}<form method=post action=/device>"
        "<label for=user_code>Code shown in the headset</label>"
        f'<input id=user_code name=user_code value="{html.escape(user_code)}">'
        "<label for=username>User name</label><input id=username name=username>"
        "<label for=password>Password</label><input id=password name=password type=password>"
        "<button type=submit name=decision value=approve>Approve</button></form>",
    )
