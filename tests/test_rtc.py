"""The live mic end to end: a real aiortc peer on 127.0.0.1 speaks a generated question.

Real websockets server, real aiortc peers (server and headset), the FakeOpenAI transcription
service over HTTP on 127.0.0.1, the embedded clone. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from townhall.plugin.mic import MicSender, PcmSource
from townhall.protocol.messages import (
    Ack,
    Hand,
    Mic,
    QuestionChanged,
    StageStart,
)
from townhall.server.app import TownhallServer

from .conftest import TokenMaker, make_settings
from .fake_openai import FakeOpenAI
from .rtc_helpers import Recorder, decode_voice, speech
from .waiting import eventually

QUESTION = "What is our plan for the Lviv office?"


async def test_spoken_question_is_heard_by_all_and_answered(
    tmp_path: Path, token: TokenMaker
) -> None:
    heard: list[int] = []

    def transcribe(audio: bytes, fields: dict[str, str]) -> str:
        heard.append(len(audio))
        return QUESTION

    with FakeOpenAI(transcribe=transcribe) as api:
        settings = make_settings(
            tmp_path,
            clone={"enabled": True, "pause_s": 0.1},
            rtc={
                "transcription": "openai",
                "transcription_base_url": api.base_url,
                "transcription_api_key": api.api_key,
            },
        )
        async with TownhallServer(settings) as srv:
            url = srv.ws_url
            asker = Recorder(url, token("ann", "attendee", "Ann"))
            other = Recorder(url, token("bo", "attendee", "Bo"))
            viewer = Recorder(url, token("cy", "spectator", "Cy"))
            mod = Recorder(url, token("mo", "moderator", "Mo"))
            for c in (asker, other, viewer, mod):
                await c.connect()
            slot = asker.welcome.slot  # type: ignore[union-attr]
            await asker.send(Hand(True))
            await eventually(lambda: mod.state.hands.get(slot), what="raised hand")
            await mod.send(Mic(1, "grant", slot))
            await eventually(lambda: ("granted", "") in asker.mic_states(slot), what="grant")
            # The grant's Ack and the room's MicChanged travel separately: wait for both.
            await eventually(
                lambda: any(isinstance(m, Ack) and m.ref == 1 for m in mod.got), what="grant ack"
            )
            await eventually(lambda: not mod.state.hands.get(slot), what="a granted hand goes down")

            pcm, rate = speech(QUESTION)
            source = PcmSource(pcm, rate)
            mic = MicSender(asker, source)
            await mic.start()
            await eventually(lambda: ("live", "") in mod.mic_states(slot), what="live mic")
            await asyncio.wait_for(source.done.wait(), 15)
            # every client, the speaker too, gets the voice as stage packets
            for c in (asker, other, viewer, mod):
                await eventually(lambda c=c: len(c.live_packets(slot)) >= 40, what="relayed voice")
            await eventually(lambda: heard, timeout=10, what="transcription")
            await mic.release()
            await eventually(lambda: ("ended", "released") in viewer.mic_states(slot), what="end")

            packets = viewer.live_packets(slot)
            assert all(p.label == "live" and p.answer == 0 for p in packets)
            times = [p.media_time_us for p in packets if p.opus]
            assert times == sorted(times)
            voice = decode_voice(packets)
            spoken_s = len(pcm) / rate
            assert 0.6 * spoken_s < len(voice) / 48_000 < 1.3 * spoken_s
            assert float(np.abs(voice.astype(np.float64)).mean()) > 300, "the voice is audible"
            mouth = [p.anim for p in packets if p.anim]
            assert mouth and all(len(a) % 139 == 0 for a in mouth)
            captions = [c.text for p in packets for c in p.captions]
            assert " ".join(captions) == QUESTION

            # the transcribed question enters the queue with the asker and is answered
            def spoken_question() -> list[QuestionChanged]:
                return [
                    m for m in viewer.of(QuestionChanged)
                    if m.question.text == QUESTION and m.question.asker_slot == slot
                ]  # fmt: skip

            await eventually(spoken_question, what="question in the queue")
            qid = spoken_question()[0].question.id
            await eventually(
                lambda: any(s.question == qid for s in viewer.of(StageStart)),
                timeout=15,
                what="the clone answering",
            )
            start = next(s for s in viewer.of(StageStart) if s.question == qid)
            assert start.asker_slot == slot
            assert srv.store.load_questions()  # stored durably
            assert srv.mics is not None and not srv.mics.open
            for c in (asker, other, viewer, mod):
                await c.close()
