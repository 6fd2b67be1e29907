"""Per-address limits: anonymous guests (a new identity every connection) count by address,
and so do new connections; behind a trusted proxy the address is the one it names.

Real servers on 127.0.0.1; other addresses come in through X-Forwarded-For, which the
default settings trust from loopback only (as a load balancer on the same host would send).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from townhall.plugin.client import RoomClient
from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ack, Ask, Error, Join, Message, Vote, Welcome
from townhall.server.app import TownhallServer
from townhall.server.gateway.addresses import ClientAddresses

from .conftest import TokenMaker, make_settings


@pytest.mark.parametrize(
    ("trusted", "peer", "header", "address"),
    [
        ("", "10.0.0.1", ["1.2.3.4"], "10.0.0.1"),  # nobody trusted: the header is ignored
        ("127.0.0.1", "10.0.0.1", ["1.2.3.4"], "10.0.0.1"),  # a client may not name itself
        ("127.0.0.1", "127.0.0.1", ["1.2.3.4"], "1.2.3.4"),
        ("127.0.0.1", "127.0.0.1", [], "127.0.0.1"),
        ("127.0.0.1,10.0.0.0/8", "127.0.0.1", ["6.6.6.6, 1.2.3.4, 10.1.1.1"], "1.2.3.4"),
        ("127.0.0.1", "127.0.0.1", ["6.6.6.6", "1.2.3.4"], "1.2.3.4"),  # the last header wins
        ("127.0.0.1", "127.0.0.1", ["1.2.3.4, garbage"], "127.0.0.1"),
        ("::1", "::1", ["2001:db8::7"], "2001:db8::7"),
        ("127.0.0.1", "::ffff:127.0.0.1", ["[2001:db8::7]:4711"], "2001:db8::7"),
    ],
)
def test_the_client_address_behind_trusted_proxies(
    trusted: str, peer: str, header: list[str], address: str
) -> None:
    assert ClientAddresses(trusted).of(peer, header) == address


async def guest(url: str, address: str) -> tuple[ClientConnection, list[Message]]:
    """An anonymous spectator whose load balancer says it comes from ``address``."""
    ws = await connect(url, additional_headers={"X-Forwarded-For": address})
    await ws.send(codec.encode(Join(1, 1, "")))
    welcome = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
    assert isinstance(welcome, Welcome), welcome
    return ws, []


async def request(ws: ClientConnection, message: Message) -> Ack | Error:
    return await asyncio.wait_for(_request(ws, message), 20)


async def _request(ws: ClientConnection, message: Message) -> Ack | Error:
    """Send a request and read until its Ack or Error (the ref is the message's)."""
    await ws.send(codec.encode(message))
    while True:
        reply = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
        if isinstance(reply, Ack | Error) and reply.ref == message.ref:  # type: ignore[attr-defined]
            return reply


async def test_guests_reconnecting_from_one_address_share_its_limits(
    tmp_path: Path, token: TokenMaker
) -> None:
    settings = make_settings(tmp_path, qa={"questions_per_minute": 600.0, "votes_per_s": 1000.0})
    async with TownhallServer(settings) as srv:
        ann = RoomClient(srv.ws_url, token("ann", role="spectator"))
        await ann.connect()
        seen: list[Message] = []
        ann.listeners.append(seen.append)
        await ann.send(Ask(1, "What is the plan for the Lisbon office?"))
        while not any(isinstance(m, Ack) for m in seen):
            await ann.sync_clock(1)
        qid = next(m for m in seen if isinstance(m, Ack)).id
        asked = voted = 0
        limit = srv.settings.qa.guest_questions_per_minute
        for n in range(20):  # a guest reconnecting: a new identity each time
            ws, _ = await guest(srv.ws_url, "198.51.100.7")
            asked += isinstance(
                await request(ws, Ask(1, f"Question number {n} about topic{n}")), Ack
            )
            reply = await request(ws, Vote(2, qid))
            voted += isinstance(reply, Ack)
            if isinstance(reply, Error):
                assert reply.code == ErrorCode.NOT_ALLOWED and "address" in reply.reason
            await ws.close()
        assert asked == limit
        assert voted == srv.settings.qa.guest_votes_per_question
        ws, _ = await guest(srv.ws_url, "203.0.113.9")  # a guest somewhere else is not affected
        assert isinstance(await request(ws, Vote(2, qid)), Ack)
        assert isinstance(await request(ws, Ask(3, "When does the new canteen open?")), Ack)
        await ws.close()
        assert srv.authority.qa.questions[qid].votes == 1 + 1 + 1  # ann, one guest each address
        await ann.close()


async def test_new_connections_per_address_get_429_over_the_limit(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, limits={"connects_per_address_per_min": 5.0})
    async with TownhallServer(settings) as srv:
        for _ in range(5):
            ws, _ = await guest(srv.ws_url, "198.51.100.7")
            await ws.close()
        with pytest.raises(InvalidStatus) as info:
            await guest(srv.ws_url, "198.51.100.7")
        assert info.value.response.status_code == 429
        assert info.value.response.headers["Retry-After"]
        ws, _ = await guest(srv.ws_url, "198.51.100.8")  # another address still gets in
        await ws.close()
        assert srv.metrics.refused["address_rate"] == 1


async def test_without_trusted_proxies_the_header_counts_for_nothing(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        server={"trusted_proxies": ""},
        limits={"connects_per_address_per_min": 3.0},
    )
    async with TownhallServer(settings) as srv:
        for n in range(3):
            ws, _ = await guest(srv.ws_url, f"198.51.100.{n}")  # all really 127.0.0.1
            await ws.close()
        with pytest.raises(InvalidStatus) as info:
            await guest(srv.ws_url, "198.51.100.99")
        assert info.value.response.status_code == 429
