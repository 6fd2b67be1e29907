// Townhall /watch: plays the clone's decoded voice on the media clock, in the audio thread.
//
// PCM chunks arrive from the decoder worker stamped with their media time (us). The page
// sends, now and then, a mapping {mediaUs, ctxTime}: "media time mediaUs is heard at
// context time ctxTime" (clock sync + playout delay + output latency). Samples are counted
// on one absolute grid (media us * 0.048 at 48 kHz), and a playing cursor advances exactly
// one render quantum per process() call, so consecutive chunks join sample-exactly; the
// cursor is re-aimed only if it drifts more than 30 ms from the mapping (a clock step).
// The processor also measures its output peak: the page's audioPeak().
//
// Port messages from the page: {type: "map", mediaUs, ctxTime}, {type: "mute", on},
// {type: "probe", on}, {type: "worker", port} (the decoder worker's PCM), {type: "cut",
// fromUs, untilUs} (a stopped answer: its audio in that span is dropped, queued or still
// to come from the decoder; the span starts no later than what this thread plays next).
// To the page:
// {type: "stats", peak, played, late, lead, resyncs, queued, envFrame, env} about every 50 ms
// (queued: samples waiting to be heard), and {type: "queued", queued, ctxTime} at once after
// a cut (ctxTime: the context time it took effect);
// with the probe on, env holds the RMS of each 128-sample quantum from context frame
// envFrame (lip-sync tests).

const SAMPLES_PER_US = 0.048;
const RESYNC_SAMPLES = 0.03 * 48000;
const KEEP_SAMPLES = 10 * 48000; // chunks further ahead than this are dropped as bogus
const REPORT_QUANTA = 18; // ~48 ms at 128-sample quanta

class PlayoutProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.chunks = []; // {start: sample index, pcm}, sorted by start
    this.map = null; // {sample: media sample index, frame: context frame}
    this.cursor = null; // media sample index of the next output sample, while playing
    this.muted = false;
    this.peak = 0;
    this.played = 0;
    this.late = 0;
    this.quanta = 0;
    this.lead = 0; // ms between the latest chunk's start and the cursor when it arrived
    this.resyncs = 0; // cursor jumps while audio was queued (clock steps)
    this.probe = false;
    this.env = new Float32Array(REPORT_QUANTA);
    this.envFrame = 0;
    this.cuts = []; // {from, until} media sample spans not to play
    this.port.onmessage = (e) => this.onControl(e.data);
  }

  onControl(msg) {
    if (msg.type === "map") {
      this.map = { sample: msg.mediaUs * SAMPLES_PER_US, frame: msg.ctxTime * sampleRate };
    } else if (msg.type === "probe") {
      this.probe = Boolean(msg.on);
    } else if (msg.type === "mute") {
      this.muted = Boolean(msg.on);
    } else if (msg.type === "worker") {
      msg.port.onmessage = (e) => this.onChunk(e.data);
    } else if (msg.type === "flush") {
      // A recording was seeked: nothing queued belongs to the new position.
      this.chunks = [];
      this.cuts = [];
      this.cursor = null;
    } else if (msg.type === "cut") {
      // The page says where it thinks playing is; this thread knows. Its cursor may trail
      // the page's estimate (by up to RESYNC_SAMPLES, more on a stalled page), and what lies
      // between is not yet heard either: the cut starts at the cursor then.
      let from = Math.round(msg.fromUs * SAMPLES_PER_US);
      if (this.cursor !== null && this.cursor < from) from = this.cursor;
      const cut = { from, until: Math.max(from, Math.round(msg.untilUs * SAMPLES_PER_US)) };
      this.cuts.push(cut);
      if (this.cuts.length > 8) this.cuts.shift();
      this.chunks = this.chunks.filter((c) => !this.isCut(c.start, c.pcm.length));
      this.port.postMessage({ type: "queued", queued: this.queued(), ctxTime: currentTime });
    }
  }

  isCut(start, length) {
    for (const cut of this.cuts) {
      if (start + length > cut.from && start < cut.until) return true;
    }
    return false;
  }

  /** Samples waiting to be heard: what a stop must drop. */
  queued() {
    let n = 0;
    const from = this.cursor ?? -Infinity;
    for (const { start, pcm } of this.chunks) n += Math.max(0, start + pcm.length - Math.max(start, from));
    return n;
  }

  onChunk({ ts, pcm }) {
    const start = Math.round(ts * SAMPLES_PER_US);
    if (this.cursor !== null) this.lead = (start - this.cursor) / 48;
    if (this.cursor !== null && start + pcm.length <= this.cursor) {
      this.late++;
      return;
    }
    if (this.cursor !== null && start > this.cursor + KEEP_SAMPLES) return;
    if (this.cuts.length && this.isCut(start, pcm.length)) return;
    // Insert in order (chunks nearly always arrive in order: append).
    let i = this.chunks.length;
    while (i > 0 && this.chunks[i - 1].start > start) i--;
    if (i > 0 && this.chunks[i - 1].start === start) return; // a duplicate
    this.chunks.splice(i, 0, { start, pcm });
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    const n = out.length;
    if (this.map) {
      // Where the mapping says this quantum is, on the media sample grid.
      const target = this.map.sample + (currentFrame - this.map.frame);
      if (this.cursor === null || Math.abs(this.cursor - target) > RESYNC_SAMPLES || this.chunks.length === 0) {
        if (this.chunks.length && this.cursor !== null) this.resyncs++;
        this.cursor = Math.round(target);
      }
    }
    out.fill(0);
    let peak = 0;
    if (this.cursor !== null) {
      const chunks = this.chunks;
      while (chunks.length && chunks[0].start + chunks[0].pcm.length <= this.cursor) chunks.shift();
      const from = this.cursor;
      const to = from + n;
      for (let c = 0; c < chunks.length; c++) {
        const { start, pcm } = chunks[c];
        if (start >= to) break;
        const a = Math.max(from, start);
        const b = Math.min(to, start + pcm.length);
        for (let s = a; s < b; s++) {
          const v = pcm[s - start];
          out[s - from] = v;
        }
        this.played += b - a;
      }
      this.cursor = to;
      if (this.muted) out.fill(0);
      for (let i = 0; i < n; i++) {
        const a = out[i] < 0 ? -out[i] : out[i];
        if (a > peak) peak = a;
      }
    }
    if (peak > this.peak) this.peak = peak;
    if (this.probe) {
      if (this.quanta === 0) this.envFrame = currentFrame;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += out[i] * out[i];
      this.env[this.quanta] = Math.sqrt(sum / n);
    }
    if (++this.quanta >= REPORT_QUANTA) {
      const msg = {
        type: "stats",
        peak: this.peak,
        played: this.played,
        late: this.late,
        lead: this.lead,
        resyncs: this.resyncs,
        queued: this.queued(),
      };
      if (this.probe) {
        msg.envFrame = this.envFrame;
        msg.env = this.env.slice();
      }
      this.port.postMessage(msg);
      this.quanta = 0;
      this.peak = 0;
    }
    return true;
  }
}

registerProcessor("townhall-playout", PlayoutProcessor);
