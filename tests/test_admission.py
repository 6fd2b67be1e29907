"""Who gets a WebSocket, and that every connection ends: Origin, the connection limit, closes.

Real servers on 127.0.0.1; the never-joining clients are raw sockets that complete the
HTTP upgrade and then never read or answer again, as a flood would.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

import msgpack
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed, InvalidStatus

from townhall.plugin.client import RoomClient
from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.limits import close_reason as cut_reason
from townhall.protocol.messages import Error
from townhall.server.app import TownhallServer
from townhall.server.gateway.closing import close_within

from .conftest import TokenMaker, make_settings
from .waiting import eventually


class RawSocket:
    """A client that opens the WebSocket and then neither reads nor writes unless told."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    def send_binary(self, payload: bytes) -> None:
        """One masked binary frame (payloads under 64 KiB)."""
        n = len(payload)
        length = bytes((0x80 | n,)) if n < 126 else bytes((0x80 | 126,)) + n.to_bytes(2, "big")
        mask = os.urandom(4)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(b"\x82" + length + mask + body)

    async def closed_by_server(self, timeout: float) -> bool:
        """Whether the server ends the TCP connection (EOF or reset) within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def close(self) -> None:
        self.writer.transport.abort()


async def open_raw(port: int, origin: str | None = None) -> tuple[int, dict[str, str], RawSocket]:
    """Send an upgrade request; returns the status, the response headers and the socket."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ")[1])
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:] if h)}
    return status, headers, RawSocket(reader, writer)


# ------------------------------------------------------------ Origin


async def test_a_page_on_another_site_may_not_open_the_websocket(
    tmp_path: Path, token: TokenMaker
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        for evil in ("https://evil.example", "null", "http://127.0.0.1.evil.example"):
            with pytest.raises(InvalidStatus) as info:
                await connect(srv.ws_url, origin=evil)  # type: ignore[arg-type]
            assert info.value.response.status_code == 403, evil
        # The server's own pages, and clients that are not browsers, are let in.
        for own in (srv.url, srv.url + "/", srv.url.upper().replace("HTTP", "http")):
            status, _, sock = await open_raw(srv.port, own)
            assert status == 101, own
            sock.close()
        headset = RoomClient(srv.ws_url, token("headset"))
        await headset.connect()
        await headset.close()
        assert srv.metrics.refused == {"origin": 3}


async def test_allowed_origins_setting(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, server={"allowed_origins": "https://townhall.example.com, https://x.example:8443"}
    )
    async with TownhallServer(settings) as srv:
        for ok in ("https://townhall.example.com", "HTTPS://X.example:8443"):
            status, _, sock = await open_raw(srv.port, ok)
            assert status == 101, ok
            sock.close()
        for bad in (srv.url, "https://x.example", "http://townhall.example.com"):
            status, _, sock = await open_raw(srv.port, bad)
            assert status == 403, bad
            sock.close()


# ------------------------------------------------------------ the connection limit


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "2-workers"])
async def test_connections_over_the_limit_get_503_joined_or_not(
    tmp_path: Path, token: TokenMaker, workers: int
) -> None:
    settings = make_settings(
        tmp_path, server={"max_connections": 12, "workers": workers}, limits={"join_timeout_s": 60}
    )
    async with TownhallServer(settings) as srv:
        joined = [RoomClient(srv.ws_url, token(f"j{i}", "spectator")) for i in range(6)]
        for client in joined:
            await client.connect()
        idle = []
        for _ in range(6):
            status, _, sock = await open_raw(srv.port)
            assert status == 101
            idle.append(sock)
        await eventually(lambda: srv.admission.count == 12)
        for _ in range(3):
            status, headers, sock = await open_raw(srv.port)
            assert status == 503
            assert int(headers["retry-after"]) > 0
            sock.close()
        assert srv.metrics.refused["connection_limit"] == 3
        # Freeing a place, joined or not, lets the next one in.
        idle.pop().close()
        await joined.pop().close()
        await eventually(lambda: srv.admission.count == 10)
        status, _, sock = await open_raw(srv.port)
        assert status == 101
        sock.close()
        for s in idle:
            s.close()
        for client in joined:
            await client.close()


# ------------------------------------------------------------ every close ends the connection


