"""The embedded voice (eSpeak NG), its timing, and Opus framing."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

import av
import numpy as np
import numpy.typing as npt
import pytest

from townhall.server.clone.speech import Utterance
from townhall.server.clone.voice import (
    UnsupportedLanguageError,
    Voice,
    VoiceError,
    make_voice,
)
from townhall.server.clone.voice.espeak import ESPEAK_VOICES, EspeakVoice, get_engine
from townhall.server.clone.voice.opus import (
    FRAME_SAMPLES,
    SAMPLE_RATE,
    OpusDecoder,
    OpusEncoder,
    OpusFrame,
)
from townhall.server.clone.voice.timeline import (
    RawPhoneme,
    RawWord,
    build_timeline,
    is_pause,
    split_stress,
)

EN = "The quarterly results were better than we expected, and I'm proud of the team."
UK = "Доброго дня, колеги."


def words_of(text: str) -> list[str]:
    return [w.strip('.,;:!?"«»—') for w in text.split() if w.strip('.,;:!?"«»—')]


def resample(pcm: npt.NDArray[np.int16], rate: int, to: int) -> npt.NDArray[np.int16]:
    resampler = av.AudioResampler(format="s16", layout="mono", rate=to)
    frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, :], format="s16", layout="mono")
    frame.sample_rate = rate
    out = resampler.resample(frame) + resampler.resample(None)
    return np.concatenate([f.to_ndarray().reshape(-1) for f in out]).astype(np.int16)


def check_timing(u: Utterance) -> None:
    """Phonemes and words in order, each inside the audio."""
    end = u.duration_s + 1e-9
    for events in (u.phonemes, u.words):
        assert events
        starts = [e.start_s for e in events]
        assert starts == sorted(starts)
        for e in events:
            assert e.start_s >= 0 and e.duration_s >= 0 and e.start_s + e.duration_s <= end
    for a, b in zip(u.phonemes, u.phonemes[1:], strict=False):
        assert a.start_s + a.duration_s == pytest.approx(b.start_s)
    for a, b in zip(u.words, u.words[1:], strict=False):
        assert a.start_s + a.duration_s <= b.start_s + 1e-9


# --- eSpeak NG -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voice() -> EspeakVoice:
    return EspeakVoice()


async def test_english_renders_speech_with_timing(voice: EspeakVoice) -> None:
    u = await voice.synthesize(EN, "en")
    assert u.sample_rate == 22050 and u.pcm.dtype == np.int16 and u.language == "en"
    assert u.text == EN
    n_words = len(words_of(EN))
    assert 0.15 * n_words < u.duration_s < 0.8 * n_words
    assert np.sqrt(np.mean(u.pcm.astype(np.float64) ** 2)) > 500
    check_timing(u)
    assert [w.text for w in u.words] == words_of(EN)
    speech = [p for p in u.phonemes if not is_pause(p.phoneme)]
    assert len(speech) > 40
    assert any(p.stressed for p in u.phonemes)
    assert all(p.phoneme.isascii() and "'" not in p.phoneme for p in u.phonemes)
    # The last word ends where the speech ends (then only the sentence's closing pause).
    assert u.words[-1].start_s + u.words[-1].duration_s == pytest.approx(
        speech[-1].start_s + speech[-1].duration_s
    )


async def test_ukrainian_renders_speech_with_timing(voice: EspeakVoice) -> None:
    u = await voice.synthesize(UK, "uk")
    assert 0.8 < u.duration_s < 3.0
    assert np.abs(u.pcm.astype(np.int32)).max() > 3000
    check_timing(u)
    assert [w.text for w in u.words] == ["Доброго", "дня", "колеги"]
    assert "".join(p.phoneme for p in u.phonemes[:8]).startswith("dobR")  # a Ukrainian voice
    assert any(p.stressed for p in u.phonemes)


async def test_word_texts_are_the_input_tokens(voice: EspeakVoice) -> None:
    text = "We have 3,500 people; don't worry — it's fine!"
    u = await voice.synthesize(text, "en")
    # eSpeak splits "3,500" into sub-words and says "don't" is 3 characters long.
    assert [w.text for w in u.words] == [
        "We",
        "have",
        "3,500",
        "people",
        "don't",
        "worry",
        "it's",
        "fine",
    ]
    check_timing(u)


@pytest.mark.parametrize("language", ["xx", "klingon", "", "zz-ZZ"])
async def test_unknown_language_is_a_specific_error(voice: EspeakVoice, language: str) -> None:
    with pytest.raises(UnsupportedLanguageError) as info:
        await voice.synthesize("Hello.", language)
    assert isinstance(info.value, VoiceError) and isinstance(info.value, ValueError)
    assert "unsupported language" in str(info.value) and "uk" in str(info.value)


@pytest.mark.parametrize("language", ["en", "EN_us", "en-GB", "uk-UA", *ESPEAK_VOICES])
def test_every_mapped_language_speaks(voice: EspeakVoice, language: str) -> None:
    u = voice.render("Ok, 1 2 3.", language)
    assert u.duration_s > 0.3 and u.phonemes


@pytest.mark.parametrize("text", ["", "   ", "a\x00b"])
async def test_bad_text_is_rejected(voice: EspeakVoice, text: str) -> None:
    with pytest.raises(ValueError):
        await voice.synthesize(text, "en")


def test_bad_prosody_is_rejected() -> None:
    with pytest.raises(ValueError, match="rate_wpm"):
        EspeakVoice(rate_wpm=20)
    with pytest.raises(ValueError, match="pitch"):
        EspeakVoice(pitch=150)
    with pytest.raises(ValueError, match="variant"):
        EspeakVoice(variant="no-such-variant")
    assert EspeakVoice(variant="f3").render("Hello.", "en").duration_s > 0.2


def test_persona_voices_per_language(voice: EspeakVoice) -> None:
    persona = EspeakVoice(voices={"en": "en-us+f3", "uk": "uk+f3", "cs": "cs"}, pitch=55)
    assert persona.voice_for("en-GB") == "en-us+f3" and persona.voice_for("de") == "de"
    female = persona.render(UK, "uk")
    male = voice.render(UK, "uk")
    assert [p.phoneme for p in female.phonemes] == [p.phoneme for p in male.phonemes]
    n = min(len(female.pcm), len(male.pcm))
    assert not np.array_equal(female.pcm[:n], male.pcm[:n])
    assert persona.render("Dobrý den.", "cs").words[0].text == "Dobrý"
    assert EspeakVoice(variant="m3").voice_for("uk") == "uk+m3"
    with pytest.raises(ValueError, match="unknown eSpeak voice"):
        EspeakVoice(voices={"en": "english-please"})
    with pytest.raises(ValueError, match="unknown eSpeak variant"):
        EspeakVoice(voices={"en": "en-us+zz"})
    with pytest.raises(UnsupportedLanguageError):
        persona.render("Hello.", "tlh")


def test_rate_and_pitch_change_the_rendering(voice: EspeakVoice) -> None:
    fast = EspeakVoice(rate_wpm=260).render(EN, "en")
    base = voice.render(EN, "en")
    assert fast.duration_s < 0.85 * base.duration_s
    assert [p.phoneme for p in fast.phonemes if not is_pause(p.phoneme)] == [
        p.phoneme for p in base.phonemes if not is_pause(p.phoneme)
    ]
    high = EspeakVoice(pitch=90).render(EN, "en")
    assert not np.array_equal(high.pcm[: len(base.pcm)], base.pcm[: len(high.pcm)])


def assert_same_rendering(got: Utterance, want: Utterance) -> None:
    """eSpeak carries wave-generator state from call to call, so renderings of the same text
    can differ by about a pitch period (~10 ms); a mix-up between calls differs by far more."""
    assert got.text == want.text and got.language == want.language
    assert abs(got.duration_s - want.duration_s) < 0.02
    assert [p.phoneme for p in got.phonemes] == [p.phoneme for p in want.phonemes]
    assert [w.text for w in got.words] == [w.text for w in want.words]
    for a, b in zip(got.phonemes, want.phonemes, strict=True):
        assert abs(a.start_s - b.start_s) < 0.02
    assert_pauses_silent(got)


def assert_pauses_silent(u: Utterance) -> None:
    loud = np.abs(u.pcm.astype(np.int32)) > 200
    margin = round(0.003 * u.sample_rate)
    for p in u.phonemes:
        if is_pause(p.phoneme) and p.duration_s >= 0.05:
            a = round(p.start_s * u.sample_rate)
            b = round((p.start_s + p.duration_s) * u.sample_rate)
            assert not loud[a + margin : b - margin].any(), f"sound inside pause at {p.start_s}"


async def test_concurrent_calls_are_serialised(voice: EspeakVoice) -> None:
    texts = [(EN, "en"), (UK, "uk"), ("Thank you for the question.", "en"), ("Дякую.", "uk")]
    solo = {t: voice.render(t, lang) for t, lang in texts}
    together = await asyncio.gather(*(voice.synthesize(t, lang) for t, lang in texts * 3))
    with ThreadPoolExecutor(8) as pool:
        threaded = list(pool.map(lambda tl: voice.render(*tl), texts * 4))
    for got in [*together, *threaded]:
        assert_same_rendering(got, solo[got.text])


async def test_synthesis_does_not_block_the_event_loop(voice: EspeakVoice) -> None:
    long_text = " ".join([EN] * 40)
    ticks = 0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not done.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    start = ticks
    await voice.synthesize(long_text, "en")
    done.set()
    await task
    assert ticks - start > 3


def test_pauses_are_silent_and_speech_resumes_on_time(voice: EspeakVoice) -> None:
    """eSpeak's phoneme positions against the audio itself, sample by sample."""
    text = "Hello. Okay, well. The results were better than we expected, and I'm proud."
    for u in (voice.render(text, "en"), voice.render("Доброго дня, колеги. Дякую, друзі.", "uk")):
        loud = np.abs(u.pcm.astype(np.int32)) > 200
        rate = u.sample_rate
        checked = 0
        for k, p in enumerate(u.phonemes):
            if not is_pause(p.phoneme) or p.duration_s < 0.05:
                continue
            a = round(p.start_s * rate)
            margin = round(0.003 * rate)
            # Speech ran up to the pause ...
            assert loud[max(0, a - round(0.01 * rate)) : a + margin].any()
            # ... and resumes where the next spoken phoneme starts.
            later = [q for q in u.phonemes[k + 1 :] if not is_pause(q.phoneme)]
            if later:
                first_loud = a + margin + int(np.argmax(loud[a + margin :]))
                assert abs(first_loud / rate - later[0].start_s) < 0.015
            checked += 1
        assert checked >= 2
        assert_pauses_silent(u)


