"""Playing the stage in sync: a jitter buffer for stage packets and crowd frames.

Engine-neutral and sans-I/O: feed it what the connection receives (``push``, ``crowd``,
``stage_event``), then ask it for the stage at a display time (``frame``) and for the audio
that a sound device is about to play (``read_audio``). Both map local time to the server's
media clock with the connection's clock sync and play ``delay_us`` behind it (SPEC §5,
"Playing the stage in sync"), so voice, mouth and captions share one timeline and stay
together whatever the network does:

- **reordered** packets are slotted by media time, so order of arrival does not matter;
- **lost** packets leave a gap: animation interpolates across it (up to ``MAX_GAP_US``),
  audio plays silence for the missing 20 ms frames;
- **late** packets (their audio already played) give their audio up; the delay grows to
  cover the lateness seen (up to ``MAX_DELAY_US``), like the browser viewer's playout;
- **duplicates** are ignored.

``frame`` never waits: with nothing to show it returns the rest pose (``source="idle"``).
plugin/API.md documents the API for engine bridges (Unity, Unreal, Godot).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from townhall.protocol import quant
from townhall.protocol.messages import (
    Caption,
    CrowdFar,
    CrowdNear,
    Keyframe,
    Message,
    StageEnd,
    StagePacket,
    StageStart,
)

from .idle import idle_pose

F32 = npt.NDArray[np.float32]

SAMPLE_RATE = 48000
OPUS_FRAME_US = 20000
OPUS_FRAME_SAMPLES = 960
BASE_DELAY_US = 150_000  # SPEC §5: a jitter buffer of ~100-200 ms
MAX_DELAY_US = 400_000
MARGIN_US = 40_000  # time to decode and hand audio to the device
MAX_GAP_US = 250_000  # interpolate across lost packets up to this gap; beyond it, hold
HOLD_US = 300_000  # after the last frame: hold it this long, then ease to rest
RESYNC_US = 20_000  # audio cursor further than this from the clock: jump
KEEP_US = 3_000_000  # history kept behind the playhead
CROWD_DELAY_US = 150_000  # crowd frames come 10 a second: play one interval plus jitter behind

Source = Literal["live", "hold", "idle"]


class ClockLike(Protocol):
    def to_server(self, local_us: float) -> float: ...


class Decoder(Protocol):
    def decode(self, frames: Iterable[bytes]) -> npt.NDArray[np.int16]: ...


def _default_decoder() -> Decoder:
    from townhall.server.clone.voice.opus import OpusDecoder

    return OpusDecoder()


# ---------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class AvatarPose:
    """The stage avatar at one instant (SPEC §9 animation frame, as floats)."""

    hips_pos: F32  # (3,) metres, avatar root space
    rotations: F32  # (23, 4) local bone rotations (x, y, z, w), SKELETON_BONES order
    visemes: F32  # (15,) VISEMES order
    expressions: F32  # (20,) EXPRESSIONS order
    gaze: F32  # (3,) world point the avatar looks at
    source: Source  # live: interpolated; hold: last frame kept; idle: rest pose
    media_time_us: float  # the media time this pose shows


@dataclass(frozen=True, slots=True)
class Attendee:
    """One attendee in the crowd, in their seat's frame (SPEC §5: world = seat + yaw(p))."""

    slot: int
    flags: int
    pos: F32 | None  # (3, 3) head, left hand, right hand; None for a far (coarse) attendee
    rot: F32 | None  # (3, 4)
    yaw_deg: float
    pitch_deg: float
    hand_height_m: float


@dataclass(frozen=True, slots=True)
class StageFrame:
    """Everything to draw at one display time."""

    media_time_us: float
    avatar: AvatarPose
    attendees: dict[int, Attendee]
    captions: list[Caption]  # words showing now
    line: str  # the current caption line (recent words of the answer)
    label: str  # approved / generated / escalated (or any newer label), "" off stage
    disclosure: str
    question: str = ""  # the question being answered


@dataclass
class PlaybackStats:
    packets: int = 0
    duplicates: int = 0
    reordered: int = 0
    late: int = 0  # packets whose audio had already played
    lost_frames: int = 0  # 20 ms audio frames missing when they were due
    played_frames: int = 0
    resyncs: int = 0
    delay_changes: int = 0


def rest_pose(media_time_us: float = 0.0) -> AvatarPose:
    """The clone at rest: standing with arms down, breathing, shifting its weight and
    blinking (plugin/idle.py), never the T-pose the skeleton is defined in."""
    hips, rot, vis, expr = idle_pose(media_time_us / 1e6)
    return AvatarPose(
        hips, rot, vis, expr, np.array([0.0, 1.6, 5.0], np.float32), "idle", media_time_us
    )


