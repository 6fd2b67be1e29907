"""The language identifier is loaded before the room serves, off its event loop.

Loading it (lzma-packed models, a second of CPU) was left to the first question, on the
room's loop: every client's view froze for 1.1 to 1.6 s at the first question of each room
and after each failover (seen in the failover tests' logs, ``test_loop_stall.py``'s warning).
"""

from __future__ import annotations

from pathlib import Path

from townhall.server.app import TownhallServer
from townhall.server.clone.brain import language
from townhall.server.ops.failover import warm_up

from .conftest import make_settings


def loaded() -> int:
    return language._identifier.cache_info().currsize


async def test_a_room_with_a_clone_serves_with_the_identifier_loaded(tmp_path: Path) -> None:
    language._identifier.cache_clear()  # as in a new process
    async with TownhallServer(make_settings(tmp_path, clone={"enabled": True})):
        assert loaded() == 2  # Latin-script languages, and Ukrainian or Russian


def test_a_standby_authority_loads_it_while_waiting_for_the_lease(tmp_path: Path) -> None:
    language._identifier.cache_clear()
    warm_up(make_settings(tmp_path, clone={"enabled": True}))
    assert loaded() == 2
