"""A nats-server of a test's own (JetStream on, a store folder of its own, a free port).

The shared server on 127.0.0.1:4222 serves every test at once; a test that restarts NATS,
or sets the lease bucket's TTL, needs one nobody else uses. ``restart`` stops it and
starts it again on the same port and store, as an operator's restart would.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats

from .waiting import eventually

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class NatsServer:
    """``extra``: more of nats-server's configuration (users, TLS); ``options``: what a
    client then needs to connect (``user``/``password``, ``tls``), to see it answer."""

    def __init__(self, folder: Path, extra: str = "", **options: object) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.conf = folder / "nats.conf"
        self.conf.write_text(
            f'listen: 127.0.0.1:{self.port}\njetstream {{ store_dir: "{folder / "js"}" }}\n' + extra
        )
        self.options = options
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            NATS_SERVER, "-c", str(self.conf),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        process = self.process

        async def answers() -> bool:
            assert process.returncode is None, "nats-server exited"
            return await self._answers()

        await eventually(answers, 20, "nats-server to answer")

    async def _answers(self) -> bool:
        try:
            nc = await nats.connect(
                self.url,
                connect_timeout=1,
                allow_reconnect=False,
                max_reconnect_attempts=0,
                # A refused first attempt (not listening yet) otherwise sleeps the client's
                # default 2 s before it gives up: the poll is paced by eventually() instead.
                reconnect_time_wait=0,
                **self.options,  # type: ignore[arg-type]
            )
        except Exception:
            return False
        try:
            await nc.jetstream().account_info()  # JetStream is up, not just the port
        except Exception:
            return False
        finally:
            await nc.close()
        return True

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@asynccontextmanager
async def nats_server(folder: Path) -> AsyncIterator[NatsServer]:
    server = NatsServer(folder)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
