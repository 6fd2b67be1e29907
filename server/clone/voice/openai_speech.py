"""The OpenAI-compatible voice: any ``/audio/speech`` service, streamed as raw PCM.

The service gives audio only, so timing comes from eSpeak NG: it renders the same text (with
exact phoneme positions, a few ms) while the audio streams in, and :mod:`.align` warps that
timeline onto the received audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import numpy.typing as npt
import openai

from townhall.server.clone.speech import Utterance
from townhall.server.clone.voice.align import align
from townhall.server.clone.voice.errors import VoiceError
from townhall.server.clone.voice.espeak import EspeakVoice, check_text

SAMPLE_RATE = 24_000  # response_format="pcm": 24 kHz, 16-bit signed little-endian, mono
_SNIFF_BYTES = 64
_SILENT_PEAK = 64  # an int16 peak below this is no speech at all


class OpenAISpeech:
    """Speech from an OpenAI-compatible service, with phoneme timing aligned from eSpeak NG."""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str = "gpt-4o-mini-tts",
        voice: str = "alloy",
        speed: float | None = None,
        instructions: str | None = None,
        timeout_s: float = 15.0,
        max_retries: int = 1,
        reference: EspeakVoice | None = None,
    ) -> None:
        if speed is not None and not 0.25 <= speed <= 4.0:
            raise ValueError(f"speed must be in [0.25, 4.0], got {speed}")
        try:
            self._client = openai.AsyncOpenAI(
                base_url=base_url or None,
                api_key=api_key or None,  # None: the OPENAI_API_KEY environment variable
                timeout=timeout_s,
                max_retries=max_retries,
            )
        except openai.OpenAIError as exc:
            raise VoiceError(f"cannot configure the speech service: {exc}") from exc
        self.model = model
        self.voice = voice
        self.speed = speed
        self.instructions = instructions
        self.timeout_s = timeout_s
        self._reference = reference or EspeakVoice()

    async def aclose(self) -> None:
        await self._client.close()

    async def stream(self, text: str, language: str) -> AsyncIterator[npt.NDArray[np.int16]]:
        """The service's audio as 24 kHz int16 chunks, as soon as each arrives."""
        check_text(text)
        self._reference.voice_for(language)  # timing needs eSpeak to speak it: fail early
        extra: dict[str, Any] = {}
        if self.speed is not None:
            extra["speed"] = self.speed
        if self.instructions:
            extra["instructions"] = self.instructions
        carry = b""
        total = 0
        peak = 0
        try:
            async with self._client.audio.speech.with_streaming_response.create(
                model=self.model,
                voice=self.voice,
                input=text,
                response_format="pcm",
                **extra,
            ) as response:
                _check_content_type(response.headers.get("content-type", ""))
                async for data in response.iter_bytes():
                    if total == 0 and not carry:
                        _check_not_text(data)
                    total += len(data)
                    data, carry = _split_samples(carry + data)
                    if data:
                        samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
                        peak = max(peak, int(np.abs(samples.astype(np.int32)).max()))
                        yield samples
        except openai.APIStatusError as exc:
            raise VoiceError(f"speech service answered {exc.status_code}: {_reason(exc)}") from exc
        except openai.APITimeoutError as exc:
            raise VoiceError(f"speech service timed out (limit {self.timeout_s} s)") from exc
        except openai.APIConnectionError as exc:
            raise VoiceError(f"cannot reach the speech service: {exc}") from exc
        except VoiceError:
            raise
        except Exception as exc:  # transport errors mid-stream are not wrapped by openai
            raise VoiceError(f"speech stream failed: {type(exc).__name__}: {exc}") from exc
        if total == 0:
            raise VoiceError("speech service returned no audio")
        if carry:
            raise VoiceError(f"speech service returned {total} bytes, not whole 16-bit samples")
        if peak < _SILENT_PEAK:
            raise VoiceError("speech service returned silence")

    async def synthesize(self, text: str, language: str) -> Utterance:
        """Stream the audio in while eSpeak renders the reference, then align the timing."""
        check_text(text)
        self._reference.voice_for(language)
        reference = asyncio.ensure_future(self._reference.synthesize(text, language))
        try:
            chunks = [chunk async for chunk in self.stream(text, language)]
        except BaseException:
            reference.cancel()
            reference.add_done_callback(_retrieve)
            raise
        ref = await reference
        pcm = np.concatenate(chunks)
        return await asyncio.to_thread(align, ref, pcm, SAMPLE_RATE)

    async def timing_for(self, text: str, language: str, pcm: npt.NDArray[np.int16]) -> Utterance:
        """Timing for audio already streamed with :meth:`stream` (e.g. fed to Opus meanwhile)."""
        ref = await self._reference.synthesize(text, language)
        return await asyncio.to_thread(align, ref, pcm, SAMPLE_RATE)


def _retrieve(task: asyncio.Future[Utterance]) -> None:
    """Mark an abandoned reference's outcome as seen, so asyncio does not log it."""
    if not task.cancelled():
        task.exception()


def _reason(exc: openai.APIStatusError) -> str:
    """The service's own error message when it sent one, else the client's summary."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message
    return exc.message


def _split_samples(data: bytes) -> tuple[bytes, bytes]:
    """Whole int16 samples, and the odd byte left for the next chunk."""
    cut = len(data) - len(data) % 2
    return data[:cut], data[cut:]


def _check_content_type(content_type: str) -> None:
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind.startswith("text/") or kind.endswith("json"):
        raise VoiceError(f"speech service returned {kind}, not audio")


def _check_not_text(first: bytes) -> None:
    """Raw PCM of speech is never all printable ASCII; an error page or JSON is."""
    head = first[:_SNIFF_BYTES]
    if len(head) >= 8 and all(32 <= b < 127 or b in b"\t\r\n" for b in head):
        shown = head.decode("ascii", "replace")
        raise VoiceError(f"speech service returned text, not PCM audio: {shown!r}")
