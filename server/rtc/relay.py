"""One live mic's voice into stage packets: gated, encoded to Opus once, on the media clock.

The peer hands over decoded 48 kHz mono PCM as it arrives. Each 20 ms frame gets a media
time (contiguous from the previous frame, resynchronised to the clock after a stall); frames
the VAD passes are encoded once and sent to everyone in 40 ms StagePackets with
``speaker_slot`` set, with animation frames whose visemes open the speaker's mouth with the
loudness of the voice. Whole phrases are kept (16 kHz) for speech-to-text.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from townhall.protocol.limits import MAX_CAPTION_WORDS, MAX_WORD_CHARS, clip, first
from townhall.protocol.messages import Caption, StagePacket
from townhall.protocol.skeleton import EXPRESSIONS, SKELETON_BONES, VISEMES
from townhall.server.clone.face.encode import encode_frames
from townhall.server.clone.voice.opus import OpusEncoder
from townhall.server.rtc.vad import FRAME_SAMPLES, Vad, frame_dbfs

FRAME_US = 20_000
PACKET_US = 40_000
RESYNC_US = 200_000  # a stall longer than this restarts the voice's timeline at "now"
ANIM_FPS = 30
MAX_PHRASE_S = 30.0
_AA = VISEMES.index("aa")
_E = VISEMES.index("E")
_JAW = EXPRESSIONS.index("jawOpen")


@dataclass(frozen=True)
class Phrase:
    """A finished phrase for speech-to-text: 16 kHz PCM and its media time span."""

    pcm16k: npt.NDArray[np.int16]
    start_us: int
    end_us: int


def mouth_frames(level: float, times_us: list[int]) -> bytes:
    """Animation frames for the speaker's avatar: rest skeleton, mouth open by ``level``."""
    n = len(times_us)
    if n == 0:
        return b""
    rot = np.zeros((n, len(SKELETON_BONES), 4))
    rot[:, :, 3] = 1.0
    visemes = np.zeros((n, len(VISEMES)))
    visemes[:, _AA] = 0.7 * level
    visemes[:, _E] = 0.3 * level
    visemes[:, 0] = 1.0 - level  # sil
    expressions = np.zeros((n, len(EXPRESSIONS)))
    expressions[:, _JAW] = 0.6 * level
    hips = np.tile([0.0, 0.95, 0.0], (n, 1))
    return b"".join(encode_frames(hips, rot, visemes, expressions, np.zeros((n, 3))))


def level_of(pcm: npt.NDArray[np.int16]) -> float:
    """0 (closed) .. 1 (wide open) from loudness: -50 dBFS closed, -15 dBFS open."""
    return float(np.clip((frame_dbfs(pcm) + 50.0) / 35.0, 0.0, 1.0))


