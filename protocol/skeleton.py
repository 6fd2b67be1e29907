"""Fixed name lists for the stage avatar: bones, visemes and expressions.

The order of each list is part of the wire format (an animation frame carries
values by index, never by name), so entries may only ever be appended in a new
protocol version, never reordered or removed.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

# VRM 1.0 humanoid bone names (https://github.com/vrm-c/vrm-specification,
# humanoid.md). Upper body first; fingers and toes are left out on purpose:
# 30 finger bones would add 120 bytes to every 40 ms frame sent to every
# viewer (about 3 KB/s each), more than doubling the skeleton.
SKELETON_BONES: Final[tuple[str, ...]] = (
    "hips",
    "spine",
    "chest",
    "upperChest",
    "neck",
    "head",
    "leftEye",
    "rightEye",
    "jaw",
    "leftShoulder",
    "leftUpperArm",
    "leftLowerArm",
    "leftHand",
    "rightShoulder",
    "rightUpperArm",
    "rightLowerArm",
    "rightHand",
    "leftUpperLeg",
    "leftLowerLeg",
    "leftFoot",
    "rightUpperLeg",
    "rightLowerLeg",
    "rightFoot",
)
BONE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(SKELETON_BONES)}

# The 15 OpenXR / Oculus visemes, in their standard order.
VISEMES: Final[tuple[str, ...]] = (
    "sil",
    "PP",
    "FF",
    "TH",
    "DD",
    "kk",
    "CH",
    "SS",
    "nn",
    "RR",
    "aa",
    "E",
    "ih",
    "oh",
    "ou",
)
VISEME_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(VISEMES)}

# VRM 1.0 preset mouth expressions, the columns of VISEME_TO_VRM.
VRM_VOWELS: Final[tuple[str, ...]] = ("aa", "ih", "ou", "ee", "oh")

# Rendering hint, not wire format: how much of each VRM vowel a viseme shows.
# Vowel visemes map one to one; consonants get a partly open or rounded mouth
# (PP and sil are a closed mouth). Rows sum to at most 1 so mixing stays sane.
VISEME_TO_VRM: Final[tuple[tuple[float, float, float, float, float], ...]] = (
    # aa   ih   ou   ee   oh
    (0.0, 0.0, 0.0, 0.0, 0.0),  # sil
    (0.0, 0.0, 0.0, 0.0, 0.0),  # PP  p b m: lips pressed
    (0.0, 0.4, 0.0, 0.1, 0.0),  # FF  f v: lower lip on teeth
    (0.2, 0.3, 0.0, 0.1, 0.0),  # TH  th: tongue between teeth
    (0.3, 0.2, 0.0, 0.2, 0.0),  # DD  t d
    (0.4, 0.2, 0.0, 0.0, 0.1),  # kk  k g
    (0.0, 0.2, 0.4, 0.2, 0.0),  # CH  ch j sh: lips forward
    (0.0, 0.5, 0.0, 0.3, 0.0),  # SS  s z: teeth together, spread
    (0.2, 0.3, 0.0, 0.1, 0.0),  # nn  n l
    (0.0, 0.0, 0.5, 0.0, 0.2),  # RR  r: rounded
    (1.0, 0.0, 0.0, 0.0, 0.0),  # aa
    (0.0, 0.0, 0.0, 1.0, 0.0),  # E
    (0.0, 1.0, 0.0, 0.0, 0.0),  # ih
    (0.0, 0.0, 0.0, 0.0, 1.0),  # oh
    (0.0, 0.0, 1.0, 0.0, 0.0),  # ou
)

# Face expressions carried next to the visemes. The first eleven are VRM 1.0
# preset names; the rest are ARKit-style names (the usual custom-expression
# names of face-tracked VRM models, and what OpenXR face tracking maps onto).
EXPRESSIONS: Final[tuple[str, ...]] = (
    "blinkLeft",
    "blinkRight",
    "happy",
    "angry",
    "sad",
    "relaxed",
    "surprised",
    "lookUp",
    "lookDown",
    "lookLeft",
    "lookRight",
    "jawOpen",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "browInnerUp",
    "browDownLeft",
    "browDownRight",
    "cheekPuff",
)
EXPRESSION_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(EXPRESSIONS)}

_VISEME_MATRIX = np.array(VISEME_TO_VRM, dtype=np.float32)


def visemes_to_vrm(weights: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Map viseme weights (..., 15) to VRM vowel weights (..., 5), clipped to [0, 1]."""
    w = np.asarray(weights, dtype=np.float32)
    if w.shape[-1:] != (len(VISEMES),):
        raise ValueError(f"expected {len(VISEMES)} viseme weights, got shape {w.shape}")
    out: npt.NDArray[np.float32] = np.clip(w @ _VISEME_MATRIX, 0.0, 1.0)
    return out
