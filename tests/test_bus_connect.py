"""Connecting to the bus: a refusal by reset (how NATS drops wrong credentials) says why,
however the time runs out, against a real TCP server on 127.0.0.1 that resets every
connection it accepts."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from townhall.server.fanout import bus
from townhall.server.ops.config import BusSettings


@pytest.fixture
async def resetting() -> AsyncIterator[str]:
    """A server that answers every connection with a TCP reset (SO_LINGER 0, then close)."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock: socket.socket = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"nats://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_reset_with_credentials_set_names_them_as_the_likely_cause(
    resetting: str,
) -> None:
    settings = BusSettings(
        url=resetting, user="edge", password="pw-never-printed", connect_timeout_s=1.0
    )
    with pytest.raises(bus.BusError) as refused:
        await bus.connect(settings, "test")
    message = str(refused.value)
    assert message.startswith(f"cannot reach NATS at {resetting}: "), message
    assert "reset" in message.lower(), message
    assert "wrong bus.user/bus.password" in message, message
    assert "pw-never-printed" not in message


async def test_a_reset_without_credentials_is_only_the_reset(resetting: str) -> None:
    settings = BusSettings(url=resetting, connect_timeout_s=1.0)
    with pytest.raises(bus.BusError) as refused:
        await bus.connect(settings, "test")
    message = str(refused.value)
    assert "reset" in message.lower() and "bus.user" not in message, message


async def _connects_for_ever_losing_one_cancel() -> None:
    """nats.py's first connect with reconnects on, as Python 3.11 runs it: it retries for
    ever, and a cancel that meets a refused TCP connect in its inner ``wait_for`` comes out
    as the refusal, which it catches and retries (so a plain ``wait_for`` around it never
    returns). Seen once as a test hung for 180 s on a TLS bus that refused."""
    lost = False
    while True:
        try:
            await asyncio.Event().wait()  # an attempt that never connects
        except asyncio.CancelledError:
            if lost:
                raise
            lost = True  # the cancel became the refusal: caught, and tried again


async def test_a_first_connect_that_loses_a_cancel_still_ends_at_the_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bus.nats, "connect", lambda **_: _connects_for_ever_losing_one_cancel())
    settings = BusSettings(url="nats://127.0.0.1:1", connect_timeout_s=0.3)
    attempt = asyncio.ensure_future(bus.connect(settings, "test"))
    done, _ = await asyncio.wait({attempt}, timeout=10)
    assert done, "bus.connect did not give up"
    with pytest.raises(bus.BusError, match=r"cannot reach NATS at nats://127\.0\.0\.1:1: "):
        attempt.result()
