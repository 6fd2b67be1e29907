"""The clone's face: phoneme table, viseme track, co-articulation and mouth timing."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from townhall.protocol.skeleton import VISEME_INDEX, VISEMES
from townhall.server.clone.face.phonemes import (
    PhonemeClass,
    Stop,
    is_known,
    known_phonemes,
    parse_mnemonic,
    shape_of,
)
from townhall.server.clone.face.visemes import (
    LIPS_K_S,
    OPENNESS,
    build_track,
    mouth_open,
    mouth_open_track,
    viseme_track,
)
from townhall.server.clone.speech import PhonemeEvent

# ---------------------------------------------------------------- helpers


def seq(*items: tuple[str, float], start: float = 0.2) -> list[PhonemeEvent]:
    """Back-to-back phonemes from (mnemonic, duration) pairs; a leading ' marks stress."""
    out, t = [], start
    for name, dur in items:
        bare, stressed = parse_mnemonic(name)
        out.append(PhonemeEvent(t, dur, bare, stressed))
        t += dur
    return out


def openness_at(phonemes: list[PhonemeEvent], times: np.ndarray) -> np.ndarray:
    return mouth_open_track(build_track(phonemes).at(times))


def centroid(t: np.ndarray, y: np.ndarray) -> float:
    y = y - y.min()
    return float((t * y).sum() / y.sum())


# ---------------------------------------------------------------- the table


def test_stress_marks_are_stripped() -> None:
    assert parse_mnemonic("'oU") == ("oU", True)
    assert parse_mnemonic(",aI") == ("aI", False)
    assert parse_mnemonic("%@") == ("@", False)
    assert shape_of("'aa") is shape_of("aa")


@pytest.mark.parametrize(
    ("phoneme", "viseme"),
    [
        ("p", "PP"), ("b", "PP"), ("m", "PP"),
        ("f", "FF"), ("v", "FF"),
        ("T", "TH"), ("D", "TH"),
        ("t", "DD"), ("d", "DD"), ("t[", "DD"),
        ("k", "kk"), ("g", "kk"), ("N", "kk"), ("x", "kk"),
        ("tS", "CH"), ("dZ", "CH"), ("S", "CH"), ("Z", "CH"),
        ("s", "SS"), ("z", "SS"), ("ts", "SS"),
        ("n", "nn"), ("l", "nn"), ("n^", "nn"), ("l^", "nn"),
        ("r", "RR"), ("R", "RR"),
        ("a", "aa"), ("A:", "aa"), ("aa", "aa"),
        ("E", "E"), ("e", "E"),
        ("I", "ih"), ("i:", "ih"), ("i", "ih"),
        ("O:", "oh"), ("0", "oh"), ("o", "oh"),
        ("u:", "ou"), ("U", "ou"), ("u", "ou"), ("w", "ou"),
        ("_", "sil"), ("_:", "sil"),
    ],
)  # fmt: skip
def test_table_maps_to_the_expected_viseme(phoneme: str, viseme: str) -> None:
    assert is_known(phoneme)
    assert shape_of(phoneme).main_viseme == viseme


def test_diphthongs_glide_between_two_shapes() -> None:
    for name, first, last in (("aI", "aa", "ih"), ("aU", "aa", "ou"), ("oU", "oh", "ou")):
        targets = shape_of(name).targets
        assert len(targets) == 2
        assert VISEMES[int(np.argmax(targets[0]))] == first
        assert VISEMES[int(np.argmax(targets[-1]))] == last


def test_stops_are_tagged_with_espeak_closure_convention() -> None:
    assert shape_of("p").stop is Stop.VOICELESS
    assert shape_of("k").stop is Stop.VOICELESS
    assert shape_of("b").stop is Stop.VOICED
    assert shape_of("m").stop is None
    assert shape_of("a").stop is None


def test_unknown_phonemes_fall_back_by_class_and_never_raise() -> None:
    assert not is_known("a9")
    assert shape_of("a9").kind is PhonemeClass.VOWEL
    assert shape_of("a9").main_viseme == "aa"
    assert shape_of("E~~").main_viseme == "E"
    assert shape_of("p^^").main_viseme == "PP"  # a known base with unknown modifiers
    assert shape_of("Ж").kind is PhonemeClass.CONSONANT
    assert shape_of("Ж").main_viseme == "DD"
    assert shape_of("_?").kind is PhonemeClass.PAUSE
    rng = random.Random(7)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@#:;^'\",._-[]/\\ äЖ"
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))
        shape = shape_of(s)
        for target in shape.targets:
            assert target.shape == (len(VISEMES),)
            assert target.min() >= 0.0
            assert target.sum() == pytest.approx(1.0)


def test_every_table_entry_is_a_valid_mix() -> None:
    for name in known_phonemes():
        for target in shape_of(name).targets:
            assert target.min() >= 0.0
            assert target.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------- mouth openness


