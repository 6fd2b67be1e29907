// The stage avatar's pose as flat typed arrays, shared by the frame buffer, the idle
// animation and both avatars (procedural and VRM). Layout of one pose (POSE_FLOATS):
//   [0..3)      hips position in the avatar root's space (m)
//   [3..95)     23 bone rotations (x, y, z, w), local and relative to the T-pose rest
//   [95..110)   15 viseme weights
//   [110..130)  20 expression weights
//   [130..133)  gaze target, world space (m)
import { EXPRESSIONS, SKELETON_BONES, VISEMES, VISEME_TO_VRM, VRM_VOWELS } from "../protocol/quant.js";

export const BONE_COUNT = SKELETON_BONES.length;
export const VISEME_COUNT = VISEMES.length;
export const EXPRESSION_COUNT = EXPRESSIONS.length;
export const HIPS = 0;
export const ROT = 3;
export const VIS = ROT + BONE_COUNT * 4;
export const EXP = VIS + VISEME_COUNT;
export const GAZE = EXP + EXPRESSION_COUNT;
export const POSE_FLOATS = GAZE + 3;

// Indices by name, from the protocol's wire-order lists (protocol/skeleton.py).
export const BONE = Object.fromEntries(SKELETON_BONES.map((n, i) => [n, i]));
export const EXPR = Object.fromEntries(EXPRESSIONS.map((n, i) => [n, i]));
export { VRM_VOWELS };

// How far each viseme opens the jaw (server/clone/face/visemes.py OPENNESS, a face
// constant rather than wire format): the same number the server measures lip sync with,
// so mouthOpen() is comparable to it.
const OPENNESS_BY_NAME = {
  sil: 0, PP: 0, FF: 0.1, TH: 0.25, DD: 0.25, kk: 0.3, CH: 0.2, SS: 0.1, nn: 0.35, RR: 0.35,
  aa: 1, E: 0.65, ih: 0.4, oh: 0.75, ou: 0.4,
};
export const OPENNESS = Float32Array.from(VISEMES, (v) => OPENNESS_BY_NAME[v] ?? 0);
const VISEME_TO_VRM_FLAT = Float32Array.from(VISEME_TO_VRM.flat());

/** VRM vowel weights (aa ih ou ee oh) of a pose's visemes into `out` (length 5). */
export function vrmVowels(pose, out) {
  out.fill(0);
  for (let v = 0; v < VISEME_COUNT; v++) {
    const w = pose[VIS + v];
    if (w === 0) continue;
    for (let k = 0; k < 5; k++) out[k] += w * VISEME_TO_VRM_FLAT[v * 5 + k];
  }
  for (let k = 0; k < 5; k++) out[k] = Math.min(1, Math.max(0, out[k]));
  return out;
}

/** Jaw opening 0..1 of a pose (visemes weighted by OPENNESS, plus jawOpen). */
export function mouthOpenOf(pose) {
  let s = 0;
  for (let v = 0; v < VISEME_COUNT; v++) s += pose[VIS + v] * OPENNESS[v];
  return Math.min(1, Math.max(s, pose[EXP + EXPR.jawOpen]));
}

/** Shut the mouth of `pose` in place: silence for the visemes, the jaw closed. */
export function closeMouth(pose) {
  pose.fill(0, VIS, VIS + VISEME_COUNT);
  pose[VIS] = 1; // sil
  pose[EXP + EXPR.jawOpen] = 0;
  return pose;
}

export function newPose() {
  const p = new Float32Array(POSE_FLOATS);
  p[HIPS + 1] = 0.95;
  for (let b = 0; b < BONE_COUNT; b++) p[ROT + b * 4 + 3] = 1;
  p[VIS] = 1; // sil
  return p;
}

/** Blends `a` toward `b` by t into out (quaternions by normalized lerp on the short arc). */
export function blendPose(a, b, t, out) {
  const s = 1 - t;
  for (let i = 0; i < 3; i++) out[HIPS + i] = a[HIPS + i] * s + b[HIPS + i] * t;
  for (let j = 0; j < BONE_COUNT; j++) {
    const o = ROT + j * 4;
    const dot = a[o] * b[o] + a[o + 1] * b[o + 1] + a[o + 2] * b[o + 2] + a[o + 3] * b[o + 3];
    const tb = dot < 0 ? -t : t;
    let x = a[o] * s + b[o] * tb;
    let y = a[o + 1] * s + b[o + 1] * tb;
    let z = a[o + 2] * s + b[o + 2] * tb;
    let w = a[o + 3] * s + b[o + 3] * tb;
    const n = Math.hypot(x, y, z, w) || 1;
    out[o] = x / n;
    out[o + 1] = y / n;
    out[o + 2] = z / n;
    out[o + 3] = w / n;
  }
  for (let i = VIS; i < POSE_FLOATS; i++) out[i] = a[i] * s + b[i] * t;
  return out;
}

/** Sets bone b of a pose from yaw, pitch, roll (radians): R_y(yaw) R_x(pitch) R_z(roll). */
export function setBoneYXZ(pose, b, yaw, pitch, roll) {
  const cy = Math.cos(yaw / 2);
  const sy = Math.sin(yaw / 2);
  const cx = Math.cos(pitch / 2);
  const sx = Math.sin(pitch / 2);
  const cz = Math.cos(roll / 2);
  const sz = Math.sin(roll / 2);
  const o = ROT + b * 4;
  pose[o] = cy * sx * cz + sy * cx * sz;
  pose[o + 1] = sy * cx * cz - cy * sx * sz;
  pose[o + 2] = cy * cx * sz - sy * sx * cz;
  pose[o + 3] = cy * cx * cz + sy * sx * sz;
}
