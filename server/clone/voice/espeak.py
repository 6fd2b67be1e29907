"""The embedded voice: eSpeak NG, loaded from the ``espeakng-loader`` wheel with ctypes.

eSpeak NG is a C library with global state and no thread safety, so the process has exactly one
:class:`EspeakEngine`; a lock serialises every use of it. Synthesis is synchronous: the library
calls our callback with audio chunks and the events (words, phonemes) that fall inside them, and
each event carries the exact sample index where it starts, so phoneme timing is free and exact.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from townhall.server.clone.speech import Utterance
from townhall.server.clone.voice.errors import UnsupportedLanguageError, VoiceError
from townhall.server.clone.voice.timeline import RawEvent, RawPhoneme, RawWord, build_timeline

# Language (BCP 47, lower case) -> eSpeak NG voice name.
ESPEAK_VOICES: Mapping[str, str] = {
    "en": "en-us",
    "en-us": "en-us",
    "en-gb": "en",
    "uk": "uk",
    "de": "de",
    "fr": "fr",
    "es": "es",
    "it": "it",
    "pl": "pl",
    "pt": "pt",
    "nl": "nl",
    "ru": "ru",
}

DEFAULT_RATE_WPM = 175  # eSpeak's own default
DEFAULT_PITCH = 50
RATE_RANGE = (80, 450)
PITCH_RANGE = (0, 99)

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0


class _EventId(ctypes.Union):
    _fields_ = (
        ("number", ctypes.c_int),
        ("name", ctypes.c_char_p),
        ("string", ctypes.c_char * 8),
    )


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


def _normalise(tag: str) -> str:
    return tag.strip().lower().replace("_", "-")


def espeak_voice_for(language: str, voices: Mapping[str, str] = ESPEAK_VOICES) -> str:
    """The eSpeak voice for a language tag: exact match first, then the primary subtag."""
    if not isinstance(language, str):
        raise UnsupportedLanguageError(repr(language), tuple(voices))
    tag = _normalise(language)
    voice = voices.get(tag) or voices.get(tag.split("-", 1)[0])
    if voice is None:
        raise UnsupportedLanguageError(language, tuple(voices))
    return voice


def check_text(text: str) -> str:
    """Reject what eSpeak cannot take: non-strings, empty text, NUL (ends a C string)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty")
    if "\x00" in text:
        raise ValueError("text contains a NUL character")
    return text


def check_prosody(rate_wpm: int, pitch: int) -> None:
    if not RATE_RANGE[0] <= rate_wpm <= RATE_RANGE[1]:
        raise ValueError(f"rate_wpm must be in {RATE_RANGE}, got {rate_wpm}")
    if not PITCH_RANGE[0] <= pitch <= PITCH_RANGE[1]:
        raise ValueError(f"pitch must be in {PITCH_RANGE}, got {pitch}")