def test_close_reasons_are_cut_by_bytes_on_a_character_boundary() -> None:
    assert cut_reason("Ω" * 70) == "Ω" * 61  # two bytes each: 122 of the 123
    for text in ("Ω" * 60, "a" + "Ω" * 80, "€" * 50, "👩\u200d💻" * 20, "x" * 500, "ok"):
        cut = cut_reason(text)
        assert len(cut.encode()) <= 123
        assert text.startswith(cut)
        assert len(text.encode()) <= 123 or len(cut.encode()) > 119


async def test_an_error_echoing_sixty_omegas_still_closes(tmp_path: Path) -> None:
    """The reason echoes the client's input: 60 'Ω' are 120 bytes, too long as it stands."""
    async with TownhallServer(make_settings(tmp_path)) as srv:
        async with connect(srv.ws_url) as ws:
            await ws.send(msgpack.packb([10, 1, 1, "Ω" * 60]))  # a Review before Join
            reply = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
            assert isinstance(reply, Error) and reply.code == ErrorCode.BAD_MESSAGE
            assert "Ω" * 10 in reply.reason
            async with asyncio.timeout(8):
                await ws.wait_closed()
            assert ws.close_code == ErrorCode.BAD_MESSAGE.close_code
            assert ws.close_reason and len(ws.close_reason.encode()) <= 123
        await eventually(lambda: srv.admission.count == 0)


@pytest.mark.parametrize("omega", [False, True], ids=["silent", "omega-echo"])
async def test_never_joining_connections_are_gone_after_the_join_timeout(
    tmp_path: Path, token: TokenMaker, omega: bool
) -> None:
    """300 clients connect and never join (or send an Ω-echoing frame), then never read."""
    # Opening the 300 must take less than the join timeout, so that they all still hold the
    # limit when the 301st comes: one after the other, beside a busy machine, they took
    # more than 3 s. So they open all at once, and the timeout is 6 s.
    settings = make_settings(
        tmp_path, server={"max_connections": 300}, limits={"join_timeout_s": 6.0}
    )
    async with TownhallServer(settings) as srv:
        opened = await asyncio.gather(*(open_raw(srv.port) for _ in range(300)))
        assert [status for status, _, _ in opened] == [101] * 300
        flood = [sock for _, _, sock in opened]
        if omega:
            for sock in flood:
                sock.send_binary(msgpack.packb([10, 1, 1, "Ω" * 60]))
        status, _, extra = await open_raw(srv.port)
        assert status == 503  # they hold the limit while they live...
        extra.close()
        # ...and all are ended by the server: the join timeout, then the close deadline.
        ended = await asyncio.gather(*(s.closed_by_server(15.0) for s in flood))
        assert all(ended), f"{ended.count(False)} of 300 still open"
        await eventually(lambda: srv.admission.count == 0)
        late = RoomClient(srv.ws_url, token("late"))
        await late.connect()
        await late.close()
        for s in flood:
            s.close()
        assert "JOIN_TIMEOUT" in srv.metrics.closes or omega


async def test_a_close_that_cannot_be_sent_ends_the_connection_at_the_deadline() -> None:
    """A client that stopped reading: websockets' close waits to drain for ever; ours aborts."""
    handlers: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(connection: ServerConnection) -> None:
        await handlers.put(connection)
        await connection.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        outcomes = []
        for close in ("websockets", "close_within"):
            status, _, sock = await open_raw(port)
            assert status == 101
            connection = await handlers.get()
            for _ in range(64):  # 4 MiB the client never reads: the write buffer stays full
                connection.protocol.send_binary(bytes(65536))
                connection.send_data()
            started = asyncio.get_running_loop().time()
            if close == "websockets":
                attempt = asyncio.ensure_future(connection.close(4015, "slow"))
                done, _ = await asyncio.wait({attempt}, timeout=2.0)
                outcomes.append(bool(done))
                attempt.cancel()
                connection.transport.abort()
            else:
                await close_within(connection, 4015, "slow", deadline_s=1.0)
                outcomes.append(True)
                assert asyncio.get_running_loop().time() - started < 1.5
                assert await sock.closed_by_server(2.0)
            sock.close()
        assert outcomes == [False, True], "websockets alone would have waited"


async def test_websocket_client_sees_close_after_join_timeout(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, limits={"join_timeout_s": 0.2})
    async with TownhallServer(settings) as srv, connect(srv.ws_url) as ws:
        with pytest.raises(ConnectionClosed):
            while True:
                await ws.recv()
        assert ws.close_code == ErrorCode.JOIN_TIMEOUT.close_code
