// The playout delay: how far behind the media clock the page plays voice, mouth and words.
// One number shared by all three keeps them in sync. It starts at 150 ms (SPEC §5: a
// jitter buffer of ~100-200 ms); if packets arrive later than that (a slow network, a busy
// machine) it grows to cover them, up to 400 ms, and it comes back down between answers
// once packets have been on time for a while.

export const BASE_DELAY_MS = 150;
const MAX_DELAY_MS = 400;
const MARGIN_MS = 40; // time to hand a packet to the decoder and the worklet
const CALM_MS = 20000; // on time this long, with nothing on stage: back to the base delay

export class Playout {
  constructor() {
    this.delayMs = BASE_DELAY_MS;
    this.lastLateAt = -Infinity;
    this.onChange = null; // called after the delay changed
  }

  /** A packet starting at local time `startMs` (its media time, mapped) arrived at `nowMs`. */
  arrived(startMs, nowMs) {
    const need = nowMs - startMs + MARGIN_MS;
    if (need <= this.delayMs) return;
    this.lastLateAt = nowMs;
    if (this.delayMs >= MAX_DELAY_MS) return;
    this.delayMs = Math.min(MAX_DELAY_MS, Math.ceil(need / 10) * 10 + 20);
    this.onChange?.();
  }

  /** Between answers: return to the base delay after a calm spell. */
  settle(nowMs, onStage) {
    if (onStage || this.delayMs === BASE_DELAY_MS || nowMs - this.lastLateAt < CALM_MS) return;
    this.delayMs = BASE_DELAY_MS;
    this.onChange?.();
  }
}
