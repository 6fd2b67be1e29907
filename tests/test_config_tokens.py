"""Settings (file, environment, docs) and join tokens."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from townhall.protocol.errors import ErrorCode, ProtocolError
from townhall.server.gateway.tokens import issue_token, resolve_secret, verify_token
from townhall.server.ops.config import (
    AuthSettings,
    ConfigError,
    Settings,
    load_settings,
    render_toml,
    settings_table,
    start_seconds,
)

SECRET = "s" * 40


def test_defaults_round_trip_through_rendered_toml(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(render_toml())
    assert load_settings(path, env={}) == Settings()


def test_file_then_environment_override(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text('[server]\nport = 9001\nroom = "a"\n[room]\nfar_refresh_s = 4\n')
    s = load_settings(path, env={"TOWNHALL_SERVER_PORT": "9002", "TOWNHALL_LOG_FORMAT": "text"})
    assert (s.server.port, s.server.room, s.room.far_refresh_s, s.log.format) == (
        9002,
        "a",
        4.0,
        "text",
    )


@pytest.mark.parametrize(
    ("text", "env", "needle"),
    [
        ("[server]\nprot = 1\n", {}, "unknown setting server.prot"),
        ("[srv]\n", {}, "unknown section"),
        ('[server]\nport = "x"\n', {}, "expected int"),
        ("[server\n", {}, "t.toml"),
        ("", {"TOWNHALL_SERVER_PORT": "abc"}, "TOWNHALL_SERVER_PORT"),
        ("[room]\npose_hz = 90\n", {}, "pose_hz"),
        ('[clone]\nguard = "llamaguard"\n', {}, "clone.guard must be none or openai"),
        ('[clone]\nguard = "openai"\n', {}, "clone.guard must be none unless clone.brain = openai"),
        ('[clone]\nbrain = "openai"\nguard_timeout_s = 0\n', {}, "clone.guard_timeout_s"),
        ('[room]\nstarts_at = "tomorrow"\n', {}, r"room.starts_at.*ISO 8601"),
        ('[room]\nstarts_at = "2026-12-06T15:00:00"\n', {}, "with a time zone"),
        ('[room]\nphase = "hold"\n', {}, "room.phase.*doors or live"),
        ("[bus]\nconnect_timeout_s = 0\n", {}, r"bus\.connect_timeout_s must be > 0"),
    ],
)
def test_bad_config_says_where(tmp_path: Path, text: str, env: dict[str, str], needle: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_settings(path, env=env)


def test_every_setting_is_documented_in_readme() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    for key, _default, env, doc in settings_table():
        assert doc
        assert f"`{key}`" in readme, f"README lacks setting {key}"
        assert env in readme


def test_secret_file_is_created_private_and_reused(tmp_path: Path) -> None:
    auth = AuthSettings(secret_file=str(tmp_path / "d" / "secret"))
    first = resolve_secret(auth)
    assert resolve_secret(auth) == first
    mode = stat.S_IMODE(os.stat(auth.secret_file).st_mode)
    assert mode == 0o600


def test_token_round_trip() -> None:
    tok = issue_token(SECRET, user_id="u1", name="Ann", role="attendee", room="main", ttl_s=60)
    ident = verify_token(SECRET, tok, "main")
    assert (ident.user_id, ident.name, ident.role, ident.room) == ("u1", "Ann", "attendee", "main")


@pytest.mark.parametrize(
    ("secret", "room", "later_s", "code"),
    [
        ("x" * 40, "main", None, ErrorCode.AUTH_INVALID),
        (SECRET, "other", None, ErrorCode.WRONG_ROOM),
        (SECRET, "main", 120, ErrorCode.AUTH_EXPIRED),
    ],
)
def test_bad_tokens(secret: str, room: str, later_s: float | None, code: ErrorCode) -> None:
    tok = issue_token(SECRET, user_id="u1", name="Ann", role="attendee", room="main", ttl_s=60)
    now = None if later_s is None else time.time() + later_s
    with pytest.raises(ProtocolError) as info:
        verify_token(secret, tok, room, now=now)
    assert info.value.code is code


def test_really_expired_token_without_explicit_now() -> None:
    tok = issue_token(
        SECRET, user_id="u", name="A", role="spectator", room="main", ttl_s=1, now=time.time() - 10
    )
    with pytest.raises(ProtocolError) as info:
        verify_token(SECRET, tok, "main")
    assert info.value.code is ErrorCode.AUTH_EXPIRED


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "e30.e30.e30"])
def test_garbage_tokens_are_invalid(token: str) -> None:
    with pytest.raises(ProtocolError) as info:
        verify_token(SECRET, token, "main")
    assert info.value.code is ErrorCode.AUTH_INVALID


def test_issue_rejects_unknown_role() -> None:
    with pytest.raises(ValueError, match="role"):
        issue_token(SECRET, user_id="u", name="A", role="pilot", room="main", ttl_s=5)


def test_a_scheduled_start_in_iso_8601_or_unix_seconds() -> None:
    env = {"TOWNHALL_ROOM_STARTS_AT": "2026-12-06T15:00:00+00:00", "TOWNHALL_ROOM_PHASE": "doors"}
    s = load_settings(None, env=env)
    assert start_seconds(s.room.starts_at) == 1796569200 and s.room.phase == "doors"
    assert start_seconds("1796569200") == 1796569200 and start_seconds("") == 0
    assert start_seconds("²") is None  # a digit to Unicode, not a time
