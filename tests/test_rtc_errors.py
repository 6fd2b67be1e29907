"""Live-mic faults: each gets a clear error or end reason, and the room carries on."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from aiortc import RTCPeerConnection

from townhall.plugin.mic import MicSender, PcmSource
from townhall.protocol.errors import ErrorCode
from townhall.protocol.messages import Ack, Mic, MicOffer, MicRelease, Ping, Pong
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings
from .rtc_helpers import Recorder
from .waiting import eventually


def tone() -> PcmSource:
    t = np.arange(48_000 * 30) / 48_000
    return PcmSource((np.sin(2 * np.pi * 220 * t) * 6000).astype(np.int16), 48_000)


async def test_mic_faults_leave_the_room_unaffected(tmp_path: Path, token: TokenMaker) -> None:
    settings = make_settings(
        tmp_path,
        rtc={"accept_timeout_s": 1.0, "connect_timeout_s": 1.5, "mic_time_limit_s": 2.0},
    )
    async with TownhallServer(settings) as srv:
        ann = Recorder(srv.ws_url, token("ann", "attendee", "Ann"))
        bo = Recorder(srv.ws_url, token("bo", "attendee", "Bo"))
        mod = Recorder(srv.ws_url, token("mo", "moderator", "Mo"))
        for c in (ann, bo, mod):
            await c.connect()
        a, b = ann.welcome.slot, bo.welcome.slot  # type: ignore[union-attr]
        ref = iter(range(1, 1000))

        async def request(client: Recorder, message: object) -> object:
            r = message.ref  # type: ignore[attr-defined]
            await client.send(message)  # type: ignore[arg-type]
            await eventually(
                lambda: (
                    any(getattr(m, "ref", None) == r and isinstance(m, Ack) for m in client.got)
                    or client.errs(r)
                ),
                what=f"reply to {message}",
            )
            errors = client.errs(r)
            return ErrorCode(errors[0].code) if errors else "ack"

        async def ended(slot: int, reason: str) -> None:
            await eventually(
                lambda: mod.mic_states(slot)[-1:] == [("ended", reason)],
                what=f"end {reason}: {mod.mic_states(slot)}",
            )

        async def live(client: Recorder, slot: int) -> MicSender:
            assert await request(mod, Mic(next(ref), "grant", slot)) == "ack"
            sender = MicSender(client, tone())
            await sender.start()
            await eventually(lambda: mod.mic_states(slot)[-1:] == [("live", "")], what="live")
            return sender

        # an offer without a grant; an attendee may not grant; a release without a mic
        r = next(ref)
        await ann.send(MicOffer(r, "v=0\r\n"))
        await eventually(lambda: ann.errs(r))
        assert ann.errs(r)[0].code == ErrorCode.NOT_ALLOWED
        assert await request(ann, Mic(next(ref), "grant", a)) == ErrorCode.NOT_ALLOWED
        assert await request(ann, MicRelease(next(ref))) == ErrorCode.NOT_ALLOWED

        # a second grant while one is open
        assert await request(mod, Mic(next(ref), "grant", a)) == "ack"
        assert await request(mod, Mic(next(ref), "grant", b)) == ErrorCode.MIC_BUSY
        # bad SDP: a clear error, the mic ends
        r = next(ref)
        await ann.send(MicOffer(r, "hello, this is not SDP"))
        await eventually(lambda: ann.errs(r))
        assert ann.errs(r)[0].code == ErrorCode.BAD_SDP
        await ended(a, "failed")
        r = next(ref)
        assert await request(mod, Mic(r, "grant", a)) == "ack"
        await ann.send(MicOffer(r, "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nthis is broken\r\n"))
        await eventually(lambda: ann.errs(r))
        assert ann.errs(r)[0].code == ErrorCode.BAD_SDP
        await ended(a, "failed")

        # granted but never accepted
        assert await request(mod, Mic(next(ref), "grant", a)) == "ack"
        await ended(a, "not_accepted")

        # accepted, but the peer never connects: its candidates lead nowhere
        assert await request(mod, Mic(next(ref), "grant", a)) == "ack"
        pc = RTCPeerConnection(MicSender(ann, tone()).policy.configuration())
        pc.addTrack(tone())
        MicSender(ann, tone()).policy.restrict(pc)
        await pc.setLocalDescription(await pc.createOffer())
        dead = "\r\n".join(
            " ".join([*p[:5], "9", *p[6:]]) if (p := line.split(" "))[0].startswith("a=cand")
            else line
            for line in pc.localDescription.sdp.split("\r\n")
        )  # fmt: skip
        await pc.close()
        r = next(ref)
        await ann.send(MicOffer(r, dead))
        await eventually(lambda: mod.mic_states(a)[-1:] == [("connecting", "")], what="connecting")
        await ended(a, "failed")
        assert any(e.code == ErrorCode.MIC_FAILED for e in ann.errs())

        # live, then: revoked; time limit; dropped peer; disconnect
        sender = await live(ann, a)
        assert await request(mod, Mic(next(ref), "revoke", a)) == "ack"
        await ended(a, "revoked")
        await sender.close()
        assert await request(mod, Mic(next(ref), "revoke", a)) == ErrorCode.NOT_ALLOWED

        sender = await live(ann, a)
        await ended(a, "time_limit")
        await sender.close()

        failures = len([e for e in ann.errs() if e.code == ErrorCode.MIC_FAILED])
        sender = await live(ann, a)
        await sender.close()  # the headset drops its peer connection
        await ended(a, "failed")
        await eventually(
            lambda: len([e for e in ann.errs() if e.code == ErrorCode.MIC_FAILED]) > failures
        )

        await live(bo, b)
        await bo.close()
        await ended(b, "disconnected")

        # the room carries on: nobody was closed, pings answered, no open peers left
        await ann.send(Ping(1))
        await eventually(lambda: ann.of(Pong))
        assert not ann.closed and not mod.closed
        assert all(not e.fatal for c in (ann, mod) for e in c.errs())
        assert srv.mics is not None and not srv.mics.open and not srv.authority.mics.busy
        await asyncio.gather(ann.close(), mod.close())
