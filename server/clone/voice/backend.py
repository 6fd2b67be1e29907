"""What the director needs from a voice, and how configuration picks one.

Two backends: ``embedded`` (eSpeak NG, offline, exact timing) and ``openai`` (any
OpenAI-compatible speech service, timing aligned from eSpeak NG). Both return a whole
:class:`~townhall.server.clone.speech.Utterance` per sentence.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol, runtime_checkable

from townhall.server.clone.speech import Utterance

VoiceKind = Literal["embedded", "openai"]


@runtime_checkable
class Voice(Protocol):
    async def synthesize(self, text: str, language: str) -> Utterance:
        """One sentence to audio plus phoneme and word timing.

        Raises UnsupportedLanguageError for a language it cannot speak, VoiceError when
        synthesis fails, ValueError/TypeError for empty or non-string text.
        """
        ...


def make_voice(kind: VoiceKind | str, **settings: Any) -> Voice:
    """Build a backend from configuration.

    ``embedded``: ``rate_wpm`` (80-450, default 175), ``pitch`` (0-99, default 50), ``variant``
    (an eSpeak variant such as ``f3``). ``openai``: ``base_url``, ``api_key``, ``model``,
    ``voice``, ``speed``, ``instructions``, ``timeout_s``, ``max_retries``.
    """
    if kind == "embedded":
        from townhall.server.clone.voice.espeak import EspeakVoice

        embedded: Voice = EspeakVoice(**settings)
        return embedded
    if kind == "openai":
        from townhall.server.clone.voice.openai_speech import OpenAISpeech

        service: Voice = OpenAISpeech(**settings)
        return service
    raise ValueError(f"unknown voice backend {kind!r}; expected 'embedded' or 'openai'")
