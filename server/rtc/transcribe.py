"""Speech-to-text for the live mic: any OpenAI-compatible transcription service.

The ``openai`` package (about a second of CPU to import) is imported when a transcriber
is made, not when the server starts: most rooms never use the live mic.
"""

from __future__ import annotations

import io
import wave

import numpy as np
import numpy.typing as npt


def wav_bytes(pcm: npt.NDArray[np.int16], sample_rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.ascontiguousarray(pcm, dtype="<i2").tobytes())
    return buf.getvalue()


class Transcriber:
    """Turns one spoken phrase (mono int16 PCM) into text with ``/audio/transcriptions``."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout_s: float = 30.0) -> None:
        import openai

        self.model = model
        self.client = openai.AsyncOpenAI(
            base_url=base_url or None, api_key=api_key or "none", timeout=timeout_s, max_retries=1
        )

    async def transcribe(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> str:
        result = await self.client.audio.transcriptions.create(
            model=self.model, file=("phrase.wav", wav_bytes(pcm, sample_rate), "audio/wav")
        )
        return str(result.text).strip()

    async def close(self) -> None:
        await self.client.close()
