"""`townhall serve` in a process of its own, as a deployment runs it, for benches and tests.

The server prints ``townhall: serving room 'main' at http://127.0.0.1:PORT`` once it
listens (port 0 in the config: the system picks a free one), so reading that first line
is the wait for it to be ready, and it gives the address.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO


class ServeError(RuntimeError):
    """The server exited or printed something else instead of its address."""


@dataclass
class Served:
    """A running ``townhall serve``: its process and the address it printed."""

    proc: subprocess.Popen[str]
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1) + "/ws"

    def kill(self) -> None:
        """kill -9: nothing of the server's own shutdown runs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=15)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL if it does not exit within ``timeout``."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def serve(tmp: Path, config: str, stderr: Path | None = None) -> Served:
    """Write ``config`` to ``tmp/townhall.toml`` and start the server there (its cwd).

    ``stderr`` is a file for the server's log; without it the log is discarded.
    """
    path = tmp / "townhall.toml"
    path.write_text(config)
    err: IO[str] | int = open(stderr, "w") if stderr else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "townhall.server.ops.cli", "serve", "--config", str(path)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            cwd=tmp,
        )
    finally:
        if not isinstance(err, int):
            err.close()  # the child has its own copy
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "serving room" not in line:
        proc.kill()
        proc.wait()
        where = f"; see {stderr}" if stderr else ""
        raise ServeError(f"server did not start: {line!r}{where}")
    return Served(proc, line.rsplit(" ", 1)[1].strip())
