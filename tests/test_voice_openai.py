"""The OpenAI-compatible voice through the real ``openai`` client against a local fake service."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import av
import numpy as np
import numpy.typing as npt
import pytest

from tests.fake_openai import FakeOpenAI, LocalHTTPServer
from townhall.server.clone.speech import Utterance
from townhall.server.clone.voice import UnsupportedLanguageError, Voice, VoiceError, make_voice
from townhall.server.clone.voice.align import Warp
from townhall.server.clone.voice.espeak import get_engine
from townhall.server.clone.voice.openai_speech import SAMPLE_RATE, OpenAISpeech

EN = "Thank you for the question. We are investing in three new offices this year."
UK = "Доброго дня, колеги. Дякую за запитання."


def resample(pcm: npt.NDArray[np.int16], rate: int, to: int) -> npt.NDArray[np.int16]:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to)
    frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, :], format="s16", layout="mono")
    frame.sample_rate = rate
    out = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.int16)


class Renderer:
    """A speech hook: eSpeak at another speed (and maybe another voice), as 24 kHz PCM.

    Keeps what it rendered, whose eSpeak timing is the truth the alignment must recover.
    """

    def __init__(self, language: str, speed: float, **voice: Any) -> None:
        self.language = language
        self.rate_wpm = round(175 * speed)
        self.voice = voice
        self.rendered: list[Utterance] = []

    def __call__(self, body: dict[str, Any]) -> bytes:
        u = get_engine().render(body["input"], self.language, rate_wpm=self.rate_wpm, **self.voice)
        self.rendered.append(u)
        return resample(u.pcm, u.sample_rate, SAMPLE_RATE).astype("<i2").tobytes()


def boundary_errors(got: Utterance, truth: Utterance) -> npt.NDArray[np.float64]:
    assert [p.phoneme for p in got.phonemes] == [p.phoneme for p in truth.phonemes]
    starts = [abs(a.start_s - b.start_s) for a, b in zip(got.phonemes, truth.phonemes, strict=True)]
    last_end = abs(
        got.phonemes[-1].start_s
        + got.phonemes[-1].duration_s
        - truth.phonemes[-1].start_s
        - truth.phonemes[-1].duration_s
    )
    return np.array([*starts, last_end])


@pytest.mark.parametrize(
    ("text", "language", "speed", "voice"),
    [
        (EN, "en", 1.25, {}),
        (EN, "en", 0.8, {}),
        (UK, "uk", 1.25, {}),
        (EN, "en", 1.25, {"variant": "f3", "pitch": 70}),  # another speaker, too
        (UK, "uk", 0.85, {"variant": "m3", "pitch": 30}),
    ],
)
async def test_aligned_timing_matches_the_rendered_audio(
    text: str, language: str, speed: float, voice: dict[str, Any]
) -> None:
    renderer = Renderer(language, speed, **voice)
    with FakeOpenAI(speech=renderer) as api:
        speaker = OpenAISpeech(base_url=api.base_url, api_key=api.api_key, model="tts-1")
        u = await speaker.synthesize(text, language)
        await speaker.aclose()
        ((kind, body),) = api.requests
    assert kind == "speech"
    assert body == {"model": "tts-1", "voice": "alloy", "input": text, "response_format": "pcm"}
    (truth,) = renderer.rendered
    assert u.sample_rate == SAMPLE_RATE and u.text == text and u.language == language
    assert abs(u.duration_s - truth.duration_s) < 0.002  # the received audio, whole
    errors = boundary_errors(u, truth)
    # The unaligned reference timing would be far off: the alignment has real work to do.
    reference = get_engine().render(text, language)
    naive = np.array(
        [
            abs(a.start_s - b.start_s)
            for a, b in zip(reference.phonemes, truth.phonemes, strict=True)
        ]
    )
    assert np.median(naive) > 0.1
    assert np.median(errors) <= 0.020
    assert np.percentile(errors, 90) <= 0.040
    word_errors = [abs(a.start_s - b.start_s) for a, b in zip(u.words, truth.words, strict=True)]
    assert [w.text for w in u.words] == [w.text for w in truth.words]
    assert np.median(word_errors) <= 0.020
    for events in (u.phonemes, u.words):
        starts = [e.start_s for e in events]
        assert starts == sorted(starts)
        assert all(e.start_s + e.duration_s <= u.duration_s + 1e-9 for e in events)


async def test_audio_streams_in_chunks() -> None:
    renderer = Renderer("en", 1.0)
    with FakeOpenAI(speech=renderer, chunk_delay_s=0.02) as api:
        speaker = OpenAISpeech(base_url=api.base_url, api_key=api.api_key)
        chunks = [c async for c in speaker.stream("Hello there, everyone.", "en")]
        await speaker.aclose()
    sent = resample(renderer.rendered[0].pcm, 22050, SAMPLE_RATE)
    assert len(chunks) >= max(2, len(sent) * 2 // 4800 // 2)  # 4800-byte chunks, not one blob
    assert all(c.dtype == np.int16 for c in chunks)
    assert np.array_equal(np.concatenate(chunks), sent)


async def test_timing_for_already_streamed_audio() -> None:
    renderer = Renderer("en", 1.25)
    with FakeOpenAI(speech=renderer) as api:
        speaker = OpenAISpeech(base_url=api.base_url, api_key=api.api_key)
        pcm = np.concatenate([c async for c in speaker.stream(EN, "en")])
        u = await speaker.timing_for(EN, "en", pcm)
        await speaker.aclose()
    assert np.median(boundary_errors(u, renderer.rendered[0])) <= 0.020


def test_make_voice_openai() -> None:
    v = make_voice("openai", base_url="http://127.0.0.1:9/v1", api_key="k", voice="nova")
    assert isinstance(v, OpenAISpeech) and isinstance(v, Voice) and v.voice == "nova"
    with pytest.raises(ValueError, match="speed"):
        make_voice("openai", base_url="http://127.0.0.1:9/v1", api_key="k", speed=9.0)


def test_warp_of_identical_audio_is_identity() -> None:
    u = get_engine().render(EN, "en")
    warp = Warp(u.pcm, u.sample_rate, u.pcm, u.sample_rate)
    for t in (0.0, 0.5, 1.234, u.duration_s / 2, u.duration_s):
        assert warp(t) == pytest.approx(t, abs=0.006)


# --- failures ---------------------------------------------------------------------------------


async def expect_voice_error(base_url: str, match: str, **settings: Any) -> VoiceError:
    speaker = OpenAISpeech(base_url=base_url, max_retries=0, **{"api_key": "test-key", **settings})
    try:
        with pytest.raises(VoiceError, match=match) as info:
            await speaker.synthesize("Hello there, everyone.", "en")
    finally:
        await speaker.aclose()
    return info.value


async def test_bad_key_is_a_voice_error() -> None:
    with FakeOpenAI(speech=Renderer("en", 1.0)) as api:
        error = await expect_voice_error(api.base_url, "answered 401: bad key", api_key="wrong")
    assert not isinstance(error, UnsupportedLanguageError)


@contextmanager
def service(status: int, body: bytes, content_type: str, delay_s: float = 0.0) -> Iterator[str]:
    """A one-route HTTP server answering every POST the same way."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(delay_s)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = LocalHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


