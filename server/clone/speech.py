"""What a voice produces and the face consumes: audio with the timing of every sound.

Times are seconds from the start of the utterance's audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class PhonemeEvent:
    """One phoneme as eSpeak NG names it (its ASCII mnemonic), where it sounds in the audio."""

    start_s: float
    duration_s: float
    phoneme: str
    stressed: bool = False


@dataclass(frozen=True, slots=True)
class WordEvent:
    """One word of the text, for captions, where it starts and ends in the audio."""

    start_s: float
    duration_s: float
    text: str


@dataclass(frozen=True)
class Utterance:
    """A sentence rendered to speech: mono 16-bit PCM plus phoneme and word timing."""

    text: str
    language: str
    sample_rate: int
    pcm: npt.NDArray[np.int16]
    phonemes: tuple[PhonemeEvent, ...] = field(default_factory=tuple)
    words: tuple[WordEvent, ...] = field(default_factory=tuple)

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / self.sample_rate
