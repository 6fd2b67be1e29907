"""The `townhall` command as a user runs it: help, tokens, scene check, config, serve."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest

from townhall.scenes import default_scene_path
from townhall.server.gateway.tokens import verify_token
from townhall.server.ops.config import Settings, load_settings

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
    result = run("token", "--role", "moderator", "--name", "Mo", "--user", "m1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    secret = (tmp_path / ".townhall" / "secret").read_text().strip()
    ident = verify_token(secret, result.stdout.strip(), "main")
    assert (ident.user_id, ident.name, ident.role) == ("m1", "Mo", "moderator")


def test_token_rejects_bad_input(tmp_path: Path) -> None:
    assert run("token", "--role", "pilot", "--name", "x", cwd=tmp_path).returncode == 2
    result = run("token", "--role", "attendee", "--name", "x" * 65, cwd=tmp_path)
    assert result.returncode == 2 and "name" in result.stderr


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
    assert result.returncode == 2 and "configuration error" in result.stderr


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
