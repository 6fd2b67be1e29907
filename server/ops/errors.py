"""Ordinary mistakes as one line: what is wrong and where, for ``townhall: ...`` and exit 2.

A bad scene, persona or setting, a port already taken, a token the server refuses: the
person at the terminal needs the file, line or setting to fix, not a 40-line traceback
(which ``--debug`` still shows). Anything not listed here is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import socket
import sys
from pathlib import Path


class UsageError(Exception):
    """A mistake the person running ``townhall`` can fix; its text is the whole message."""


class ListenError(UsageError):
    """The server cannot listen where it was told to (port taken, no such address)."""


def listen_error(host: str, port: int, exc: OSError) -> ListenError:
    """Why ``host:port`` cannot be listened on, with what to do about it."""
    where = f"cannot listen on {host}:{port}"
    if isinstance(exc, socket.gaierror):
        return ListenError(f"{where}: no such host {host!r} (server.host / --host)")
    if exc.errno == errno.EADDRINUSE:
        return ListenError(
            f"{where}: the port is already in use (another townhall running?); "
            "choose another with --port or server.port (0 picks a free one)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return ListenError(f"{where}: no network interface has that address (--host)")
    if exc.errno == errno.EACCES:
        return ListenError(f"{where}: permission denied (ports below 1024 need privileges)")
    return ListenError(f"{where}: {exc.strerror or exc}")


# Exceptions that are ordinary mistakes, by module and name: looked up among the modules
# already imported (an exception of a module never imported cannot have been raised), so
# explaining an error imports nothing, OpenXR or aiortc least of all.
_PLAIN = (
    ("townhall.server.ops.config", "ConfigError", ""),
    ("townhall.server.store.base", "StoreError", ""),
    ("townhall.server.gateway.tokens", "SecretMissing", ""),
    ("townhall.server.rtc.policy", "PolicyError", ""),
    ("townhall.plugin.client", "CannotReach", ""),
    ("townhall.plugin.client", "ClockNotSynced", ""),
    ("townhall.plugin.client", "JoinRejected", "the server refused to let you in: "),
    ("townhall.plugin.xr.graphics", "GraphicsError", ""),
    ("townhall.plugin.xr.session", "HeadsetError", ""),
    ("townhall.plugin.xr.model", "ModelError", "the stage model: "),
    ("townhall.plugin.signin", "SignInFailed", ""),
    ("townhall.plugin.replay", "RecordingUnavailable", ""),
)


def _of(exc: BaseException, module: str, name: str) -> bool:
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(exc, cls)


def one_line(exc: BaseException) -> str | None:
    """The message for an ordinary mistake, or None for a bug (which keeps its traceback)."""
    if isinstance(exc, UsageError):
        return str(exc)
    if _of(exc, "townhall.scenes.errors", "SceneError"):
        return _scene(exc)
    if _of(exc, "townhall.server.clone.persona", "PersonaError"):
        return _persona(exc)
    for module, name, prefix in _PLAIN:
        if _of(exc, module, name):
            return prefix + str(exc)
    return None


def _scene(exc: BaseException) -> str:
    from townhall.scenes.errors import SceneError
    from townhall.scenes.jsondoc import line_of

    assert isinstance(exc, SceneError)
    line = exc.line or line_of(exc.file, exc.pointer)
    where = f"{exc.file}:{line}" if line else exc.file
    at = f" {exc.pointer}:" if exc.pointer else ""
    return f"{where}:{at} {exc.reason}"


def _persona(exc: BaseException) -> str:
    from townhall.server.clone.persona import PersonaError

    assert isinstance(exc, PersonaError)
    directory = exc.directory or "persona"
    if not exc.issues:
        return f"persona {directory}: invalid"
    first = exc.issues[0]
    more = len(exc.issues) - 1
    tail = f" (and {more} more: townhall persona check {directory})" if more else ""
    field = f" {first.field}:" if first.field not in ("", "-") else ""
    return f"{Path(directory) / first.file}:{field} {first.reason}{tail}"
