"""Version negotiation at Join: the highest version both ends speak wins."""

from __future__ import annotations

from .errors import ErrorCode, ProtocolError
from .limits import MIN_PROTOCOL_VERSION, PROTOCOL_VERSION


def negotiate(
    client_min: int,
    client_max: int,
    server_min: int = MIN_PROTOCOL_VERSION,
    server_max: int = PROTOCOL_VERSION,
) -> int:
    """Pick the version for this connection or raise VERSION_UNSUPPORTED."""
    if client_min > client_max:
        raise ProtocolError(
            ErrorCode.BAD_MESSAGE, f"min_version {client_min} above max_version {client_max}"
        )
    chosen = min(client_max, server_max)
    if chosen < max(client_min, server_min):
        raise ProtocolError(
            ErrorCode.VERSION_UNSUPPORTED,
            f"client speaks {client_min}..{client_max}, server {server_min}..{server_max}",
        )
    return chosen
