// Animation frames on the media clock: a ring of decoded poses, sampled at any media
// time by interpolating between the two frames around it (SPEC §5). Preallocated; the
// render loop's sample() allocates nothing.
import { POSE_FLOATS, blendPose } from "./pose.js";

const CAPACITY = 256; // about 8 s at 30 frames/s; playout needs well under one

export class FrameBuffer {
  constructor() {
    this.times = new Float64Array(CAPACITY); // media time (us) of each slot
    this.poses = new Float32Array(CAPACITY * POSE_FLOATS);
    this.start = 0; // ring index of the oldest frame
    this.count = 0;
    this.views = []; // one Float32Array view per ring slot, made once
    for (let k = 0; k < CAPACITY; k++) {
      this.views.push(this.poses.subarray(k * POSE_FLOATS, (k + 1) * POSE_FLOATS));
    }
  }

  clear() {
    this.start = 0;
    this.count = 0;
  }

  /** Drop the frames after media time `tUs` (a stopped answer's mouth stops with its voice). */
  cut(tUs) {
    while (this.count && this.lastTime > tUs) this.count--;
  }

  get lastTime() {
    return this.count ? this.times[(this.start + this.count - 1) % CAPACITY] : -Infinity;
  }

  /** A writable pose slot for a frame at `timeUs` (appended; older times are refused: null). */
  slotFor(timeUs) {
    // Far in the past: the media clock restarted (a new server); start over.
    if (this.count && timeUs < this.lastTime - 5e6) this.clear();
    if (this.count && timeUs <= this.lastTime) return null;
    let i;
    if (this.count < CAPACITY) {
      i = (this.start + this.count) % CAPACITY;
      this.count++;
    } else {
      i = this.start;
      this.start = (this.start + 1) % CAPACITY;
    }
    this.times[i] = timeUs;
    return this.views[i];
  }

  /**
   * The pose at media time `tUs` into `out`. Returns how far `tUs` is past the last
   * frame (us; <= 0 inside the frames), or +Infinity when there is nothing to show
   * (no frames, or `tUs` before the first one).
   */
  sample(tUs, out) {
    if (!this.count) return Infinity;
    const first = this.times[this.start];
    if (tUs < first) return Infinity;
    const last = this.lastTime;
    if (tUs >= last) {
      out.set(this.views[(this.start + this.count - 1) % CAPACITY]);
      return tUs - last;
    }
    // Binary search for the last frame at or before tUs.
    let lo = 0;
    let hi = this.count - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (this.times[(this.start + mid) % CAPACITY] <= tUs) lo = mid;
      else hi = mid;
    }
    const ia = (this.start + lo) % CAPACITY;
    const ib = (this.start + hi) % CAPACITY;
    const ta = this.times[ia];
    const tb = this.times[ib];
    if (tb - ta > 250000) {
      // A gap (between answers, or lost packets): hold the earlier frame, aging.
      out.set(this.views[ia]);
      return tUs - ta;
    }
    blendPose(this.views[ia], this.views[ib], (tUs - ta) / (tb - ta), out);
    return 0;
  }
}