class LiveRelay:
    """Feeds one speaker's PCM through VAD and Opus into StagePackets for ``send``."""

    def __init__(
        self,
        slot: int,
        now_us: Callable[[], int],
        send: Callable[[StagePacket], None],
        on_phrase: Callable[[Phrase], None] | None = None,
        threshold_db: float = -45.0,
    ) -> None:
        self.slot = slot
        self.now_us = now_us
        self.send = send
        self.on_phrase = on_phrase
        self.vad = Vad(threshold_db)
        self.encoder = OpusEncoder(compensate_lookahead=False)
        self.index = 0  # packets sent so far
        self.frames_in = 0
        self.frames_sent = 0
        self._pcm = np.zeros(0, np.int16)
        self._next_us: int | None = None
        self._recent: deque[tuple[int, npt.NDArray[np.int16]]] = deque(maxlen=4)
        self._pending: deque[tuple[int, npt.NDArray[np.int16]]] = deque()  # fed, not yet out
        self._out: list[tuple[int, bytes, npt.NDArray[np.int16]]] = []  # encoded, not packed
        self._phrase: list[npt.NDArray[np.int16]] = []
        self._phrase_start = 0

    # ------------------------------------------------------------ input

    def push(self, pcm: npt.NDArray[np.int16]) -> None:
        """Decoded audio, 48 kHz mono, as it arrives (any chunk size)."""
        self._pcm = np.concatenate([self._pcm, pcm.astype(np.int16, copy=False)])
        while len(self._pcm) >= FRAME_SAMPLES:
            frame, self._pcm = self._pcm[:FRAME_SAMPLES], self._pcm[FRAME_SAMPLES:]
            self._frame(frame)

    def _frame(self, frame: npt.NDArray[np.int16]) -> None:
        now = self.now_us()
        t = self._next_us
        if t is None or now - t > RESYNC_US:
            t = now
        self._next_us = t + FRAME_US
        number = self.frames_in
        self.frames_in += 1
        self._recent.append((number, frame))
        decision = self.vad.update(frame)
        if decision.phrase_started:
            self._phrase_start = t
            self._phrase = []
        for i in decision.send:
            held = next((f for n, f in self._recent if n == i), frame)
            at = t - (number - i) * FRAME_US
            self._encode(at, held)
        if self.vad._in_phrase or decision.phrase_ended:
            self._phrase.append(frame[::3].copy())  # 16 kHz is plenty for speech-to-text
            if len(self._phrase) * FRAME_US >= MAX_PHRASE_S * 1e6:
                decision.phrase_ended = True
        if decision.phrase_ended:
            self._end_phrase(t + FRAME_US)
        if not self.vad.open:
            self._pack(final=True)

    def _encode(self, at_us: int, frame: npt.NDArray[np.int16]) -> None:
        self._pending.append((at_us, frame))
        for opus in self.encoder.feed(frame, 48_000):
            at, pcm = self._pending.popleft()
            self._out.append((at, opus.data, pcm))
            self.frames_sent += 1
        self._pack(final=False)

    # ------------------------------------------------------------ output

    def _pack(self, final: bool) -> None:
        """Two contiguous frames make a packet; a lone frame goes out when the gate closes."""
        while self._out:
            if len(self._out) >= 2 and self._out[1][0] - self._out[0][0] == FRAME_US:
                take = 2
            elif len(self._out) >= 2 or final:
                take = 1
            else:
                break
            chunk, self._out = self._out[:take], self._out[take:]
            self._send_packet(chunk)

    def _send_packet(self, chunk: list[tuple[int, bytes, npt.NDArray[np.int16]]]) -> None:
        t0 = chunk[0][0]
        level = level_of(np.concatenate([c[2] for c in chunk]))
        first = math.ceil(t0 * ANIM_FPS / 1e6)
        times = []
        n = first
        while (at := round(n * 1e6 / ANIM_FPS)) < t0 + PACKET_US:
            times.append(at - t0)
            n += 1
        packet = StagePacket(
            0,
            self.index,
            t0,
            PACKET_US,
            "live",
            [c[1] for c in chunk],
            times,
            mouth_frames(level, times),
            [],
            self.slot,
        )
        self.index += 1
        self.send(packet)

    def captions(self, words: list[Caption]) -> None:
        """Caption words for a phrase already heard: sent in a packet with no audio."""
        if not words:
            return
        t0 = words[0].start_us
        self.send(StagePacket(0, self.index, t0, PACKET_US, "live", [], [], b"", words, self.slot))
        self.index += 1

    def _end_phrase(self, end_us: int) -> None:
        if self._phrase and self.on_phrase is not None:
            self.on_phrase(Phrase(np.concatenate(self._phrase), self._phrase_start, end_us))
        self._phrase = []

    def close(self) -> None:
        """The mic ended: send what is left and hand over an unfinished phrase."""
        self._pack(final=True)
        if self.vad._in_phrase:
            self._end_phrase(self._next_us or self.now_us())
            self.vad._in_phrase = False


def caption_words(text: str, start_us: int, end_us: int) -> list[Caption]:
    """Words of a transcribed phrase spread evenly over its time (no word timing is given)."""
    words = first(text.split(), MAX_CAPTION_WORDS)
    if not words:
        return []
    step = max(1, (end_us - start_us) // len(words))
    return [
        Caption(start_us + i * step, step, clip(w, MAX_WORD_CHARS)) for i, w in enumerate(words)
    ]
