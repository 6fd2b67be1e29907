"""Pose and animation quantization: fixed-size little-endian records as numpy dtypes.

Every record type has a structured dtype, so encoding or decoding N records is
a handful of vectorised numpy operations and the wire bytes are just
``array.tobytes()`` / ``np.frombuffer``. SPEC.md section 9 gives the byte layouts,
ranges and error bounds; the constants here are the source of truth.

Conventions: right-handed, metres, +Y up, -Z forward; quaternions (x, y, z, w).
Decoders return float32 (the wire is far coarser); encoders work in float64.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntFlag
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from .limits import POSE_BYTES
from .skeleton import EXPRESSIONS, SKELETON_BONES, VISEMES

__all__ = [
    "ANIMATION_DTYPE",
    "ANIMATION_FRAME_BYTES",
    "COARSE_DTYPE",
    "COARSE_RECORD_BYTES",
    "CROWD_DTYPE",
    "CROWD_RECORD_BYTES",
    "DEVICES",
    "DEVICE_DTYPE",
    "GAZE_UNITS_PER_M",
    "POSE_BYTES",
    "POSE_DTYPE",
    "QUAT_BYTES",
    "SKELETON_BYTES",
    "SKELETON_DTYPE",
    "AnimationFrame",
    "Coarse",
    "Crowd",
    "PoseFlag",
    "QuantizationError",
    "check_poses",
    "check_quats",
    "coarse_from_poses",
    "decode_animation_frame",
    "decode_coarse",
    "decode_crowd",
    "decode_poses",
    "decode_quats",
    "decode_skeleton",
    "decode_weights",
    "encode_animation_frame",
    "encode_coarse",
    "encode_crowd",
    "encode_poses",
    "encode_quats",
    "encode_skeleton",
    "encode_weights",
    "head_yaw_pitch",
    "pack_crowd",
    "pose_out_of_range",
]

Buffer = bytes | bytearray | memoryview
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class QuantizationError(ValueError):
    """Input that cannot be encoded, or bytes that are not a valid record."""


class PoseFlag(IntFlag):
    """Per-attendee flag bits shared by crowd and coarse records (bits 5-7 reserved, zero)."""

    HAND_RAISED = 1
    LEFT_TRACKED = 2
    RIGHT_TRACKED = 4
    SPEAKING = 8
    CLAMPED = 16  # a position was outside +-32.767 m and was clamped


# ---------------------------------------------------------------- record dtypes

DEVICES: Final[tuple[str, str, str]] = ("head", "left_hand", "right_hand")
DEVICE_DTYPE: Final = np.dtype([("pos", "<i2", (3,)), ("rot", "<u4")])
POSE_DTYPE: Final = np.dtype([(name, DEVICE_DTYPE) for name in DEVICES])
CROWD_DTYPE: Final = np.dtype([("slot", "<u2"), ("flags", "u1"), ("pose", POSE_DTYPE)])
COARSE_DTYPE: Final = np.dtype(
    [("slot", "<u2"), ("yaw", "u1"), ("pitch", "i1"), ("flags", "u1"), ("hand_height", "u1")]
)
SKELETON_DTYPE: Final = np.dtype(
    [("hips_pos", "<i2", (3,)), ("rot", "<u4", (len(SKELETON_BONES),))]
)
ANIMATION_DTYPE: Final = np.dtype(
    [
        ("skeleton", SKELETON_DTYPE),
        ("visemes", "u1", (len(VISEMES),)),
        ("expressions", "u1", (len(EXPRESSIONS),)),
        ("gaze", "<i2", (3,)),
    ]
)

QUAT_BYTES: Final = 4
CROWD_RECORD_BYTES: Final = CROWD_DTYPE.itemsize  # 33
COARSE_RECORD_BYTES: Final = COARSE_DTYPE.itemsize  # 6
SKELETON_BYTES: Final = SKELETON_DTYPE.itemsize  # 98
ANIMATION_FRAME_BYTES: Final = ANIMATION_DTYPE.itemsize  # 139
assert POSE_DTYPE.itemsize == POSE_BYTES

# ---------------------------------------------------------------- input checks


def _floats(x: npt.ArrayLike, name: str, shape: tuple[int | None, ...] | None) -> F64:
    """``x`` as finite float64 of the given shape (None = any length, or any shape)."""
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise QuantizationError(f"{name}: not an array of numbers") from exc
    if shape is not None and (
        a.ndim != len(shape)
        or any(want is not None and got != want for got, want in zip(a.shape, shape, strict=True))
    ):
        want_s = "(" + ", ".join("N" if n is None else str(n) for n in shape) + ")"
        raise QuantizationError(f"{name}: expected shape {want_s}, got {a.shape}")
    if not np.isfinite(a).all():
        raise QuantizationError(f"{name}: NaN or infinite value")
    return a


def _ints(x: npt.ArrayLike, name: str, n: int, hi: int) -> npt.NDArray[np.int64]:
    """``x`` as a length-``n`` integer vector within [0, hi]."""
    a = np.asarray(x)
    if a.shape != (n,) or (a.dtype.kind not in "iub" and n):  # [] is float64, and fine
        raise QuantizationError(f"{name}: expected {n} integers, got {a.dtype} {a.shape}")
    b = a.astype(np.int64)
    if n and (b.min() < 0 or b.max() > hi):
        raise QuantizationError(f"{name}: values must be in 0..{hi}")
    return b


def _records(b: Buffer, dtype: np.dtype[np.void], what: str) -> npt.NDArray[np.void]:
    """View ``b`` as records of ``dtype``; the length must be a whole number of them."""
    size = memoryview(b).nbytes
    if size % dtype.itemsize:
        raise QuantizationError(
            f"{what}: {size} bytes is not a multiple of the {dtype.itemsize}-byte record"
        )
    return np.frombuffer(b, dtype=dtype)


def _one_record(b: Buffer, dtype: np.dtype[np.void], what: str) -> np.void:
    size = memoryview(b).nbytes
    if size != dtype.itemsize:
        raise QuantizationError(f"{what}: expected {dtype.itemsize} bytes, got {size}")
    rec: np.void = np.frombuffer(b, dtype=dtype)[0]
    return rec


# ---------------------------------------------------------------- quaternions

# Smallest three: bits 31-30 index of the dropped (largest) component, then the
# other three in x, y, z, w order as 10-bit two's complement k in [-511, 511],
# value k * (1/sqrt 2) / 511. Code -512 is reserved.
_QMAX: Final = 511
_QSTEP: Final = math.sqrt(0.5) / _QMAX
_QSUMSQ_MAX: Final = 2 * _QMAX * _QMAX  # sum of k^2 above this leaves no real dropped value
# Quaternions per pass. Small passes keep the ~40 temporaries (16 KiB each) in
# memory malloc reuses; bigger ones page-fault fresh memory on every call.
_BLOCK: Final = 2048


def encode_quats(q: npt.ArrayLike) -> npt.NDArray[np.uint32]:
    """Pack unit quaternions (..., 4) as smallest-three uint32 codes (...).

    Input is normalised first; a zero-length or non-finite quaternion is an error.
    """
    a = _floats(q, "rotation", None)
    if a.ndim == 0 or a.shape[-1] != 4:
        raise QuantizationError(f"rotation: expected shape (..., 4), got {a.shape}")
    flat = a.reshape(-1, 4)
    out = np.empty(flat.shape[0], dtype=np.uint32)
    for start in range(0, flat.shape[0], _BLOCK):
        out[start : start + _BLOCK] = _encode_block(flat[start : start + _BLOCK])
    return out.reshape(a.shape[:-1])


def _encode_block(flat: F64) -> npt.NDArray[np.int64]:
    """Smallest-three codes for rows of ``flat``, one column (component) at a time.

    Rounding each component to nearest is off by up to 0.27 degrees, because
    rebuilding the dropped component amplifies errors that point the same way.
    So all 8 floor/ceil combinations are scored by their dot product with q and
    the best is kept (the lowest candidate on ties): at most 0.16 degrees.
    Working on whole columns keeps numpy's inner loops long and temporaries small.
    """
    cols = [flat[:, i] for i in range(4)]
    norm = np.sqrt(cols[0] * cols[0] + cols[1] * cols[1] + cols[2] * cols[2] + cols[3] * cols[3])
    if norm.size and not (norm.min() >= 1e-6 and np.isfinite(norm.max())):
        raise QuantizationError("rotation: zero-length or overflowing quaternion")
    # Largest magnitude, first index on ties; its sign makes the dropped value positive.
    idx = np.zeros(norm.shape, dtype=np.int64)
    largest = cols[0]
    for i in (1, 2, 3):
        wins = np.abs(cols[i]) > np.abs(largest)
        idx = np.where(wins, i, idx)
        largest = np.where(wins, cols[i], largest)
    sign = np.where(largest < 0.0, -1.0, 1.0)
    big = np.abs(largest) / norm
    small = [np.where(idx > i, cols[i], cols[i + 1]) / norm * sign for i in range(3)]

    lo = [np.clip(np.floor(v / _QSTEP), -_QMAX, _QMAX) for v in small]
    values = [(low * _QSTEP, np.minimum(low + 1.0, _QMAX) * _QSTEP) for low in lo]
    dots = [(v * c0, v * c1) for v, (c0, c1) in zip(small, values, strict=True)]
    sqs = [(c0 * c0, c1 * c1) for c0, c1 in values]
    # Partial sums over the first two components, shared by candidate pairs.
    dot01 = [dots[0][j >> 1] + dots[1][j & 1] for j in range(4)]
    sq01 = [sqs[0][j >> 1] + sqs[1][j & 1] for j in range(4)]
    best_j = np.zeros(norm.shape, dtype=np.int64)
    best_score = np.full(norm.shape, -np.inf)
    for j in range(8):
        # 1 - sum stays positive: the three smallest have squares summing to <= 3/4.
        dropped = np.sqrt(1.0 - (sq01[j >> 1] + sqs[2][j & 1]))
        score = (dot01[j >> 1] + dots[2][j & 1]) + big * dropped
        wins = score > best_score
        best_j[wins] = j
        best_score = np.maximum(score, best_score)

    code = idx << 30
    for i in range(3):
        k = np.minimum(lo[i] + ((best_j >> (2 - i)) & 1), _QMAX).astype(np.int64)
        code |= (k & 0x3FF) << (20 - 10 * i)
    return code


def _unpack_codes(
    codes: npt.ArrayLike, label: str, names: tuple[str, ...] | None
) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[np.int64]]]:
    """Split codes into the dropped index and the three signed k, rejecting invalid codes.

    Works on flat columns rather than an (M, 3) array: numpy reductions over a
    length-3 axis are slow. ``names`` names the last axis of ``codes`` (devices,
    bones) for error messages.
    """
    raw = np.asarray(codes)
    if raw.dtype.kind not in "iu":
        raise QuantizationError(f"{label}: rotation codes must be integers, got {raw.dtype}")
    c64 = raw.astype(np.int64).reshape(-1)
    if c64.size and (c64.min() < 0 or c64.max() > 0xFFFFFFFF):
        raise QuantizationError(f"{label}: rotation codes must fit in uint32")
    # 10-bit two's complement: (field ^ 0x200) - 0x200.
    k = [(((c64 >> shift) & 0x3FF) ^ 0x200) - 0x200 for shift in (20, 10, 0)]
    reserved = (k[0] == -512) | (k[1] == -512) | (k[2] == -512)
    too_long = k[0] * k[0] + k[1] * k[1] + k[2] * k[2] > _QSUMSQ_MAX
    for bad, why in (
        (reserved, "component code -512 is reserved"),
        (too_long, "components longer than a unit quaternion"),
    ):
        if bad.any():
            at = int(np.argmax(bad))
            where = f"{at // len(names)} ({names[at % len(names)]})" if names else str(at)
            raise QuantizationError(f"{label} {where}: bad rotation code {c64[at]:#010x}: {why}")
    return c64 >> 30, k


def _code_problem(code: int) -> str | None:
    """Pure-Python validity check of one code: cheaper than numpy for a single pose."""
    k = [(((code >> shift) & 0x3FF) ^ 0x200) - 0x200 for shift in (20, 10, 0)]
    if -512 in k:
        return "component code -512 is reserved"
    if k[0] * k[0] + k[1] * k[1] + k[2] * k[2] > _QSUMSQ_MAX:
        return "components longer than a unit quaternion"
    return None


def check_quats(codes: npt.ArrayLike) -> None:
    """Raise QuantizationError unless every smallest-three code is valid (integer-only check)."""
    _unpack_codes(codes, "rotation", None)


def decode_quats(codes: npt.ArrayLike) -> F32:
    """Unpack smallest-three uint32 codes (...) into unit quaternions (..., 4)."""
    return _decode_codes(codes, "rotation", None)


def _decode_codes(codes: npt.ArrayLike, label: str, names: tuple[str, ...] | None) -> F32:
    idx, k = _unpack_codes(codes, label, names)
    c = [ki * _QSTEP for ki in k]
    dropped = np.sqrt(np.maximum(0.0, 1.0 - (c[0] * c[0] + c[1] * c[1] + c[2] * c[2])))
    out = np.empty((idx.size, 4), dtype=np.float32)
    # Output component j is the dropped one, or remaining j (dropped after it) or j - 1.
    out[:, 0] = np.where(idx == 0, dropped, c[0])
    for j in (1, 2):
        out[:, j] = np.where(idx == j, dropped, np.where(idx > j, c[j], c[j - 1]))
    out[:, 3] = np.where(idx == 3, dropped, c[2])
    return out.reshape(*np.shape(codes), 4)


# ---------------------------------------------------------------- positions

_MM_MAX: Final = 32767  # symmetric, so negating a wire value never overflows


def _to_int16(p: F64, per_m: float = 1000.0) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.bool_]]:
    """Metres to int16 units of 1/per_m m, clamped to +-32767, and where clamping happened."""
    units = np.rint(p * per_m)
    clamped = np.abs(units) > _MM_MAX
    return np.clip(units, -_MM_MAX, _MM_MAX).astype(np.int16), clamped


def _from_int16(units: npt.ArrayLike, per_m: float = 1000.0) -> F32:
    return (np.asarray(units, dtype=np.float64) / per_m).astype(np.float32)


# ---------------------------------------------------------------- full poses


_POSE_STRUCT: Final = struct.Struct("<3hI3hI3hI")


def pose_out_of_range(pos: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which poses (N,3,3 metres) have a coordinate that encoding will clamp."""
    _, clamped = _to_int16(_floats(pos, "pos", (None, 3, 3)))
    return np.asarray(clamped.any(axis=(1, 2)), dtype=np.bool_)


