// A room connection: join, keep the clock in sync, deliver messages in order, answer
// requests, and come back by itself (resuming) after a dropped connection: to another of
// the room's edges (Welcome's `edges`) first, so the clients of a dead edge move on.
//
// Events:
//   "message"  CustomEvent, detail = the decoded message. Sequenced messages arrive in
//              order, once, without gaps: duplicates are dropped, and after a gap the
//              connection asks for a Keyframe (and drops what comes before it).
//   "state"    CustomEvent, detail = {state, error, attempt, delayMs}; state is one of
//              connecting | open | reconnecting | closed. `error` (closed only) is the
//              ConnectionError that ended it, or null for close() / leave().

import { localNowUs, ClockSync } from "./clock.js";
import { ErrorCode, SEQUENCED, decode, encode, errorName } from "./messages.js";

export const PROTOCOL_MIN_VERSION = 1;
export const PROTOCOL_MAX_VERSION = 1;

/** Errors after which reconnecting cannot help (the same Join would fail the same way). */
export const NO_RECONNECT = new Set([
  ErrorCode.AUTH_INVALID,
  ErrorCode.AUTH_EXPIRED,
  ErrorCode.BAD_TOKEN,
  ErrorCode.WRONG_ROOM,
  ErrorCode.VERSION_UNSUPPORTED,
  ErrorCode.FLOODING,
  ErrorCode.REPLACED,
  ErrorCode.BANNED,
  ErrorCode.KICKED,
]);

const QUICK_PINGS = 5;
const QUICK_PING_MS = 100;
const PING_MS = 5000;
const SILENCE_MS = 15000; // no message for this long (pings unanswered): the link is dead
const KEYFRAME_REQUEST_MS = 1100; // the server allows one a second
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];

/** A failed join or a closed connection: `code` and `reason` are the server's (0: no Error). */
export class ConnectionError extends Error {
  constructor(code, reason, { fatal = true, closeCode = 0 } = {}) {
    super(code ? `${errorName(code)} (${code}): ${reason}` : reason);
    this.name = "ConnectionError";
    this.code = code;
    this.reason = reason;
    this.fatal = fatal;
    this.closeCode = closeCode;
  }
}

