"""The live mic from a real Chromium: fake microphone (eSpeak speech in a WAV) on 127.0.0.1.

The attendee raises a hand on /watch, the moderator grants the mic on /moderate, the
attendee accepts; the room hears the voice as stage packets, the test transcription service
hears the question, and the clone answers it looking at the asker.
"""

from __future__ import annotations

import re
import wave
from pathlib import Path

import av
import numpy as np
from playwright.async_api import async_playwright

from townhall.protocol.messages import Mic, StageStart
from townhall.server.app import TownhallServer
from townhall.server.rtc.policy import refused_candidates

from .browser import CHROMIUM, FLAGS, artifact, ensure_built
from .conftest import GUI, PAGES, TokenMaker, make_settings
from .fake_openai import FakeOpenAI
from .rtc_helpers import Recorder, decode_voice, speech
from .test_web_traps import LIGHT
from .waiting import eventually

QUESTION = "When will the new Kyiv office open?"


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=48_000)
    frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, :], format="s16", layout="mono")
    frame.sample_rate = rate
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48_000)
        # Chromium loops the file: 20 s of silence after the question keeps the test's release
        # ahead of the second time round (which would be transcribed as a second phrase; with
        # 4 s a busy machine let it through). The release follows the first phrase at once.
        tail = np.zeros(20 * 48_000, np.int16)
        w.writeframes(np.concatenate([*out, tail]).astype("<i2").tobytes())


@GUI  # it starts Chromium itself
async def test_chromium_attendee_speaks_a_question(tmp_path: Path, token: TokenMaker) -> None:
    ensure_built("watch", ("dist/watch.html", "dist/assets/watch.js"))
    ensure_built("moderate", ("dist/moderate.html", "dist/assets/moderate.js"))
    wav = tmp_path / "question.wav"
    write_wav(wav, *speech(QUESTION))
    heard: list[int] = []

    def transcribe(audio: bytes, fields: dict[str, str]) -> str:
        heard.append(len(audio))
        return QUESTION

    # No --allow-loopback-in-peer-connection: Chromium offers its interface addresses, as in
    # the demo; rtc.allowed_networks = local (the default) takes this machine's own.
    flags = [*FLAGS, f"--use-file-for-fake-audio-capture={wav}"]
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
        async with TownhallServer(settings) as srv, async_playwright() as pw:
            viewer = Recorder(srv.ws_url, token("vi", "spectator", "Vi"))
            await viewer.connect()
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=flags)
            try:
                att = await browser.new_page()
                mod = await browser.new_page(viewport={"width": 1440, "height": 1100})
                att_token = token("ann", "attendee", "Ann")
                await att.goto(f"{srv.url}/watch?token={att_token}")
                await mod.goto(f"{srv.url}/moderate?token={token('mo', 'moderator', 'Mo')}")
                hand = att.locator("#hand")
                await hand.wait_for(state="visible", timeout=15_000)
                await hand.click()
                grant = mod.get_by_role("button", name="Grant mic to Ann")
                await grant.click(timeout=15_000)
                await att.locator("#mic-accept").click(timeout=10_000)
                slot = next(p.slot for p in viewer.state.participants.values() if p.name == "Ann")
                await eventually(lambda: ("live", "") in viewer.mic_states(slot), 15, "a live mic")
                await mod.get_by_text("LIVE", exact=True).wait_for(timeout=5_000)
                peer = srv.mics.open[slot].peer  # type: ignore[union-attr]
                answer = peer.pc.localDescription.sdp  # type: ignore[union-attr]
                assert set(re.findall(r"a=candidate:\S+ \d+ \S+ \d+ (\S+)", answer)) == {
                    "127.0.0.1"
                }
                refused = refused_candidates(peer.pc)  # type: ignore[union-attr]
                assert all("127.0.0.1" not in r for r in refused), refused
                await mod.screenshot(path=str(artifact("moderate-live-mic.png")))
                await eventually(
                    lambda: heard, 20, "the transcription service hearing the question"
                )
                await eventually(lambda: len(viewer.live_packets(slot)) > 25, 10, "relayed voice")
                await att.locator("#mic-release").click()
                await eventually(
                    lambda: ("ended", "released") in viewer.mic_states(slot), 10, "end"
                )
                voice = decode_voice(viewer.live_packets(slot))
                assert len(voice) > 48_000 and np.abs(voice.astype(float)).mean() > 200

                await eventually(
                    lambda: any(s.asker_slot == slot for s in viewer.of(StageStart)),
                    20,
                    "the clone answering the spoken question",
                )
                start = next(s for s in viewer.of(StageStart) if s.asker_slot == slot)
                assert re.sub(r"\s+", " ", start.question_text) == QUESTION
            finally:
                await browser.close()
                await viewer.close()


@PAGES  # it starts Chromium itself; the page without WebGL: what it says is tested
async def test_the_page_says_why_the_mic_failed(tmp_path: Path, token: TokenMaker) -> None:
    """A browser on a network the server does not send to: the attendee reads the server's
    code and reason (BAD_SDP, which candidates were refused and why), not just "failed"."""
    ensure_built("watch", ("dist/watch.html", "dist/assets/watch.js"))
    settings = make_settings(tmp_path, rtc={"allowed_networks": "127.0.0.2/32"})
    async with TownhallServer(settings) as srv, async_playwright() as pw:
        viewer = Recorder(srv.ws_url, token("vi", "spectator", "Vi"))
        moderator = Recorder(srv.ws_url, token("mo", "moderator", "Mo"))
        await viewer.connect()
        await moderator.connect()
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            context = await browser.new_context()
            await context.add_init_script(LIGHT)
            att = await context.new_page()
            await att.goto(f"{srv.url}/watch?token={token('ann', 'attendee', 'Ann')}")
            await att.locator("#hand").click(timeout=15_000)
            await eventually(
                lambda: any(p.name == "Ann" for p in viewer.state.participants.values()), 15
            )
            slot = next(p.slot for p in viewer.state.participants.values() if p.name == "Ann")
            await moderator.send(Mic(1, "grant", slot))
            await att.locator("#mic-accept").click(timeout=10_000)
            await eventually(lambda: ("ended", "failed") in viewer.mic_states(slot), 20, "end")
            status = att.locator("#mic-status")
            await status.filter(has_text="BAD_SDP").wait_for(timeout=10_000)
            text = await status.text_content() or ""
            assert "no usable ICE candidate" in text and "outside allowed networks" in text, text
            assert "rtc.allowed_networks must include your address" in text, text
            await att.screenshot(path=str(artifact("watch-mic-failed.png")))
        finally:
            await browser.close()
            await viewer.close()
            await moderator.close()