def encode_poses(pos: npt.ArrayLike, rot: npt.ArrayLike) -> npt.NDArray[np.void]:
    """Quantize N poses into POSE_DTYPE records (30 bytes each).

    ``pos`` (N,3,3) is head, left hand, right hand in metres from the seat's
    floor point; ``rot`` (N,3,4) their rotations. Positions beyond +-32.767 m
    are clamped: see ``pose_out_of_range`` and PoseFlag.CLAMPED.
    """
    p = _floats(pos, "pos", (None, 3, 3))
    r = _floats(rot, "rot", (p.shape[0], 3, 4))
    mm, _ = _to_int16(p)
    codes = encode_quats(r)
    out = np.zeros(p.shape[0], dtype=POSE_DTYPE)
    for i, device in enumerate(DEVICES):
        out[device]["pos"] = mm[:, i]
        out[device]["rot"] = codes[:, i]
    return out


def _pose_array(records: Buffer | npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    if isinstance(records, np.ndarray):
        if records.dtype != POSE_DTYPE or records.ndim != 1:
            raise QuantizationError(f"poses: expected a 1-d POSE_DTYPE array, got {records.dtype}")
        return records
    return _records(records, POSE_DTYPE, "poses")


def decode_poses(records: Buffer | npt.NDArray[np.void]) -> tuple[F32, F32]:
    """POSE_DTYPE records (or their bytes) back to positions (N,3,3) and rotations (N,3,4)."""
    arr = _pose_array(records)
    pos = np.stack([arr[d]["pos"] for d in DEVICES], axis=1)
    rot = np.stack([arr[d]["rot"] for d in DEVICES], axis=1)
    return _from_int16(pos), _decode_codes(rot, "pose", DEVICES)


def check_poses(records: Buffer | npt.NDArray[np.void]) -> npt.NDArray[np.void]:
    """Validate pose records (or bytes, e.g. a Pose message) without decoding to floats.

    Returns them as a POSE_DTYPE array. Every position is in range by
    construction, so only the rotation codes can be invalid.
    """
    if not isinstance(records, np.ndarray) and memoryview(records).nbytes == POSE_BYTES:
        # One pose per Pose message, thousands per second: skip numpy's per-call cost.
        fields = _POSE_STRUCT.unpack(records)
        for device, code in zip(DEVICES, fields[3::4], strict=True):
            why = _code_problem(code)
            if why:
                raise QuantizationError(f"pose 0 ({device}): bad rotation code {code:#010x}: {why}")
        return np.frombuffer(records, dtype=POSE_DTYPE)
    arr = _pose_array(records)
    _unpack_codes(np.stack([arr[d]["rot"] for d in DEVICES], axis=1), "pose", DEVICES)
    return arr


# ---------------------------------------------------------------- crowd records


class Crowd(NamedTuple):
    """Decoded crowd records, one row per attendee."""

    slots: npt.NDArray[np.uint16]
    flags: npt.NDArray[np.uint8]
    pos: F32  # (N, 3, 3) metres from the seat's floor point
    rot: F32  # (N, 3, 4)


def pack_crowd(
    slots: npt.ArrayLike, flags: npt.ArrayLike, poses: Buffer | npt.NDArray[np.void]
) -> bytes:
    """Crowd records from already-quantized poses, e.g. the bytes attendees sent.

    This is the server's relay path: no float round trip, so a pose is
    quantized once, by its sender.
    """
    arr = check_poses(poses)
    n = arr.shape[0]
    return _crowd_bytes(_ints(slots, "slots", n, 0xFFFF), _ints(flags, "flags", n, 0xFF), arr)


def _crowd_bytes(
    slots: npt.NDArray[np.int64], flags: npt.NDArray[np.int64], poses: npt.NDArray[np.void]
) -> bytes:
    out = np.empty(poses.shape[0], dtype=CROWD_DTYPE)
    out["slot"] = slots
    out["flags"] = flags
    out["pose"] = poses
    return out.tobytes()


def encode_crowd(
    slots: npt.ArrayLike, flags: npt.ArrayLike, pos: npt.ArrayLike, rot: npt.ArrayLike
) -> bytes:
    """N crowd records (33 bytes each); PoseFlag.CLAMPED is set where a position was clamped."""
    p = _floats(pos, "pos", (None, 3, 3))
    n = p.shape[0]
    s = _ints(slots, "slots", n, 0xFFFF)
    f = _ints(flags, "flags", n, 0xFF)
    _, clamped = _to_int16(p)
    f = f | np.where(clamped.any(axis=(1, 2)), int(PoseFlag.CLAMPED), 0)
    return _crowd_bytes(s, f, encode_poses(p, rot))


def decode_crowd(b: Buffer) -> Crowd:
    """Crowd record bytes back to slots, flags, positions and rotations."""
    arr = _records(b, CROWD_DTYPE, "crowd")
    pos, rot = decode_poses(arr["pose"])
    return Crowd(arr["slot"].copy(), arr["flags"].copy(), pos, rot)


# ---------------------------------------------------------------- coarse records

_YAW_STEP_DEG: Final = 360.0 / 256.0


class Coarse(NamedTuple):
    """Decoded coarse records; angles in degrees, height in metres."""

    slots: npt.NDArray[np.uint16]
    flags: npt.NDArray[np.uint8]
    yaw_deg: F32  # [-180, 180), counter-clockwise seen from above, 0 = facing -Z
    pitch_deg: F32  # [-90, 90], positive = looking up
    hand_height_m: F32  # [0, 2.55]


def head_yaw_pitch(rot: npt.ArrayLike) -> tuple[F64, F64]:
    """Yaw and pitch in degrees of rotations (N,4): Y-X-Z Euler angles, roll dropped.

    Looking straight up or down leaves yaw to the head's up vector (roll taken as 0).
    """
    q = _floats(rot, "rot", (None, 4))
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    r02 = 2.0 * (x * z + w * y)
    r22 = 1.0 - 2.0 * (x * x + y * y)
    r12 = 2.0 * (y * z - w * x)
    r00 = 1.0 - 2.0 * (y * y + z * z)
    r20 = 2.0 * (x * z - w * y)
    level = np.hypot(r02, r22) > 1e-6
    yaw = np.where(level, np.arctan2(r02, r22), np.arctan2(-r20, r00))
    pitch = np.arcsin(np.clip(-r12, -1.0, 1.0))
    return np.degrees(yaw), np.degrees(pitch)


def coarse_from_poses(
    flags: npt.ArrayLike, pos: npt.ArrayLike, rot: npt.ArrayLike
) -> tuple[F64, F64, F64]:
    """Head yaw, head pitch (degrees) and hand height (metres) from N full poses.

    Hand height is the highest tracked hand's Y above the seat floor, 0 when no
    hand is tracked (tracking comes from the LEFT/RIGHT_TRACKED bits of ``flags``).
    """
    p = _floats(pos, "pos", (None, 3, 3))
    n = p.shape[0]
    r = _floats(rot, "rot", (n, 3, 4))
    f = _ints(flags, "flags", n, 0xFF)
    yaw, pitch = head_yaw_pitch(r[:, 0])
    tracked = np.stack(
        [(f & PoseFlag.LEFT_TRACKED) != 0, (f & PoseFlag.RIGHT_TRACKED) != 0], axis=1
    )
    hands = np.where(tracked, p[:, 1:, 1], -np.inf)
    height = np.maximum(hands.max(axis=1, initial=-np.inf), 0.0)
    return yaw, pitch, height


def encode_coarse(
    slots: npt.ArrayLike,
    flags: npt.ArrayLike,
    yaw_deg: npt.ArrayLike,
    pitch_deg: npt.ArrayLike,
    hand_height_m: npt.ArrayLike,
) -> bytes:
    """N coarse records (6 bytes each); yaw wraps, pitch and height are clamped."""
    yaw = _floats(yaw_deg, "yaw_deg", (None,))
    n = yaw.shape[0]
    pitch = _floats(pitch_deg, "pitch_deg", (n,))
    height = _floats(hand_height_m, "hand_height_m", (n,))
    out = np.empty(n, dtype=COARSE_DTYPE)
    out["slot"] = _ints(slots, "slots", n, 0xFFFF)
    out["flags"] = _ints(flags, "flags", n, 0xFF)
    out["yaw"] = np.rint(np.mod(yaw, 360.0) / _YAW_STEP_DEG).astype(np.int64) & 0xFF
    out["pitch"] = np.rint(np.clip(pitch, -90.0, 90.0)).astype(np.int8)
    out["hand_height"] = np.rint(np.clip(height * 100.0, 0.0, 255.0)).astype(np.uint8)
    return out.tobytes()


def decode_coarse(b: Buffer) -> Coarse:
    """Coarse record bytes back to slots, flags, yaw, pitch and hand height."""
    arr = _records(b, COARSE_DTYPE, "coarse")
    pitch = arr["pitch"].astype(np.float32)
    bad = np.abs(pitch) > 90
    if bad.any():
        raise QuantizationError(f"coarse {int(np.argmax(bad))}: pitch beyond +-90 degrees")
    yaw = arr["yaw"].astype(np.int16)
    yaw = np.where(yaw >= 128, yaw - 256, yaw)
    return Coarse(
        arr["slot"].copy(),
        arr["flags"].copy(),
        (yaw * _YAW_STEP_DEG).astype(np.float32),
        pitch,
        (arr["hand_height"] / 100.0).astype(np.float32),
    )


# ---------------------------------------------------------------- skeleton


def _skeleton_record(hips_pos: npt.ArrayLike, rotations: npt.ArrayLike) -> npt.NDArray[np.void]:
    hips = _floats(hips_pos, "hips_pos", (3,))
    rot = _floats(rotations, "rotations", (len(SKELETON_BONES), 4))
    out = np.empty(1, dtype=SKELETON_DTYPE)
    out["hips_pos"] = _to_int16(hips)[0]
    out["rot"] = encode_quats(rot)
    return out


def encode_skeleton(hips_pos: npt.ArrayLike, rotations: npt.ArrayLike) -> bytes:
    """One skeleton frame: hips position (3,) metres and local bone rotations (B,4).

    Rows of ``rotations`` follow SKELETON_BONES; the hips position is clamped to
    +-32.767 m.
    """
    return _skeleton_record(hips_pos, rotations).tobytes()


def _skeleton_values(rec: np.void) -> tuple[F32, F32]:
    return _from_int16(rec["hips_pos"]), _decode_codes(rec["rot"], "skeleton", SKELETON_BONES)


def decode_skeleton(b: Buffer) -> tuple[F32, F32]:
    """Skeleton bytes back to hips position (3,) and bone rotations (B,4)."""
    return _skeleton_values(_one_record(b, SKELETON_DTYPE, "skeleton"))


# ---------------------------------------------------------------- weights


def _weights_u8(w: npt.ArrayLike, name: str, n: int | None) -> npt.NDArray[np.uint8]:
    a = _floats(w, name, (n,))
    u8: npt.NDArray[np.uint8] = np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)
    return u8


