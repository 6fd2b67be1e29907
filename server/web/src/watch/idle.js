// What the clone does between answers, when no stage packets come: it stands at rest
// (arms let down from the T-pose as in server/clone/face/body.py REST_POSE), breathes,
// shifts its weight from one leg to the other every several seconds, sways a little and
// blinks. Computed locally; writes into a preallocated pose. plugin/idle.py is the same
// motion for the headset.
import { BONE, BONE_COUNT, EXP, EXPR, GAZE, HIPS, ROT, VIS, setBoneYXZ } from "./pose.js";

const DEG = Math.PI / 180;
const SHIFT_PERIOD_S = 13; // a full left-right-left cycle of weight shifts

/** -1..1, holding near the ends: weight on one leg, then a slow move to the other. */
export function weightShift(t) {
  const s = Math.sin((2 * Math.PI * t) / SHIFT_PERIOD_S);
  return Math.sign(s) * Math.pow(Math.abs(s), 0.35);
}

export class IdleMotion {
  constructor(gazeWorld) {
    this.gaze = gazeWorld; // [x, y, z]: where the clone looks at rest (the audience)
    this.nextBlink = 2.0;
    this.blinkStart = -10;
  }

  /** Fills `pose` with the idle pose at `t` seconds (any monotonic clock). */
  fill(pose, t) {
    for (let b = 0; b < BONE_COUNT; b++) {
      const o = ROT + b * 4;
      pose[o] = 0;
      pose[o + 1] = 0;
      pose[o + 2] = 0;
      pose[o + 3] = 1;
    }
    const breath = Math.sin(2 * Math.PI * 0.25 * t);
    const sway = Math.sin(2 * Math.PI * 0.061 * t);
    const roll = Math.sin(2 * Math.PI * 0.097 * t + 1.3);
    const w = weightShift(t); // +1: weight on the left leg (the model's +X side)
    const tilt = 2.2 * DEG * w; // the pelvis rises on the standing side
    setBoneYXZ(pose, BONE.hips, 1.5 * DEG * w, 0, tilt);
    setBoneYXZ(pose, BONE.spine, 0.8 * DEG * sway, -0.3 * DEG * breath, -0.7 * tilt + 0.6 * DEG * roll);
    setBoneYXZ(pose, BONE.chest, 0, -0.8 * DEG * breath, -0.25 * tilt);
    setBoneYXZ(pose, BONE.neck, 0, 0.9 * DEG * breath, -0.42 * DEG * roll);
    setBoneYXZ(pose, BONE.leftShoulder, 0, 0, 1.2 * DEG * breath);
    setBoneYXZ(pose, BONE.rightShoulder, 0, 0, -1.2 * DEG * breath);
    setBoneYXZ(pose, BONE.leftUpperArm, 0, -3 * DEG, -73 * DEG);
    setBoneYXZ(pose, BONE.rightUpperArm, 0, -3 * DEG, 73 * DEG);
    setBoneYXZ(pose, BONE.leftLowerArm, -8 * DEG, 0, 0);
    setBoneYXZ(pose, BONE.rightLowerArm, 8 * DEG, 0, 0);
    setBoneYXZ(pose, BONE.leftHand, 0, 0, -5 * DEG);
    setBoneYXZ(pose, BONE.rightHand, 0, 0, 5 * DEG);
    // Legs: the standing leg takes the pelvis' tilt back (its foot stays put), the other
    // knee softens.
    const standL = Math.max(0, w);
    const standR = Math.max(0, -w);
    setBoneYXZ(pose, BONE.leftUpperLeg, 0, -5 * DEG * standR, -tilt - 1.5 * DEG * w);
    setBoneYXZ(pose, BONE.leftLowerLeg, 0, 10 * DEG * standR, 0);
    setBoneYXZ(pose, BONE.rightUpperLeg, 0, -5 * DEG * standL, -tilt - 1.5 * DEG * w);
    setBoneYXZ(pose, BONE.rightLowerLeg, 0, 10 * DEG * standL, 0);
    pose[HIPS] = 0.02 * w;
    pose[HIPS + 1] = 0.95 - 0.004 * Math.abs(w);
    pose[HIPS + 2] = 0;
    for (let i = VIS; i < GAZE; i++) pose[i] = 0;
    pose[VIS] = 1; // sil: mouth closed
    // Blinks: 150 ms, every 2.5-5.5 s.
    if (t >= this.nextBlink) {
      this.blinkStart = t;
      this.nextBlink = t + 2.5 + 3 * Math.random();
    }
    const k = (t - this.blinkStart) / 0.15;
    const blink = k >= 0 && k <= 1 ? Math.sin(Math.PI * k) : 0;
    pose[EXP + EXPR.blinkLeft] = blink;
    pose[EXP + EXPR.blinkRight] = blink;
    pose[GAZE] = this.gaze[0];
    pose[GAZE + 1] = this.gaze[1];
    pose[GAZE + 2] = this.gaze[2];
    return pose;
  }
}
