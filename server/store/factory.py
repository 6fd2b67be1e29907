"""The room's store from the settings: PostgreSQL when ``store.url`` names one, else SQLite."""

from __future__ import annotations

from townhall.server.store.base import RoomStore, StoreError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def open_store(
    url: str,
    path: str,
    room: str,
    synchronous: str = "FULL",
    anonymous_attendance: bool = False,
    term: int = 0,
) -> RoomStore:
    """Open (and migrate) the room's store; a StoreError, one line, if it cannot be used.

    ``term``: an authority's lease term (ops/failover.py), recorded in the store as the
    room's fence before anything is loaded; every write checks it is still ours."""
    if not url:
        from townhall.server.store.sqlite import Store

        return Store(path, room, synchronous, anonymous_attendance=anonymous_attendance, term=term)
    if not is_postgres(url):
        raise StoreError("store.url must start with postgresql:// (or be empty for SQLite)")
    from townhall.server.store.postgres import PostgresStore

    return PostgresStore(url, room, anonymous_attendance=anonymous_attendance, term=term)
