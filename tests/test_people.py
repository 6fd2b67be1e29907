"""Moderators mute, kick and ban people; the room and the banned user notice, others don't."""

from __future__ import annotations

from pathlib import Path

import pytest

from townhall.plugin.client import JoinRejected, RoomClient
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ack, Ask, Error, Hand, People
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings
from .test_clone_stage import Viewer
from .waiting import eventually


async def test_mute_stops_questions_and_hands(tmp_path: Path, token: TokenMaker) -> None:
    async with TownhallServer(make_settings(tmp_path)) as srv:
        mod = Viewer(srv.ws_url, token("mod", role="moderator"))
        att = Viewer(srv.ws_url, token("att", role="attendee"))
        await mod.connect()
        await att.connect()
        slot = att.client.welcome.slot  # type: ignore[union-attr]
        await att.client.send(Hand(True))
        await eventually(lambda: mod.client.state.hands.get(slot) is True)
        assert isinstance(await mod.request(lambda ref: People(ref, "mute", slot)), Ack)
        await eventually(lambda: mod.client.state.participants[slot].flags & 0x04 != 0)
        assert mod.client.state.hands.get(slot) is False  # the hand went down
        refused = await att.request(lambda ref: Ask(ref, "Can I still ask this?"))
        assert isinstance(refused, Error) and refused.code == ErrorCode.NOT_ALLOWED
        await att.client.send(Hand(True))
        await eventually(lambda: any(e.about == Hand.TYPE for e in att.client.errors))
        assert isinstance(await mod.request(lambda ref: People(ref, "unmute", slot)), Ack)
        assert isinstance(await att.request(lambda ref: Ask(ref, "And now, may I ask?")), Ack)
        await mod.client.close()
        await att.client.close()


async def test_kick_frees_the_seat_and_ban_survives_restart(
    tmp_path: Path, token: TokenMaker
) -> None:
    settings = make_settings(tmp_path)
    async with TownhallServer(settings) as srv:
        mod = Viewer(srv.ws_url, token("mod", role="moderator"))
        bystander = Viewer(srv.ws_url, token("by", role="attendee"))
        kicked = RoomClient(srv.ws_url, token("kick-me", role="attendee"))
        banned = RoomClient(srv.ws_url, token("ban-me", role="spectator"))
        for c in (mod.client, bystander.client, kicked, banned):
            await c.connect()
        k_slot, b_slot = kicked.welcome.slot, banned.welcome.slot  # type: ignore[union-attr]
        assert isinstance(await mod.request(lambda ref: People(ref, "kick", k_slot)), Ack)
        await kicked.wait_closed()
        assert kicked.close_code == ErrorCode.KICKED.close_code
        await eventually(lambda: k_slot not in bystander.client.state.participants)
        again = RoomClient(srv.ws_url, token("kick-me", role="attendee"))
        await again.connect()  # a kick is not a ban
        await again.close()
        assert isinstance(await mod.request(lambda ref: People(ref, "ban", b_slot)), Ack)
        await banned.wait_closed()
        assert banned.close_code == ErrorCode.BANNED.close_code
        with pytest.raises(JoinRejected) as info:
            await RoomClient(srv.ws_url, token("ban-me", role="spectator")).connect()
        assert info.value.error.code == ErrorCode.BANNED
        staff = await mod.request(lambda ref: People(ref, "kick", mod.client.welcome.slot))  # type: ignore[union-attr]
        assert isinstance(staff, Error) and staff.code == ErrorCode.NOT_ALLOWED
        denied = await bystander.request(lambda ref: People(ref, "kick", k_slot))
        assert isinstance(denied, Error) and denied.code == ErrorCode.NOT_ALLOWED
        assert not bystander.client.closed and bystander.client.errors == [denied]
        await mod.client.close()
        await bystander.client.close()
    async with TownhallServer(settings) as srv:
        with pytest.raises(JoinRejected) as info:
            await RoomClient(srv.ws_url, token("ban-me", role="spectator")).connect()
        assert info.value.error.code == ErrorCode.BANNED
