"""Viseme weights over time from phoneme timing, with co-articulation.

The model: every phoneme holds its viseme target for exactly its own time span
(sil before the first, after the last and in gaps), and each step between
neighbours is smoothed by a logistic ramp centred on the boundary. Because the
ramps are symmetric about the boundaries, half of every transition happens
before it (anticipation) and half after (carry-over), and the mouth is never
early or late on average: that is what keeps lips on the audio. Written as a
sum of smoothed steps the weights are exact at any time, with no resampling,
and always sum to 1:

    w(t) = sil + sum_b delta_b * logistic((t - b) / k_b)

Where eSpeak's time spans and the mouth differ, the spans are corrected first:
a stop's shape is moved onto its closure (see `phonemes.Stop`: for p t k the
closure is the silence *before* eSpeak's phoneme starts). Then, on top of the
ramps:

- attack and release: k = 10 ms at ordinary boundaries (10-90 % in 44 ms),
  7 ms into and out of p b m (lips meet fast), 25 ms inside diphthongs,
  which glide;
- lips must close for p b m: a bilabial shorter than 70 ms is widened
  symmetrically into its neighbours, so closure is visible between 30 fps
  frames and its centre does not move;
- tongue consonants (t d k g n l) have no lip shape of their own: before a
  rounded vowel they take 30 % of its shape, so "too" rounds during the t;
- h and the glottal stop take 60 % of the next sound's shape;
- unstressed vowels open 15 % less than stressed ones.

`mouth_open` reduces a frame's weights to one number, the jaw opening
(OPENNESS per viseme); lip sync is measured on it.

Frame k of a track is the instantaneous value at time k / fps (not the centre
of an interval): a client that plays frame k at that time, interpolating
between frames, shows exactly this curve.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from townhall.protocol.skeleton import VISEME_INDEX, VISEMES
from townhall.server.clone.face.phonemes import PhonemeClass, Stop, parse_mnemonic, shape_of
from townhall.server.clone.speech import PhonemeEvent

__all__ = [
    "OPENNESS",
    "VisemeTrack",
    "build_track",
    "envelope_track",
    "mouth_open",
    "mouth_open_track",
    "viseme_track",
]

F64 = npt.NDArray[np.float64]

# How far each viseme opens the jaw, 0 closed .. 1 wide open ("aa").
OPENNESS: Final[F64] = np.array(
    [
        0.0,  # sil
        0.0,  # PP
        0.1,  # FF
        0.25,  # TH
        0.25,  # DD
        0.3,  # kk
        0.2,  # CH
        0.1,  # SS
        0.35,  # nn
        0.35,  # RR
        1.0,  # aa
        0.65,  # E
        0.4,  # ih
        0.75,  # oh
        0.4,  # ou
    ]
)
OPENNESS.flags.writeable = False
assert OPENNESS.shape == (len(VISEMES),)

RAMP_K_S: Final = 0.010
GLIDE_K_S: Final = 0.025
LIPS_K_S: Final = 0.007
MIN_CLOSURE_S: Final = 0.070
CLOSURE_S: Final = 0.045
RELEASE_HOLD_S: Final = 0.010
LINGUAL_ANTICIPATION: Final = 0.3
TRANSPARENT_SHARE: Final = 0.6
UNSTRESSED_SCALE: Final = 0.85
ENVELOPE_BLOCK_S: Final = 0.02

_SIL = np.zeros(len(VISEMES))
_SIL[VISEME_INDEX["sil"]] = 1.0
_SIL.flags.writeable = False
_LINGUAL: Final = frozenset({"DD", "kk", "nn"})
_ROUNDED: Final = np.zeros(len(VISEMES))
_ROUNDED[[VISEME_INDEX["ou"], VISEME_INDEX["oh"], VISEME_INDEX["RR"]]] = 1.0


def mouth_open(weights: npt.ArrayLike) -> float:
    """Jaw opening of one frame's viseme weights (15,): OPENNESS-weighted sum in [0, 1].

    This is the quantity lip sync is measured with: it rises on open vowels,
    falls to 0 on p b m and silence, and follows the audio envelope.
    """
    return float(mouth_open_track(weights))


def mouth_open_track(weights: npt.ArrayLike) -> F64:
    """`mouth_open` for many frames at once: (..., 15) -> (...)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.shape[-1:] != (len(VISEMES),):
        raise ValueError(f"expected {len(VISEMES)} viseme weights, got shape {w.shape}")
    out: F64 = np.clip(w @ OPENNESS, 0.0, 1.0)
    return out


