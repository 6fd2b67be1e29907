"""The `townhall` command as a user runs it: help, tokens, scene check, config, serve."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from townhall.scenes import default_scene_path
from townhall.server.app import TownhallServer
from townhall.server.gateway.tokens import verify_token
from townhall.server.ops.config import Settings, load_settings

from .conftest import TokenMaker, make_settings

CLI = [sys.executable, "-m", "townhall.server.ops.cli"]


def run(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["token"],
        ["scene", "check"],
        ["bots"],
        ["demo"],
        ["config"],
        ["persona", "check"],
        ["transcript"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0
    assert "usage: townhall" in result.stdout


def test_token_is_signed_with_the_secret_file(tmp_path: Path) -> None:
    (tmp_path / ".townhall").mkdir()
    (tmp_path / ".townhall" / "secret").write_text("s3cret-of-the-server-0123456789abcdef\n")
    result = run("token", "--role", "moderator", "--name", "Mo", "--user", "m1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ident = verify_token("s3cret-of-the-server-0123456789abcdef", result.stdout.strip(), "main")
    assert (ident.user_id, ident.name, ident.role) == ("m1", "Mo", "moderator")


def test_token_rejects_bad_input(tmp_path: Path) -> None:
    env = {**os.environ, "TOWNHALL_AUTH_SECRET": "s3cret"}
    assert run("token", "--role", "pilot", "--name", "x", cwd=tmp_path, env=env).returncode == 2
    result = run("token", "--role", "attendee", "--name", "x" * 65, cwd=tmp_path, env=env)
    assert result.returncode == 2 and "name" in result.stderr


def test_token_finds_the_servers_secret_or_refuses(tmp_path: Path) -> None:
    hall, elsewhere = tmp_path / "hall", tmp_path / "elsewhere"
    (hall / "notes").mkdir(parents=True)
    elsewhere.mkdir()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0"], cwd=hall, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert "serving room" in proc.stdout.readline()
        secret = (hall / ".townhall" / "secret").read_text().strip()
        ask = ("token", "--role", "spectator", "--name", "Sam")
        # From inside the server's directory: its secret.
        result = run(*ask, cwd=hall / "notes")
        assert result.returncode == 0, result.stderr
        assert verify_token(secret, result.stdout.strip(), "main").name == "Sam"
        # From elsewhere: no new secret (its links would fail), but how to point at it.
        result = run(*ask, cwd=elsewhere)
        message = one_line(result)
        assert f"no secret at {elsewhere}/.townhall/secret" in message
        assert "TOWNHALL_AUTH_SECRET_FILE" in message
        assert not (elsewhere / ".townhall").exists()
        env = {**os.environ, "TOWNHALL_AUTH_SECRET_FILE": str(hall / ".townhall" / "secret")}
        result = run(*ask, cwd=elsewhere, env=env)
        assert verify_token(secret, result.stdout.strip(), "main").name == "Sam"
    finally:
        proc.terminate()
        proc.wait(30)


def test_config_does_not_print_secrets(tmp_path: Path) -> None:
    secrets = {
        "TOWNHALL_AUTH_SECRET": "hmac-s3cret-value",
        "TOWNHALL_CLONE_OPENAI_API_KEY": "sk-live-key-1234",
        "TOWNHALL_RTC_TURN_PASSWORD": "turn-pass-5678",
        "TOWNHALL_RTC_TRANSCRIPTION_API_KEY": "sk-whisper-9012",
    }
    result = run("config", env={**os.environ, **secrets})
    assert result.returncode == 0, result.stderr
    for value in secrets.values():
        assert value not in result.stdout
    assert result.stdout.count("(set, not shown)") == len(secrets)
    assert "# secret = (set, not shown)" in result.stdout
    # What is printed still loads, with the secrets left unset.
    (tmp_path / "c.toml").write_text(result.stdout)
    assert load_settings(tmp_path / "c.toml", env={}).auth.secret == ""


def test_scene_check(tmp_path: Path) -> None:
    good = run("scene", "check", str(default_scene_path()))
    assert good.returncode == 0 and "seats" in good.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "townhall.scene/1", "name": 3}')
    result = run("scene", "check", str(bad))
    assert result.returncode == 1
    assert "bad.json" in result.stderr and "/name" in result.stderr


def test_config_prints_loadable_defaults(tmp_path: Path) -> None:
    result = run("config")
    assert result.returncode == 0
    path = tmp_path / "c.toml"
    path.write_text(result.stdout)
    tomllib.loads(result.stdout)
    assert load_settings(path, env={}) == Settings()


def test_config_error_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[server]\nport = 'x'\n")
    result = run("token", "--role", "attendee", "--name", "x", "--config", str(path))
    assert one_line(result) == f"townhall: {path}:2: server.port: expected int, got 'x'"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[server]\nhost = 'x'\n\n[qa]\nmode = 'all'\n", "c.toml:5: qa.mode must be auto or"),
        ("[room]\ntick_hz = 500\n", "c.toml:2: room.tick_hz must be 1..100, not 500"),
        ("[server]\nprot = 1\n", "c.toml:2: unknown setting server.prot"),
        ("[rtc]\nallowed_networks = '::1/128,lan'\n", "c.toml:2: rtc.allowed_networks has 'lan'"),
        ("[sever]\nport = 1\n", "c.toml:1: unknown section [sever]"),
    ],
)  # fmt: skip
def test_a_wrong_setting_names_the_setting_and_the_file(
    tmp_path: Path, toml: str, expected: str
) -> None:
    (tmp_path / "c.toml").write_text(toml)
    result = run("serve", "--config", "c.toml", cwd=tmp_path)
    assert one_line(result).startswith(f"townhall: {expected}")


def test_a_wrong_environment_variable_or_option_is_named(tmp_path: Path) -> None:
    env = {**os.environ, "TOWNHALL_CLONE_FPS": "90"}
    result = run("serve", cwd=tmp_path, env=env)
    assert (
        one_line(result)
        == "townhall: environment TOWNHALL_CLONE_FPS: clone.fps must be 30..60, not 90"
    )
    result = run("serve", "--port", "70000", cwd=tmp_path)
    assert one_line(result) == "townhall: --port: server.port must be 0..65535, not 70000"


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """An ordinary mistake: exit 2 and one line on stderr, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-2000:]
    assert lines[0].startswith("townhall: ")
    return lines[0]


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_serve_with_a_bad_scene_says_where_in_one_line(tmp_path: Path) -> None:
    text = default_scene_path().read_text().replace('"rows": 24', '"rows": 0', 1)
    (tmp_path / "hall.json").write_text(text)
    line = 1 + text[: text.index('"rows": 0')].count("\n")
    result = run("serve", "--scene", "hall.json", "--port", "0", cwd=tmp_path)
    assert one_line(result) == (
        f"townhall: hall.json:{line}: /sections/0/layout/rows: must be >= 1, got 0"
    )
    (tmp_path / "broken.json").write_text('{\n  "format": "townhall.scene/1",\n  "name": }\n')
    result = run("serve", "--scene", "broken.json", "--port", "0", cwd=tmp_path)
    assert one_line(result).startswith("townhall: broken.json:3: invalid JSON at line 3")