function defaultUrl() {
  const loc = globalThis.location;
  if (!loc) throw new Error("RoomConnection: give a url (no page location to derive it from)");
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws`;
}

export class RoomConnection extends EventTarget {
  /**
   * @param {object} options
   * @param {string} [options.url] ws://host:port/ws; default: /ws on the page's host
   * @param {string} [options.token] the join token ("" joins as an anonymous spectator if allowed)
   * @param {string} [options.clientInfo] free-form client name and version
   * @param {number} [options.requestTimeoutMs] how long request() waits for its Ack or Error
   * @param {typeof WebSocket} [options.WebSocket] the WebSocket class to use
   */
  constructor({ url, token = "", clientInfo = "townhall-web/0.1", requestTimeoutMs = 10000, WebSocket } = {}) {
    super();
    this.url = url ?? defaultUrl();
    this.homeUrl = this.url; // the URL it was given: tried after the Welcome's other edges
    this._candidates = []; // where the next reconnect attempts go, in order
    this.token = token;
    this.clientInfo = clientInfo;
    this.requestTimeoutMs = requestTimeoutMs;
    this.WebSocket = WebSocket ?? globalThis.WebSocket;
    this.clock = new ClockSync();
    this.state = "closed";
    this.welcome = null; // the latest Welcome
    this.lastSeq = 0; // the highest sequence number delivered (Keyframe or sequenced message)
    this.error = null; // the ConnectionError that closed the connection for good
    this.ws = null;
    this._attempt = 0; // reconnect attempts since the last successful join
    this._nextRef = 0;
    this._pending = new Map(); // ref -> {resolve, timer}
    this._inflight = null; // the reject function of a join in progress
    this._pingTimer = null;
    this._reconnectTimer = null;
    this._lastRecv = 0;
    this._lastKeyframeRequest = -Infinity;
    this._awaitingKeyframe = false;
    this._stopped = false;
  }

  // ------------------------------------------------------------ lifecycle

  /** Open the connection and join; resolves with the Welcome, rejects with a ConnectionError. */
  connect() {
    this._stopped = false;
    this.error = null;
    this._clearReconnect();
    this._setState("connecting");
    return this._open(false).catch((err) => {
      this._stopped = true;
      this.error = err;
      this._setState("closed", { error: err });
      throw err;
    });
  }

  /** Close for good (no reconnect); the server keeps the seat for the resume window. */
  close() {
    this._stopped = true;
    this._clearReconnect();
    const ws = this.ws;
    this._teardown(ws);
    if (this._inflight) this._inflight(new ConnectionError(0, "closed by the client", { fatal: false }));
    if (ws) ws.close(1000, "closed");
    if (this.state !== "closed") this._setState("closed");
  }

  /** Leave the room for good (no resume) and close. */
  leave() {
    this.send({ type: "Leave" });
    this.close();
  }

  get isOpen() {
    return this.state === "open";
  }

  // ------------------------------------------------------------ sending

  /** Send a message now; returns false (and sends nothing) when not connected. */
  send(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== 1 || this.state !== "open") return false;
    ws.send(encode(msg));
    return true;
  }

  /**
   * Send a request (Ask, Vote, Moderate, Review, Control, People) with a fresh `ref`.
   * Resolves with {ok: true, ack} or {ok: false, error} (the server's Error message, or
   * {code: 0, reason} when there was no answer); never rejects for a server answer.
   */
  request(msg) {
    this._nextRef = this._nextRef >= 0xffffffff ? 1 : this._nextRef + 1;
    const ref = this._nextRef;
    return new Promise((resolve) => {
      let sent = false;
      try {
        sent = this.send({ ...msg, ref });
      } catch (err) {
        resolve({ ok: false, ref, error: { code: 0, reason: `could not send: ${err.message}` } });
        return;
      }
      if (!sent) {
        resolve({ ok: false, ref, error: { code: 0, reason: "not connected" } });
        return;
      }
      const timer = setTimeout(() => {
        this._pending.delete(ref);
        resolve({ ok: false, ref, error: { code: 0, reason: "no answer" } });
      }, this.requestTimeoutMs);
      this._pending.set(ref, { resolve, timer });
    });
  }

  // ------------------------------------------------------------ internals

  _setState(state, extra = {}) {
    this.state = state;
    const detail = { state, error: null, attempt: this._attempt, delayMs: 0, ...extra };
    this.dispatchEvent(new CustomEvent("state", { detail }));
  }

  // One WebSocket attempt: resolves with the Welcome or rejects with a ConnectionError.
  _open(resume) {
    return new Promise((resolveJoin, rejectJoin) => {
      const resolve = (welcome) => {
        this._inflight = null;
        resolveJoin(welcome);
      };
      const reject = (err) => {
        this._inflight = null;
        rejectJoin(err);
      };
      this._inflight = reject;
      let ws;
      try {
        ws = new this.WebSocket(this.url);
      } catch (err) {
        reject(new ConnectionError(0, `could not connect: ${err.message}`, { fatal: false }));
        return;
      }
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      const attempt = { welcomed: false, error: null };
      ws.onopen = () => {
        const join = {
          type: "Join",
          min_version: PROTOCOL_MIN_VERSION,
          max_version: PROTOCOL_MAX_VERSION,
          token: this.token,
          resume: resume && this.welcome ? this.welcome.resume : "",
          last_seq: resume && this.welcome ? this.lastSeq : 0,
          client: this.clientInfo,
        };
        ws.send(encode(join));
      };
      ws.onmessage = (event) => {
        if (ws !== this.ws) return;
        if (!(event.data instanceof ArrayBuffer)) return; // the server sends binary only
        let msg;
        try {
          msg = decode(new Uint8Array(event.data));
        } catch (err) {
          console.warn("townhall: undecodable message", err);
          return;
        }
        this._lastRecv = performance.now();
        if (!attempt.welcomed) {
          if (msg.type === "Welcome") {
            attempt.welcomed = true;
            this._welcomed(msg);
            resolve(msg);
          } else if (msg.type === "Error") {
            attempt.error = msg;
            this._emit(msg);
            if (msg.fatal) {
              reject(new ConnectionError(msg.code, msg.reason, { fatal: true }));
            }
          }
          return;
        }
        if (msg.type === "Error" && msg.fatal) attempt.error = msg;
        this._receive(msg);
      };
      ws.onerror = () => {}; // onclose follows with what we can know
      ws.onclose = (event) => {
        if (ws !== this.ws) return;
        const err = closeError(attempt.error, event);
        if (!attempt.welcomed) {
          this._teardown(ws);
          reject(err); // no-op if already rejected by a fatal Error
          return;
        }
        this._dropped(ws, err);
      };
    });
  }

  _welcomed(welcome) {
    this.welcome = welcome;
    this._candidates = []; // joined: a later drop starts from this Welcome's list
    this._attempt = 0;
    this._awaitingKeyframe = !welcome.resumed;
    this.clock.seed(welcome.server_time_us);
    this._setState("open", { resumed: welcome.resumed });
    this._emit(welcome);
    this._startPings();
  }

  _receive(msg) {
    switch (msg.type) {
      case "Pong":
        this.clock.add(msg.client_time_us, msg.server_recv_us, msg.server_send_us, localNowUs());
        break;
      case "Keyframe":
        this.lastSeq = msg.seq;
        this._awaitingKeyframe = false;
        break;
      case "Ack": {
        this._settle(msg.ref, { ok: true, ref: msg.ref, ack: msg });
        break;
      }
      case "MicAnswer": // the answer to a MicOffer request
        this._settle(msg.ref, { ok: true, ref: msg.ref, ack: msg });
        break;
      case "Error":
        if (msg.ref) this._settle(msg.ref, { ok: false, ref: msg.ref, error: msg });
        break;
      default:
        // seq 0: a private update (SPEC §5), outside the room's sequence.
        if (SEQUENCED.has(msg.type) && msg.seq !== 0) {
          if (msg.seq <= this.lastSeq) return; // a duplicate, e.g. replayed after a resume
          if (msg.seq !== this.lastSeq + 1 || this._awaitingKeyframe) {
            this._requestKeyframe();
            return;
          }
          this.lastSeq = msg.seq;
        }
    }
    this._emit(msg);
  }

  _emit(msg) {
    this.dispatchEvent(new CustomEvent("message", { detail: msg }));
  }

  _settle(ref, result) {
    const pending = this._pending.get(ref);
    if (!pending) return;
    this._pending.delete(ref);
    clearTimeout(pending.timer);
    pending.resolve(result);
  }

  _requestKeyframe() {
    this._awaitingKeyframe = true;
    const now = performance.now();
    if (now - this._lastKeyframeRequest < KEYFRAME_REQUEST_MS) return;
    this._lastKeyframeRequest = now;
    this.send({ type: "KeyframeRequest" });
  }

  _ping() {
    this.send({ type: "Ping", client_time_us: Math.floor(localNowUs()) });
  }

  _startPings() {
    this._stopPings();
    let quick = 0;
    const tick = () => {
      if (!this.ws || this.state !== "open") return;
      if (quick >= QUICK_PINGS && performance.now() - this._lastRecv > SILENCE_MS) {
        // Nothing came back for a long time: treat the link as dead and reconnect.
        const ws = this.ws;
        this._dropped(ws, new ConnectionError(0, "the server stopped answering", { fatal: false }));
        try {
          ws.close(4000, "no answer");
        } catch {
          /* already closing */
        }
        return;
      }
      this._ping();
      quick += 1;
      this._pingTimer = setTimeout(tick, quick < QUICK_PINGS ? QUICK_PING_MS : PING_MS);
    };
    tick();
  }

  _stopPings() {
    if (this._pingTimer !== null) clearTimeout(this._pingTimer);
    this._pingTimer = null;
  }

  // Stop listening to a socket and fail the requests that were waiting on it.
  _teardown(ws) {
    this._stopPings();
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = ws.onclose = null;
    }
    if (ws === this.ws) this.ws = null;
    for (const [ref, pending] of this._pending) {
      clearTimeout(pending.timer);
      pending.resolve({ ok: false, ref, error: { code: 0, reason: "connection lost" } });
    }
    this._pending.clear();
  }

  // A joined connection ended: reconnect (resuming) unless that cannot help.
  _dropped(ws, err) {
    this._teardown(ws);
    if (this._stopped) {
      if (this.state !== "closed") this._setState("closed");
      return;
    }
    if (err.code && NO_RECONNECT.has(err.code)) {
      this._stopped = true;
      this.error = err;
      this._setState("closed", { error: err });
      return;
    }
    this._scheduleReconnect(err);
  }

  _scheduleReconnect(err) {
    const base = BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)];
    const delayMs = Math.round(base * (0.75 + Math.random() * 0.5));
    this._attempt += 1;
    this._setState("reconnecting", { error: err, delayMs });
    this._reconnectTimer = setTimeout(() => {
      this._reconnectTimer = null;
      if (this._stopped) return;
      if (!this._candidates.length) this._candidates = this.candidates();
      this.url = this._candidates.shift();
      this._open(true).catch((failure) => {
        if (this._stopped) return;
        if (failure.code && NO_RECONNECT.has(failure.code)) {
          this._stopped = true;
          this.error = failure;
          this._setState("closed", { error: failure });
        } else {
          this._scheduleReconnect(failure);
        }
      });
    }, delayMs);
  }

  /** Where to reconnect, in order: the last Welcome's other edges (from a random one, so
   * the clients of a dead edge spread over the rest), then the URL in use, then the first. */
  candidates() {
    const edges = Array.isArray(this.welcome?.edges) ? this.welcome.edges : [];
    const others = [...new Set(edges)].filter((u) => u !== this.url && /^wss?:\/\//.test(u));
    const start = others.length ? Math.floor(Math.random() * others.length) : 0;
    const order = [...others.slice(start), ...others.slice(0, start), this.url];
    if (this.homeUrl !== this.url && !order.includes(this.homeUrl)) order.push(this.homeUrl);
    return order;
  }

  _clearReconnect() {
    if (this._reconnectTimer !== null) clearTimeout(this._reconnectTimer);
    this._reconnectTimer = null;
  }
}

// What ended a socket: the server's Error if it sent one, else its close code (4000 + code).
function closeError(error, event) {
  if (error) {
    return new ConnectionError(error.code, error.reason, { fatal: error.fatal, closeCode: event.code });
  }
  if (event.code >= 4000 && event.code < 4100) {
    return new ConnectionError(event.code - 4000, event.reason || errorName(event.code - 4000), {
      closeCode: event.code,
    });
  }
  const reason = event.code === 1006 || !event.reason ? "could not reach the server" : event.reason;
  return new ConnectionError(0, reason, { fatal: false, closeCode: event.code });
}