def nlerp(a: F32, b: F32, s: float) -> F32:
    """Per-row normalised lerp of quaternions (N,4), taking the short way round."""
    dot = np.einsum("ij,ij->i", a, b)
    b = np.where(dot[:, None] < 0, -b, b)
    q = a + (b - a) * np.float32(s)
    out: F32 = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    return out


def blend(
    a: quant.AnimationFrame, b: quant.AnimationFrame, s: float
) -> tuple[F32, F32, F32, F32, F32]:
    """Frame a and b mixed at s in [0, 1]: lerp for vectors and weights, nlerp for bones."""
    s32 = np.float32(s)
    return (
        a.hips_pos + (b.hips_pos - a.hips_pos) * s32,
        nlerp(a.rotations, b.rotations, s),
        a.visemes + (b.visemes - a.visemes) * s32,
        a.expressions + (b.expressions - a.expressions) * s32,
        a.gaze + (b.gaze - a.gaze) * s32,
    )


# ---------------------------------------------------------------- the player


@dataclass
class _Crowd:
    time_us: int
    records: dict[int, tuple[int, F32, F32]] = field(default_factory=dict)


class StagePlayer:
    """The jitter buffer and clock: one per room connection."""

    def __init__(
        self,
        clock: ClockLike,
        *,
        delay_us: int = BASE_DELAY_US,
        adaptive: bool = True,
        decoder: Callable[[], Decoder] = _default_decoder,
    ) -> None:
        self.clock = clock
        self.delay_us = delay_us
        self.adaptive = adaptive
        self.stats = PlaybackStats()
        self._decoder_factory = decoder
        self._decoder: Decoder | None = None
        self._seen: set[tuple[int, int]] = set()
        self._top_index: dict[int, int] = {}
        self._anim_times: list[int] = []
        self._anim: list[quant.AnimationFrame] = []
        self._audio: dict[int, bytes] = {}  # media time of a 20 ms Opus frame -> packet
        self._audio_times: list[int] = []
        self._pcm: dict[int, npt.NDArray[np.int16]] = {}  # decoded frames, in media order
        self._audio_played_until = -(2**62)  # media time up to which audio was read
        self._anchor_us: float | None = None  # media time of audio sample 0 since resync
        self._samples_out = 0
        self._lost_samples = 0
        self._captions: list[Caption] = []
        # Labels by media time, one per packet of the clone: a label can change mid-answer
        # (generated, then escalated when a sentence is cut) and the packets sent ahead
        # carry the new one while the old one is still playing (SPEC §5).
        self._label_times: list[int] = []
        self._labels: list[tuple[int, int, str]] = []  # (end media time, answer, label)
        self._stage: StageStart | None = None
        self._ended: set[int] = set()
        self._near: list[_Crowd] = []  # the last two CrowdNear snapshots
        self._far: dict[int, quant.Coarse] = {}
        self._far_rows: dict[int, tuple[int, float, float, float]] = {}

    # ---------------------------------------------------------------- clock
    def media_time(self, local_us: float) -> float:
        """The media time playing at local time ``local_us`` (clock offset minus the delay).

        Raises LookupError before the clock's first sample; ``frame``, ``read_audio`` and
        ``on_message`` never do (they show the rest pose and play silence until then).
        """
        return self.clock.to_server(local_us) - self.delay_us

    def _server_time(self, local_us: float) -> float | None:
        """The server's media clock at ``local_us``; None before the first clock sample.

        A client that joins mid-answer gets the answer's speech replayed at once, before
        the Pong of its first Ping: the player is fed and asked for frames and audio then
        too, and has no mapping to play them on yet.
        """
        try:
            return self.clock.to_server(local_us)
        except LookupError:
            return None

    # ---------------------------------------------------------------- input
    def on_message(self, message: Message, arrival_local_us: float) -> None:
        """Feed any received message; the ones playback cares about are kept."""
        if isinstance(message, StagePacket):
            self.push(message, arrival_local_us)
        elif isinstance(message, (CrowdNear, CrowdFar)):
            self.crowd(message)
        elif isinstance(message, (StageStart, StageEnd)):
            self.stage_event(message)
            if isinstance(message, StageEnd) and message.outcome == "stopped":
                now = self._server_time(arrival_local_us)
                # Not synced yet: nothing of it has played, so none of it will.
                self.cut(now - self.delay_us if now is not None else self._audio_played_until)
        elif isinstance(message, Keyframe):
            self._stage = message.stage

    def stage_event(self, message: StageStart | StageEnd) -> None:
        if isinstance(message, StageStart):
            self._stage = message
        else:
            self._ended.add(message.answer)
            if self._stage is not None and self._stage.answer == message.answer:
                self._stage = None

    def cut(self, media_us: float) -> None:
        """Drop the voice, mouth and captions from ``media_us`` on: the answer was stopped.

        A server that sends speech ahead (SPEC §5) may have delivered more than was
        spoken when the moderator stopped it; what is not yet heard goes now.
        """
        at = max(int(media_us), self._audio_played_until)
        k = bisect.bisect_left(self._audio_times, at)
        for t in self._audio_times[k:]:
            self._audio.pop(t, None)
            self._pcm.pop(t, None)
        del self._audio_times[k:]
        j = bisect.bisect_left(self._anim_times, at)
        del self._anim_times[j:], self._anim[j:]
        self._captions = [c for c in self._captions if c.start_us < at]
        k = bisect.bisect_left(self._label_times, at)
        del self._label_times[k:], self._labels[k:]

    def push(self, packet: StagePacket, arrival_local_us: float) -> None:
        """One StagePacket as received (in any order, any number of times)."""
        key = (packet.answer, packet.index)
        if key in self._seen:
            self.stats.duplicates += 1
            return
        self._seen.add(key)
        self.stats.packets += 1
        if packet.index < self._top_index.get(packet.answer, -1):
            self.stats.reordered += 1
        self._top_index[packet.answer] = max(self._top_index.get(packet.answer, -1), packet.index)
        start = packet.media_time_us
        self._adapt(start, arrival_local_us)
        if start + packet.duration_us <= self._audio_played_until:
            self.stats.late += 1
        else:
            for k, data in enumerate(packet.opus):
                t = start + k * OPUS_FRAME_US
                if t >= self._audio_played_until and t not in self._audio:
                    self._audio[t] = data
                    bisect.insort(self._audio_times, t)
        n = len(packet.anim) // quant.ANIMATION_DTYPE.itemsize
        for i in range(min(n, len(packet.anim_times_us))):
            size = quant.ANIMATION_DTYPE.itemsize
            try:
                frame = quant.decode_animation_frame(packet.anim[i * size : (i + 1) * size])
            except quant.QuantizationError:
                continue
            t = start + packet.anim_times_us[i]
            j = bisect.bisect_left(self._anim_times, t)
            if j < len(self._anim_times) and self._anim_times[j] == t:
                continue
            self._anim_times.insert(j, t)
            self._anim.insert(j, frame)
        for caption in packet.captions:
            bisect.insort(self._captions, caption, key=lambda c: c.start_us)
        if packet.speaker_slot < 0:
            j = bisect.bisect_left(self._label_times, start)
            self._label_times.insert(j, start)
            self._labels.insert(j, (start + packet.duration_us, packet.answer, packet.label))

    def label_at(self, media_us: float) -> str:
        """The label of the answer's packet playing at ``media_us`` (the label of what is
        heard, not of the last packet received); between packets, the last one played of
        the answer on stage; off stage, none."""
        stage = self._stage
        if stage is None:
            return ""
        i = bisect.bisect_right(self._label_times, media_us) - 1
        while i >= 0:
            _end, answer, label = self._labels[i]
            if answer == stage.answer:
                return label
            i -= 1
        return stage.label

    def _adapt(self, start_us: int, arrival_local_us: float) -> None:
        """Grow the delay when a packet arrives later than it covers (SPEC §5 jitter buffer)."""
        if not self.adaptive:
            return
        now = self._server_time(arrival_local_us)
        if now is None:  # joined mid-answer, before the first clock sample
            return
        lateness = now - start_us + MARGIN_US
        if lateness <= self.delay_us or self.delay_us >= MAX_DELAY_US:
            return
        self.delay_us = int(min(MAX_DELAY_US, (lateness // 10_000 + 2) * 10_000))
        self.stats.delay_changes += 1

    def crowd(self, message: CrowdNear | CrowdFar) -> None:
        """A crowd frame: near frames are interpolated, far (coarse) ones shown as they come."""
        if isinstance(message, CrowdNear):
            try:
                c = quant.decode_crowd(message.records)
            except quant.QuantizationError:
                return
            snap = _Crowd(message.server_time_us)
            for i, slot in enumerate(c.slots):
                snap.records[int(slot)] = (int(c.flags[i]), c.pos[i], c.rot[i])
            if self._near and snap.time_us <= self._near[-1].time_us:
                return  # an older snapshot: latest wins
            if self._near:  # cells with no change are not re-sent: carry their poses over
                for slot, rec in self._near[-1].records.items():
                    snap.records.setdefault(slot, rec)
            self._near = [*self._near[-1:], snap]
        else:
            try:
                c2 = quant.decode_coarse(message.records)
            except quant.QuantizationError:
                return
            for i, slot in enumerate(c2.slots):
                row = (int(c2.flags[i]), float(c2.yaw_deg[i]), float(c2.pitch_deg[i]))
                self._far_rows[int(slot)] = (*row, float(c2.hand_height_m[i]))

    def forget(self, slot: int) -> None:
        """An attendee left: drop them from the crowd."""
        self._far_rows.pop(slot, None)
        for snap in self._near:
            snap.records.pop(slot, None)

    # ---------------------------------------------------------------- output: pictures
    def frame(self, display_local_us: float) -> StageFrame:
        """What to draw for a frame shown at local time ``display_local_us``.

        Pass the headset's predicted display time (OpenXR's, converted to the local clock):
        the pose is then right for the moment the picture is seen.
        """
        now = self._server_time(display_local_us)
        if now is None:
            return self._unsynced_frame()
        m = now - self.delay_us
        self._prune(m)
        avatar = self._avatar_at(m)
        showing = [c for c in self._captions if c.start_us <= m < c.start_us + c.duration_us]
        spoken = [c.text for c in self._captions if c.start_us <= m][-12:]
        stage = self._stage
        return StageFrame(
            m,
            avatar,
            self._attendees_at(now - CROWD_DELAY_US),
            showing,
            " ".join(spoken) if stage is not None or avatar.source != "idle" else "",
            self.label_at(m),
            stage.disclosure if stage is not None else "",
            stage.question_text if stage is not None else "",
        )

    def _unsynced_frame(self) -> StageFrame:
        """Before the first clock sample: the clone at rest, the crowd as last seen."""
        stage = self._stage
        return StageFrame(
            0.0,
            rest_pose(0.0),
            self._attendees_at(float("inf")),
            [],
            "",
            stage.label if stage is not None else "",
            stage.disclosure if stage is not None else "",
            stage.question_text if stage is not None else "",
        )

    def _avatar_at(self, m: float) -> AvatarPose:
        times = self._anim_times
        i = bisect.bisect_right(times, m) - 1
        if i >= 0 and i + 1 < len(times) and times[i + 1] - times[i] <= MAX_GAP_US:
            a, b = self._anim[i], self._anim[i + 1]
            s = (m - times[i]) / (times[i + 1] - times[i])
            return AvatarPose(*blend(a, b, s), source="live", media_time_us=m)
        if i >= 0 and m - times[i] <= HOLD_US:
            a = self._anim[i]
            return AvatarPose(
                a.hips_pos, a.rotations, a.visemes, a.expressions, a.gaze, "hold", times[i]
            )
        if i >= 0 and m - times[i] <= HOLD_US + 500_000:  # ease back to rest over 0.5 s
            a, rest = self._anim[i], rest_pose(m)
            s = (m - times[i] - HOLD_US) / 500_000
            rest_frame = quant.AnimationFrame(
                rest.hips_pos, rest.rotations, rest.visemes, rest.expressions, a.gaze
            )
            return AvatarPose(*blend(a, rest_frame, s), source="idle", media_time_us=m)
        return rest_pose(m)

    def _attendees_at(self, t: float) -> dict[int, Attendee]:
        out: dict[int, Attendee] = {}
        for slot, (flags, yaw, pitch, height) in self._far_rows.items():
            out[slot] = Attendee(slot, flags, None, None, yaw, pitch, height)
        if not self._near:
            return out
        newest = self._near[-1]
        older = self._near[0] if len(self._near) == 2 else newest
        span = newest.time_us - older.time_us
        s = 1.0 if span <= 0 else min(1.0, max(0.0, (t - older.time_us) / span))
        for slot, (flags, pos, rot) in newest.records.items():
            prev = older.records.get(slot)
            if prev is not None and s < 1.0:
                pos = prev[1] + (pos - prev[1]) * np.float32(s)
                rot = np.stack([nlerp(prev[2][k : k + 1], rot[k : k + 1], s)[0] for k in range(3)])
            head_yaw, head_pitch = quant.head_yaw_pitch(rot[0:1].astype(np.float64))
            tracked = [pos[k + 1, 1] for k in range(2) if flags & (2 << k)]
            out[slot] = Attendee(
                slot,
                flags,
                pos,
                rot,
                float(head_yaw[0]),
                float(head_pitch[0]),
                max([0.0, *(float(h) for h in tracked)]),
            )
        return out

    def _prune(self, m: float) -> None:
        cut = m - KEEP_US
        k = bisect.bisect_left(self._anim_times, cut)
        if k > 1:
            del self._anim_times[: k - 1], self._anim[: k - 1]
        self._captions = [c for c in self._captions if c.start_us + c.duration_us >= cut]
        k = bisect.bisect_left(self._label_times, cut)
        if k > 1:  # keep the last one before the cut: it may still be the label playing
            del self._label_times[: k - 1], self._labels[: k - 1]

    # ---------------------------------------------------------------- output: sound
    def read_audio(self, n: int, play_local_us: float) -> npt.NDArray[np.int16]:
        """The next ``n`` samples (48 kHz mono int16) for a device that starts playing them at
        local time ``play_local_us`` (the callback's time plus the device's output latency).

        The audio runs as a continuous stream; if it drifts more than ``RESYNC_US`` from the
        clock (a device clock running fast or slow, a delay change) it jumps back in line.
        Always returns ``n`` samples: silence where nothing is due or a frame was lost.
        """
        now = self._server_time(play_local_us)
        if now is None:  # not synced yet: silence, and the stream starts once it is
            return np.zeros(n, np.int16)
        want = now - self.delay_us
        if self._anchor_us is None or abs(self._cursor_us() - want) > RESYNC_US:
            if self._anchor_us is not None:
                self.stats.resyncs += 1
            self._anchor_us, self._samples_out = want, 0
        out = np.zeros(n, np.int16)
        filled = 0
        while filled < n:
            t = self._cursor_us()
            i = bisect.bisect_right(self._audio_times, t) - 1
            slot = self._audio_times[i] if i >= 0 else None
            if slot is not None and slot <= t < slot + OPUS_FRAME_US:
                pcm = self._decoded(slot)
                offset = round((t - slot) * SAMPLE_RATE / 1e6)
                take = min(n - filled, max(1, OPUS_FRAME_SAMPLES - offset))
                chunk = pcm[offset : offset + take]
                out[filled : filled + len(chunk)] = chunk
            else:
                nxt = self._audio_times[i + 1] if i + 1 < len(self._audio_times) else None
                gap = (nxt - t) if nxt is not None else 1e12
                take = min(n - filled, max(1, int(gap * SAMPLE_RATE / 1e6)))
                if slot is not None and nxt is not None and nxt - slot <= MAX_GAP_US:
                    self._lost_samples += take  # inside an answer: a lost frame
                    self.stats.lost_frames = round(self._lost_samples / OPUS_FRAME_SAMPLES)
            filled += take
            self._samples_out += take
        self._audio_played_until = int(self._cursor_us())
        self._drop_played_audio()
        return out

    def audio_clock_us(self) -> float | None:
        """Media time of the next sample ``read_audio`` will return (None before any read)."""
        return None if self._anchor_us is None else self._cursor_us()

    def _cursor_us(self) -> float:
        assert self._anchor_us is not None
        return self._anchor_us + self._samples_out * 1e6 / SAMPLE_RATE

    def _decoded(self, slot: int) -> npt.NDArray[np.int16]:
        cache = self._pcm
        pcm = cache.get(slot)
        if pcm is None:
            if self._decoder is None:
                self._decoder = self._decoder_factory()
            try:
                pcm = self._decoder.decode([self._audio[slot]])
            except Exception:  # a corrupt frame plays as silence
                pcm = np.zeros(OPUS_FRAME_SAMPLES, np.int16)
            if len(pcm) < OPUS_FRAME_SAMPLES:
                pcm = np.concatenate([pcm, np.zeros(OPUS_FRAME_SAMPLES - len(pcm), np.int16)])
            cache[slot] = pcm
            self.stats.played_frames += 1
        return pcm

    def _drop_played_audio(self) -> None:
        # Keep the last played frame: a gap after it is then known to be a loss.
        k = bisect.bisect_right(self._audio_times, self._audio_played_until - OPUS_FRAME_US) - 1
        if k > 0:
            for t in self._audio_times[:k]:
                self._audio.pop(t, None)
                self._pcm.pop(t, None)
            del self._audio_times[:k]
