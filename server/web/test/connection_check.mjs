// RoomConnection against a real server (config on stdin from tests/test_web_protocol.py),
// then against a scripted socket; prints one JSON report. Run with --experimental-websocket.
import { readFileSync } from "node:fs";
import { Encoder } from "@msgpack/msgpack";
import { RoomConnection, decode } from "../src/protocol/index.js";

const config = JSON.parse(readFileSync(0, "utf8"));
const report = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function until(predicate, timeoutMs = 5000, what = "condition") {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function record(conn) {
  const log = { messages: [], states: [] };
  conn.addEventListener("message", (e) => log.messages.push(e.detail));
  conn.addEventListener("state", (e) => log.states.push(e.detail));
  return log;
}

// ---------------------------------------------------------------- real server

const spectator = new RoomConnection({ url: config.url, token: config.spectator, clientInfo: "check/1" });
const spec = record(spectator);
const welcome = await spectator.connect();
const welcomeLocalUs = performance.now() * 1000;
report.welcome = { role: welcome.role, name: welcome.name, slot: welcome.slot };
await until(() => spectator.clock.samples.length >= 5, 3000, "5 pongs");
report.clock = {
  synced: spectator.clock.synced,
  samples: spectator.clock.samples.length,
  // The measured offset agrees with Welcome's stamp (sent just before it arrived).
  driftUs: spectator.clock.offsetUs - (welcome.server_time_us - welcomeLocalUs),
};

report.ask = await spectator.request({ type: "Ask", text: "How do we think about remote work?" });
const qid = report.ask.ack?.id;
await until(
  () => spec.messages.some((m) => m.type === "QuestionChanged" && m.question.id === qid),
  3000,
  "QuestionChanged",
);
report.questionSeen = true;

const moderator = new RoomConnection({ url: config.url, token: config.moderator });
await moderator.connect();
report.notAllowed = await spectator.request({ type: "Moderate", action: "approve", question: qid });

// Approved, the question is on everyone's board (before, only its asker and the staff see it).
const approved = await moderator.request({ type: "Moderate", action: "approve", question: qid });
if (!approved.ok) throw new Error(`approve failed: ${JSON.stringify(approved)}`);
await until(
  () => spec.messages.some((m) => m.type === "QuestionChanged" && m.question.id === qid && m.question.state === "approved" && m.seq > 0),
  3000,
  "the approval",
);

// Drop the spectator's socket; while it is away a moderator pins the question.
const before = spectator.lastSeq;
spec.states.length = 0;
spec.messages.length = 0;
spectator.ws.close();
const pinned = await moderator.request({ type: "Moderate", action: "pin", question: qid });
if (!pinned.ok) throw new Error(`pin failed: ${JSON.stringify(pinned)}`);
await until(() => spec.states.some((s) => s.state === "open"), 5000, "reconnect");
await until(
  () => spec.messages.some((m) => m.type === "QuestionChanged" && m.question.id === qid && m.question.pinned),
  3000,
  "the pin replayed",
);
report.resume = {
  states: spec.states.map((s) => s.state),
  resumed: spectator.welcome.resumed,
  pinnedSeen: true,
  lastSeqBefore: before,
  lastSeqAfter: spectator.lastSeq,
};

// Join failures.
for (const key of ["bad", "expired", "wrongRoom"]) {
  const conn = new RoomConnection({ url: config.url, token: config[key] });
  try {
    await conn.connect();
    report[key] = { code: -1 };
  } catch (err) {
    report[key] = { code: err.code, reason: err.reason, state: conn.state };
  }
}

// A kick closes the spectator for good.
spec.states.length = 0;
report.kick = await moderator.request({ type: "People", action: "kick", slot: spectator.welcome.slot });
await until(() => spectator.state === "closed", 3000, "kicked");
report.kick.closedWith = spec.states.at(-1).error?.code;
await sleep(1500);
report.kick.stateLater = spectator.state;
report.afterClose = await spectator.request({ type: "Vote", question: qid });
moderator.close();

// ---------------------------------------------------------------- scripted socket

class FakeSocket {
  static last = null;
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeSocket.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  send(bytes) {
    this.sent.push(decode(bytes));
  }
  close() {
    this.readyState = 3;
  }
  push(array) {
    const bytes = rawEncoder.encode(array);
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }
}

const rawEncoder = new Encoder();
const fake = new RoomConnection({ url: "ws://fake/ws", token: "t", WebSocket: FakeSocket, requestTimeoutMs: 100 });
const fakeLog = record(fake);
const joining = fake.connect();
await until(() => FakeSocket.last?.sent.length === 1, 1000, "Join");
const sock = FakeSocket.last;
const p = (slot) => [slot, `u${slot}`, "N", "attendee", slot, 0];
sock.push([64, 1, "main", 1, "u1", "N", "moderator", -1, "res", 1000, 4, 20, false]);
await joining;
sock.push([67, 5, 1000, [], new Uint8Array(), [], null, "auto", false]);
sock.push([68, 6, p(2)]);
sock.push([68, 6, p(2)]); // duplicate
sock.push([70, 8, 2, true]); // gap: dropped, KeyframeRequest
sock.push([70, 9, 2, true]); // still waiting for the keyframe: dropped
sock.push([67, 9, 2000, [p(2)], new Uint8Array(), [], null, "auto", false]);
sock.push([79, 10, "moderated", true]);
const ackP = fake.request({ type: "Vote", question: 3 });
const errP = fake.request({ type: "Vote", question: 4 });
const timeoutP = fake.request({ type: "Vote", question: 5 });
const refs = sock.sent.filter((m) => m.type === "Vote").map((m) => m.ref);
sock.push([73, refs[0], 42, false]);
sock.push([65, 6, "no", 8, false, refs[1]]);
const [ack, err, timeout] = await Promise.all([ackP, errP, timeoutP]);
report.fake = {
  delivered: fakeLog.messages.map((m) => m.type).filter((t) => t !== "Pong" && t !== "Ack" && t !== "Error"),
  sent: sock.sent.map((m) => m.type),
  lastSeq: fake.lastSeq,
  ack: { ok: ack.ok, id: ack.ack?.id },
  error: { ok: err.ok, code: err.error?.code },
  timeout: { ok: timeout.ok, error: timeout.error },
};
fake.close();

process.stdout.write(JSON.stringify(report));
process.exit(0);
