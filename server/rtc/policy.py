"""Where WebRTC may go: gather only configured host addresses, send only to allowed networks.

aioice gathers host candidates on every interface and sends connectivity checks to any
candidate the remote names, so a server that accepted offers blindly could be made to send
UDP anywhere. aioice has no option for either (aiortc/aioice#2, #57), so each peer's ICE
connection is switched to :class:`RestrictedConnection`, which gathers on the configured
addresses only and refuses (and logs) remote candidates outside the allowed networks, mDNS
names unless ``rtc.mdns`` is on (resolving them binds 5353 and multicasts), and checks
arriving from elsewhere (answering one would send there). Behind these, ``netguard``
checks every datagram where it leaves, so a candidate that slipped past them still gets
nothing sent to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from aioice import Candidate, Connection, mdns, stun
from aioice.ice import StunProtocol
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from townhall.server.rtc import netguard

log = logging.getLogger("townhall.rtc.policy")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class PolicyError(ValueError):
    """A network or address setting that cannot be used."""


LOCAL = "local"  # in rtc.allowed_networks: this machine's own addresses


def parse_networks(text: str) -> tuple[Network, ...]:
    nets: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part == LOCAL:
            nets += own_networks()
            continue
        try:
            nets.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise PolicyError(f"rtc.allowed_networks: {exc}") from None
    return tuple(nets)


def own_networks() -> list[Network]:
    """Loopback and every address of this machine's interfaces, each on its own.

    A browser on the server's machine (the demo, a moderator's laptop running the room)
    offers its interface addresses, never loopback (Chromium gathers 127.0.0.1 only behind
    a flag). Sending to the machine itself reaches nothing loopback does not.
    """
    import psutil

    nets: list[Network] = [
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    ]
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(ValueError):
                    nets.append(ipaddress.ip_network(address.address.split("%", 1)[0]))
    return nets


def parse_addresses(text: str) -> tuple[str, ...]:
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(str(ipaddress.ip_address(part)))
        except ValueError as exc:
            raise PolicyError(f"rtc.host_addresses: {exc}") from None
    return tuple(out)


@dataclass(frozen=True)
class NetworkPolicy:
    """What one server's peers may do on the network."""

    allowed: tuple[Network, ...]
    host_addresses: tuple[str, ...]
    ice_servers: tuple[RTCIceServer, ...] = ()
    mdns: bool = False  # resolve .local candidates (binds 0.0.0.0:5353); off unless configured

    @classmethod
    def from_settings(cls, rtc: Any) -> NetworkPolicy:
        servers = []
        if rtc.stun_url:
            servers.append(RTCIceServer(urls=rtc.stun_url))
        if rtc.turn_url:
            servers.append(
                RTCIceServer(
                    urls=rtc.turn_url,
                    username=rtc.turn_username or None,
                    credential=rtc.turn_password or None,
                )
            )
        return cls(
            parse_networks(rtc.allowed_networks),
            parse_addresses(rtc.host_addresses),
            tuple(servers),
            bool(getattr(rtc, "mdns", False)),
        )

    def allows(self, host: str) -> bool:
        """May we send to this address? Names (mDNS or otherwise) never."""
        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return any(address in net for net in self.allowed)

    def configuration(self) -> RTCConfiguration:
        # An explicit empty list: aiortc would otherwise use a public STUN server.
        return RTCConfiguration(iceServers=list(self.ice_servers))

    def restrict(self, pc: RTCPeerConnection) -> int:
        """Switch every ICE connection of ``pc`` to the restricted one; returns how many.

        Call after setRemoteDescription (the transports exist) and before setLocalDescription
        (which gathers) and before adding any remote candidate.
        """
        netguard.install()
        count = 0
        for connection in _ice_connections(pc):
            if not isinstance(connection, RestrictedConnection):
                connection.__class__ = RestrictedConnection
                restricted = cast(RestrictedConnection, connection)
                restricted.policy = self
                restricted.refused = []
                restricted.send_guard = netguard.SendGuard(self.allows, self.mdns)
            count += 1
        return count


def _ice_connections(pc: RTCPeerConnection) -> Iterable[Connection]:
    seen: set[int] = set()
    transports = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        transports.append(pc.sctp.transport)
    for dtls in transports:
        connection = dtls.transport.iceGatherer._connection
        if id(connection) not in seen:
            seen.add(id(connection))
            yield connection


def refused_candidates(pc: RTCPeerConnection) -> list[str]:
    """What the peer's ICE refused so far (``host:port why``), for logs and tests."""
    out: list[str] = []
    for connection in _ice_connections(pc):
        out += getattr(connection, "refused", [])
        guard = netguard.guard_of(connection)
        if guard is not None:
            out += [f"{entry} send dropped" for entry in guard.refused]
    return out


class RestrictedConnection(Connection):
    """An aioice connection held to a :class:`NetworkPolicy` (installed by ``restrict``)."""

    policy: NetworkPolicy
    refused: list[str]
    send_guard: netguard.SendGuard

    def _refuse(self, host: str, port: int, why: str) -> None:
        entry = f"{host}:{port} {why}"
        if len(self.refused) < 64:
            self.refused.append(entry)
            log.warning("refused remote candidate", extra={"candidate": entry})

    async def gather_candidates(self) -> None:
        if self._local_candidates_start:
            return
        self._local_candidates_start = True
        await self._allow_stun_server()
        addresses = list(self.policy.host_addresses)
        for component in sorted(self._components):
            self._local_candidates += await self.get_component_candidates(
                component=component, addresses=addresses
            )
        self._local_candidates_end = True

    async def _allow_stun_server(self) -> None:
        """The configured STUN server is the one destination outside the networks allowed."""
        guard = netguard.guard_of(self)
        if self.stun_server is None or guard is None:
            return
        host, port = self.stun_server
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning("STUN server not resolved", extra={"server": host, "error": str(exc)})
            return
        guard.servers.update((str(info[4][0]), port) for info in infos)

    async def add_remote_candidate(self, remote_candidate: Candidate | None) -> None:
        if (
            remote_candidate is not None
            and mdns.is_mdns_hostname(remote_candidate.host)
            and not self.policy.mdns
        ):
            self._refuse(remote_candidate.host, remote_candidate.port, "mdns name")
            return
        await super().add_remote_candidate(remote_candidate)

    def _add_remote_candidate(self, remote_candidate: Candidate, network_host: str) -> None:
        # Every remote candidate comes through here, a resolved mDNS one included.
        if not self.policy.allows(network_host):
            self._refuse(network_host, remote_candidate.port, "outside allowed networks")
            return
        super()._add_remote_candidate(remote_candidate, network_host)

    def request_received(
        self, message: stun.Message, addr: tuple[str, int], protocol: StunProtocol
    ) -> None:
        # A check from elsewhere would be answered there and learnt as a peer-reflexive pair.
        if not self.policy.allows(addr[0]):
            self._refuse(addr[0], addr[1], "check from outside allowed networks")
            return
        super().request_received(message, addr, protocol)
