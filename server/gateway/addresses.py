"""Where a connection comes from, and how many new connections one address may open.

Per-person limits hold only while a person is one identity; anonymous guests get a new
identity with every connection, so their limits also count per address. The address is
the peer's, unless the peer is a trusted proxy (``server.trusted_proxies``, a load
balancer in front of the server): then it is the last address the proxies' header
(``server.client_address_header``, X-Forwarded-For by default) names that is not itself
a trusted proxy, the usual right-to-left reading, so a client cannot choose its address
by sending the header itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from townhall.server.core.ratelimit import TokenBucket

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(text: str, setting: str) -> tuple[Network, ...]:
    """A comma-separated list of addresses or networks (CIDR); ValueError names the setting."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"{setting}: {part!r} is not an address or network") from exc
    return tuple(out)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddresses:
    """The client's address from the peer address and, behind trusted proxies, a header."""

    def __init__(self, trusted_proxies: str = "", header: str = "X-Forwarded-For") -> None:
        self.trusted = parse_networks(trusted_proxies, "server.trusted_proxies")
        self.header = header

    def _trusted(self, address: Address) -> bool:
        return any(address.version == n.version and address in n for n in self.trusted)

    def of(self, peer: str, headers: Iterable[str]) -> str:
        """The address to count against: ``peer`` unless it is a trusted proxy."""
        address = _address(peer)
        if address is None:
            return peer
        if not self._trusted(address):
            return str(address)
        hops = [h for value in headers for h in value.split(",")]
        for hop in reversed(hops):
            named = _address(hop)
            if named is None:
                break  # garbage from here on was written by the client: stop trusting it
            if not self._trusted(named):
                return str(named)
            address = named
        return str(address)


class AddressLimits:
    """New connections per address: ``per_minute`` on average, bursts of as many."""

    PRUNE_AT = 10_000  # buckets kept before the full (idle) ones are dropped

    def __init__(self, per_minute: float) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, TokenBucket] = {}

    def allow(self, address: str, now: float) -> bool:
        if self.per_minute <= 0:
            return True
        bucket = self._buckets.get(address)
        if bucket is None:
            if len(self._buckets) >= self.PRUNE_AT:
                self._prune(now)
            bucket = self._buckets[address] = TokenBucket(
                self.per_minute / 60.0, self.per_minute, now
            )
        return bucket.allow(now)

    def _prune(self, now: float) -> None:
        for address, bucket in list(self._buckets.items()):
            if bucket.full(now):
                del self._buckets[address]