def test_phoneme_activity_matches_the_envelope(voice: EspeakVoice) -> None:
    """Spoken-phoneme activity correlates with the loudness envelope best near lag 0."""
    u = voice.render(EN + " Thank you, everyone!", "en")
    hop = int(u.sample_rate * 0.005)
    n = len(u.pcm) // hop
    frames = u.pcm[: n * hop].astype(np.float64).reshape(n, hop)
    envelope = np.log1p(np.sqrt((frames**2).mean(axis=1)))
    activity = np.zeros(n)
    for p in u.phonemes:
        if not is_pause(p.phoneme):
            activity[round(p.start_s / 0.005) : round((p.start_s + p.duration_s) / 0.005)] = 1
    lags = range(-10, 11)
    scores = [np.corrcoef(np.roll(activity, lag), envelope)[0, 1] for lag in lags]
    best = list(lags)[int(np.argmax(scores))]
    assert max(scores) > 0.6
    assert abs(best) * 5 <= 10  # ms


def test_make_voice_embedded() -> None:
    v = make_voice("embedded", rate_wpm=200, pitch=40)
    assert isinstance(v, EspeakVoice) and isinstance(v, Voice)
    assert v.rate_wpm == 200 and v.pitch == 40
    with pytest.raises(ValueError, match="unknown voice backend"):
        make_voice("festival")


