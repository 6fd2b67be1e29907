"""The live mic's network policy cannot be smuggled past, and nothing foreign is even tried.

Below the policy, the test wraps the transport of every ICE socket (``StunProtocol``'s
``transport``) in a recorder: every datagram that reaches a socket is recorded and only
loopback ones are really sent. So a broken guard fails the test without a packet leaving
the machine, and "no send to a foreign address is even attempted" means the recorder saw
none. mDNS is recorded where aioice would bind 0.0.0.0:5353 and join 224.0.0.251.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest
from aioice import Candidate, Connection, ice
from aioice import mdns as aioice_mdns
from aiortc import RTCSessionDescription

from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Mic, MicAnswer, MicOffer
from townhall.server.app import TownhallServer
from townhall.server.rtc import netguard
from townhall.server.rtc.offer import LINE_BREAKS, BadOffer, read_offer
from townhall.server.rtc.policy import NetworkPolicy, RestrictedConnection, parse_networks

from .conftest import TokenMaker, make_settings
from .rtc_helpers import Recorder
from .test_rtc_ice import offer_with
from .waiting import eventually

FOREIGN = [
    "a=candidate:9 1 udp 2130706431 203.0.113.7 40000 typ host",  # public (TEST-NET-3)
    "a=candidate:8 1 udp 2130706430 10.9.8.7 40001 typ host",  # private
    "a=candidate:7 1 udp 2130706429 6a3f0e0c-1111-4222-8333-444455556666.local 40002 typ host",
]
SEPARATORS = {
    "U+2028": "\u2028",
    "U+2029": "\u2029",
    "U+0085": "\x85",
    "lone CR": "\r",
    "VT": "\x0b",
    "FF": "\x0c",
    "FS": "\x1c",
    "lone LF": "\n",
}


class RecordingTransport:
    """Stands between a StunProtocol and its socket: records every datagram's destination."""

    def __init__(self, inner: Any, log: list[tuple[tuple[str, int], tuple[str, int]]]) -> None:
        self._inner = inner
        self._log = log

    def sendto(self, data: bytes, addr: Any = None) -> None:
        local = self._inner.get_extra_info("sockname")[:2]
        self._log.append((local, (str(addr[0]), int(addr[1]))))
        if ipaddress.ip_address(str(addr[0]).split("%")[0]).is_loopback:
            self._inner.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Destinations that reached a socket, and every attempt to start mDNS."""
    seen: dict[str, list[Any]] = {"sent": [], "mdns": []}
    made = ice.StunProtocol.connection_made

    def connection_made(self: ice.StunProtocol, transport: Any) -> None:
        made(self, transport)
        self.transport = RecordingTransport(self.transport, seen["sent"])  # type: ignore[assignment]

    async def create_mdns_protocol() -> Any:
        seen["mdns"].append(("0.0.0.0", 5353, "224.0.0.251"))
        raise OSError("mDNS is not allowed to start in this test")

    monkeypatch.setattr(ice.StunProtocol, "connection_made", connection_made)
    monkeypatch.setattr(aioice_mdns, "create_mdns_protocol", create_mdns_protocol)
    return seen


def foreign(sent: list[tuple[Any, Any]]) -> set[str]:
    return {to[0] for _, to in sent if not ipaddress.ip_address(to[0]).is_loopback}


async def granted(srv: TownhallServer, token: TokenMaker) -> tuple[Recorder, Recorder, int]:
    ann = Recorder(srv.ws_url, token("ann", "attendee", "Ann"))
    mod = Recorder(srv.ws_url, token("mo", "moderator", "Mo"))
    await ann.connect()
    await mod.connect()
    slot = ann.welcome.slot  # type: ignore[union-attr]
    await mod.send(Mic(1, "grant", slot))
    await eventually(lambda: ("granted", "") in ann.mic_states(slot))
    return ann, mod, slot


@pytest.mark.parametrize("separator", list(SEPARATORS), ids=list(SEPARATORS))
async def test_candidates_after_another_line_break_are_refused_and_never_contacted(
    tmp_path: Path, token: TokenMaker, wire: dict[str, list[Any]], separator: str
) -> None:
    sep = SEPARATORS[separator]
    async with TownhallServer(make_settings(tmp_path, rtc={"connect_timeout_s": 2.0})) as srv:
        ann, mod, slot = await granted(srv, token)
        pc, sdp = await offer_with(ann, [])
        # The foreign candidates ride on the end of the a=mid line, after the separator:
        # a parser splitting only at CRLF sees one a=mid line; str.splitlines sees more.
        smuggled = sep + sep.join(FOREIGN)
        sdp = sdp.replace("\r\na=mid:0\r\n", f"\r\na=mid:0{smuggled}\r\n", 1)
        assert smuggled in sdp
        await ann.send(MicOffer(2, sdp))
        await eventually(lambda: ann.errs(2) or ann.of(MicAnswer), what="a reply to the offer")
        assert not ann.of(MicAnswer)
        assert ann.errs(2)[0].code == ErrorCode.BAD_SDP
        assert "CRLF" in ann.errs(2)[0].reason
        await eventually(lambda: ("ended", "failed") in mod.mic_states(slot), what="mic ended")
        assert not foreign(wire["sent"]), wire["sent"]
        assert not wire["mdns"]
        await pc.close()
        await ann.close()
        await mod.close()


async def test_a_candidate_that_reaches_ice_unchecked_still_gets_nothing_sent(
    tmp_path: Path, token: TokenMaker, wire: dict[str, list[Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the SDP said: with the candidate filter broken on purpose, foreign
    candidates reach aioice's check list, and the send guard still drops every datagram."""
    monkeypatch.setattr(
        RestrictedConnection,
        "_add_remote_candidate",
        lambda self, candidate, host: Connection._add_remote_candidate(self, candidate, host),
    )
    async with TownhallServer(make_settings(tmp_path)) as srv:
        ann, mod, slot = await granted(srv, token)
        private = "a=candidate:6 1 udp 2130706428 192.168.77.1 40003 typ host"
        pc, sdp = await offer_with(ann, [*FOREIGN[:2], private])
        await ann.send(MicOffer(2, sdp))
        await eventually(lambda: ann.of(MicAnswer) or ann.errs(2), what="answer")
        peer = srv.mics.open[slot].peer  # type: ignore[union-attr]
        transport = peer.pc.getTransceivers()[0].receiver.transport.transport  # type: ignore[union-attr]
        hosts = {c.ip for c in transport.getRemoteCandidates()}
        assert {"203.0.113.7", "10.9.8.7", "192.168.77.1"} <= hosts  # past the filter
        guard = netguard.guard_of(transport._connection)
        assert guard is not None
        await pc.setRemoteDescription(RTCSessionDescription(ann.of(MicAnswer)[0].sdp, "answer"))
        # ICE checks pairs in priority order until the loopback pair wins: at least one
        # smuggled pair gets its check, and the guard drops it.
        await eventually(lambda: guard.refused, what="a check to a smuggled candidate")
        await eventually(lambda: ("live", "") in mod.mic_states(slot), what="live over loopback")
        assert {e.split(":")[0] for e in guard.refused} <= {
            "203.0.113.7", "10.9.8.7", "192.168.77.1"
        }  # fmt: skip
        assert "127.0.0.1" in {to[0] for _, to in wire["sent"]}  # the recorder sees traffic
        assert not foreign(wire["sent"]), wire["sent"]
        await pc.close()
        await ann.close()
        await mod.close()


