"""The live mic's last line: every datagram ICE sends is checked where it leaves.

Filtering remote candidates (``policy.RestrictedConnection``) decides what ICE *tries*;
a parser difference, a peer-reflexive address or a future aioice path could still hand it
an address nobody checked. So the two methods through which aioice sends every STUN
message and every data datagram, ``StunProtocol.send_stun`` and ``send_data``, are
wrapped once per process: a datagram from a connection that carries a :class:`SendGuard`
goes out only to an allowed network or to a configured STUN server, whatever the SDP
said; anything else is dropped before the socket sees it, counted and logged once per
address.

aioice resolves ``.local`` candidates by binding 0.0.0.0:5353 and joining 224.0.0.251.
``get_or_create_mdns_protocol`` is wrapped too: it works only for a connection whose guard
says mDNS is configured (``rtc.mdns``), so neither the bind nor the join happens by
default, even if a ``.local`` candidate got past every other check.

aioice offers no hook for either (aiortc/aioice#2, #57), hence the wrapping; it leaves
connections without a guard (other users of aioice in the process) as they were, except
that mDNS needs a guard that allows it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aioice import ice, mdns, stun

log = logging.getLogger("townhall.rtc.netguard")

MAX_LOGGED = 64  # refused destinations remembered (and logged) per connection


class MdnsDisabled(OSError):
    """mDNS resolution was asked for on a connection whose policy does not allow it."""


@dataclass
class SendGuard:
    """What one ICE connection may send to: a policy's networks and its STUN servers."""

    allows: Callable[[str], bool]  # the NetworkPolicy's address check
    mdns: bool = False
    servers: set[tuple[str, int]] = field(default_factory=set)  # resolved STUN servers
    refused: list[str] = field(default_factory=list)
    dropped: int = 0

    def permits(self, addr: tuple[Any, ...]) -> bool:
        host, port = str(addr[0]), int(addr[1])
        if (host, port) in self.servers or self.allows(host):
            return True
        self.dropped += 1
        entry = f"{host}:{port}"
        if entry not in self.refused and len(self.refused) < MAX_LOGGED:
            self.refused.append(entry)
            log.warning("ICE send refused by policy", extra={"destination": entry})
        return False


def guard_of(owner: object) -> SendGuard | None:
    guard = getattr(owner, "send_guard", None)
    return guard if isinstance(guard, SendGuard) else None


def install() -> None:
    """Wrap aioice's send paths and mDNS for this process (again if someone unwrapped them)."""
    if not getattr(ice.StunProtocol.send_stun, "netguard", False):
        send_stun = ice.StunProtocol.send_stun

        def guarded_send_stun(self: ice.StunProtocol, message: stun.Message, addr: Any) -> None:
            guard = guard_of(self.receiver)
            if guard is None or guard.permits(addr):
                send_stun(self, message, addr)

        guarded_send_stun.netguard = True  # type: ignore[attr-defined]
        ice.StunProtocol.send_stun = guarded_send_stun  # type: ignore[method-assign]

    if not getattr(ice.StunProtocol.send_data, "netguard", False):
        send_data = ice.StunProtocol.send_data

        async def guarded_send_data(self: ice.StunProtocol, data: bytes, addr: Any) -> None:
            guard = guard_of(self.receiver)
            if guard is None or guard.permits(addr):
                await send_data(self, data, addr)

        guarded_send_data.netguard = True  # type: ignore[attr-defined]
        ice.StunProtocol.send_data = guarded_send_data  # type: ignore[method-assign]

    if not getattr(ice.get_or_create_mdns_protocol, "netguard", False):
        get_mdns = ice.get_or_create_mdns_protocol

        def guarded_mdns(subscriber: object) -> Awaitable[mdns.MDnsProtocol]:
            guard = guard_of(subscriber)
            if guard is None or not guard.mdns:
                raise MdnsDisabled("mDNS resolution is off (rtc.mdns)")
            return get_mdns(subscriber)

        guarded_mdns.netguard = True  # type: ignore[attr-defined]
        ice.get_or_create_mdns_protocol = guarded_mdns  # type: ignore[assignment]
