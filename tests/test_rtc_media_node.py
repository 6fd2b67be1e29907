"""The live mic on a media node (``rtc.media = "bus"``): real processes on the real bus.

An authority, an edge and a media node (``serve --role media``), each its own process, on
NATS at 127.0.0.1:4222; real aiortc peers (the attendee's here, the node's there) on
127.0.0.1 only; the FakeOpenAI transcription service over HTTP on 127.0.0.1. The attendee
and the listeners are clients of the edge (one listener of the authority itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.js.errors
import numpy as np
import pytest

from townhall.plugin.mic import MicSender, PcmSource
from townhall.protocol.errors import ErrorCode, RequestFailed
from townhall.protocol.messages import Ack, Ask, Hand, Mic, QuestionChanged
from townhall.server.fanout.bus import Subjects

from .conftest import SECRET, TokenMaker
from .fake_openai import FakeOpenAI
from .rtc_helpers import Recorder, decode_voice, speech
from .test_bus_edges import NATS_URL, Proc, health, start, stop
from .waiting import eventually

QUESTION = "When does the Lviv office open?"
WAIT_S = 30.0  # event waits on a busy machine: several processes, aiortc on both sides


@dataclass
class Deployment:
    room: str
    config: Path
    authority: Proc
    edge: Proc
    procs: list[Proc]

    @property
    def http(self) -> str:
        return self.authority.url.replace("ws", "http", 1).removesuffix("/ws")

    async def media_node(self) -> Proc:
        node = await start(self.config, "media", " media node ")
        self.procs.insert(0, node)
        return node


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    """An authority with rtc.media = bus and one edge; the test starts the media node."""
    heard: list[int] = []

    def transcribe(audio: bytes, fields: dict[str, str]) -> str:
        heard.append(len(audio))
        return QUESTION

    room = f"t{uuid.uuid4().hex[:10]}"
    config = tmp_path / "townhall.toml"
    with FakeOpenAI(transcribe=transcribe) as api:
        config.write_text(
            f'[server]\nroom = "{room}"\nhost = "127.0.0.1"\n'
            f'[auth]\nsecret = "{SECRET}"\n'
            f'[store]\npath = "{tmp_path / "townhall.db"}"\n'
            "[clone]\nenabled = false\n"
            f'[bus]\nurl = "{NATS_URL}"\nedge_timeout_s = 5.0\nreplay_s = 30.0\n'
            f'deployment = "{room}"\n'
            '[rtc]\nmedia = "bus"\nmedia_timeout_s = 5.0\ntranscription = "openai"\n'
            f'transcription_base_url = "{api.base_url}"\ntranscription_api_key = "{api.api_key}"\n'
            '[log]\nformat = "text"\n'
        )
        procs: list[Proc] = []
        try:
            authority = await start(config, "authority", "WebSocket ")
            procs.append(authority)
            edge = await start(config, "edge", " serving room ")
            procs.insert(0, edge)
            yield Deployment(room, config, authority, edge, procs)
        finally:
            for proc in procs:
                await stop(proc)
            nc = await nats.connect(NATS_URL)
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await nc.jetstream().delete_stream(Subjects.of(room).stream)
            await nc.close()


async def granted(mod: Recorder, asker: Recorder, ref: int) -> int:
    """The moderator hands the asker the mic; returns the asker's slot."""
    slot = asker.welcome.slot  # type: ignore[union-attr]
    await asker.send(Hand(True))
    await eventually(lambda: mod.state.hands.get(slot), WAIT_S, "raised hand")
    await mod.send(Mic(ref, "grant", slot))
    await eventually(
        lambda: any(isinstance(m, Ack) and m.ref == ref for m in mod.got), WAIT_S, "grant ack"
    )
    await eventually(lambda: asker.mic_states(slot)[-1:] == [("granted", "")], WAIT_S, "grant")
    return slot


def candidate_addresses(sdp: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"a=candidate:\S+ \d+ \S+ \d+ (\S+) ", sdp)}