def test_mouth_open_definition() -> None:
    assert OPENNESS[VISEME_INDEX["aa"]] == 1.0
    assert OPENNESS[VISEME_INDEX["PP"]] == 0.0
    assert OPENNESS[VISEME_INDEX["sil"]] == 0.0
    one_hot = np.eye(len(VISEMES))
    assert mouth_open(one_hot[VISEME_INDEX["aa"]]) == 1.0
    assert mouth_open(one_hot[VISEME_INDEX["PP"]]) == 0.0
    open_vowels = [OPENNESS[VISEME_INDEX[v]] for v in ("aa", "oh", "E")]
    consonants = [OPENNESS[VISEME_INDEX[v]] for v in ("FF", "SS", "DD", "kk", "nn")]
    assert min(open_vowels) > max(consonants)
    assert mouth_open_track(one_hot).shape == (len(VISEMES),)
    with pytest.raises(ValueError):
        mouth_open(np.zeros(5))


@pytest.mark.parametrize("bilabial", ["p", "b", "m"])
@pytest.mark.parametrize("duration", [0.03, 0.06, 0.1])
def test_bilabials_close_the_mouth_between_open_vowels(bilabial: str, duration: float) -> None:
    ph = seq(("'aa", 0.16), (bilabial, duration), ("aa", 0.16), ("_", 0.2))
    vowel1, closure, vowel2 = ph[0], ph[1], ph[2]
    t = np.arange(0.0, 1.0, 0.001)
    mo = openness_at(ph, t)
    assert mo[(t > vowel1.start_s) & (t < vowel1.start_s + 0.1)].max() > 0.95
    assert mo[(t > vowel2.start_s) & (t < vowel2.start_s + 0.16)].max() > 0.8
    # eSpeak times a voiceless stop's span from its release, so its closure comes first.
    if bilabial == "p":
        window = (closure.start_s - 0.05, closure.start_s + 0.01)
    else:
        window = (closure.start_s - 0.01, closure.start_s + closure.duration_s + 0.01)
    inside = (t >= window[0]) & (t <= window[1])
    assert mo[inside].min() < 0.05
    # and at 30 fps some frame shows the lips shut, wherever the closure falls
    for offset in np.linspace(0.0, 1 / 30, 7):
        frames = openness_at(ph, np.arange(offset, 1.0, 1 / 30))
        assert frames.min() < 0.2


def test_open_vowels_open_the_mouth_and_silence_closes_it() -> None:
    ph = seq(("_", 0.2), ("'aa", 0.2), ("_", 0.3), ("O:", 0.2), ("_", 0.3), ("E", 0.2))
    t = np.array([p.start_s + p.duration_s / 2 for p in ph])
    mo = openness_at(ph, t)
    assert mo[1] > 0.95 and mo[3] > 0.6 and mo[5] > 0.45
    assert mo[0] < 0.01 and mo[2] < 0.01 and mo[4] < 0.01
    assert openness_at(ph, np.array([-1.0, 10.0])).max() < 1e-6


@pytest.mark.parametrize("centre", [0.5, 0.5137, 0.73])
@pytest.mark.parametrize("neighbour", ["_", "m", "n", "s", "l"])
def test_mouth_opening_is_centred_on_the_vowel(centre: float, neighbour: str) -> None:
    """The openness bump of a vowel has its centroid at the vowel's centre: no timing bias."""
    dur = 0.14
    ph = seq((neighbour, 0.12), ("'aa", dur), (neighbour, 0.12), start=centre - dur / 2 - 0.12)
    t = np.arange(centre - 0.3, centre + 0.3, 0.0005)
    mo = openness_at(ph, t)
    assert abs(centroid(t, mo) - centre) < 0.002
    # rise and fall cross their midpoints at the phoneme boundaries
    mid = (mo.max() + openness_at(ph, np.array([ph[0].start_s + 0.06]))[0]) / 2
    above = t[mo > mid]
    assert abs(above[0] - (centre - dur / 2)) < 0.0025
    assert abs(above[-1] - (centre + dur / 2)) < 0.0025


def test_openness_is_unbiased_against_the_phoneme_step_function() -> None:
    """Over random speech without stops, smoothing never shifts openness in time."""
    rng = random.Random(3)
    names = ["aa", "E", "i:", "O:", "u:", "@", "m", "n", "l", "s", "f", "S", "r", "w", "_", "aI"]
    worst = 0.0
    for _ in range(10):
        ph = seq(*((rng.choice(names), rng.uniform(0.04, 0.18)) for _ in range(40)))
        t = np.arange(0.0, ph[-1].start_s + ph[-1].duration_s + 0.2, 0.001)
        mo = openness_at(ph, t)
        # the same phonemes as hard steps, no smoothing at all
        step = np.zeros_like(t)
        for p in ph:
            targets = shape_of(p.phoneme).targets
            edges = np.linspace(p.start_s, p.start_s + p.duration_s, len(targets) + 1)
            for a, b, target in zip(edges[:-1], edges[1:], targets, strict=True):
                scale = (
                    1.0
                    if p.stressed or shape_of(p.phoneme).kind is not PhonemeClass.VOWEL
                    else 0.85
                )
                step[(t >= a) & (t < b)] = float(target @ OPENNESS) * scale
        lag = best_lag_ms(mo, step)
        worst = max(worst, abs(lag))
    assert worst < 1.0