@dataclass(frozen=True, slots=True)
class VisemeTrack:
    """Viseme weights as a function of time (seconds from the utterance start)."""

    boundaries: F64  # (B,) times of the steps
    softness: F64  # (B,) logistic scale k of each step, seconds
    deltas: F64  # (B, 15) change of the weights across each step
    end_s: float  # end of the last phoneme

    def at(self, times: npt.ArrayLike) -> F64:
        """Weights (N, 15) at the given times (N,)."""
        t = np.asarray(times, dtype=np.float64).reshape(-1, 1)
        if not self.boundaries.size:
            return np.broadcast_to(_SIL, (t.shape[0], len(VISEMES))).copy()
        x = (t - self.boundaries) / self.softness
        steps = 0.5 + 0.5 * np.tanh(0.5 * x)  # logistic, without overflow
        w: F64 = np.maximum(_SIL + steps @ self.deltas, 0.0)
        # Ramps of different softness cross in their tails and can dip a weight
        # slightly below 0; renormalising keeps the weights a partition of unity.
        w /= w.sum(axis=1, keepdims=True)
        return w


@dataclass(slots=True)
class _Segment:
    start: float
    end: float
    target: F64
    kind: PhonemeClass
    glide_in: bool = False  # the step into this segment is inside a diphthong
    stop: Stop | None = None


def _segments(phonemes: Iterable[PhonemeEvent]) -> list[_Segment]:
    """Phonemes as back-to-back segments: sorted, overlaps clipped, gaps filled with sil."""
    events = sorted(
        (
            p
            for p in phonemes
            if math.isfinite(p.start_s) and math.isfinite(p.duration_s) and p.duration_s > 0
        ),
        key=lambda p: p.start_s,
    )
    out: list[_Segment] = []
    cursor = -math.inf
    for p in events:
        start = max(p.start_s, cursor)
        end = p.start_s + p.duration_s
        if end <= start:
            continue
        if start > cursor and out:
            out.append(_Segment(cursor, start, _SIL, PhonemeClass.PAUSE))
        shape = shape_of(p.phoneme)
        stressed = p.stressed or parse_mnemonic(p.phoneme)[1]
        scale = 1.0 if stressed or shape.kind is not PhonemeClass.VOWEL else UNSTRESSED_SCALE
        part = (end - start) / len(shape.targets)
        for i, target in enumerate(shape.targets):
            scaled = target * scale + _SIL * (1.0 - scale)
            out.append(
                _Segment(
                    start + i * part, start + (i + 1) * part, scaled, shape.kind, i > 0, shape.stop
                )
            )
        cursor = end
    return out


def _place_stops(segs: Sequence[_Segment]) -> None:
    """Move each stop's shape onto its closure, which eSpeak times differently (in place).

    See `phonemes.Stop`: the closure ends at the release, lasts CLOSURE_S
    (taken from the previous phoneme, which keeps at least 40 %), and the
    shape holds RELEASE_HOLD_S past the release; after that the mouth is
    already forming the next sound, so the rest of the span goes to it.
    """
    for i, seg in enumerate(segs):
        if seg.stop is None:
            continue
        span = seg.end - seg.start
        release = seg.start if seg.stop is Stop.VOICELESS else seg.end - min(0.015, 0.3 * span)
        start = min(seg.start, release - CLOSURE_S)
        prev = segs[i - 1] if i > 0 else None
        if prev is not None:
            keep = 0.0 if prev.kind is PhonemeClass.PAUSE else 0.4
            start = max(start, prev.start + keep * (prev.end - prev.start))
            prev.end = start
        seg.start = start
        nxt = segs[i + 1] if i + 1 < len(segs) else None
        if nxt is not None and nxt.kind is not PhonemeClass.PAUSE:
            seg.end = max(min(release + RELEASE_HOLD_S, seg.end), seg.start)
            nxt.start = seg.end


def _coarticulate(segs: Sequence[_Segment]) -> None:
    """Borrow lip shapes between neighbours (in place): see the module docstring."""
    for i in range(len(segs) - 1, -1, -1):
        seg = segs[i]
        nxt = segs[i + 1] if i + 1 < len(segs) else None
        if seg.kind is PhonemeClass.TRANSPARENT:
            source = nxt if nxt is not None and nxt.kind is not PhonemeClass.PAUSE else None
            if source is None and i > 0 and segs[i - 1].kind is not PhonemeClass.PAUSE:
                source = segs[i - 1]
            if source is not None:
                seg.target = TRANSPARENT_SHARE * source.target + (1 - TRANSPARENT_SHARE) * _SIL
        elif seg.kind is PhonemeClass.CONSONANT and VISEMES[int(np.argmax(seg.target))] in _LINGUAL:
            vowel = next(
                (s for s in segs[i + 1 : i + 3] if s.kind is PhonemeClass.VOWEL),
                None,
            )
            if vowel is not None and float(vowel.target @ _ROUNDED) > 0.3:
                a = LINGUAL_ANTICIPATION
                seg.target = (1 - a) * seg.target + a * vowel.target


