// Decoders for the binary records of protocol/SPEC.md §9: rotations, poses, crowd and coarse
// records, skeleton and animation frames. Little-endian, fixed size, no headers. The name
// lists are wire format and follow protocol/skeleton.py exactly.

export const QUAT_BYTES = 4;
export const POSE_BYTES = 30;
export const CROWD_RECORD_BYTES = 33;
export const COARSE_RECORD_BYTES = 6;
export const SKELETON_BYTES = 98;
export const ANIMATION_FRAME_BYTES = 139;

/** Flag bits of crowd and coarse records (and Pose.flags). */
export const PoseFlag = Object.freeze({
  HAND_RAISED: 1,
  LEFT_TRACKED: 2,
  RIGHT_TRACKED: 4,
  SPEAKING: 8,
  CLAMPED: 16,
});

export const SKELETON_BONES = Object.freeze([
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
]);

/** The 15 OpenXR / Oculus visemes in their standard order. */
export const VISEMES = Object.freeze([
  "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
]);

/** 0-10: VRM 1.0 presets; 11-19: ARKit-style face-tracking names (custom expressions). */
export const EXPRESSIONS = Object.freeze([
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
]);

/** VRM 1.0's mouth expressions, the columns of VISEME_TO_VRM. */
export const VRM_VOWELS = Object.freeze(["aa", "ih", "ou", "ee", "oh"]);

/** Rendering hint (not wire format): how much of each VRM vowel a viseme shows (SPEC §9). */
export const VISEME_TO_VRM = Object.freeze([
  [0.0, 0.0, 0.0, 0.0, 0.0], // sil
  [0.0, 0.0, 0.0, 0.0, 0.0], // PP
  [0.0, 0.4, 0.0, 0.1, 0.0], // FF
  [0.2, 0.3, 0.0, 0.1, 0.0], // TH
  [0.3, 0.2, 0.0, 0.2, 0.0], // DD
  [0.4, 0.2, 0.0, 0.0, 0.1], // kk
  [0.0, 0.2, 0.4, 0.2, 0.0], // CH
  [0.0, 0.5, 0.0, 0.3, 0.0], // SS
  [0.2, 0.3, 0.0, 0.1, 0.0], // nn
  [0.0, 0.0, 0.5, 0.0, 0.2], // RR
  [1.0, 0.0, 0.0, 0.0, 0.0], // aa
  [0.0, 0.0, 0.0, 1.0, 0.0], // E
  [0.0, 1.0, 0.0, 0.0, 0.0], // ih
  [0.0, 0.0, 0.0, 0.0, 1.0], // oh
  [0.0, 0.0, 1.0, 0.0, 0.0], // ou
]);

/** Bytes that are not a valid record (wrong length, invalid rotation code, pitch beyond ±90). */
export class QuantizationError extends Error {
  constructor(message) {
    super(message);
    this.name = "QuantizationError";
  }
}

const QMAX = 511;
const QSTEP = Math.SQRT1_2 / QMAX;
const QSUMSQ_MAX = 2 * QMAX * QMAX;
const YAW_STEP_DEG = 360 / 256;

function view(bytes) {
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!ArrayBuffer.isView(bytes)) throw new QuantizationError("expected bytes (Uint8Array)");
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function records(bytes, size, what) {
  const dv = view(bytes);
  if (dv.byteLength % size) {
    throw new QuantizationError(`${what}: ${dv.byteLength} bytes is not a multiple of the ${size}-byte record`);
  }
  return dv;
}

function oneRecord(bytes, size, what) {
  const dv = view(bytes);
  if (dv.byteLength !== size) throw new QuantizationError(`${what}: expected ${size} bytes, got ${dv.byteLength}`);
  return dv;
}

// Writes the quaternion of a smallest-three code into out[at..at+3]; returns an error or null.
function unpackQuat(code, out, at) {
  code >>>= 0;
  const ka = ((((code >>> 20) & 0x3ff) ^ 0x200) - 0x200);
  const kb = ((((code >>> 10) & 0x3ff) ^ 0x200) - 0x200);
  const kc = (((code & 0x3ff) ^ 0x200) - 0x200);
  if (ka === -512 || kb === -512 || kc === -512) return "component code -512 is reserved";
  if (ka * ka + kb * kb + kc * kc > QSUMSQ_MAX) return "components longer than a unit quaternion";
  const a = ka * QSTEP;
  const b = kb * QSTEP;
  const c = kc * QSTEP;
  const dropped = Math.sqrt(Math.max(0, 1 - (a * a + b * b + c * c)));
  const index = code >>> 30;
  const rest = [a, b, c];
  for (let j = 0, r = 0; j < 4; j++) out[at + j] = j === index ? dropped : rest[r++];
  return null;
}

function quatAt(dv, offset, label, out = new Array(4), at = 0) {
  const code = dv.getUint32(offset, true);
  const why = unpackQuat(code, out, at);
  if (why) throw new QuantizationError(`${label}: bad rotation code 0x${code.toString(16).padStart(8, "0")}: ${why}`);
  return out;
}

/** A smallest-three uint32 rotation code as a unit quaternion [x, y, z, w]. */
export function decodeQuat(code) {
  if (!Number.isInteger(code) || code < 0 || code > 0xffffffff) {
    throw new QuantizationError(`rotation: code must be a uint32, got ${code}`);
  }
  const out = new Array(4);
  const why = unpackQuat(code, out, 0);
  if (why) throw new QuantizationError(`rotation: bad code 0x${code.toString(16).padStart(8, "0")}: ${why}`);
  return out;
}