async def test_mdns_is_off_unless_configured(
    tmp_path: Path, token: TokenMaker, wire: dict[str, list[Any]]
) -> None:
    local = "6a3f0e0c-1111-4222-8333-444455556666.local"
    mdns_candidate = Candidate("m", 1, "udp", 2130706431, local, 40002, "host")
    for enabled in (False, True):
        policy = NetworkPolicy(parse_networks("127.0.0.1/32"), ("127.0.0.1",), mdns=enabled)
        connection = Connection(ice_controlling=False)
        connection.__class__ = RestrictedConnection
        connection.policy = policy  # type: ignore[attr-defined]
        connection.refused = []  # type: ignore[attr-defined]
        connection.send_guard = netguard.SendGuard(policy.allows, policy.mdns)  # type: ignore[attr-defined]
        netguard.install()
        if not enabled:
            await connection.add_remote_candidate(mdns_candidate)  # the policy's own refusal
            assert any(".local" in r for r in connection.refused)  # type: ignore[attr-defined]
            # Past the policy, straight into aioice: the guard still refuses to start mDNS.
            with pytest.raises(netguard.MdnsDisabled):
                await Connection.add_remote_candidate(connection, mdns_candidate)
            assert not wire["mdns"], "nothing bound to 5353, no group joined"
        else:
            with pytest.raises(OSError):  # our stand-in for the socket refuses to start
                await connection.add_remote_candidate(mdns_candidate)
            assert wire["mdns"], "rtc.mdns = true resolves .local candidates"
        await connection.close()

    # And a whole server with the defaults: a .local candidate is refused, never resolved.
    wire["mdns"].clear()
    async with TownhallServer(make_settings(tmp_path)) as srv:
        ann, mod, _ = await granted(srv, token)
        pc, sdp = await offer_with(ann, [FOREIGN[2]])
        await ann.send(MicOffer(2, sdp))
        await eventually(lambda: ann.of(MicAnswer) or ann.errs(2), what="answer")
        assert ann.of(MicAnswer), ann.errs(2)
        assert not wire["mdns"]
        await pc.close()
        await ann.close()
        await mod.close()


def test_line_breaks_are_every_character_splitlines_breaks_at() -> None:
    breaks = {chr(c) for c in range(0x110000) if len(f"a{chr(c)}b".splitlines()) > 1}
    assert breaks == set(LINE_BREAKS)


def test_offer_is_read_by_aiortcs_parser_and_written_back_without_candidates() -> None:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
        "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n"
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32) + "\r\na=setup:actpass\r\n"
        "a=rtpmap:111 opus/48000/2\r\na=sendrecv\r\na=rtcp-mux\r\n"
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"
        "a=candidate:2 1 udp 2130706431 203.0.113.7 5001 typ host\r\n"
        "a=end-of-candidates\r\n"
    )
    offer = read_offer(sdp)
    assert [c.ip for c in offer.candidates] == ["127.0.0.1", "203.0.113.7"]
    assert all(c.sdpMid == "0" and c.sdpMLineIndex == 0 for c in offer.candidates)
    assert "a=candidate" not in offer.sdp and "end-of-candidates" not in offer.sdp
    assert offer.kinds == ["audio"]
    for bad in (sdp.replace("\r\n", "\n"), sdp.replace("a=mid:0", "a=mid:0\x00")):
        with pytest.raises(BadOffer):
            read_offer(bad)
