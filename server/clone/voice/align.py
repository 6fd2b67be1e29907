"""Move a phoneme timeline from one rendering of a sentence onto another rendering of it.

The OpenAI-compatible backend returns audio without timing. eSpeak NG renders the same text with
exact phoneme positions; dynamic time warping between the two audios' spectral envelopes (MFCCs
with deltas, 25 ms windows every 10 ms, normalised per utterance so voice and loudness matter
less than what is being said) pairs up moments that sound alike, and every phoneme and word
boundary of the eSpeak rendering is mapped through that warp path.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from townhall.server.clone.speech import PhonemeEvent, Utterance, WordEvent

HOP_S = 0.010
WINDOW_S = 0.025
N_MELS = 32
N_MFCC = 6
F_MIN, F_MAX = 60.0, 7_600.0

FloatArray = npt.NDArray[np.float64]
_Span = TypeVar("_Span", PhonemeEvent, WordEvent)


def features(pcm: npt.NDArray[np.int16], sample_rate: int) -> FloatArray:
    """MFCCs and their deltas per hop, frame ``f`` centred at ``f * HOP_S``; z-scored per dim."""
    hop = sample_rate * HOP_S
    win = round(sample_rate * WINDOW_S)
    n_fft = 1 << (win - 1).bit_length()
    x = pcm.astype(np.float64) / 32768.0
    x = np.append(x[0] if len(x) else 0.0, x[1:] - 0.97 * x[:-1])  # pre-emphasis
    n_frames = max(1, round(len(x) / hop))
    padded = np.concatenate([np.zeros(win // 2), x, np.zeros(win)])
    starts = np.round(np.arange(n_frames) * hop).astype(np.int64)
    frames = padded[starts[:, None] + np.arange(win)[None, :]] * np.hanning(win)
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    mel = np.log(power @ _mel_filters(sample_rate, n_fft).T + 1e-10)
    n = np.arange(N_MELS)
    dct = np.cos(np.pi / N_MELS * (n[None, :] + 0.5) * np.arange(N_MFCC)[:, None])
    mfcc = mel @ dct.T
    delta = np.gradient(mfcc, axis=0)
    feats = np.hstack([mfcc, delta])
    normalised: FloatArray = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-8)
    return normalised


def _mel_filters(sample_rate: int, n_fft: int) -> FloatArray:
    def hz_to_mel(hz: FloatArray) -> FloatArray:
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    f_max = min(F_MAX, sample_rate / 2)
    mels = np.linspace(hz_to_mel(np.array(F_MIN)), hz_to_mel(np.array(f_max)), N_MELS + 2)
    hz = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins[None, :] - lower) / (centre - lower)
    falling = (upper - bins[None, :]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def dtw_path(cost: FloatArray) -> npt.NDArray[np.int64]:
    """Minimum-cost monotonic path through ``cost`` from (0, 0) to (N-1, M-1), as (i, j) rows.

    Steps (1,1) weighted twice, (1,0) and (0,1) once (symmetric, so no bias toward diagonals).
    One row at a time: within a row ``D[j] = min(A[j], D[j-1] + c[j])`` where ``A`` holds the
    steps from the row above; with ``S = cumsum(c)`` that is ``S[j] + min_{k<=j}(A[k] - S[k])``,
    a running minimum numpy computes without a Python loop over columns.
    """
    n, m = cost.shape
    step = np.zeros((n, m), np.int8)  # 0 diagonal, 1 from above (i-1), 2 from left (j-1)
    prev = np.cumsum(cost[0])
    step[0, 1:] = 2
    for i in range(1, n):
        c = cost[i]
        diagonal = np.full(m, np.inf)
        diagonal[1:] = prev[:-1] + 2 * c[1:]
        above = prev + c
        from_above = above < diagonal
        best = np.where(from_above, above, diagonal)
        running = np.cumsum(c)
        shifted = best - running
        floor = np.minimum.accumulate(shifted)
        row = running + floor
        step[i] = np.where(floor < shifted, 2, np.where(from_above, 1, 0))
        prev = row
    path = []
    i, j = n - 1, m - 1
    while True:
        path.append((i, j))
        if i == 0 and j == 0:
            break
        s = step[i, j]
        if s == 0:
            i, j = i - 1, j - 1
        elif s == 1:
            i -= 1
        else:
            j -= 1
    return np.array(path[::-1], dtype=np.int64)


def boundary_map(path: npt.NDArray[np.int64], n: int, m: int) -> FloatArray:
    """For each frame edge ``e`` of the source (0..n), the matching edge in the target.

    Edge ``e`` sits between source frames e-1 and e; it maps to midway between the last target
    frame paired with e-1 and the first paired with e, which puts boundaries at the change.
    """
    first = np.full(n, m, dtype=np.float64)
    last = np.full(n, -1, dtype=np.float64)
    np.minimum.at(first, path[:, 0], path[:, 1])
    np.maximum.at(last, path[:, 0], path[:, 1])
    edges = np.empty(n + 1)
    edges[0], edges[n] = 0.0, float(m)
    edges[1:n] = (last[:-1] + 1 + first[1:]) / 2
    return np.maximum.accumulate(edges)


class Warp:
    """Source time -> target time, from the DTW of the two audios."""

    def __init__(
        self,
        source: npt.NDArray[np.int16],
        source_rate: int,
        target: npt.NDArray[np.int16],
        target_rate: int,
    ) -> None:
        a = features(source, source_rate)
        b = features(target, target_rate)
        squared = (a**2).sum(axis=1)[:, None] + (b**2).sum(axis=1)[None, :] - 2 * a @ b.T
        cost = np.sqrt(np.maximum(squared, 0.0))
        edges = boundary_map(dtw_path(cost), len(a), len(b))
        # Frame f is centred at f * HOP_S, so inner edge e lies at (e - 0.5) * HOP_S; the
        # outer edges are the two audios' ends.
        source_end, target_end = len(source) / source_rate, len(target) / target_rate
        inner = np.arange(1, len(a)) - 0.5
        self._source_knots = np.concatenate([[0.0], inner * HOP_S, [source_end]])
        target_knots = np.concatenate([[0.0], (edges[1:-1] - 0.5) * HOP_S, [target_end]])
        self._target_knots = np.maximum.accumulate(np.clip(target_knots, 0.0, target_end))

    def __call__(self, t: float) -> float:
        return float(np.interp(t, self._source_knots, self._target_knots))


def align(reference: Utterance, pcm: npt.NDArray[np.int16], sample_rate: int) -> Utterance:
    """``pcm``, another rendering of ``reference.text``, with the reference's timing warped on."""
    warp = Warp(reference.pcm, reference.sample_rate, pcm, sample_rate)
    phonemes = _warp_spans(reference.phonemes, warp)
    words = _warp_spans(reference.words, warp)
    return Utterance(
        text=reference.text,
        language=reference.language,
        sample_rate=sample_rate,
        pcm=pcm,
        phonemes=tuple(phonemes),
        words=tuple(words),
    )


def _warp_spans(events: tuple[_Span, ...], warp: Warp) -> list[_Span]:
    out: list[_Span] = []
    for event in events:
        start = warp(event.start_s)
        end = max(warp(event.start_s + event.duration_s), start)
        out.append(replace(event, start_s=start, duration_s=end - start))
    return out