const mm = (dv, offset) => [
  dv.getInt16(offset, true) / 1000,
  dv.getInt16(offset + 2, true) / 1000,
  dv.getInt16(offset + 4, true) / 1000,
];

function poseAt(dv, offset, label) {
  const device = (at, name) => ({ pos: mm(dv, at), rot: quatAt(dv, at + 6, `${label} (${name})`) });
  return {
    head: device(offset, "head"),
    left: device(offset + 10, "left_hand"),
    right: device(offset + 20, "right_hand"),
  };
}

/** One 30-byte pose record as {head, left, right}, each {pos: [x, y, z] m, rot: [x, y, z, w]}. */
export function decodePose(bytes) {
  return poseAt(oneRecord(bytes, POSE_BYTES, "pose"), 0, "pose 0");
}

/** Crowd records (33 bytes each) as [{slot, flags, head, left, right}], poses in the seat's frame. */
export function decodeCrowd(bytes) {
  const dv = records(bytes, CROWD_RECORD_BYTES, "crowd");
  const out = [];
  for (let i = 0, o = 0; o < dv.byteLength; i++, o += CROWD_RECORD_BYTES) {
    const pose = poseAt(dv, o + 3, `crowd ${i}`);
    out.push({ slot: dv.getUint16(o, true), flags: dv.getUint8(o + 2), ...pose });
  }
  return out;
}

/** Coarse records (6 bytes each) as [{slot, yawDeg, pitchDeg, flags, handHeightM}]. */
export function decodeCoarse(bytes) {
  const dv = records(bytes, COARSE_RECORD_BYTES, "coarse");
  const out = [];
  for (let i = 0, o = 0; o < dv.byteLength; i++, o += COARSE_RECORD_BYTES) {
    const pitch = dv.getInt8(o + 3);
    if (Math.abs(pitch) > 90) throw new QuantizationError(`coarse ${i}: pitch beyond +-90 degrees`);
    const yaw = dv.getUint8(o + 2);
    out.push({
      slot: dv.getUint16(o, true),
      yawDeg: (yaw >= 128 ? yaw - 256 : yaw) * YAW_STEP_DEG,
      pitchDeg: pitch,
      flags: dv.getUint8(o + 4),
      handHeightM: dv.getUint8(o + 5) / 100,
    });
  }
  return out;
}

function skeletonAt(dv, offset) {
  const rotations = new Float32Array(SKELETON_BONES.length * 4);
  const tmp = new Array(4);
  for (let i = 0; i < SKELETON_BONES.length; i++) {
    quatAt(dv, offset + 6 + 4 * i, `skeleton 0 (${SKELETON_BONES[i]})`, tmp, 0);
    rotations.set(tmp, i * 4);
  }
  return { hipsPos: mm(dv, offset), rotations };
}

/** A 98-byte skeleton frame as {hipsPos: [3] m, rotations: Float32Array(23 * 4)} in SKELETON_BONES order. */
export function decodeSkeleton(bytes) {
  return skeletonAt(oneRecord(bytes, SKELETON_BYTES, "skeleton"), 0);
}

/** Blendshape weight bytes as a Float32Array in [0, 1]; `count` checks the length. */
export function decodeWeights(bytes, count = undefined) {
  const dv = view(bytes);
  if (count !== undefined && dv.byteLength !== count) {
    throw new QuantizationError(`weights: expected ${count} bytes, got ${dv.byteLength}`);
  }
  return weightsAt(dv, 0, dv.byteLength);
}

function weightsAt(dv, offset, n) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getUint8(offset + i) / 255;
  return out;
}

function animationAt(dv, offset) {
  const { hipsPos, rotations } = skeletonAt(dv, offset);
  const v = offset + SKELETON_BYTES;
  const e = v + VISEMES.length;
  const g = e + EXPRESSIONS.length;
  return {
    hipsPos,
    rotations,
    visemes: weightsAt(dv, v, VISEMES.length),
    expressions: weightsAt(dv, e, EXPRESSIONS.length),
    gaze: [dv.getInt16(g, true) / 100, dv.getInt16(g + 2, true) / 100, dv.getInt16(g + 4, true) / 100],
  };
}

/**
 * One 139-byte animation frame: {hipsPos: [3] m, rotations: Float32Array(23 * 4) local bone
 * rotations (x, y, z, w) relative to the rest pose, visemes: Float32Array(15),
 * expressions: Float32Array(20), gaze: [3] world metres}.
 */
export function decodeAnimationFrame(bytes) {
  return animationAt(oneRecord(bytes, ANIMATION_FRAME_BYTES, "animation frame"), 0);
}

/** Every frame of a StagePacket's `anim` bytes (a whole number of 139-byte frames). */
export function decodeAnimationFrames(bytes) {
  const dv = records(bytes, ANIMATION_FRAME_BYTES, "animation frames");
  const out = [];
  for (let o = 0; o < dv.byteLength; o += ANIMATION_FRAME_BYTES) out.push(animationAt(dv, o));
  return out;
}

/** VRM mouth weights [aa, ih, ou, ee, oh] from the 15 viseme weights: clip(v @ VISEME_TO_VRM, 0, 1). */
export function visemesToVrm(visemes) {
  const out = new Float32Array(VRM_VOWELS.length);
  for (let i = 0; i < VISEMES.length; i++) {
    const w = visemes[i];
    if (!w) continue;
    const row = VISEME_TO_VRM[i];
    for (let j = 0; j < out.length; j++) out[j] += w * row[j];
  }
  for (let j = 0; j < out.length; j++) out[j] = Math.min(1, Math.max(0, out[j]));
  return out;
}