def test_one_engine_per_process() -> None:
    assert get_engine() is get_engine()
    assert EspeakVoice()._engine is EspeakVoice()._engine


# --- the pure event -> timing conversion -----------------------------------------------------


def test_timeline_from_events() -> None:
    text = "Hi, 3,500 don't."
    events = [
        RawWord(sample=100, text_position=1, length=2),
        RawPhoneme(100, "h"),
        RawPhoneme(200, "'aI"),
        RawPhoneme(400, "_:"),
        RawWord(sample=600, text_position=5, length=2),
        RawPhoneme(600, "T"),
        RawPhoneme(700, ",r"),
        RawWord(sample=800, text_position=6, length=2),
        RawPhoneme(800, "f"),
        RawWord(sample=900, text_position=11, length=3),
        RawPhoneme(900, "d"),
        RawPhoneme(950, "_"),
    ]
    phonemes, words = build_timeline(events, text, 1000, 1000)
    assert [(p.phoneme, p.stressed) for p in phonemes] == [
        ("h", False),
        ("aI", True),
        ("_:", False),
        ("T", False),
        ("r", False),
        ("f", False),
        ("d", False),
        ("_", False),
    ]
    assert [p.start_s for p in phonemes] == [0.1, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95]
    assert [round(p.duration_s, 3) for p in phonemes] == [0.1, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05]
    # "Hi" ends before its pause; "3," and ",5" merge into "3,500"; text comes from the input.
    assert [(w.text, w.start_s, round(w.duration_s, 3)) for w in words] == [
        ("Hi", 0.1, 0.3),
        ("3,500", 0.6, 0.3),
        ("don't", 0.9, 0.05),
    ]


