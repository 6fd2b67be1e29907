"""A store whose writer thread died on a fault (not a database error) fails loudly and
safely: the next Ask gets a STORE error instead of waiting forever, nothing unstored shows,
and /healthz says the room is unhealthy. A real server, a real client, a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from websockets.asyncio.client import ClientConnection, connect

from townhall.protocol import codec
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ack, Ask, Error, Join, Message, Vote, Welcome
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, http_get, make_settings


async def request(ws: ClientConnection, message: Message) -> Ack | Error:
    """Send a request and read until its Ack or Error: the reply, however long it takes
    (the guard of 20 s only turns a hang into a failure)."""
    await ws.send(codec.encode(message))

    async def reply() -> Ack | Error:
        while True:
            got = codec.decode_server(await ws.recv())  # type: ignore[arg-type]
            if isinstance(got, Ack | Error) and got.ref == message.ref:  # type: ignore[attr-defined]
                return got

    return await asyncio.wait_for(reply(), 20)


async def test_a_dead_writer_answers_the_next_ask_with_a_store_error_and_healthz_says_so(
    tmp_path: Path, token: TokenMaker, caplog: pytest.LogCaptureFixture
) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        ws = await connect(srv.ws_url)
        await ws.send(codec.encode(Join(1, 1, token("ann", role="spectator"))))
        assert isinstance(codec.decode_server(await ws.recv()), Welcome)  # type: ignore[arg-type]
        first = await request(ws, Ask(1, "What is the plan for the Lisbon office?"))
        assert isinstance(first, Ack)
        status, _, body = await asyncio.to_thread(http_get, srv.url + "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"

        def broken(batch: object) -> None:
            raise KeyError("a fault that is no database error")

        srv.store._writer.commit = broken  # type: ignore[attr-defined]
        for ref, text in [(2, "Will the canteen reopen this year?"), (3, "When is the party?")]:
            reply = await request(ws, Ask(ref, text))
            assert isinstance(reply, Error), reply
            assert reply.code == ErrorCode.STORE and reply.reason == "could not store that"
        assert set(srv.authority.qa.questions) == {first.id}  # nothing unstored on the board
        other = await connect(srv.ws_url)
        await other.send(codec.encode(Join(1, 1, token("bob", role="spectator"))))
        assert isinstance(codec.decode_server(await other.recv()), Welcome)  # type: ignore[arg-type]
        vote = await request(other, Vote(5, first.id))
        assert isinstance(vote, Error) and vote.code == ErrorCode.STORE
        assert srv.authority.qa.questions[first.id].votes == 1  # bob's vote taken back

        status, _, body = await asyncio.to_thread(http_get, srv.url + "/healthz")
        health = json.loads(body)
        assert status == 503 and health["status"] == "unhealthy"
        assert "KeyError" in health["store"]
        failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert [r.getMessage() for r in failures] == [  # once, not once per refused write
            "store writer stopped; every write fails from now on"
        ]
        await other.close()
        await ws.close()
