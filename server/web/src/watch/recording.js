// A recorded event played back (/watch?recording=ID): stands in for RoomConnection, so the
// page plays it through the same code as a live room (board, label, captions, voice, mouth).
//
// The recording (server/store/recording.py) holds what the room sent, each entry stamped
// with the media time it was sent at. Playback runs a clock over that media time: entries
// are delivered when the clock reaches them, so stage packets arrive their stage lead ahead
// of their playout exactly as they did live. Seeking moves the clock: the board is rebuilt
// from the recording's first Keyframe and every event before the new time, the page drops
// the speech it had queued (a "seek" event), and the packets playing at that time are sent
// again. Pausing is a seek that delivers nothing until play.
import { Decoder } from "@msgpack/msgpack";
import { decode } from "../protocol/messages.js";
import { localNowUs } from "../protocol/clock.js";

const MAGIC = "townhall-recording 1\n";
export const KIND = { META: 0, KEYFRAME: 1, EVENT: 2, STAGE: 3, LIVE: 4 };
const FEED_MS = 20;
const RESEND_US = 3000000; // on a seek, packets sent this long before it may still be playing

/** The entries of a recording file: [{kind, at, payload}] (payload: bytes, meta: object). */
export function parseRecording(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = new TextDecoder().decode(bytes.subarray(0, MAGIC.length));
  if (magic !== MAGIC) throw new Error("not a townhall recording");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new Decoder({ useBigInt64: false });
  const entries = [];
  let pos = MAGIC.length;
  while (pos + 4 <= bytes.length) {
    const size = view.getUint32(pos);
    if (pos + 4 + size > bytes.length) break; // a torn tail
    const [kind, at, payload] = decoder.decode(bytes.subarray(pos + 4, pos + 4 + size));
    entries.push({ kind, at, payload });
    pos += 4 + size;
  }
  return entries;
}

/** Same interface as ClockSync, but the media time is the playback position. */
export class PlaybackClock {
  constructor() {
    this.offsetUs = 0;
    this.synced = true;
    this.rttUs = 0;
    this.errorUs = 0;
    this.heldUs = null; // paused: the media time stands still here
  }
  toLocalMs(mediaUs) {
    return (mediaUs - this.offsetUs) / 1000;
  }
  toMediaUs(localMs) {
    return this.heldUs ?? localMs * 1000 + this.offsetUs;
  }
  serverNowUs() {
    return this.heldUs ?? localNowUs() + this.offsetUs;
  }
}

export class RecordingConnection extends EventTarget {
  constructor() {
    super();
    this.index = null;
    this.clock = new PlaybackClock();
    this.state = "closed";
    this.paused = true;
    this.ended = false;
    this.keyframe = null;
    this.entries = [];
    this.startUs = 0;
    this.endUs = 0;
    this._next = 0;
    this._heldAt = 0;
    this._timer = null;
  }

  /** Take `index` (/recordings/ID.json) and the parsed recording's entries. */
  use(index, entries) {
    this.index = index;
    for (const e of entries) {
      if (e.kind === KIND.META) continue;
      const msg = decode(e.payload);
      if (e.kind === KIND.KEYFRAME) this.keyframe ??= msg;
      else this.entries.push({ kind: e.kind, at: e.at, msg });
    }
    this.startUs = index.start_us;
    this.endUs = index.end_us;
    this._heldAt = this.startUs;
    return this;
  }

  /** Fetch and parse a recording: the index and the entries. */
  async load(id, token) {
    const q = token ? `?token=${encodeURIComponent(token)}` : "";
    const base = `/recordings/${encodeURIComponent(id)}`;
    const [indexRes, dataRes] = await Promise.all([
      fetch(`${base}.json${q}`, { cache: "no-store" }),
      fetch(`${base}.threc${q}`, { cache: "no-store" }),
    ]);
    for (const res of [indexRes, dataRes]) {
      if (!res.ok) {
        let body = {};
        try {
          body = await res.json();
        } catch {
          /* not JSON */
        }
        const err = new Error(body.reason ?? `HTTP ${res.status}`);
        err.status = res.status;
        err.codeName = body.code ?? "";
        throw err;
      }
    }
    const index = await indexRes.json();
    return this.use(index, parseRecording(await dataRes.arrayBuffer()));
  }

  /** The playback position on the media clock (µs). */
  get positionUs() {
    if (this.paused) return this._heldAt;
    return Math.min(this.endUs, this.clock.serverNowUs());
  }

  connect() {
    this.state = "open";
    this.dispatchEvent(new CustomEvent("state", { detail: { state: "open", error: null } }));
    this.seek(this.startUs, { play: false });
    return Promise.resolve();
  }

  play() {
    if (!this.paused) return;
    if (this._heldAt >= this.endUs) this._heldAt = this.startUs;
    this.seek(this._heldAt, { play: true });
  }

  pause() {
    if (this.paused) return;
    this.seek(this.positionUs, { play: false });
  }

  /** Jump to media time `us`; the page rebuilds what it shows at that moment. */
  seek(us, { play = !this.paused } = {}) {
    const t = Math.max(this.startUs, Math.min(this.endUs, us));
    this._heldAt = t;
    this.paused = !play;
    this.ended = false;
    this.clock.offsetUs = t - localNowUs();
    this.clock.heldUs = play ? null : t;
    this.dispatchEvent(new CustomEvent("seek", { detail: { positionUs: t } }));
    if (this.keyframe) this._emit(this.keyframe);
    const entries = this.entries;
    let i = 0;
    for (; i < entries.length && entries[i].at <= t; i++) {
      if (entries[i].kind === KIND.EVENT) this._emit(entries[i].msg);
    }
    this._next = i;
    if (play) {
      // The speech sent shortly before the new time, still to be played from there on.
      let j = i;
      while (j > 0 && entries[j - 1].at > t - RESEND_US) j--;
      for (; j < i; j++) if (entries[j].kind !== KIND.EVENT) this._emit(entries[j].msg);
      this._start();
    } else {
      this._stop();
    }
    this._progress();
  }

  /** Recordings are read-only: asking and voting are refused. */
  request() {
    return Promise.reject(new Error("a recording cannot be changed"));
  }

  send() {}

  close() {
    this._stop();
  }

  _start() {
    if (this._timer === null) this._timer = setInterval(() => this._feed(), FEED_MS);
  }

  _stop() {
    if (this._timer !== null) clearInterval(this._timer);
    this._timer = null;
  }

  _feed() {
    const now = this.clock.serverNowUs();
    const entries = this.entries;
    while (this._next < entries.length && entries[this._next].at <= now) {
      this._emit(entries[this._next].msg);
      this._next++;
    }
    if (now >= this.endUs) {
      this._heldAt = this.endUs;
      this.clock.heldUs = this.endUs;
      this.paused = true;
      this.ended = true;
      this._stop();
    }
    this._progress();
  }

  _progress() {
    this.dispatchEvent(new CustomEvent("progress", { detail: { positionUs: this.positionUs } }));
  }

  _emit(msg) {
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
  }
}
