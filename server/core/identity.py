"""Who a participant is, as a verified join token (or the room, for a guest) says."""

from __future__ import annotations

from dataclasses import dataclass

from townhall.protocol.messages import STAFF, Role


@dataclass(frozen=True)
class Identity:
    """Who a verified token says the holder is."""

    user_id: str
    name: str
    role: Role
    room: str
    expires_at: float

    @property
    def staff(self) -> bool:
        """Moderators and operators run the room."""
        return self.role in STAFF
