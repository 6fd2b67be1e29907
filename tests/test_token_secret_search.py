"""Where ``townhall token`` looks for the server's secret (``gateway/tokens.py``).

Upwards from the working directory, as far as a secret found can be the user's own: not
through a world-writable directory (a shared /tmp, where anyone could have left one), not
above the user's home.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from townhall.server.gateway.tokens import SecretMissing, resolve_secret
from townhall.server.ops.config import AuthSettings

ASK = AuthSettings(secret="", secret_file=".townhall/secret")


def plant(directory: Path, value: str) -> None:
    (directory / ".townhall").mkdir(parents=True)
    (directory / ".townhall" / "secret").write_text(value + "\n")


def test_a_parent_directorys_secret_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    plant(tmp_path / "hall", "the-halls")
    (tmp_path / "hall" / "notes" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "hall" / "notes" / "deep")
    assert resolve_secret(ASK, create=False) == "the-halls"


def test_a_secret_in_or_above_a_world_writable_directory_is_not_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    shared = tmp_path / "shared"
    plant(shared, "someone-elses")
    (shared / "project").mkdir()
    shared.chmod(0o1777)  # like /tmp
    monkeypatch.chdir(shared / "project")
    with pytest.raises(SecretMissing, match="TOWNHALL_AUTH_SECRET_FILE"):
        resolve_secret(ASK, create=False)
    # The directory one works in is one's own choice: its secret is taken, shared or not.
    monkeypatch.chdir(shared)
    assert resolve_secret(ASK, create=False) == "someone-elses"


def test_nothing_above_the_home_directory_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plant(tmp_path, "above-home")
    home = tmp_path / "home" / "sam"
    (home / "work").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(home / "work")
    with pytest.raises(SecretMissing):
        resolve_secret(ASK, create=False)
    plant(home, "sams")
    assert resolve_secret(ASK, create=False) == "sams"