def encode_weights(w: npt.ArrayLike) -> bytes:
    """Blendshape weights (K,) in [0, 1] as K bytes; out-of-range values are clamped."""
    return _weights_u8(w, "weights", None).tobytes()


def decode_weights(b: Buffer, count: int | None = None) -> F32:
    """Weight bytes back to float32 in [0, 1]; ``count`` checks the expected length."""
    size = memoryview(b).nbytes
    if count is not None and size != count:
        raise QuantizationError(f"weights: expected {count} bytes, got {size}")
    return (np.frombuffer(b, dtype=np.uint8) / 255.0).astype(np.float32)


# ---------------------------------------------------------------- animation frames

GAZE_UNITS_PER_M: Final = 100.0  # centimetres: a hall can be wider than +-32.767 m


@dataclass(frozen=True, slots=True, eq=False)
class AnimationFrame:
    """One stage-avatar frame as decoded floats (arrays are read-only)."""

    hips_pos: F32  # (3,) metres, avatar root space
    rotations: F32  # (len(SKELETON_BONES), 4) local, relative to the rest pose
    visemes: F32  # (len(VISEMES),) weights in [0, 1]
    expressions: F32  # (len(EXPRESSIONS),) weights in [0, 1]
    gaze: F32  # (3,) metres, world space

    def encode(self) -> bytes:
        return encode_animation_frame(
            self.hips_pos, self.rotations, self.visemes, self.expressions, self.gaze
        )