async def test_no_media_node_fails_the_mic_with_a_reason(
    deployment: Deployment, token: TokenMaker
) -> None:
    room, url = deployment.room, deployment.edge.url
    asker = Recorder(url, token("ann", "attendee", "Ann", room=room))
    mod = Recorder(url, token("mo", "moderator", "Mo", room=room))
    for c in (asker, mod):
        await c.connect()
    try:
        slot = await granted(mod, asker, 1)
        pcm, rate = speech(QUESTION)
        mic = MicSender(asker, PcmSource(pcm, rate))
        with pytest.raises(RequestFailed) as failed:
            await mic.start(timeout_s=WAIT_S)  # an answer comes: no hang
        assert failed.value.code == ErrorCode.MIC_FAILED
        assert "no media node" in failed.value.reason
        await eventually(
            lambda: ("ended", "failed") in mod.mic_states(slot), WAIT_S, "the mic ended"
        )
        # The room goes on.
        await asker.send(Ask(2, "Is the canteen open on Fridays?"))
        await eventually(lambda: mod.of(QuestionChanged), WAIT_S, "a question after the fault")
    finally:
        for c in (asker, mod):
            await c.close()


async def test_mic_on_a_media_node_is_heard_on_the_edge_and_ends_when_the_node_dies(
    deployment: Deployment, token: TokenMaker
) -> None:
    room, url = deployment.room, deployment.edge.url
    node = await deployment.media_node()
    asker = Recorder(url, token("ann", "attendee", "Ann", room=room))
    other = Recorder(url, token("bo", "attendee", "Bo", room=room))
    mod = Recorder(url, token("mo", "moderator", "Mo", room=room))
    here = Recorder(deployment.authority.url, token("cy", "spectator", "Cy", room=room))
    clients = (asker, other, mod, here)
    for c in clients:
        await c.connect()
    try:
        slot = await granted(mod, asker, 1)
        pcm, rate = speech(QUESTION)
        source = PcmSource(pcm, rate)
        mic = MicSender(asker, source)
        await mic.start(timeout_s=WAIT_S)
        assert mic.pc is not None and mic.pc.remoteDescription is not None
        # The node's answer gathers on the configured host address only.
        assert candidate_addresses(mic.pc.remoteDescription.sdp) == {"127.0.0.1"}
        await eventually(lambda: ("live", "") in mod.mic_states(slot), WAIT_S, "live mic")
        await asyncio.wait_for(source.done.wait(), WAIT_S)
        for c in clients:  # the edge's clients and the authority's own
            await eventually(
                lambda c=c: len(c.live_packets(slot)) >= 40, WAIT_S, "the voice, relayed"
            )
        await mic.release()
        await eventually(lambda: ("ended", "released") in other.mic_states(slot), WAIT_S, "end")

        packets = other.live_packets(slot)
        assert all(p.label == "live" and p.answer == 0 for p in packets)
        times = [p.media_time_us for p in packets if p.opus]
        assert times == sorted(times)
        voice = decode_voice(packets)
        spoken_s = len(pcm) / rate
        assert 0.6 * spoken_s < len(voice) / 48_000 < 1.3 * spoken_s
        assert float(np.abs(voice.astype(np.float64)).mean()) > 300, "the voice is audible"
        # The node transcribed it; the room put the question in the queue with its asker.
        await eventually(
            lambda: any(
                m.question.text == QUESTION and m.question.asker_slot == slot
                for m in other.of(QuestionChanged)
            ),
            WAIT_S,
            "the spoken question in the queue",
        )

        # A second mic, then the media node is killed: the mic ends with a reason.
        slot = await granted(mod, asker, 2)
        source = PcmSource(np.tile(pcm, 20), rate)  # still talking when the node dies
        mic = MicSender(asker, source)
        await mic.start(timeout_s=WAIT_S)
        await eventually(lambda: mod.mic_states(slot)[-1:] == [("live", "")], WAIT_S, "live")
        status = await health(deployment.http)
        assert status["media_mics"] == 1 and status["media_dropped"] == 0, status
        node.process.send_signal(signal.SIGKILL)
        await node.process.wait()
        await eventually(
            lambda: mod.mic_states(slot)[-1:] == [("ended", "failed")], WAIT_S, "mic failed"
        )
        await eventually(
            lambda: any(e.code == ErrorCode.MIC_FAILED for e in asker.errs()), WAIT_S, "told"
        )
        notices = [e for e in asker.errs() if e.code == ErrorCode.MIC_FAILED]
        assert any("media node" in e.reason for e in notices), notices
        assert (await health(deployment.http))["media_mics"] == 0
        await mic.close()
        # The room goes on.
        await other.send(Ask(3, "Is there parking for bicycles?"))
        await eventually(
            lambda: any(m.question.text.startswith("Is there parking") for m in
                        here.of(QuestionChanged)),
            WAIT_S,
            "the room still answers",
        )  # fmt: skip
    finally:
        print("media node:", "".join(node.lines)[-4000:])  # shown if the test fails
        print("authority:", "".join(deployment.authority.lines)[-4000:])
        for c in clients:
            await c.close()
