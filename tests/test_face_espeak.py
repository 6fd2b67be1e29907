"""The face against real eSpeak NG output: phoneme coverage and lip sync with the audio.

eSpeak runs in a child process through ctypes (espeakng_loader ships the
library and data), so its process-wide state cannot touch, or be touched by,
the voice's own engine in this test process.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

from townhall.protocol.quant import decode_animation_frame
from townhall.server.clone.face.animator import Animator
from townhall.server.clone.face.phonemes import is_known, parse_mnemonic
from townhall.server.clone.face.visemes import build_track, envelope_track, mouth_open_track
from townhall.server.clone.speech import PhonemeEvent, Utterance

ENGLISH = [
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs.",
    "Thank you for the question about our roadmap; we're hiring engineers in Kyiv and Toronto.",
    "How vexingly quick daft zebras jump!",
    "Sphinx of black quartz, judge my vow.",
    "Usually the pleasure of measuring your choices is thoroughly worth it, isn't it?",
    "Our employees wonder why the board decided to buy another aircraft in June.",
    "I think the hourly wage is fair, but the cure for poverty requires more than words.",
    "Oh, boy! Noise annoys the loyal tourist near the pier, where the air is pure.",
]
UKRAINIAN = [
    "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів!",
    "Жебракують філософи при ґанку церкви в Гадячі, ще й шатро їхнє п'яне знаємо.",
    "Привіт, це загальні збори компанії. Дякую за ваше запитання!",
    "Ми плануємо відкрити новий офіс у Львові наступного року.",
    "Щоб зрозуміти стратегію, подивіться на цифри за останній квартал.",
]
VOICES = {"en-us": ENGLISH, "en": ENGLISH, "uk": UKRAINIAN}

# Synthesis events (sample, mnemonic) and audio, plus espeak_TextToPhonemes' phoneme names.
_CHILD = r"""
import base64, ctypes, json, sys
import espeakng_loader

lib = ctypes.CDLL(espeakng_loader.get_library_path())

class EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

class Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", EventId)]

Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                            ctypes.POINTER(Event))
lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                             ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
SYNCHRONOUS, PHONEME_EVENTS, CHARS_UTF8, EVENT_PHONEME = 2, 1, 1, 7
rate = lib.espeak_Initialize(SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(),
                             PHONEME_EVENTS)
events, audio = [], []

@Callback
def on_synth(wav, n, ev):
    if n > 0 and wav:
        audio.append(ctypes.string_at(wav, 2 * n))
    i = 0
    while ev[i].type != 0:
        if ev[i].type == EVENT_PHONEME:
            events.append((ev[i].sample, ev[i].id.string.decode("ascii", "replace")))
        i += 1
    return 0

lib.espeak_SetSynthCallback(on_synth)
out = []
for voice, texts in json.load(sys.stdin).items():
    for text in texts:
        lib.espeak_SetVoiceByName(voice.encode())
        data = text.encode() + b"\0"
        events.clear(); audio.clear()
        lib.espeak_Synth(data, len(data), 0, 0, 0, CHARS_UTF8, None, None)
        lib.espeak_Synchronize()
        buf = ctypes.create_string_buffer(text.encode())
        ptr = ctypes.c_void_p(ctypes.addressof(buf))
        names = []
        while ptr.value:
            chunk = lib.espeak_TextToPhonemes(ctypes.byref(ptr), CHARS_UTF8, ord("|") << 8)
            names += [p for word in chunk.decode().split() for p in word.split("|") if p]
        out.append({"voice": voice, "text": text, "rate": rate, "events": list(events),
                    "pcm": base64.b64encode(b"".join(audio)).decode(), "names": names})
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def espeak() -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(VOICES),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return list(json.loads(result.stdout))


def as_utterance(item: dict[str, Any]) -> Utterance:
    """Phoneme timing the way the voice builds it: each phoneme lasts until the next starts."""
    pcm = np.frombuffer(base64.b64decode(item["pcm"]), dtype=np.int16)
    rate = int(item["rate"])
    starts = [min(max(s, 0), len(pcm)) for s, _ in item["events"]]
    ends = [*starts[1:], len(pcm)]
    phonemes = []
    for (_, name), a, b in zip(item["events"], starts, ends, strict=True):
        bare, stressed = parse_mnemonic(name)
        phonemes.append(PhonemeEvent(a / rate, (b - a) / rate, bare, stressed))
    return Utterance(item["text"], item["voice"][:2], rate, pcm, tuple(phonemes))


