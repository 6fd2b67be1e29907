// The clone's voice (SPEC §5): each StagePacket's 20 ms Opus frames are decoded by
// WebCodecs' AudioDecoder in a worker and played by an AudioWorklet at their media time,
// mapped to the AudioContext's clock with the connection's clock sync plus the playout
// delay (and the output latency, from getOutputTimestamp). Decoding and playout never wait
// for the main thread, which 3D rendering may hold for a while on a slow machine; the page
// only forwards packets and refreshes the media -> context time mapping a few times a
// second. The worklet also measures the output's peak (audioPeak()).

import { t } from "../i18n/index.js";

const FRAME_US = 20000;
const SAMPLE_RATE = 48000;
const MAP_EVERY_MS = 250;
const PEAK_BUCKET_MS = 100;
const PEAK_BUCKETS = 10; // one second
const WORKLET_URL = "/assets/watch-playout-worklet.js";
const WORKER_URL = "/assets/watch-opus-worker.js";

export const DECODER_CONFIG = { codec: "opus", sampleRate: SAMPLE_RATE, numberOfChannels: 1 };

/** Why this browser cannot play the voice, or "" if it can. */
export async function audioUnsupportedReason() {
  if (typeof AudioContext === "undefined" || typeof AudioWorkletNode === "undefined") {
    return t("why.noWorklets");
  }
  if (typeof AudioDecoder === "undefined") {
    return window.isSecureContext
      ? t("why.noDecoder")
      : t("why.insecure");
  }
  try {
    const support = await AudioDecoder.isConfigSupported(DECODER_CONFIG);
    if (!support.supported) return t("why.noOpus");
  } catch (err) {
    return t("why.decoderRefused", { error: err.message });
  }
  return "";
}

export class StageAudio {
  /** Use StageAudio.create(); `clock` is the connection's ClockSync, `playout` the delay. */
  constructor(clock, playout, ctx, node, worker) {
    this.clock = clock;
    this.playout = playout;
    this.ctx = ctx;
    this.node = node;
    this.worker = worker;
    this._muted = false;
    this.probe = null;
    this._lastMap = -Infinity;
    this._ends = new Map(); // answer -> media time (us) where its pushed audio ends
    this._cut = new Set(); // answers stopped by a moderator: their audio is not played
    this._peaks = new Float32Array(PEAK_BUCKETS);
    this._peakSlots = new Float64Array(PEAK_BUCKETS).fill(-1);
    // played: samples heard; late: chunks that reached the worklet after their time;
    // skippedLate: frames not even decoded (the packet came after its playout time);
    // lead: how far ahead of playout the latest chunk arrived (ms); resyncs: cursor jumps.
    this.stats = {
      packets: 0,
      frames: 0,
      skippedLate: 0,
      played: 0,
      late: 0,
      lead: 0,
      resyncs: 0,
      errors: 0,
      lastError: "",
      cuts: 0,
      cutMs: 0, // speech dropped by the last cut (ms): what would otherwise still play
    };
    // Speech decoded and waiting in the worklet to be heard (ms), as it last said, and when
    // (performance.now()): a stop must bring it to nothing.
    // afterCut: the same, as the worklet answered the last cut (what the cut left).
    this.queued = { ms: 0, atMs: 0 };
    this.afterCut = null;
    node.port.onmessage = (e) => {
      const m = e.data;
      if (m.type === "queued" || m.type === "stats") {
        this.queued = { ms: m.queued / (SAMPLE_RATE / 1000), atMs: performance.now() };
      }
      // When the cut took effect in the audio thread, on the page's clock: the main thread
      // may read this reply much later on a busy machine.
      if (m.type === "queued") this.afterCut = { ms: this.queued.ms, atMs: this._perfTimeOf(m.ctxTime) };
      if (m.type !== "stats") return;
      this.stats.played = m.played;
      this.stats.late = m.late;
      this.stats.lead = m.lead;
      this.stats.resyncs = m.resyncs;
      this._notePeak(m.peak, performance.now());
      if (m.env && this.probe) this._probeEnvelope(m.envFrame, m.env);
    };
    worker.onmessage = (e) => {
      if (e.data.type === "error") {
        this.stats.errors++;
        this.stats.lastError = e.data.message;
        console.warn("townhall: audio decoder:", e.data.message);
      }
    };
  }