def test_split_stress() -> None:
    assert split_stress("'oU") == ("oU", True)
    assert split_stress(",E") == ("E", False)
    assert split_stress("_:") == ("_:", False)


# --- Opus ------------------------------------------------------------------------------------


def envelope(pcm: npt.NDArray[np.int16], width: int = 240) -> npt.NDArray[np.float64]:
    x = pcm.astype(np.float64)
    return np.sqrt(np.convolve(x * x, np.ones(width) / width, mode="same"))


def best_lag(ref: npt.NDArray[np.float64], got: npt.NDArray[np.float64], max_lag: int) -> int:
    """Lag (samples) by which ``got`` trails ``ref``, from FFT cross-correlation."""
    n = len(ref) + len(got)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(
        np.fft.rfft(got - got.mean(), size) * np.conj(np.fft.rfft(ref - ref.mean(), size)), size
    )
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    return int(lags[np.argmax(np.concatenate([xc[: max_lag + 1], xc[-max_lag:]]))])


@pytest.fixture(scope="module")
def speech(voice: EspeakVoice) -> Utterance:
    return voice.render(EN, "en")


def test_opus_frames_count_size_and_timestamps(speech: Utterance) -> None:
    encoder = OpusEncoder()
    frames = encoder.encode(speech.pcm, speech.sample_rate)
    assert len(frames) == math.ceil(speech.duration_s / 0.020)
    assert [f.pts_samples_48k for f in frames] == [i * FRAME_SAMPLES for i in range(len(frames))]
    assert all(isinstance(f, OpusFrame) and 0 < len(f.data) < 200 for f in frames)
    assert frames[3].start_s == pytest.approx(0.060)
    decoded = OpusDecoder().decode(frames)
    assert len(decoded) == len(frames) * FRAME_SAMPLES  # 20 ms per packet, no pre-skip
    assert encoder.lookahead_samples == 312 and encoder.lookahead_s == 0.0


def test_opus_round_trip_keeps_envelope_and_timing(speech: Utterance) -> None:
    reference = resample(speech.pcm, speech.sample_rate, SAMPLE_RATE)
    decoded = OpusDecoder().decode(OpusEncoder().encode(speech.pcm, speech.sample_rate))
    decoded = decoded[: len(reference)]
    a, b = envelope(reference), envelope(decoded)
    lag = best_lag(a, b, max_lag=960)
    assert abs(lag) <= SAMPLE_RATE // 1000  # <= 1 ms
    assert np.corrcoef(a, b)[0, 1] > 0.9

    # Without compensation the audio is late by exactly the reported lookahead.
    late = OpusEncoder(compensate_lookahead=False)
    decoded_late = OpusDecoder().decode(late.encode(speech.pcm, speech.sample_rate))
    lag_late = best_lag(a, envelope(decoded_late[: len(reference)]), max_lag=960)
    assert late.lookahead_s == pytest.approx(312 / SAMPLE_RATE)
    assert abs(lag_late - late.lookahead_samples) <= SAMPLE_RATE // 1000


