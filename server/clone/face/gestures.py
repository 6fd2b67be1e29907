"""Speech-timed movement: head nods on stressed syllables, hand beats and brow raises on emphasis.

Speakers move with the rhythm of their stress: the head dips a little on
stressed syllables, and the most prominent syllable of a phrase (here: the
longest stressed vowel between two pauses) gets a bigger nod, a beat of one
hand landing on its onset and a brief brow raise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from townhall.server.clone.face.phonemes import PhonemeClass, parse_mnemonic, shape_of
from townhall.server.clone.speech import PhonemeEvent

__all__ = ["CHANNELS", "Gesture", "plan_gestures"]

# Channels of `timeline.Bumps` the body reads.
CHANNELS: Final = ("nod", "beat_left", "beat_right", "brow")

NOD_DEG: Final = 1.6
EMPHASIS_NOD_DEG: Final = 3.5
NOD_WIDTH_S: Final = 0.45
MIN_NOD_GAP_S: Final = 0.4
BEAT_WIDTH_S: Final = 0.5
BROW_WIDTH_S: Final = 0.7
BROW_HEIGHT: Final = 0.35
RIGHT_HANDED: Final = 0.65  # share of beats made with the right hand


@dataclass(frozen=True, slots=True)
class Gesture:
    """One bump on a channel; times in seconds from the utterance start."""

    channel: str
    centre_s: float
    width_s: float
    height: float


def _phrases(phonemes: Iterable[PhonemeEvent]) -> list[list[PhonemeEvent]]:
    """Stressed vowels grouped by the pauses between them."""
    phrases: list[list[PhonemeEvent]] = [[]]
    for p in sorted(phonemes, key=lambda p: p.start_s):
        if not (np.isfinite(p.start_s) and np.isfinite(p.duration_s)) or p.duration_s <= 0:
            continue
        kind = shape_of(p.phoneme).kind
        if kind is PhonemeClass.PAUSE and phrases[-1]:
            phrases.append([])
        elif kind is PhonemeClass.VOWEL and (p.stressed or parse_mnemonic(p.phoneme)[1]):
            phrases[-1].append(p)
    return [ph for ph in phrases if ph]


def plan_gestures(phonemes: Iterable[PhonemeEvent], rng: np.random.Generator) -> list[Gesture]:
    """Nods, beats and brow raises for an utterance (deterministic for a given generator state)."""
    out: list[Gesture] = []
    last_nod = -np.inf
    for phrase in _phrases(phonemes):
        peak = max(phrase, key=lambda p: p.duration_s)
        for p in phrase:
            centre = p.start_s + p.duration_s / 2
            if p is peak:
                hand = "beat_right" if rng.random() < RIGHT_HANDED else "beat_left"
                out.append(Gesture(hand, p.start_s, BEAT_WIDTH_S, 1.0))
                out.append(Gesture("brow", centre, BROW_WIDTH_S, BROW_HEIGHT))
                out.append(Gesture("nod", centre, NOD_WIDTH_S, np.radians(EMPHASIS_NOD_DEG)))
                last_nod = centre
            elif centre - last_nod >= MIN_NOD_GAP_S:
                out.append(Gesture("nod", centre, NOD_WIDTH_S, np.radians(NOD_DEG)))
                last_nod = centre
    return out
