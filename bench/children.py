"""A bench's child processes, each in a process group of its own, all stopped however it ends.

A bench that starts servers and load generators must not leave them running when it fails
half-way, is interrupted (Ctrl-C) or is stopped (``timeout`` sends SIGTERM): the next run
would share the machine with them, and the figures with it. So every child starts in a
session of its own (Ctrl-C at the terminal reaches the bench alone, which then stops them
in order), is stopped as a group (a server's fan-out workers with it), and SIGTERM or SIGHUP
to the bench becomes ``SystemExit``, so its ``finally`` blocks run as on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Any

_started: list[subprocess.Popen[Any]] = []


def popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen`` in a new session (its own process group), remembered."""
    proc: subprocess.Popen[Any] = subprocess.Popen(cmd, start_new_session=True, **kwargs)
    _started.append(proc)
    return proc


def stop(proc: subprocess.Popen[Any], grace_s: float = 20.0) -> None:
    """SIGTERM to the process's group, SIGKILL to it after ``grace_s``; then SIGKILL to
    whatever of the group is left (a worker whose parent exited without it)."""
    if proc.poll() is None:
        _signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(timeout=10)
    _signal_group(proc, signal.SIGKILL)
    with contextlib.suppress(ValueError):
        _started.remove(proc)


def stop_all() -> None:
    """Every child still remembered, the last started first."""
    for proc in reversed(list(_started)):
        stop(proc, grace_s=10.0)


def _signal_group(proc: subprocess.Popen[Any], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # its own session: the group id is its pid


def exit_on_termination() -> None:
    """SIGTERM and SIGHUP raise ``SystemExit`` in the main thread, so cleanup runs."""

    def leave(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)
