"""Moderators mute, kick and ban people; the room and the banned user notice, others don't."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

import pytest

from townhall.plugin.client import JoinRejected, RoomClient
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ack, Ask, Error, Hand, Leave, People
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


async def test_mute_holds_across_leave_rejoin_and_restart(
    tmp_path: Path, token: TokenMaker
) -> None:
    settings = make_settings(tmp_path)
    async with TownhallServer(settings) as srv:
        mod = Viewer(srv.ws_url, token("mod", role="moderator"))
        att = Viewer(srv.ws_url, token("att", role="attendee", name="Ada"))
        await mod.connect()
        await att.connect()
        slot = att.client.welcome.slot  # type: ignore[union-attr]
        assert isinstance(await mod.request(lambda ref: People(ref, "mute", slot)), Ack)
        await att.client.send(Leave())
        await att.client.wait_closed()
        await eventually(lambda: slot not in srv.room.members)
        back = Viewer(srv.ws_url, token("att", role="attendee", name="Ada"))
        await back.connect()
        mine = back.client.welcome.slot  # type: ignore[union-attr]
        await eventually(lambda: mine in back.client.state.participants)
        assert back.client.state.participants[mine].flags & 0x04  # still muted, as all see
        refused = await back.request(lambda ref: Ask(ref, "Am I still muted now?"))
        assert isinstance(refused, Error) and refused.code == ErrorCode.NOT_ALLOWED
        await back.client.close()
        await mod.client.close()
    async with TownhallServer(settings) as srv:
        again = Viewer(srv.ws_url, token("att", role="attendee", name="Ada"))
        mod = Viewer(srv.ws_url, token("mod", role="moderator"))
        await again.connect()
        await mod.connect()
        refused = await again.request(lambda ref: Ask(ref, "After a restart, muted still?"))
        assert isinstance(refused, Error) and refused.code == ErrorCode.NOT_ALLOWED
        slot = again.client.welcome.slot  # type: ignore[union-attr]
        assert isinstance(await mod.request(lambda ref: People(ref, "unmute", slot)), Ack)
        assert isinstance(await again.request(lambda ref: Ask(ref, "And now, may I ask?")), Ack)
        assert "att" not in srv.authority.muted
        await again.client.close()
        await mod.client.close()


def guest_cookie(url: str) -> str:
    """What a browser keeps from loading /watch: the guest cookie (name=value)."""
    with urllib.request.urlopen(f"{url}/watch", timeout=5) as resp:
        header = resp.headers["Set-Cookie"]
    assert header and "HttpOnly" in header and "SameSite=Strict" in header
    return str(header.split(";", 1)[0])


async def test_a_guest_is_one_person_per_browser_listed_muted_and_banned(
    tmp_path: Path, token: TokenMaker
) -> None:
    settings = make_settings(tmp_path)
    async with TownhallServer(settings) as srv:
        cookie = await asyncio.to_thread(guest_cookie, srv.url)
        browser = {"Cookie": f"theme=dark; {cookie}"}
        mod = Viewer(srv.ws_url, token("mod", role="moderator"))
        await mod.connect()
        first = RoomClient(srv.ws_url, headers=browser)
        await first.connect()
        user = first.welcome.user_id  # type: ignore[union-attr]
        assert user.startswith("guest-")
        await first.close()
        second = RoomClient(srv.ws_url, headers=browser)  # a reload: the same guest
        await second.connect()
        assert second.welcome.user_id == user  # type: ignore[union-attr]
        # Forged or missing cookies get a one-time guest, never someone else's identity.
        forged = cookie[:-1] + ("0" if cookie[-1] != "0" else "1")
        other = RoomClient(srv.ws_url, headers={"Cookie": forged})
        await other.connect()
        assert other.welcome.user_id != user  # type: ignore[union-attr]
        await other.close()
        # The staff list every spectator (privately) and can mute and ban them.
        slot = second.welcome.slot  # type: ignore[union-attr]
        await eventually(lambda: mod.client.state.participants.get(slot) is not None)
        assert mod.client.state.participants[slot].user_id == user
        assert isinstance(await mod.request(lambda ref: People(ref, "ban", slot)), Ack)
        await second.wait_closed()
        assert second.close_code == ErrorCode.BANNED.close_code
        await eventually(lambda: slot not in mod.client.state.participants)
        with pytest.raises(JoinRejected) as info:
            await RoomClient(srv.ws_url, headers=browser).connect()
        assert info.value.error.code == ErrorCode.BANNED
        await mod.client.close()
    async with TownhallServer(settings) as srv:  # a restart: the ban holds for that browser
        with pytest.raises(JoinRejected) as info:
            await RoomClient(srv.ws_url, headers=browser).connect()
        assert info.value.error.code == ErrorCode.BANNED
        stranger = RoomClient(srv.ws_url)  # another browser may still watch
        await stranger.connect()
        await stranger.close()
