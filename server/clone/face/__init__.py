"""townhall.server.clone.face: the clone's face and body, from phoneme timing to animation frames.

- `phonemes`: eSpeak NG mnemonics (English, Ukrainian) to viseme targets.
- `visemes`: viseme weights over time with co-articulation; `mouth_open`.
- `blinks`, `gaze`, `gestures`, `body`: lids, where it looks, speech-timed
  movement, and the skeleton's joint angles.
- `animator`: `Animator.frames_for`, encoded frames on the media clock.
- `timeline`, `quat`, `encode`: the media-clock curves, quaternion maths and
  bulk frame encoding underneath.
"""

from townhall.server.clone.face.animator import Animator
from townhall.server.clone.face.visemes import (
    OPENNESS,
    build_track,
    mouth_open,
    mouth_open_track,
    viseme_track,
)

__all__ = [
    "OPENNESS",
    "Animator",
    "build_track",
    "mouth_open",
    "mouth_open_track",
    "viseme_track",
]