def test_serve_with_a_bad_persona_says_which_file(tmp_path: Path) -> None:
    (tmp_path / "leader").mkdir()
    (tmp_path / "leader" / "persona.toml").write_text("[persona]\nname = 3\n")
    env = {**os.environ, "TOWNHALL_CLONE_PERSONA": "leader"}
    result = run("serve", "--port", "0", cwd=tmp_path, env=env)
    message = one_line(result)
    assert message.startswith("townhall: leader/persona.toml: persona.name: must be a string")
    assert message.endswith("more: townhall persona check leader)")


def test_serve_and_demo_on_a_port_in_use(tmp_path: Path, taken_port: int) -> None:
    for command in (["serve"], ["demo", "--bots", "0", "--seconds", "1"]):
        result = run(*command, "--port", str(taken_port), cwd=tmp_path)
        assert one_line(result).startswith(
            f"townhall: cannot listen on 127.0.0.1:{taken_port}: the port is already in use"
        )


def test_serve_on_an_address_this_machine_does_not_have(tmp_path: Path) -> None:
    result = run("serve", "--host", "203.0.113.77", "--port", "0", cwd=tmp_path)  # TEST-NET-3
    assert one_line(result) == (
        "townhall: cannot listen on 203.0.113.77:0: no network interface has that address (--host)"
    )


def test_debug_shows_the_traceback(tmp_path: Path, taken_port: int) -> None:
    for args in (["--debug", "serve"], ["serve", "--debug"]):
        result = run(*args, "--port", str(taken_port), cwd=tmp_path)
        assert result.returncode != 0
        assert "Traceback" in result.stderr and "ListenError" in result.stderr


async def test_xr_with_a_bad_token_no_server_or_no_display(
    tmp_path: Path, token: TokenMaker
) -> None:
    async def xr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        proc = await asyncio.create_subprocess_exec(
            *CLI, "xr", *args, env=env, cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode is not None
        return subprocess.CompletedProcess(args, proc.returncode, out.decode(), err.decode())

    no_display = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    no_runtime = {**no_display, "XR_RUNTIME_JSON": str(tmp_path / "none.json")}
    async with TownhallServer(make_settings(tmp_path)) as srv:
        good = token("x1", role="spectator", name="Xi")
        result = await xr("--window", "--url", srv.ws_url, "--token", "nonsense", env=no_display)
        assert one_line(result).startswith(
            "townhall: the server refused to let you in: AUTH_INVALID: token rejected"
        )
        result = await xr("--window", "--url", srv.ws_url, "--token", good, env=no_display)
        assert one_line(result) == (
            "townhall: cannot open a window: no display (DISPLAY is not set; "
            "run on a desktop, or under Xvfb)"
        )
        result = await xr("--url", srv.ws_url, "--token", good, env=no_runtime)
        assert one_line(result).startswith("townhall: no OpenXR runtime:")
    result = await xr("--window", "--url", srv.ws_url, "--token", good, env=no_display)
    assert one_line(result) == (
        f"townhall: cannot reach {srv.ws_url}: "
        "connection refused (is the server running, on that port?)"
    )


def test_serve_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "TOWNHALL_LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "serving room 'main' at http://127.0.0.1:" in line, line
        url = line.rsplit(" ", 1)[1].strip()
        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
            assert json.load(resp)["status"] == "ok"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        logs = [json.loads(x) for x in proc.stderr.read().splitlines() if x.startswith("{")]  # type: ignore[union-attr]
        assert any(entry["event"] == "serving" for entry in logs)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_persona_check(tmp_path: Path) -> None:
    from townhall.server.clone.persona import sample_persona_path

    good = run("persona", "check", str(sample_persona_path()))
    assert good.returncode == 0 and "approved statements" in good.stdout
    (tmp_path / "persona.toml").write_text("[persona]\nname = 3\n")
    bad = run("persona", "check", str(tmp_path))
    assert bad.returncode == 1 and "persona.toml" in bad.stderr
