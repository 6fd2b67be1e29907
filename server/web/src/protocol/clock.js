// Clock sync (SPEC §8): map the server's media clock onto this page's performance.now().
//
// A Ping carries the local time t0; the Pong brings back t0, the server's receive time t1
// and send time t2 (media clock); t3 is the local time the Pong arrived. The sample with
// the smallest round trip has the least queueing error, so the estimate is the offset of
// the best-RTT sample among the last 16. All times here are microseconds except the
// *Ms helpers, which speak performance.now()'s milliseconds.

/** The local clock in microseconds (performance.now(), monotonic). */
export function localNowUs() {
  return performance.now() * 1000;
}

export class ClockSync {
  constructor(window = 16) {
    this.window = window;
    this.samples = []; // [{offsetUs, rttUs}], oldest first
    this._roughOffsetUs = null;
  }

  /** Record one Ping/Pong exchange; returns the sample {offsetUs, rttUs}. */
  add(t0, t1, t2, t3) {
    const sample = {
      offsetUs: ((t1 - t0) + (t2 - t3)) / 2,
      rttUs: Math.max(0, (t3 - t0) - (t2 - t1)),
    };
    this.samples.push(sample);
    if (this.samples.length > this.window) this.samples.shift();
    return sample;
  }

  /**
   * A rough offset from a server timestamp received at `localUs` (e.g. Welcome's
   * server_time_us), used only until the first Pong arrives.
   */
  seed(serverUs, localUs = localNowUs()) {
    this._roughOffsetUs = serverUs - localUs;
  }

  /** True once a Pong has been measured. */
  get synced() {
    return this.samples.length > 0;
  }

  /** The best sample (smallest RTT), or null before any Pong. */
  get best() {
    let best = null;
    for (const s of this.samples) if (best === null || s.rttUs < best.rttUs) best = s;
    return best;
  }

  /** Media time minus local time, in microseconds (0 if nothing is known yet). */
  get offsetUs() {
    const best = this.best;
    if (best !== null) return best.offsetUs;
    return this._roughOffsetUs ?? 0;
  }

  /** Round trip of the best sample in microseconds (Infinity before any Pong). */
  get rttUs() {
    const best = this.best;
    return best === null ? Infinity : best.rttUs;
  }

  /** Bound on the offset's error in microseconds: half the best round trip. */
  get errorUs() {
    return this.rttUs / 2;
  }

  /** performance.now() (ms) at which the media clock reads `mediaUs`. */
  toLocalMs(mediaUs) {
    return (mediaUs - this.offsetUs) / 1000;
  }

  /** Media time (µs) at performance.now() = `localMs`. */
  toMediaUs(localMs) {
    return localMs * 1000 + this.offsetUs;
  }

  /** The server's media clock now, as this client estimates it (µs). */
  serverNowUs() {
    return localNowUs() + this.offsetUs;
  }
}
