"""The clone's voice: a sentence in, audio plus phoneme and word timing out, and Opus framing.

Modules: ``backend`` (the Voice protocol, ``make_voice``), ``espeak`` (embedded eSpeak NG),
``openai_speech`` (OpenAI-compatible service), ``align`` (timing for audio without it),
``timeline`` (eSpeak events to timing), ``opus`` (20 ms Opus frames), ``errors``.
"""

from townhall.server.clone.voice.backend import Voice, VoiceKind, make_voice
from townhall.server.clone.voice.errors import UnsupportedLanguageError, VoiceError

__all__ = ["UnsupportedLanguageError", "Voice", "VoiceError", "VoiceKind", "make_voice"]
