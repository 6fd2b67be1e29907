"""The clone's face and body as encoded animation frames on the media clock.

`Animator.frames_for` turns an utterance (or nothing, between answers) into
(media time, 139-byte frame) pairs. Frames sit on one grid, media time n / fps
for whole n, and each is the pose at exactly that instant; calls for
back-to-back windows [start, start + duration) therefore join with no gap, no
duplicate and no seam. All state (blinks, gaze, gestures, speaking level) is
scheduled on the media clock, so the frames do not depend on how time is
split into calls, and the same seed and calls give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from townhall.protocol.skeleton import BONE_INDEX, EXPRESSION_INDEX, EXPRESSIONS, VISEMES
from townhall.server.clone.face import body, quat
from townhall.server.clone.face.blinks import Blinks
from townhall.server.clone.face.encode import encode_frames
from townhall.server.clone.face.gaze import Gaze, default_audience
from townhall.server.clone.face.gestures import CHANNELS, plan_gestures
from townhall.server.clone.face.timeline import Bumps, Intervals
from townhall.server.clone.face.visemes import VisemeTrack, build_track, envelope_track
from townhall.server.clone.speech import Utterance

F64 = npt.NDArray[np.float64]
Vec3 = tuple[float, float, float]

__all__ = ["MIN_FPS", "Animator"]

MIN_FPS: Final = 30.0
BIG_GAZE_SHIFT_DEG: Final = 25.0  # shifts this big come with a blink
LOOK_RANGE_YAW: Final = math.radians(30.0)  # eye angle that maps to a look* weight of 1
LOOK_RANGE_PITCH: Final = math.radians(25.0)
BEAT_ELBOW: Final = math.radians(14.0)
BEAT_WRIST: Final = math.radians(12.0)
MAX_COORDINATE_M: Final = 10_000.0  # scenes' limit; also rejects NaN and infinities
_GRID_EPS: Final = 1e-6  # in frames: float noise in start times must not shift the grid

_B = BONE_INDEX
_E = EXPRESSION_INDEX


class Animator:
    """Stateful frame source for one clone on stage.

    ``clone_position`` is the floor point of the clone's mark and
    ``clone_yaw_deg`` its facing in scene conventions (0 faces -Z, 180 faces
    +Z, the audience in the default hall). ``eye_height_m`` and
    ``hips_height_m`` describe the avatar (eyes and hips above its feet);
    ``audience`` optionally gives world points (seated heads) to look around
    at when no one is asking.

    Frames follow the protocol's skeleton conventions (VRM 1.0 normalized
    bones, local rotations relative to the T-pose) with the avatar root at
    the mark turned by R_y(clone_yaw_deg + 180), so the VRM's +Z forward is
    the mark's facing; see `body`. The frame's gaze field is the world point
    the eyes are on, and the eye bones aim there from ``eye_position``.
    """

    def __init__(
        self,
        fps: float = 30.0,
        seed: int = 0,
        clone_position: Vec3 = (0.0, 0.0, 0.0),
        clone_yaw_deg: float = 180.0,
        *,
        eye_height_m: float = 1.6,
        hips_height_m: float = 0.95,
        audience: Sequence[Vec3] | None = None,
    ) -> None:
        if not (math.isfinite(fps) and fps >= MIN_FPS):
            raise ValueError(f"fps must be at least {MIN_FPS}, got {fps}")
        if _valid(clone_position) is None or not math.isfinite(clone_yaw_deg):
            raise ValueError("clone position and yaw must be finite and inside the hall")
        if audience is not None and any(_valid(p) is None for p in audience):
            raise ValueError("audience points must be finite and inside the hall")
        self.fps = float(fps)
        self.root_position = np.asarray(clone_position, dtype=np.float64)
        self.root_rotation = body.root_quat(clone_yaw_deg)
        self.eye_position = self.root_position + np.array([0.0, eye_height_m, 0.0])
        self.hips_position = np.array([0.0, hips_height_m, 0.0])

        streams = np.random.SeedSequence(seed).spawn(4)
        blink_seed = int(streams[0].generate_state(1)[0])
        gaze_rng, gesture_rng, pose_rng = (np.random.default_rng(s) for s in streams[1:])
        self._gesture_rng = gesture_rng
        forward = quat.rotate(self.root_rotation, np.array([0.0, 0.0, 1.0]))
        points = (
            np.asarray(audience, dtype=np.float64)
            if audience is not None and len(audience)
            else default_audience(gaze_rng, self.eye_position, forward)
        )
        self._blinks = Blinks(blink_seed)
        self._gaze = Gaze(gaze_rng, self.eye_position, points)
        self._bumps = Bumps(CHANNELS)
        self._speaking = Intervals(rise_s=0.5, hold_s=0.5, fall_s=0.9)
        self._breath_phase = float(pose_rng.uniform(0.0, 2 * math.pi))
        self._sway_phases = (
            float(pose_rng.uniform(0.0, 2 * math.pi)),
            float(pose_rng.uniform(0.0, 2 * math.pi)),
        )
        self._utterance: Utterance | None = None
        self._start = math.nan
        self._track: VisemeTrack | None = None

    def frame_times(self, start_media_s: float, duration_s: float) -> F64:
        """Media times of the frames in [start, start + duration): n / fps for whole n."""
        first = math.ceil(start_media_s * self.fps - _GRID_EPS)
        stop = math.ceil((start_media_s + max(duration_s, 0.0)) * self.fps - _GRID_EPS)
        return np.arange(first, max(first, stop), dtype=np.float64) / self.fps

    def frames_for(
        self,
        utterance: Utterance | None,
        start_media_s: float,
        duration_s: float | None = None,
        gaze_target: Vec3 | None = None,
    ) -> list[tuple[float, bytes]]:
        """Frames for [start_media_s, start_media_s + duration_s), stamped with media time.

        With an utterance, its audio starts at ``start_media_s`` and the
        duration defaults to the audio's; without one the clone idles
        (breathes, blinks, looks around) and a duration is required. A gaze
        target is a world point (the asker's head); None means the audience.
        Windows of successive calls should not overlap.
        """
        if duration_s is None:
            if utterance is None:
                raise ValueError("an idle window needs a duration")
            duration_s = utterance.duration_s
        if not (math.isfinite(start_media_s) and math.isfinite(duration_s)):
            raise ValueError("start and duration must be finite")
        times = self.frame_times(start_media_s, duration_s)
        self._schedule(utterance, start_media_s, start_media_s + duration_s, _valid(gaze_target))
        if not times.size:
            return []
        frames = encode_frames(*self._pose(times))
        return list(zip(times.tolist(), frames, strict=True))

    # ------------------------------------------------------------ planning

    def _schedule(
        self, utterance: Utterance | None, t0: float, t1: float, target: Vec3 | None
    ) -> None:
        """Update state for the window [t0, t1): speech, gestures, gaze and blinks."""
        if utterance is not None and (utterance is not self._utterance or t0 != self._start):
            self._utterance, self._start = utterance, t0
            self._track = (
                build_track(utterance.phonemes)
                if utterance.phonemes
                else envelope_track(utterance.pcm, utterance.sample_rate)
            )
            self._speaking.add(t0, t0 + utterance.duration_s)
            for g in plan_gestures(utterance.phonemes, self._gesture_rng):
                self._bumps.add(g.channel, t0 + g.centre_s, g.width_s, g.height)
        for when, degrees in self._gaze.steer(t0, t1, target):
            if degrees >= BIG_GAZE_SHIFT_DEG:
                self._blinks.blink_now(when)
        self._speaking.forget_before(t0)
        self._bumps.forget_before(t0)
        self._blinks.forget_before(t0)

    # ------------------------------------------------------------ posing

    def _pose(self, times: F64) -> tuple[F64, F64, F64, F64, F64]:
        """Hips, rotations, visemes, expressions and gaze points for frame times (N,)."""
        n = times.shape[0]
        speaking = self._speaking.at(times)
        bumps = self._bumps.at(times)
        nod, beat_l, beat_r, brow = (bumps[:, i] for i in range(len(CHANNELS)))

        angles = body.REST_POSE + speaking[:, None, None] * (body.SPEAKING_POSE - body.REST_POSE)
        angles = angles + body.breathing(times, self._breath_phase, speaking)
        angles += body.idle_sway(times, self._sway_phases)
        head_dir = self._gaze.head_points(times) - self.eye_position
        root_inv = quat.conjugate(self.root_rotation)
        angles += body.head_turn(quat.rotate(root_inv, head_dir))
        angles[:, _B["head"], 1] += nod
        angles[:, _B["neck"], 1] += 0.3 * nod
        for side, beat, sign in (("left", beat_l, -1.0), ("right", beat_r, 1.0)):
            beat = beat * speaking  # no beats with the arms down
            angles[:, _B[f"{side}LowerArm"], 0] -= sign * BEAT_ELBOW * beat
            angles[:, _B[f"{side}Hand"], 1] += BEAT_WRIST * beat

        rotations = quat.from_yxz(angles)
        head_world = np.broadcast_to(self.root_rotation, (n, 4))
        for bone in body.HEAD_CHAIN:
            head_world = quat.multiply(head_world, rotations[:, bone])
        gaze = self._gaze.eye_points(times)
        eye_yaw, eye_pitch = body.eye_angles(head_world, gaze - self.eye_position)
        eyes = quat.from_yxz(np.stack([eye_yaw, eye_pitch, np.zeros(n)], axis=1))
        rotations[:, _B["leftEye"]] = eyes
        rotations[:, _B["rightEye"]] = eyes

        visemes = self._visemes(times)
        expressions = np.zeros((n, len(EXPRESSIONS)))
        blink = self._blinks.at(times)
        expressions[:, _E["blinkLeft"]] = blink
        expressions[:, _E["blinkRight"]] = blink
        expressions[:, _E["lookLeft"]] = np.clip(eye_yaw / LOOK_RANGE_YAW, 0.0, 1.0)
        expressions[:, _E["lookRight"]] = np.clip(-eye_yaw / LOOK_RANGE_YAW, 0.0, 1.0)
        expressions[:, _E["lookDown"]] = np.clip(eye_pitch / LOOK_RANGE_PITCH, 0.0, 1.0)
        expressions[:, _E["lookUp"]] = np.clip(-eye_pitch / LOOK_RANGE_PITCH, 0.0, 1.0)
        expressions[:, _E["browInnerUp"]] = brow
        hips = np.broadcast_to(self.hips_position, (n, 3))
        return hips, rotations, visemes, expressions, gaze

    def _visemes(self, times: F64) -> F64:
        out = np.zeros((times.shape[0], len(VISEMES)))
        out[:, 0] = 1.0  # sil
        if self._track is not None:
            end = self._start + self._track.end_s + 0.2
            live = (times >= self._start - 0.2) & (times < end)
            if live.any():
                out[live] = self._track.at(times[live] - self._start)
        return out


def _valid(point: Vec3 | None) -> Vec3 | None:
    """A world point inside the hall, or None (bad input must not break the animation)."""
    if point is None:
        return None
    try:
        x, y, z = (float(v) for v in point)
    except (TypeError, ValueError):
        return None
    return (x, y, z) if all(abs(v) <= MAX_COORDINATE_M for v in (x, y, z)) else None