class EspeakEngine:
    """The process's single eSpeak NG instance; use :func:`get_engine`, not the constructor."""

    def __init__(self) -> None:
        try:
            import espeakng_loader  # type: ignore[import-untyped]

            self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = espeakng_loader.get_data_path()
        except (ImportError, OSError, RuntimeError) as exc:
            raise VoiceError(f"eSpeak NG is not available: {exc}") from exc
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = (
            ctypes.c_int,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        )
        self._lib.espeak_SetVoiceByName.argtypes = (ctypes.c_char_p,)
        self._lib.espeak_SetParameter.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int)
        self._lib.espeak_Synth.argtypes = (
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        )
        self._lib.espeak_SetSynthCallback.argtypes = (_SynthCallback,)
        # PHONEME_EVENTS makes eSpeak report each phoneme's ASCII mnemonic, stress marks
        # included (``'oU``); DONT_EXIT keeps a bad data path from killing the process.
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS,
            0,
            data_path.encode(),
            _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT,
        )
        if rate <= 0:
            raise VoiceError(f"eSpeak NG failed to initialise with data at {data_path}")
        self.sample_rate: int = rate
        data = Path(data_path)
        self.voice_names = frozenset(f.name.lower() for f in data.glob("lang/**/*") if f.is_file())
        self.variants = frozenset(f.name for f in data.glob("voices/!v/*") if f.is_file())
        self._lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._events: list[RawEvent] = []
        self._voice: str | None = None
        # Keep a reference: the C library holds this pointer for the life of the process.
        self._callback = _SynthCallback(self._on_synth)
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_synth(self, wav: Any, n: int, events: Any) -> int:
        """Called by eSpeak (under our lock) with a chunk of audio and its events."""
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events and events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_WORD:
                sample = self._sample_of(event)
                self._events.append(RawWord(sample, event.text_position, event.length))
            elif event.type == _EVENT_PHONEME:
                name = event.id.string.split(b"\0", 1)[0].decode("ascii", "replace")
                self._events.append(RawPhoneme(self._sample_of(event), name))
            i += 1
        return 0  # 0 = go on

    def _sample_of(self, event: _Event) -> int:
        """The event's exact sample index; speak_lib.h calls the field internal, so it is used
        only while it agrees with the documented millisecond ``audio_position``."""
        from_ms: float = event.audio_position * self.sample_rate / 1000
        if abs(event.sample - from_ms) <= self.sample_rate / 1000 + 1:
            return int(event.sample)
        return round(from_ms)

    def check_voice(self, voice: str) -> None:
        """eSpeak quietly falls back on unknown names; a typo in a persona should not."""
        name, _, variant = voice.partition("+")
        if name.lower() not in self.voice_names:
            raise ValueError(f"unknown eSpeak voice {name!r} (e.g. en-us, uk)")
        if variant and variant not in self.variants:
            raise ValueError(f"unknown eSpeak variant {variant!r} (e.g. f1..f5, m1..m7)")

    def render(
        self,
        text: str,
        language: str,
        *,
        voice: str | None = None,
        rate_wpm: int = DEFAULT_RATE_WPM,
        pitch: int = DEFAULT_PITCH,
        variant: str | None = None,
    ) -> Utterance:
        """Synthesize a sentence, blocking (a few ms for a short sentence).

        ``voice`` is an eSpeak voice name (``en-us``, ``uk+f3``); by default the language's.
        """
        check_text(text)
        check_prosody(rate_wpm, pitch)
        voice = voice or espeak_voice_for(language)
        if variant and "+" not in voice:
            voice = f"{voice}+{variant}"
        self.check_voice(voice)
        data = text.encode("utf-8")
        with self._lock:
            if voice != self._voice:
                if self._lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                    self._voice = None
                    raise VoiceError(f"eSpeak NG has no voice {voice!r}")
                self._voice = voice
            self._lib.espeak_SetParameter(_PARAM_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self._chunks, self._events = [], []
            try:
                status = self._lib.espeak_Synth(
                    data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                chunks, events = self._chunks, self._events
            finally:
                self._chunks, self._events = [], []
        if status != _EE_OK:
            raise VoiceError(f"eSpeak NG synthesis failed with status {status}")
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        phonemes, words = build_timeline(events, text, self.sample_rate, len(pcm))
        return Utterance(
            text=text,
            language=language,
            sample_rate=self.sample_rate,
            pcm=pcm.astype(np.int16, copy=False),
            phonemes=phonemes,
            words=words,
        )


_engine: EspeakEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> EspeakEngine:
    """The one engine of this process, created on first use."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = EspeakEngine()
        return _engine


class EspeakVoice:
    """The embedded :class:`~townhall.server.clone.voice.backend.Voice`: offline, exact timing.

    ``voices`` maps languages to eSpeak voice names, variant included (a persona's
    ``{"en": "en-us+f3", "uk": "uk+f3"}``), over the defaults in :data:`ESPEAK_VOICES`;
    ``variant`` applies to languages whose voice names none.
    """

    def __init__(
        self,
        *,
        rate_wpm: int = DEFAULT_RATE_WPM,
        pitch: int = DEFAULT_PITCH,
        variant: str | None = None,
        voices: Mapping[str, str] | None = None,
    ) -> None:
        check_prosody(rate_wpm, pitch)
        self.rate_wpm = rate_wpm
        self.pitch = pitch
        self.variant = variant
        self.voices = {_normalise(lang): name for lang, name in (voices or {}).items()}
        self._engine = get_engine()
        for name in {*self.voices.values(), *([f"en+{variant}"] if variant else [])}:
            self._engine.check_voice(name)

    @property
    def sample_rate(self) -> int:
        return self._engine.sample_rate

    def voice_for(self, language: str) -> str:
        """The eSpeak voice name this voice speaks ``language`` with."""
        try:  # the persona's voices first, for every variety of the language
            voice = espeak_voice_for(language, self.voices)
        except UnsupportedLanguageError:
            voice = espeak_voice_for(language, {**ESPEAK_VOICES, **self.voices})
        return f"{voice}+{self.variant}" if self.variant and "+" not in voice else voice

    def render(self, text: str, language: str) -> Utterance:
        """Blocking synthesis, for threads that are not the event loop."""
        return self._engine.render(
            text,
            language,
            voice=self.voice_for(language),
            rate_wpm=self.rate_wpm,
            pitch=self.pitch,
        )

    async def synthesize(self, text: str, language: str) -> Utterance:
        """Synthesize in a worker thread so the event loop never waits on the C library."""
        check_text(text)
        self.voice_for(language)  # fail fast, before a thread hop
        return await asyncio.to_thread(self.render, text, language)
