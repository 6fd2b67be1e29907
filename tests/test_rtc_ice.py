"""ICE is held to the configured networks: what is gathered, what is contacted.

Every STUN or data datagram aioice sends, from the server's peers and the test's own, goes
through StunProtocol.send_stun / send_data; the test records each destination there and
drops (never sends) any that is not loopback, so a broken filter fails the test without a
single packet leaving the machine.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from pathlib import Path
from typing import Any

import pytest
from aioice import ice
from aiortc import RTCPeerConnection, RTCSessionDescription

from townhall.plugin.mic import MicSender, PcmSource
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Mic, MicAnswer, MicOffer
from townhall.server.app import TownhallServer
from townhall.server.rtc.policy import NetworkPolicy, parse_networks, refused_candidates

from .conftest import TokenMaker, make_settings
from .rtc_helpers import Recorder, speech
from .waiting import eventually

OUTSIDE = [
    "a=candidate:9 1 udp 2130706431 203.0.113.7 40000 typ host",  # routable (TEST-NET-3)
    "a=candidate:8 1 udp 2130706430 192.0.2.2 40001 typ host",  # a neighbour on TEST-NET-1
    "a=candidate:7 1 udp 2130706429 6a3f0e0c-1111-4222-8333-444455556666.local 40002 typ host",
    "a=candidate:6 1 udp 1686052607 198.51.100.9 40003 typ srflx raddr 0.0.0.0 rport 0",
]


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[tuple[tuple[str, int], tuple[str, int]]]:
    """(from, to) of every datagram ICE sends; non-loopback ones are dropped, not sent."""
    log: list[tuple[tuple[str, int], tuple[str, int]]] = []
    send_stun, send_data = ice.StunProtocol.send_stun, ice.StunProtocol.send_data

    def guard(original: Any) -> Any:
        def send(self: ice.StunProtocol, payload: Any, addr: tuple[str, int]) -> Any:
            local = self.transport.get_extra_info("sockname")[:2]
            log.append((local, addr[:2]))
            if ipaddress.ip_address(addr[0]).is_loopback:
                return original(self, payload, addr)
            return None

        return send

    async def no_mdns(subscriber: object) -> Any:
        log.append((("mdns", 0), ("224.0.0.251", 5353)))
        raise OSError("mDNS is not allowed in this test")

    monkeypatch.setattr(ice.StunProtocol, "send_stun", guard(send_stun))
    monkeypatch.setattr(ice.StunProtocol, "send_data", guard(send_data))
    monkeypatch.setattr(ice, "get_or_create_mdns_protocol", no_mdns)
    return log


def candidates(sdp: str) -> list[str]:
    return re.findall(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+", sdp, re.M)


async def offer_with(client: Recorder, extra: list[str], rewrite: Any = None) -> tuple[Any, str]:
    policy = MicSender(client, PcmSource(*speech("Hello"))).policy
    pc = RTCPeerConnection(policy.configuration())
    pc.addTrack(PcmSource(*speech("Is anybody there? Hello, hello.")))
    policy.restrict(pc)
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    if rewrite is not None:
        sdp = rewrite(sdp)
    first = sdp.index("a=candidate:")
    return pc, sdp[:first] + "".join(x + "\r\n" for x in extra) + sdp[first:]


async def test_outside_candidates_are_refused_and_never_contacted(
    tmp_path: Path, token: TokenMaker, sends: list[Any]
) -> None:
    # Loopback only (not `local`): on some machines 192.0.2.2 is eth0's own address.
    loopback = {"allowed_networks": "127.0.0.1/32,::1/128"}
    async with TownhallServer(make_settings(tmp_path, rtc=loopback)) as srv:
        ann = Recorder(srv.ws_url, token("ann", "attendee", "Ann"))
        mod = Recorder(srv.ws_url, token("mo", "moderator", "Mo"))
        await ann.connect()
        await mod.connect()
        slot = ann.welcome.slot  # type: ignore[union-attr]
        await mod.send(Mic(1, "grant", slot))
        await eventually(lambda: ("granted", "") in ann.mic_states(slot))
        pc, sdp = await offer_with(ann, OUTSIDE)
        assert set(candidates(sdp)) >= {"203.0.113.7", "192.0.2.2"}
        await ann.send(MicOffer(2, sdp))
        await eventually(lambda: ann.of(MicAnswer) or ann.errs(2), what="answer")
        answer = ann.of(MicAnswer)[0].sdp
        assert candidates(answer) == ["127.0.0.1"], "only the configured host address"
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await eventually(lambda: ("live", "") in mod.mic_states(slot), what="live over 127.0.0.1")
        await eventually(lambda: any(p.opus for p in mod.live_packets(slot)), what="voice")

        peer = srv.mics.open[slot].peer  # type: ignore[union-attr]
        refused = " ".join(refused_candidates(peer.pc))  # type: ignore[union-attr]
        for host in ("203.0.113.7", "192.0.2.2", ".local", "198.51.100.9"):
            assert host in refused
        destinations = {to[0] for _, to in sends}
        assert "127.0.0.1" in destinations  # the recorder sees real traffic...
        assert destinations == {"127.0.0.1"}, destinations  # ...and nothing else
        await pc.close()
        await ann.close()
        await mod.close()


async def test_checks_from_outside_the_allowed_networks_are_not_answered(
    tmp_path: Path, token: TokenMaker, sends: list[Any]
) -> None:
    """Allowed: 127.0.0.2 only. The headset claims 127.0.0.2 but checks from 127.0.0.1: the
    server must neither answer those checks nor learn 127.0.0.1 as a peer-reflexive peer."""
    settings = make_settings(
        tmp_path, rtc={"allowed_networks": "127.0.0.2/32", "connect_timeout_s": 2.0}
    )
    async with TownhallServer(settings) as srv:
        ann = Recorder(srv.ws_url, token("ann", "attendee", "Ann"))
        mod = Recorder(srv.ws_url, token("mo", "moderator", "Mo"))
        await ann.connect()
        await mod.connect()
        slot = ann.welcome.slot  # type: ignore[union-attr]
        await mod.send(Mic(1, "grant", slot))
        await eventually(lambda: ("granted", "") in ann.mic_states(slot))
        claim = r"(a=candidate:\S+ \d+ \S+ \d+ )127\.0\.0\.1"
        pc, sdp = await offer_with(ann, [], lambda s: re.sub(claim, r"\g<1>127.0.0.2", s))
        client_ports = {int(p) for p in re.findall(r"127\.0\.0\.2 (\d+)", sdp)}
        await ann.send(MicOffer(2, sdp))
        await eventually(lambda: ann.of(MicAnswer), what="answer")
        answer = ann.of(MicAnswer)[0].sdp
        server_port = int(re.findall(r"127\.0\.0\.1 (\d+) typ host", answer)[0])
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        await eventually(lambda: ("ended", "failed") in mod.mic_states(slot), what="failed mic")
        assert ("live", "") not in mod.mic_states(slot)
        assert any(e.code == ErrorCode.MIC_FAILED for e in ann.errs())
        from_server = [to for frm, to in sends if frm[1] == server_port]
        assert from_server, "the server checked the allowed candidate"
        assert all(to[0] == "127.0.0.2" for to in from_server), from_server
        assert not [to for to in from_server if to[1] not in client_ports]
        await pc.close()
        await ann.close()
        await mod.close()


def test_policy_allows_only_configured_networks() -> None:
    policy = NetworkPolicy(parse_networks("127.0.0.1/32, ::1/128, 10.1.0.0/16"), ("127.0.0.1",))
    assert policy.allows("127.0.0.1") and policy.allows("::1") and policy.allows("10.1.2.3")
    for host in ("127.0.0.2", "192.0.2.2", "8.8.8.8", "fd00::2", "x.local", "", "localhost"):
        assert not policy.allows(host), host


def test_local_is_this_machines_own_addresses_and_nothing_else() -> None:
    import psutil

    own = [
        a.address.split("%", 1)[0]
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family in (socket.AF_INET, socket.AF_INET6)
    ]
    policy = NetworkPolicy(parse_networks("local"), ("127.0.0.1",))
    assert own and all(policy.allows(host) for host in own), own
    assert policy.allows("127.0.0.1") and policy.allows("::1")
    for host in ("127.0.0.2", "203.0.113.7", "8.8.8.8", "x.local", "localhost"):
        if host not in own:
            assert not policy.allows(host), host