def encode_animation_frame(
    hips_pos: npt.ArrayLike,
    rotations: npt.ArrayLike,
    visemes: npt.ArrayLike,
    expressions: npt.ArrayLike,
    gaze: npt.ArrayLike,
) -> bytes:
    """One animation frame (139 bytes): skeleton, visemes, expressions, gaze target."""
    out = np.empty(1, dtype=ANIMATION_DTYPE)
    out["skeleton"] = _skeleton_record(hips_pos, rotations)
    out["visemes"] = _weights_u8(visemes, "visemes", len(VISEMES))
    out["expressions"] = _weights_u8(expressions, "expressions", len(EXPRESSIONS))
    out["gaze"] = _to_int16(_floats(gaze, "gaze", (3,)), GAZE_UNITS_PER_M)[0]
    return out.tobytes()


def decode_animation_frame(b: Buffer) -> AnimationFrame:
    """Animation frame bytes back to an AnimationFrame."""
    rec = _one_record(b, ANIMATION_DTYPE, "animation frame")
    hips, rot = _skeleton_values(rec["skeleton"])
    arrays = (
        hips,
        rot,
        (rec["visemes"] / 255.0).astype(np.float32),
        (rec["expressions"] / 255.0).astype(np.float32),
        _from_int16(rec["gaze"], GAZE_UNITS_PER_M),
    )
    for a in arrays:
        a.flags.writeable = False
    return AnimationFrame(*arrays)
