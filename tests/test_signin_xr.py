"""`townhall xr --sign-in`: the headset signs in with the device grant against the real
local OpenID provider, shows the code on the stage panel and on the terminal, and joins
with the room token once the code is approved (the test runtime, Xvfb and Mesa, as in
test_xr_render)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import urllib.parse
import urllib.request
from pathlib import Path

from townhall.server.app import TownhallServer

from .conftest import make_settings
from .oidc_provider import LocalProvider
from .test_signin import auth, built_pages, provider  # noqa: F401  (fixtures)
from .test_xr_render import save, shown_after
from .waiting import eventually
from .xr_helpers import display_fixture, fresh_runtime, runtime_fixture  # noqa: F401 (fixtures)
from .xr_runtime import TestRuntime

CODE_LINE = re.compile(rb"To sign in, open (\S+) and enter the code (\S+)")


async def test_headset_shows_the_code_and_joins_once_approved(
    display: str,
    runtime: TestRuntime,
    provider: LocalProvider,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"}
    settings = make_settings(tmp_path)
    settings = make_settings(
        tmp_path, auth={**auth(provider.issuer), "secret_file": settings.auth.secret_file}
    )
    async with TownhallServer(settings) as srv:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "townhall.server.ops.cli", "xr", "--sign-in",
            "--url", srv.ws_url,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            found = CODE_LINE.search(line)
            assert found, line
            uri, code = found.group(1).decode(), found.group(2).decode()
            assert uri == provider.issuer + "/device"
            # The code is in the headset: the stage panel shows it before anyone approves.
            seen = await shown_after(runtime, 2, timeout=60)
            save("xr-signin-code.png", seen.eyes[0])
            assert not srv.room.members
            form = urllib.parse.urlencode(
                {"user_code": code, "username": "bob", "password": "bob-pw"}
            ).encode()
            await asyncio.to_thread(urllib.request.urlopen, uri, form, 10)
            await eventually(
                lambda: any(m.identity.name == "Bob Employee" for m in srv.room.members.values()),
                60,
                "the signed-in headset in the room",
            )
            runtime.request_exit()
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 30)
            assert b"\nframes " in stdout, stdout
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()[-2000:]


async def test_desktop_mirror_signs_in_on_the_terminal(
    display: str,
    provider: LocalProvider,  # noqa: F811
    tmp_path: Path,
) -> None:
    env = {**os.environ, "DISPLAY": display, "LIBGL_ALWAYS_SOFTWARE": "1"}
    settings = make_settings(tmp_path)
    settings = make_settings(
        tmp_path, auth={**auth(provider.issuer), "secret_file": settings.auth.secret_file}
    )
    async with TownhallServer(settings) as srv:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "townhall.server.ops.cli", "xr", "--window", "--sign-in",
            "--frames", "3", "--url", srv.ws_url,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            found = CODE_LINE.search(line)
            assert found, line
            form = urllib.parse.urlencode(
                {"user_code": found.group(2).decode(), "username": "alice", "password": "alice-pw"}
            ).encode()
            await asyncio.to_thread(urllib.request.urlopen, found.group(1).decode(), form, 10)
            stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, stderr.decode()[-2000:]
        assert b"frames 3 " in stdout, stdout