def envelope(u: Utterance, times: np.ndarray, window_s: float = 0.03) -> np.ndarray:
    """Log RMS of the audio in a window centred on each time."""
    a = u.pcm.astype(np.float64)
    power = np.concatenate([[0.0], np.cumsum(a * a)])
    half = int(window_s * u.sample_rate / 2)
    centre = (times * u.sample_rate).astype(np.int64)
    lo = np.clip(centre - half, 0, len(a))
    hi = np.clip(centre + half, 0, len(a))
    return np.log1p(np.sqrt((power[hi] - power[lo]) / np.maximum(hi - lo, 1)))


def lag_s(mouth: np.ndarray, audio: np.ndarray, rate: float, max_lag_s: float = 0.15) -> float:
    """How late the mouth is against the audio envelope (s), by peak cross-correlation."""
    a = (mouth - mouth.mean()) / mouth.std()
    b = (audio - audio.mean()) / audio.std()
    n = len(a)
    lags = np.arange(-int(max_lag_s * rate), int(max_lag_s * rate) + 1)
    corr = np.array(
        [float(np.mean(a[max(0, k) : n + min(0, k)] * b[max(0, -k) : n - max(0, k)])) for k in lags]
    )
    i = int(np.argmax(corr))
    y0, y1, y2 = corr[i - 1], corr[i], corr[i + 1]
    return float(lags[i] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2)) / rate


def test_table_covers_every_phoneme_espeak_emits(espeak: list[dict[str, Any]]) -> None:
    emitted = {(item["voice"], name) for item in espeak for _, name in item["events"]}
    spelled = {(item["voice"], name) for item in espeak for name in item["names"]}
    assert len({v for v, _ in emitted}) == 3
    assert len(emitted) > 100  # English and Ukrainian, stress marks included
    missing = sorted((v, n) for v, n in emitted | spelled if not is_known(n))
    assert not missing


def test_stressed_vowels_are_marked(espeak: list[dict[str, Any]]) -> None:
    for item in espeak:
        u = as_utterance(item)
        assert any(p.stressed for p in u.phonemes), item["text"]


def test_mouth_follows_the_audio_envelope(espeak: list[dict[str, Any]]) -> None:
    """Mouth openness against the real audio: in step to well within the 20 ms budget."""
    lags, correlations = [], []
    for item in espeak:
        if item["voice"] == "en":
            continue  # same sentences as en-us
        u = as_utterance(item)
        times = np.arange(0.0, u.duration_s, 0.005)
        mouth = mouth_open_track(build_track(u.phonemes).at(times))
        audio = envelope(u, times)
        lags.append(lag_s(mouth, audio, 200.0))
        correlations.append(float(np.corrcoef(mouth, audio)[0, 1]))
    lags_ms = np.array(lags) * 1000
    assert np.abs(lags_ms).max() < 15.0, lags_ms
    assert abs(lags_ms.mean()) < 8.0, lags_ms
    assert min(correlations) > 0.3


def test_mouth_on_the_wire_follows_the_audio(espeak: list[dict[str, Any]]) -> None:
    """The same check from decoded 30 fps frames stamped with media time, as a viewer sees them."""
    anim = Animator(fps=30, seed=9, clone_position=(0.0, 1.1, -3.0))
    t0 = 50.0
    lags = []
    for item in espeak:
        if item["voice"] != "en-us":
            continue
        u = as_utterance(item)
        frames = anim.frames_for(u, t0, None, (0.0, 1.2, 6.0))
        times = np.array([t for t, _ in frames])
        mouth = mouth_open_track(np.array([decode_animation_frame(b).visemes for _, b in frames]))
        # a viewer interpolates between frames: compare on a fine grid
        fine = np.arange(times[0], times[-1], 0.005)
        lags.append(lag_s(np.interp(fine, times, mouth), envelope(u, fine - t0), 200.0))
        t0 += u.duration_s + 1.0
    assert np.abs(np.array(lags)).max() < 0.020


def test_without_phoneme_timing_the_mouth_follows_loudness(espeak: list[dict[str, Any]]) -> None:
    """The fallback for speech with no phonemes keeps the mouth in time with the voice."""
    for item in espeak[:4]:
        u = as_utterance(item)
        times = np.arange(0.0, u.duration_s, 0.005)
        mouth = mouth_open_track(envelope_track(u.pcm, u.sample_rate).at(times))
        assert abs(lag_s(mouth, envelope(u, times), 200.0)) < 0.010
        assert float(np.corrcoef(mouth, envelope(u, times))[0, 1]) > 0.7