def test_opus_streaming_equals_one_shot(speech: Utterance) -> None:
    one_shot = OpusEncoder().encode(speech.pcm, speech.sample_rate)
    encoder = OpusEncoder()
    rng = np.random.default_rng(1)
    streamed: list[OpusFrame] = []
    emitted_before_flush = 0
    pos = 0
    while pos < len(speech.pcm):
        step = int(rng.integers(1, 3000))
        streamed += encoder.feed(speech.pcm[pos : pos + step], speech.sample_rate)
        pos += step
    emitted_before_flush = len(streamed)
    streamed += encoder.flush()
    assert emitted_before_flush >= len(one_shot) - 2  # frames leave as soon as they are whole
    assert [f.pts_samples_48k for f in streamed] == [f.pts_samples_48k for f in one_shot]
    assert [f.data for f in streamed] == [f.data for f in one_shot]


def test_opus_segments_follow_each_other(voice: EspeakVoice, speech: Utterance) -> None:
    """One long-lived encoder: a second utterance starts at the next frame and stays in sync."""
    second = voice.render(UK, "uk")
    encoder = OpusEncoder()
    first_frames = encoder.encode(speech.pcm, speech.sample_rate)
    gap = encoder.silence(5)
    assert encoder.next_pts == (len(first_frames) + 5) * FRAME_SAMPLES
    upsampled = resample(second.pcm, second.sample_rate, 24000)
    second_frames = encoder.encode(upsampled, 24000)
    assert len(second_frames) == math.ceil(len(upsampled) / 24000 / 0.020)
    assert second_frames[0].pts_samples_48k == gap[-1].pts_samples_48k + FRAME_SAMPLES
    decoded = OpusDecoder().decode(first_frames + gap + second_frames)
    start = second_frames[0].pts_samples_48k
    reference = resample(second.pcm, second.sample_rate, SAMPLE_RATE)
    got = decoded[start : start + len(reference)]
    assert abs(best_lag(envelope(reference), envelope(got), 960)) <= SAMPLE_RATE // 1000
    assert np.corrcoef(envelope(reference), envelope(got))[0, 1] > 0.9
    assert np.abs(decoded[len(first_frames) * FRAME_SAMPLES + 480 : start - 480]).max() < 200


def test_opus_rejects_bad_input(speech: Utterance) -> None:
    encoder = OpusEncoder()
    with pytest.raises(TypeError):
        encoder.feed(speech.pcm.astype(np.float32), 22050)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mono"):
        encoder.feed(np.zeros((2, 100), np.int16), 22050)
    with pytest.raises(ValueError, match="sample_rate"):
        encoder.feed(speech.pcm, 0)
    encoder.feed(speech.pcm[:1000], 22050)
    with pytest.raises(ValueError, match="flush"):
        encoder.feed(speech.pcm[:1000], 24000)
    with pytest.raises(ValueError, match="bitrate"):
        OpusEncoder(bitrate=100)
    with pytest.raises(ValueError, match="complexity"):
        OpusEncoder(complexity=11)
    with pytest.raises(ValueError, match="application"):
        OpusEncoder(application="music")


def test_opus_lowdelay_reports_its_own_lookahead(speech: Utterance) -> None:
    encoder = OpusEncoder(application="lowdelay", complexity=5)
    assert encoder.lookahead_samples == 120  # 2.5 ms, read from the codec, not assumed
    reference = resample(speech.pcm, speech.sample_rate, SAMPLE_RATE)
    decoded = OpusDecoder().decode(encoder.encode(speech.pcm, speech.sample_rate))
    a, b = envelope(reference), envelope(decoded[: len(reference)])
    assert abs(best_lag(a, b, max_lag=960)) <= SAMPLE_RATE // 1000


def test_opus_tiny_and_empty_segments() -> None:
    encoder = OpusEncoder()
    assert encoder.encode(np.zeros(0, np.int16), 22050) == []
    frames = encoder.encode(np.full(50, 1000, np.int16), 22050)
    assert len(frames) == 1