def _widen_closures(segs: Sequence[_Segment]) -> None:
    """Give p b m at least MIN_CLOSURE_S, taken evenly from both neighbours (in place)."""
    pp = VISEME_INDEX["PP"]
    for i, seg in enumerate(segs):
        width = seg.end - seg.start
        if seg.target[pp] < 0.5 or width >= MIN_CLOSURE_S:
            continue
        grow = (MIN_CLOSURE_S - width) / 2
        if i > 0:  # a neighbour keeps at least half of itself
            grow = min(grow, (segs[i - 1].end - segs[i - 1].start) / 2)
        if i + 1 < len(segs):
            grow = min(grow, (segs[i + 1].end - segs[i + 1].start) / 2)
        seg.start -= grow
        seg.end += grow
        if i > 0:
            segs[i - 1].end = seg.start
        if i + 1 < len(segs):
            segs[i + 1].start = seg.end


def _softness(before: _Segment | None, after: _Segment) -> float:
    """Logistic scale of the step between two segments: lips shut fast, diphthongs glide."""
    if after.glide_in:
        return GLIDE_K_S
    pp = VISEME_INDEX["PP"]
    if after.target[pp] >= 0.5 or (before is not None and before.target[pp] >= 0.5):
        return LIPS_K_S
    return RAMP_K_S


def build_track(phonemes: Iterable[PhonemeEvent]) -> VisemeTrack:
    """The continuous viseme track of a phoneme sequence; robust to any input."""
    segs = _segments(phonemes)
    _place_stops(segs)
    _coarticulate(segs)
    _widen_closures(segs)
    return _assemble(segs)


def envelope_track(pcm: npt.ArrayLike, sample_rate: int) -> VisemeTrack:
    """A mouth that opens with the loudness of the audio, for speech that has no phoneme timing.

    A fallback only: it cannot shape lips, but it keeps the mouth moving in time
    with the voice. Loudness is taken in ENVELOPE_BLOCK_S blocks, 40 dB below the
    loudest block is closed, and blocks become segments like phonemes'.
    """
    x = np.asarray(pcm, dtype=np.float64).reshape(-1)
    block = max(1, round(ENVELOPE_BLOCK_S * sample_rate))
    n = len(x) // block
    if n == 0 or sample_rate <= 0:
        return _assemble([])
    rms = np.sqrt(np.mean(x[: n * block].reshape(n, block) ** 2, axis=1))
    db = 20.0 * np.log10(np.maximum(rms, 1e-9) / max(float(rms.max()), 1e-9))
    level = np.clip(1.0 + db / 40.0, 0.0, 1.0)
    open_mouth = 0.7 * _one_hot("aa") + 0.3 * _one_hot("E")
    segs = [
        _Segment(
            i * block / sample_rate,
            (i + 1) * block / sample_rate,
            lv * open_mouth + (1.0 - lv) * _SIL,
            PhonemeClass.VOWEL,
        )
        for i, lv in enumerate(level)
    ]
    return _assemble(segs)


def _one_hot(viseme: str) -> F64:
    out = np.zeros(len(VISEMES))
    out[VISEME_INDEX[viseme]] = 1.0
    return out


def _assemble(segs: Sequence[_Segment]) -> VisemeTrack:
    """Segments to the sum-of-steps form of VisemeTrack."""
    if not segs:
        empty = np.zeros(0)
        return VisemeTrack(empty, empty, np.zeros((0, len(VISEMES))), 0.0)
    targets = np.array([_SIL, *(s.target for s in segs), _SIL])
    boundaries = np.array([s.start for s in segs] + [segs[-1].end])
    softness = np.array(
        [_softness(segs[i - 1] if i else None, s) for i, s in enumerate(segs)] + [RAMP_K_S]
    )
    return VisemeTrack(boundaries, softness, np.diff(targets, axis=0), float(boundaries[-1]))


def viseme_track(
    phonemes: Iterable[PhonemeEvent], fps: float, duration_s: float | None = None
) -> F64:
    """Viseme weights (n_frames, 15) sampled at k / fps, k = 0 .. n_frames - 1.

    Frames cover [0, duration_s); the default duration is the end of the last
    phoneme plus 0.1 s, so the mouth closes in the last frames.
    """
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    track = build_track(phonemes)
    length = track.end_s + 0.1 if duration_s is None else duration_s
    n = max(0, math.ceil(length * fps - 1e-9))
    return track.at(np.arange(n) / fps)
