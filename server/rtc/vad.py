"""Voice-activity detection for the live mic: which 20 ms frames carry speech. Pure numpy.

An energy gate with an onset and a hangover: two loud frames open it (and the frames that
opened it are sent, so the first syllable is kept), it stays open for ``hangover`` frames of
quiet (so pauses inside a phrase are kept), and ``phrase_end`` quiet frames end the phrase
(a unit for captions and transcription). Good enough for a close-talking headset mic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

FRAME_SAMPLES = 960  # 20 ms at 48 kHz


def frame_dbfs(frame: npt.NDArray[np.int16]) -> float:
    """Loudness of a frame in dB relative to full scale (-120 for digital silence)."""
    x = frame.astype(np.float64)
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return 20.0 * float(np.log10(max(rms / 32768.0, 1e-6)))


@dataclass
class VadDecision:
    send: list[int]  # indices (frame numbers) to send now, oldest first
    phrase_started: bool
    phrase_ended: bool


@dataclass
class Vad:
    threshold_db: float = -45.0
    onset: int = 2
    hangover: int = 15  # 300 ms
    phrase_end: int = 30  # 600 ms

    _loud_run: int = 0
    _quiet_run: int = 0
    _open: bool = False
    _in_phrase: bool = False
    _held: list[int] = field(default_factory=list)
    _count: int = 0

    @property
    def open(self) -> bool:
        return self._open

    def update(self, frame: npt.NDArray[np.int16]) -> VadDecision:
        """Classify the next frame; returns which frames (by number) to send now."""
        index = self._count
        self._count += 1
        loud = frame_dbfs(frame) > self.threshold_db
        started = ended = False
        if loud:
            self._loud_run += 1
            self._quiet_run = 0
        else:
            self._loud_run = 0
            self._quiet_run += 1
        send: list[int] = []
        if self._open:
            send.append(index)
            if self._quiet_run >= self.hangover:
                self._open = False
        else:
            self._held = [*self._held[-(self.onset - 1) :], index] if self.onset > 1 else [index]
            if self._loud_run >= self.onset:
                self._open = True
                send, self._held = self._held, []
                if not self._in_phrase:
                    self._in_phrase = started = True
        if self._in_phrase and self._quiet_run >= self.phrase_end:
            self._in_phrase = False
            ended = True
        return VadDecision(send, started, ended)
