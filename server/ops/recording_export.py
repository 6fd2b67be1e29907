"""A recording as files anyone can play: WebM (Opus) and WebVTT captions beside it.

The timeline is the recording's: second 0 is when recording began, so the captions, the
chapters and /watch?recording=ID agree on every time. The Opus frames are decoded and
re-encoded (PyAV), laid on that timeline with silence between answers, so any player seeks
in it; a live mic and the clone are mixed where they overlap. Speech a moderator stopped
is left out from the moment of the stop, as the audience heard it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from townhall.protocol import codec
from townhall.protocol.messages import StageEnd, StagePacket
from townhall.server.clone.voice.opus import FRAME_SAMPLES, SAMPLE_RATE, OpusDecoder
from townhall.server.store.recording import EVENT, LIVE, STAGE, index, read_entries

FRAME_US = 20_000
CHUNK = SAMPLE_RATE * 5  # samples encoded at a time (silence included)
CUE_GAP_US = 600_000
CUE_WORDS = 12
_SENTENCE_END = re.compile(r"[.!?…]['\")\]]*$")
LABEL_TITLES = {
    "approved": "Approved answer",
    "generated": "AI-generated",
    "escalated": "Escalated to the leader",
    "moderator": "Written by the moderators",
    "leader": "The leader's own words",
    "live": "Live",
}


@dataclass(frozen=True, slots=True)
class Word:
    start_us: int
    end_us: int
    text: str
    stream: int  # the answer, or -1 - slot for a live mic
    label: str


@dataclass
class Exported:
    webm: Path
    vtt: Path
    duration_s: float
    cues: int


def _stream_of(p: StagePacket) -> int:
    return p.answer if p.speaker_slot < 0 else -1 - p.speaker_slot


def _collect(path: Path) -> tuple[list[tuple[int, bytes]], list[Word]]:
    """Opus frames (media time, bytes) and caption words, without stopped speech."""
    packets: list[StagePacket] = []
    stopped_at: dict[int, int] = {}
    for entry in read_entries(path):
        if entry.kind in (STAGE, LIVE):
            packet = codec.decode_server(entry.payload)
            if isinstance(packet, StagePacket):
                packets.append(packet)
        elif entry.kind == EVENT:
            message = codec.decode_server(entry.payload)
            if isinstance(message, StageEnd) and message.outcome == "stopped":
                stopped_at[message.answer] = entry.at_us
    frames: list[tuple[int, bytes]] = []
    words: list[Word] = []
    for p in packets:
        cut = stopped_at.get(p.answer, 1 << 62) if p.speaker_slot < 0 else 1 << 62
        for i, data in enumerate(p.opus):
            t = p.media_time_us + i * FRAME_US
            if t < cut:
                frames.append((t, data))
        for c in p.captions:
            if c.start_us < cut:
                words.append(
                    Word(c.start_us, c.start_us + c.duration_us, c.text, _stream_of(p), p.label)
                )
    frames.sort(key=lambda f: f[0])
    words.sort(key=lambda w: w.start_us)
    return frames, words


def _timeline(
    frames: list[tuple[int, bytes]], t0_us: int, end_us: int
) -> Iterator[npt.NDArray[np.int16]]:
    """The mixed PCM from ``t0_us`` to ``end_us``, in chunks."""
    decoder = OpusDecoder()
    pos = 0  # samples handed out so far
    pending = np.zeros(0, np.int32)  # samples from pos on, still open to mixing
    total = max(0, round((end_us - t0_us) * SAMPLE_RATE / 1e6))
    for t_us, data in frames:
        pcm = decoder.decode([data]).astype(np.int32)
        start = round((t_us - t0_us) * SAMPLE_RATE / 1e6)
        if start + len(pcm) <= pos or start < 0:
            continue
        while start - pos > CHUNK:  # long silence before this frame: hand it out
            out = np.zeros(CHUNK, np.int32)
            out[: min(len(pending), CHUNK)] = pending[:CHUNK]
            pending = pending[CHUNK:]
            pos += CHUNK
            yield np.clip(out, -32768, 32767).astype(np.int16)
        offset = start - pos
        need = offset + len(pcm)
        if len(pending) < need:
            pending = np.concatenate([pending, np.zeros(need - len(pending), np.int32)])
        lo = max(0, -offset)
        pending[max(0, offset) : need] += pcm[lo:]
        if offset >= CHUNK:
            yield np.clip(pending[:offset], -32768, 32767).astype(np.int16)
            pending = pending[offset:]
            pos += offset
    if len(pending):
        yield np.clip(pending, -32768, 32767).astype(np.int16)
        pos += len(pending)
    while pos < total:
        n = min(CHUNK, total - pos)
        yield np.zeros(n, np.int16)
        pos += n


def write_webm(frames: list[tuple[int, bytes]], t0_us: int, end_us: int, out: Path) -> float:
    """Encode the timeline as Opus in WebM; returns its duration in seconds."""
    samples = 0
    with av.open(str(out), "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=SAMPLE_RATE, layout="mono")
        stream.bit_rate = 32_000
        carry = np.zeros(0, np.int16)
        for chunk in _timeline(frames, t0_us, end_us):
            data = np.concatenate([carry, chunk])
            whole = len(data) - len(data) % FRAME_SAMPLES
            carry = data[whole:]
            for i in range(0, whole, FRAME_SAMPLES):
                samples += _encode(container, stream, data[i : i + FRAME_SAMPLES], samples)
        if len(carry):
            padded = np.concatenate([carry, np.zeros(FRAME_SAMPLES - len(carry), np.int16)])
            samples += _encode(container, stream, padded, samples)
        for packet in stream.encode(None):
            container.mux(packet)
    return samples / SAMPLE_RATE


def _encode(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    pcm: npt.NDArray[np.int16],
    pts: int,
) -> int:
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = SAMPLE_RATE
    frame.pts = pts
    for packet in stream.encode(frame):
        container.mux(packet)
    return len(pcm)


def _stamp(us: int) -> str:
    ms = max(0, us) // 1000
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def cues(words: list[Word]) -> list[tuple[int, int, str, str, int]]:
    """Words grouped into caption cues: (start, end, text, label, stream)."""
    out: list[tuple[int, int, str, str, int]] = []
    group: list[Word] = []

    def close() -> None:
        if group:
            text = " ".join(w.text for w in group)
            out.append((group[0].start_us, group[-1].end_us, text, group[0].label, group[0].stream))
            group.clear()

    for w in words:
        if group:
            prev = group[-1]
            if (
                w.stream != prev.stream
                or w.label != prev.label
                or w.start_us - prev.end_us >= CUE_GAP_US
                or len(group) >= CUE_WORDS
                or _SENTENCE_END.search(prev.text)
            ):
                close()
        group.append(w)
    close()
    return out


def write_vtt(words: list[Word], t0_us: int, chapters: list[tuple[int, str]], out: Path) -> int:
    """WebVTT captions; each answer's first cue names its label, chapters are NOTEs."""
    lines = ["WEBVTT", ""]
    for at_us, title in chapters:
        lines += [f"NOTE chapter {_stamp(at_us - t0_us)} {title}", ""]
    shown: tuple[int, str] | None = None
    made = cues(words)
    for n, (start, end, text, label, stream) in enumerate(made, 1):
        title = LABEL_TITLES.get(label, label)
        prefix = f"[{title}] " if shown != (stream, label) else ""
        shown = (stream, label)
        end = max(end, start + 200_000)
        lines += [str(n), f"{_stamp(start - t0_us)} --> {_stamp(end - t0_us)}", prefix + text, ""]
    out.write_text("\n".join(lines), encoding="utf-8")
    return len(made)


def export(recording: Path, out: Path) -> Exported:
    """Write ``out`` (WebM) and ``out`` with the suffix .vtt; the recording stays as it is."""
    found = index(recording)
    frames, words = _collect(recording)
    t0 = found.start_us
    end = max([found.end_us] + [t + FRAME_US for t, _ in frames[-1:]])
    duration = write_webm(frames, t0, end, out)
    vtt = out.with_suffix(".vtt")
    chapters = [(c.start_us, f"Q{c.question}: {c.text}") for c in found.chapters]
    n = write_vtt(words, t0, chapters, vtt)
    return Exported(out, vtt, duration, n)