  static async create(clock, playout) {
    const ctx = new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: "interactive" });
    await ctx.audioWorklet.addModule(WORKLET_URL);
    const node = new AudioWorkletNode(ctx, "townhall-playout", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
    });
    node.connect(ctx.destination);
    const worker = new Worker(WORKER_URL);
    const channel = new MessageChannel();
    worker.postMessage({ type: "init", port: channel.port1 }, [channel.port1]);
    node.port.postMessage({ type: "worker", port: channel.port2 }, [channel.port2]);
    return new StageAudio(clock, playout, ctx, node, worker);
  }

  get running() {
    return this.ctx.state === "running";
  }

  resume() {
    return this.ctx.resume();
  }

  set muted(on) {
    this._muted = Boolean(on);
    this.node.port.postMessage({ type: "mute", on: this._muted });
  }

  get muted() {
    return this._muted;
  }

  /** Forward one StagePacket's Opus frames to the decoder; frames already past are skipped. */
  push(packet) {
    if (this._cut.has(packet.answer)) return;
    this.stats.packets++;
    const nowMs = performance.now();
    if (nowMs - this._lastMap > MAP_EVERY_MS) this.sync(nowMs);
    const frames = [];
    let first = 0;
    for (let i = 0; i < packet.opus.length; i++) {
      const end = packet.media_time_us + (i + 1) * FRAME_US;
      if (this.clock.toLocalMs(end) + this.playout.delayMs < nowMs) {
        this.stats.skippedLate++;
        first = i + 1;
        continue;
      }
      frames.push(packet.opus[i].slice().buffer); // the message's bytes are a view: copy
    }
    if (!frames.length) return;
    const end = packet.media_time_us + packet.opus.length * FRAME_US;
    if (packet.speaker_slot < 0 && end > (this._ends.get(packet.answer) ?? 0)) {
      this._ends.set(packet.answer, end);
    }
    this.stats.frames += frames.length;
    this.worker.postMessage(
      { type: "packet", answer: packet.answer, media_time_us: packet.media_time_us + first * FRAME_US, frames },
      frames,
    );
  }

  /** The answer was stopped: drop its speech not yet played, from `fromUs` (media time) on,
   * including what is still in the decoder (SPEC §5: a StageEnd with outcome stopped). */
  cut(answer, fromUs) {
    this._cut.add(answer);
    const end = this._ends.get(answer) ?? 0;
    this._ends.delete(answer);
    this.afterCut = null; // the worklet answers with what the cut left
    this.stats.cuts++;
    this.stats.cutMs = Math.max(0, end - fromUs) / 1000;
    this.node.port.postMessage({ type: "cut", fromUs, untilUs: Math.max(end, fromUs) });
  }

  /** Drop everything queued (a recording jumped to another time). */
  flush() {
    this._cut.clear();
    this._ends.clear();
    this._lastMap = -Infinity;
    this.worker.postMessage({ type: "flush" });
    this.node.port.postMessage({ type: "flush" });
  }

  /** Refresh the worklet's media -> context time mapping (called from the render loop). */
  sync(nowMs, force = false) {
    if (!force && nowMs - this._lastMap < MAP_EVERY_MS) return;
    this._lastMap = nowMs;
    const mediaUs = this.clock.toMediaUs(nowMs);
    this.node.port.postMessage({ type: "map", mediaUs, ctxTime: this._ctxTimeFor(mediaUs, nowMs) });
  }

  /** Context time at which a sample of media time `mediaUs` should be heard. */
  _ctxTimeFor(mediaUs, nowMs) {
    const localMs = this.clock.toLocalMs(mediaUs) + this.playout.delayMs;
    const ctx = this.ctx;
    const stamp = ctx.getOutputTimestamp ? ctx.getOutputTimestamp() : null;
    if (
      stamp &&
      stamp.performanceTime > 0 &&
      Math.abs(nowMs - stamp.performanceTime) < 1000 &&
      ctx.currentTime - stamp.contextTime < 1
    ) {
      return stamp.contextTime + (localMs - stamp.performanceTime) / 1000;
    }
    const latency = ctx.outputLatency || ctx.baseLatency || 0;
    return ctx.currentTime + (localMs - nowMs) / 1000 - latency;
  }

  /** Start recording the output's loudness against the time it is heard (lip-sync tests). */
  startProbe() {
    this.probe = [];
    this.node.port.postMessage({ type: "probe", on: true });
  }

  /** performance.now() time at which context time `ctxTime` is heard (now if unknown). */
  _perfTimeOf(ctxTime) {
    const stamp = this.ctx.getOutputTimestamp ? this.ctx.getOutputTimestamp() : null;
    if (!stamp || !(stamp.performanceTime > 0)) return performance.now();
    return stamp.performanceTime + (ctxTime - stamp.contextTime) * 1000;
  }

  _probeEnvelope(frame, env) {
    // Quantum q is heard when the output reaches context time (frame + 128 q) / rate.
    const stamp = this.ctx.getOutputTimestamp();
    if (!(stamp.performanceTime > 0)) return;
    for (let q = 0; q < env.length; q++) {
      const ctxTime = (frame + 128 * q) / this.ctx.sampleRate;
      this.probe.push([stamp.performanceTime + (ctxTime - stamp.contextTime) * 1000, env[q]]);
    }
  }

  _notePeak(peak, nowMs) {
    const slot = Math.floor(nowMs / PEAK_BUCKET_MS);
    const k = slot % PEAK_BUCKETS;
    if (this._peakSlots[k] !== slot) {
      this._peakSlots[k] = slot;
      this._peaks[k] = 0;
    }
    if (peak > this._peaks[k]) this._peaks[k] = peak;
  }

  /** Largest absolute output sample in the last second. */
  peak(nowMs = performance.now()) {
    const slot = Math.floor(nowMs / PEAK_BUCKET_MS);
    let peak = 0;
    for (let k = 0; k < PEAK_BUCKETS; k++) {
      if (slot - this._peakSlots[k] < PEAK_BUCKETS && this._peaks[k] > peak) peak = this._peaks[k];
    }
    return peak;
  }
}