async def test_server_error_is_a_voice_error() -> None:
    body = json.dumps({"error": {"message": "model overloaded", "type": "server"}}).encode()
    with service(500, body, "application/json") as url:
        await expect_voice_error(url, "answered 500: model overloaded")


async def test_json_instead_of_audio_is_a_voice_error() -> None:
    with service(200, b'{"status": "queued"}', "application/json") as url:
        await expect_voice_error(url, "application/json, not audio")


async def test_timeout_is_a_voice_error() -> None:
    with service(200, b"\0\0", "audio/pcm", delay_s=2.0) as url:
        await expect_voice_error(url, "timed out", timeout_s=0.3)


async def test_unreachable_service_is_a_voice_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await expect_voice_error(f"http://127.0.0.1:{port}/v1", "cannot reach")


Hook = Callable[[dict[str, Any]], bytes]


@pytest.mark.parametrize(
    ("hook", "match"),
    [
        (lambda body: b"", "no audio"),
        (lambda body: b"\x01\x02" * 1000 + b"\x03", "not whole 16-bit samples"),
        (lambda body: b"<html><body>502 Bad Gateway</body></html>" * 10, "text, not PCM"),
        (lambda body: bytes(48_000), "silence"),
    ],
    ids=["empty", "odd-bytes", "html", "silence"],
)
async def test_garbage_audio_is_a_voice_error(hook: Hook, match: str) -> None:
    with FakeOpenAI(speech=hook) as api:
        await expect_voice_error(api.base_url, match)


async def test_unknown_language_fails_before_any_request() -> None:
    with FakeOpenAI(speech=Renderer("en", 1.0)) as api:
        speaker = OpenAISpeech(base_url=api.base_url, api_key=api.api_key)
        with pytest.raises(UnsupportedLanguageError):
            await speaker.synthesize("Hello.", "tlh")
        with pytest.raises(ValueError, match="empty"):
            await speaker.synthesize("  ", "en")
        await speaker.aclose()
        assert api.requests == []
