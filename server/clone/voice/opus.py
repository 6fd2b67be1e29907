"""Opus at 48 kHz mono in 20 ms frames: encoded once on the server, decoded by every client.

The encoder is a stream: :meth:`OpusEncoder.feed` takes PCM chunks as they arrive (at any sample
rate, resampled with PyAV), :meth:`OpusEncoder.flush` ends a segment (one utterance) by padding
its tail with silence to a whole frame. Frame ``i`` of the stream has ``pts_samples_48k == i *
960`` and, once decoded, carries the audio of media time ``[i * 20 ms, (i + 1) * 20 ms)``.

Lookahead: libopus delays its output by ``lookahead_samples`` (312 at 48 kHz = 6.5 ms, read from
the OpusHead pre-skip). Ogg players hide that by skipping the first 312 decoded samples; our
clients decode raw packets and play them at their timestamps, so instead the encoder compensates:
each segment is fed to libopus advanced by the lookahead (its first 6.5 ms are dropped; speech
starts with silence anyway), which makes decoded frames line up with their timestamps exactly.
With ``compensate_lookahead=False`` the audio is late by :attr:`OpusEncoder.lookahead_s` instead
and whoever schedules animation must add it. Decoders must not apply pre-skip.

Off the event loop: a sentence takes tens of milliseconds to resample and encode (86 ms for
7 s of speech here), long enough to make the room's tick late. The room calls
:meth:`OpusEncoder.feed_async` and :meth:`OpusEncoder.flush_async`, which do the same work
in a worker thread. A thread, not a process: the encoder's state (codec context, resampler,
position) carries from sentence to sentence and cannot be pickled, and PyAV releases the GIL
inside libswresample and libavcodec, so the thread runs beside the loop rather than taking
turns with it. One encoder is used by one answer at a time, awaited call by call, so calls
never overlap.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
DEFAULT_BITRATE = 24_000
_OPUS_HEAD_PRE_SKIP = slice(10, 12)
_DEFAULT_LOOKAHEAD = 312  # libopus for the voip/audio applications


@dataclass(frozen=True, slots=True)
class OpusFrame:
    """One 20 ms Opus packet and its stream position in 48 kHz samples."""

    pts_samples_48k: int
    data: bytes

    @property
    def start_s(self) -> float:
        return self.pts_samples_48k / SAMPLE_RATE


def _check_pcm(pcm: npt.NDArray[np.int16], sample_rate: int) -> npt.NDArray[np.int16]:
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16:
        raise TypeError("pcm must be a numpy int16 array")
    if pcm.ndim != 1:
        raise ValueError(f"pcm must be mono (1-D), got shape {pcm.shape}")
    if not isinstance(sample_rate, int) or not 8_000 <= sample_rate <= 192_000:
        raise ValueError(f"sample_rate must be an int in [8000, 192000], got {sample_rate!r}")
    return np.ascontiguousarray(pcm)


class OpusEncoder:
    """A long-lived stream encoder; one per stage so the codec state carries across sentences."""

    def __init__(
        self,
        *,
        bitrate: int = DEFAULT_BITRATE,
        application: str = "voip",
        complexity: int = 10,
        compensate_lookahead: bool = True,
    ) -> None:
        """``complexity`` 0..10 trades quality for CPU: 10 (libopus' default) costs about
        15 ms per second of audio on one core, 5 about 9 ms."""
        if not 6_000 <= bitrate <= 510_000:
            raise ValueError(f"bitrate must be in [6000, 510000], got {bitrate}")
        if not 0 <= complexity <= 10:
            raise ValueError(f"complexity must be in [0, 10], got {complexity}")
        if application not in ("voip", "audio", "lowdelay"):
            raise ValueError(f"application must be voip, audio or lowdelay, got {application!r}")
        codec = av.CodecContext.create("libopus", "w")
        codec.sample_rate = SAMPLE_RATE
        codec.layout = "mono"
        codec.format = "s16"
        codec.bit_rate = bitrate
        codec.time_base = Fraction(1, SAMPLE_RATE)
        codec.options = {
            "application": application,
            "frame_duration": "20",
            "compression_level": str(complexity),
        }
        codec.open()
        self._codec = codec
        extradata = codec.extradata or b""
        pre_skip = extradata[_OPUS_HEAD_PRE_SKIP]
        self.lookahead_samples: int = (
            int.from_bytes(pre_skip, "little") if len(pre_skip) == 2 else _DEFAULT_LOOKAHEAD
        )
        self.compensate_lookahead = compensate_lookahead
        self._next_pts = 0
        self._pending = np.zeros(0, np.int16)
        self._resampler: av.AudioResampler | None = None
        self._segment_rate: int | None = None
        self._segment_samples = 0  # 48 kHz samples of audio in the current segment
        self._segment_frames = 0
        self._skip = self._segment_skip()

    @property
    def lookahead_s(self) -> float:
        """How late decoded audio is relative to its timestamps (0 when compensated)."""
        return 0.0 if self.compensate_lookahead else self.lookahead_samples / SAMPLE_RATE

    @property
    def next_pts(self) -> int:
        """The 48 kHz position the next frame will have."""
        return self._next_pts

    def _segment_skip(self) -> int:
        return self.lookahead_samples if self.compensate_lookahead else 0

    def feed(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> list[OpusFrame]:
        """Add audio to the current segment; returns the frames that are complete."""
        pcm = _check_pcm(pcm, sample_rate)
        if self._segment_rate is None:
            self._segment_rate = sample_rate
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        elif sample_rate != self._segment_rate:
            raise ValueError(
                f"sample rate changed within a segment ({self._segment_rate} -> {sample_rate});"
                " flush() between utterances"
            )
        if len(pcm) == 0:
            return []
        frame = av.AudioFrame.from_ndarray(pcm[np.newaxis, :], format="s16", layout="mono")
        frame.sample_rate = sample_rate
        assert self._resampler is not None
        return self._take(self._resampler.resample(frame))

    def flush(self) -> list[OpusFrame]:
        """End the segment: the rest of its audio, padded with silence to a whole frame."""
        frames: list[OpusFrame] = []
        if self._resampler is not None:
            frames += self._take(self._resampler.resample(None))
        total = math.ceil(self._segment_samples / FRAME_SAMPLES)
        missing = total - self._segment_frames
        if missing > 0:
            pad = missing * FRAME_SAMPLES - len(self._pending)
            self._pending = np.concatenate([self._pending, np.zeros(pad, np.int16)])
            frames += self._encode_pending()
        self._pending = np.zeros(0, np.int16)
        self._resampler = None
        self._segment_rate = None
        self._segment_samples = 0
        self._segment_frames = 0
        self._skip = self._segment_skip()
        return frames

    async def feed_async(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> list[OpusFrame]:
        """:meth:`feed` in a worker thread, so the event loop keeps its pace."""
        return await asyncio.to_thread(self.feed, pcm, sample_rate)

    async def flush_async(self) -> list[OpusFrame]:
        """:meth:`flush` in a worker thread."""
        return await asyncio.to_thread(self.flush)

    def encode(self, pcm: npt.NDArray[np.int16], sample_rate: int) -> list[OpusFrame]:
        """A whole utterance as one segment: exactly ceil(duration / 20 ms) frames."""
        return self.feed(pcm, sample_rate) + self.flush()

    def silence(self, n_frames: int) -> list[OpusFrame]:
        """Frames of silence between segments, keeping the codec state continuous."""
        if self._segment_samples:
            raise ValueError("silence() inside a segment; flush() first")
        frames = self.encode(np.zeros(n_frames * FRAME_SAMPLES, np.int16), SAMPLE_RATE)
        return frames

    def _take(self, resampled: Iterable[av.AudioFrame]) -> list[OpusFrame]:
        parts = [self._pending]
        for frame in resampled:
            samples = np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)
            self._segment_samples += len(samples)
            if self._skip:
                dropped = min(self._skip, len(samples))
                samples = samples[dropped:]
                self._skip -= dropped
            parts.append(samples)
        self._pending = np.concatenate(parts)
        return self._encode_pending()

    def _encode_pending(self) -> list[OpusFrame]:
        frames: list[OpusFrame] = []
        n_whole = len(self._pending) // FRAME_SAMPLES
        for k in range(n_whole):
            chunk = self._pending[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]
            frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self._next_pts
            frame.time_base = Fraction(1, SAMPLE_RATE)
            packets = self._codec.encode(frame)
            data = b"".join(bytes(p) for p in packets)
            if len(packets) != 1 or not data:
                raise RuntimeError(f"libopus returned {len(packets)} packets for one frame")
            frames.append(OpusFrame(self._next_pts, data))
            self._next_pts += FRAME_SAMPLES
            self._segment_frames += 1
        self._pending = self._pending[n_whole * FRAME_SAMPLES :]
        return frames


class OpusDecoder:
    """Raw Opus packets -> 48 kHz mono int16, 960 samples per packet, no pre-skip."""

    def __init__(self) -> None:
        codec = av.CodecContext.create("opus", "r")
        codec.sample_rate = SAMPLE_RATE
        codec.layout = "mono"
        self._codec = codec

    def decode(self, frames: Iterable[OpusFrame | bytes]) -> npt.NDArray[np.int16]:
        out: list[npt.NDArray[np.int16]] = []
        for item in frames:
            data = item.data if isinstance(item, OpusFrame) else item
            for decoded in self._codec.decode(av.Packet(data)):
                samples = decoded.to_ndarray().reshape(-1)
                if samples.dtype != np.int16:  # the native decoder gives float planes
                    samples = np.round(np.clip(samples.astype(np.float64), -1.0, 1.0) * 32767)
                out.append(samples.astype(np.int16))
        return np.concatenate(out) if out else np.zeros(0, np.int16)
