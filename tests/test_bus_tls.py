"""The bus over TLS: a nats-server that requires TLS and verifies its clients' certificates.

A company runs NATS across hosts with TLS (README, "Past one machine"). trustme makes a
throwaway CA, a certificate for 127.0.0.1 for the server and one for the townhall processes;
the authority and its edge connect with ``bus.tls_ca``/``tls_cert``/``tls_key`` and serve a
client end to end; without the CA, or without a client certificate, they stop with one line.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import trustme
from nats.aio.msg import Msg

from townhall.plugin.client import RoomClient
from townhall.protocol.messages import Ack, Ask, Message
from townhall.server.fanout import bus
from townhall.server.ops.config import BusSettings, ConfigError, load_settings

from .conftest import SECRET, TokenMaker
from .natsserver import NatsServer
from .test_bus_edges import health, start, stop
from .waiting import eventually


@dataclass
class TlsBus:
    url: str
    ca: Path
    cert: Path
    key: Path

    def files(self) -> tuple[Path, Path, Path]:
        return self.ca, self.cert, self.key

    def settings(self, **changes: str) -> BusSettings:
        files = {"tls_ca": str(self.ca), "tls_cert": str(self.cert), "tls_key": str(self.key)}
        return BusSettings(url=self.url, **{**files, **changes})


@pytest.fixture
async def tls_bus(tmp_path: Path) -> AsyncIterator[TlsBus]:
    """A nats-server of this test's own: JetStream, TLS required, client certificates verified."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1")
    client_cert = ca.issue_cert("townhall-edge@example.com")
    files = {
        "ca": tmp_path / "ca.pem",
        "server": tmp_path / "server.pem",
        "server_key": tmp_path / "server.key",
        "client": tmp_path / "client.pem",
        "client_key": tmp_path / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    server_cert.private_key_pem.write_to_path(str(files["server_key"]))
    client_cert.private_key_pem.write_to_path(str(files["client_key"]))
    with files["server"].open("wb") as out:
        for blob in server_cert.cert_chain_pems:
            out.write(blob.bytes())
    with files["client"].open("wb") as out:
        for blob in client_cert.cert_chain_pems:
            out.write(blob.bytes())
    tls = (
        f'tls {{ cert_file: "{files["server"]}", key_file: "{files["server_key"]}", '
        f'ca_file: "{files["ca"]}", verify: true, timeout: 5 }}\n'
    )
    folder = tmp_path / "nats"
    folder.mkdir()
    ca_only = TlsBus("", files["ca"], files["client"], files["client_key"])
    server = NatsServer(folder, tls, tls=bus.tls_context(ca_only.settings()))
    found = TlsBus(f"tls://127.0.0.1:{server.port}", *ca_only.files())
    try:
        await server.start()
        yield found
    finally:
        await server.stop()


async def test_the_bus_connects_over_tls_and_carries_messages(tls_bus: TlsBus) -> None:
    nc = await bus.connect(tls_bus.settings(), "tls-test")
    try:
        assert nc.connected_url is not None and nc.connected_url.scheme == "tls"
        got: list[bytes] = []

        async def received(message: Msg) -> None:
            got.append(message.data)

        sub = await nc.subscribe("tls.check", cb=received)
        await nc.publish("tls.check", b"over tls")
        await eventually(lambda: got == [b"over tls"], 10, "the message back over TLS")
        await sub.unsubscribe()
    finally:
        await nc.close()


async def test_an_unknown_ca_or_a_missing_client_certificate_is_one_clear_line(
    tls_bus: TlsBus,
) -> None:
    # Refused on every attempt: the client retries until bus.connect_timeout_s, then stops
    # with the reason (2 s here rather than the default 10: the same line, sooner).
    short = {"connect_timeout_s": 2.0}
    system_cas = replace(tls_bus.settings(tls_ca=""), **short)  # the CA is in no system store
    with pytest.raises(bus.BusError, match=r"bus\.tls_ca names the CA") as unknown:
        await bus.connect(system_cas, "tls-test")
    assert "\n" not in str(unknown.value) and "CERTIFICATE_VERIFY_FAILED" in str(unknown.value)
    anonymous = replace(tls_bus.settings(tls_cert="", tls_key=""), **short)
    with pytest.raises(bus.BusError, match=f"cannot reach NATS at {tls_bus.url}"):
        await bus.connect(anonymous, "tls-test")


def test_tls_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bus\.tls_cert and bus\.tls_key are set together"):
        load_settings(None, env={"TOWNHALL_BUS_TLS_CERT": str(tmp_path)})
    missing = str(tmp_path / "nope.pem")
    with pytest.raises(ConfigError, match=r"bus\.tls_ca must name an existing PEM file"):
        load_settings(None, env={"TOWNHALL_BUS_TLS_CA": missing})
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    settings = load_settings(None, env={"TOWNHALL_BUS_TLS_CA": str(not_pem)})
    with pytest.raises(bus.BusError, match="cannot use the bus's TLS files"):
        bus.tls_context(settings.bus)
    assert bus.tls_context(BusSettings()) is None  # nats:// and no files: plain TCP
    context = bus.tls_context(BusSettings(url="tls://127.0.0.1:4222"))
    assert context is not None and context.verify_mode == ssl.CERT_REQUIRED


async def test_an_authority_and_an_edge_serve_a_room_over_a_tls_bus(
    tls_bus: TlsBus, tmp_path: Path, token: TokenMaker
) -> None:
    room = f"t{uuid.uuid4().hex[:10]}"
    config = tmp_path / "townhall.toml"
    config.write_text(
        f'[server]\nroom = "{room}"\nhost = "127.0.0.1"\n'
        f'[auth]\nsecret = "{SECRET}"\n'
        f'[store]\npath = "{tmp_path / "townhall.db"}"\n'
        "[clone]\nenabled = false\n"
        f'[bus]\nurl = "{tls_bus.url}"\ntls_ca = "{tls_bus.ca}"\n'
        f'tls_cert = "{tls_bus.cert}"\ntls_key = "{tls_bus.key}"\n'
        '[log]\nformat = "text"\n'
    )
    authority = await start(config, "authority", "WebSocket ")
    try:
        edge = await start(config, "edge", " serving room ")
        try:
            status = await health(edge.url.replace("ws", "http", 1).removesuffix("/ws"))
            assert status["role"] == "edge" and status["room"] == room
            seen: list[Message] = []
            ada = token("ada", "attendee", room=room)
            client = RoomClient(edge.url, ada, on_message=seen.append)
            await asyncio.wait_for(client.connect(), 30)
            try:
                await client.send(Ask(1, "Does the bus run over TLS?"))
                await eventually(
                    lambda: any(isinstance(m, Ack) and m.ref == 1 for m in seen),
                    30,
                    "the authority's Ack through the edge",
                )
            finally:
                await client.close()
        finally:
            await stop(edge)
    finally:
        await stop(authority)