def best_lag_ms(a: np.ndarray, b: np.ndarray) -> float:
    """Lag of a behind b (ms, both sampled every ms) maximising their correlation, sub-sample."""
    a = a - a.mean()
    b = b - b.mean()
    lags = np.arange(-30, 31)
    corr = np.array(
        [
            float(np.dot(a[max(0, k) : len(a) + min(0, k)], b[max(0, -k) : len(b) - max(0, k)]))
            for k in lags
        ]
    )
    i = int(np.argmax(corr))
    y0, y1, y2 = corr[i - 1], corr[i], corr[i + 1]
    return float(lags[i] + 0.5 * (y0 - y2) / (y0 - 2 * y1 + y2))


def test_frames_are_instantaneous_samples_at_k_over_fps() -> None:
    ph = seq(("h", 0.05), ("@", 0.05), ("l", 0.07), ("'oU", 0.2), ("_", 0.3))
    for fps in (30, 50, 60):
        frames = viseme_track(ph, fps)
        expected = build_track(ph).at(np.arange(frames.shape[0]) / fps)
        np.testing.assert_array_equal(frames, expected)
    end = ph[-1].start_s + ph[-1].duration_s
    assert viseme_track(ph, 30).shape == (math.ceil((end + 0.1) * 30), len(VISEMES))
    assert viseme_track(ph, 30, duration_s=1.0).shape == (30, len(VISEMES))
    with pytest.raises(ValueError):
        viseme_track(ph, 0)


# ---------------------------------------------------------------- co-articulation


def random_speech(seed: int, n: int = 60) -> list[PhonemeEvent]:
    rng = random.Random(seed)
    names = sorted(known_phonemes())
    return seq(*((rng.choice(names), rng.uniform(0.015, 0.2)) for _ in range(n)))


@pytest.mark.parametrize("seed", range(5))
def test_weights_are_a_smooth_partition_of_unity(seed: int) -> None:
    ph = random_speech(seed)
    t = np.arange(0.0, ph[-1].start_s + 0.5, 0.001)
    w = build_track(ph).at(t)
    assert w.min() >= 0.0 and w.max() <= 1.0
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    # no jumps: nothing changes faster than the steepest ramp, 1 / (4 k) per second
    bound = 1.05 * 0.001 / (4 * LIPS_K_S)
    assert np.abs(np.diff(w, axis=0)).max() < bound
    assert np.abs(np.diff(mouth_open_track(w))).max() < bound
    # and at 30 fps no frame-to-frame change exceeds one full ramp
    frames = viseme_track(ph, 30)
    assert np.abs(np.diff(frames, axis=0)).max() <= 0.85


def test_rounding_is_anticipated_on_tongue_consonants() -> None:
    ou = VISEME_INDEX["ou"]
    before_round = build_track(seq(("s", 0.1), ("n", 0.08), ("u:", 0.2)))
    before_spread = build_track(seq(("s", 0.1), ("n", 0.08), ("i:", 0.2)))
    t_centre = np.array([0.2 + 0.1 + 0.04])  # the middle of the n
    assert before_round.at(t_centre)[0, ou] > 0.2
    assert before_spread.at(t_centre)[0, ou] < 0.01


def test_h_takes_the_shape_of_the_next_vowel() -> None:
    track = build_track(seq(("_", 0.2), ("h", 0.08), ("'aa", 0.2)))
    w = track.at(np.array([0.2 + 0.2 + 0.04]))[0]
    assert w[VISEME_INDEX["aa"]] == pytest.approx(0.6, abs=0.05)


def test_unstressed_vowels_open_less() -> None:
    t = np.array([0.3])
    stressed = openness_at(seq(("'aa", 0.2)), t)[0]
    unstressed = openness_at(seq(("aa", 0.2)), t)[0]
    assert stressed > 0.99
    assert unstressed == pytest.approx(0.85, abs=0.01)


def test_bad_input_never_breaks_the_track() -> None:
    ph = [
        PhonemeEvent(0.5, 0.1, "aa"),
        PhonemeEvent(0.3, 0.4, "m"),  # unsorted and overlapping
        PhonemeEvent(0.55, 0.0, "p"),  # zero length
        PhonemeEvent(0.6, -1.0, "s"),  # negative length
        PhonemeEvent(float("nan"), 0.1, "E"),
        PhonemeEvent(0.7, float("inf"), "E"),
        PhonemeEvent(0.8, 0.1, ""),
        PhonemeEvent(0.9, 0.1, "?!#"),
        PhonemeEvent(1.2, 0.1, "'"),
    ]
    w = viseme_track(ph, 30)
    assert np.isfinite(w).all()
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-9)
    empty = viseme_track([], 30, duration_s=0.5)
    assert empty.shape == (15, len(VISEMES))
    assert (empty[:, VISEME_INDEX["sil"]] == 1.0).all()
    assert viseme_track([], 30).shape == (3, len(VISEMES))
