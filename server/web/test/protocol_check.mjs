// Runs the JS protocol library on inputs from tests/test_web_protocol.py and prints JSON.
//
//   node test/protocol_check.mjs vectors SPEC.md   every `vector` block of SPEC.md, decoded
//   node test/protocol_check.mjs catalog           the message catalog and name lists
//   node test/protocol_check.mjs run < tasks.json  [{op, ...}] -> [{result} | {error}]
//
// Binary values travel as {"hex": "..."}; typed arrays as plain arrays.
import { readFileSync } from "node:fs";
import * as P from "../src/protocol/index.js";

const hex = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));

function toJson(value) {
  if (value instanceof Uint8Array) return { hex: hex(value) };
  if (ArrayBuffer.isView(value)) return Array.from(value);
  if (Array.isArray(value)) return value.map(toJson);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

function fromJson(value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "hex") return unhex(value.hex);
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJson(v)]));
  }
  if (Array.isArray(value)) return value.map(fromJson);
  return value;
}

const QUANT = {
  quat: (b) => P.decodeQuat(new DataView(b.buffer, b.byteOffset).getUint32(0, true)),
  pose: (b) => P.decodePose(b),
  crowd: (b) => P.decodeCrowd(b),
  coarse: (b) => P.decodeCoarse(b),
  skeleton: (b) => P.decodeSkeleton(b),
  weights: (b) => P.decodeWeights(b),
  animation: (b) => P.decodeAnimationFrame(b),
  animations: (b) => P.decodeAnimationFrames(b),
};

function attempt(fn) {
  try {
    return { result: toJson(fn()) };
  } catch (err) {
    return { error: `${err.name}: ${err.message}` };
  }
}

function vectors(path) {
  const text = readFileSync(path, "utf8");
  const out = [];
  for (const m of text.matchAll(/```vector\n([\s\S]*?)```/g)) {
    const fields = {};
    for (const line of m[1].trim().split("\n")) {
      const at = line.indexOf(": ");
      fields[line.slice(0, at)] = line.slice(at + 2);
    }
    const bytes = unhex(fields.hex);
    if (fields.kind === "message") {
      out.push({
        name: fields.name,
        kind: fields.kind,
        ...attempt(() => {
          const msg = P.decode(bytes);
          return { decoded: msg, array: P.toArrayForm(msg), reencoded: hex(P.encode(msg)) };
        }),
      });
    } else {
      out.push({ name: fields.name, kind: fields.kind, ...attempt(() => QUANT[fields.kind](bytes)) });
    }
  }
  return out;
}

function catalog() {
  const messages = Object.values(P.MESSAGES).map((def) => ({
    type: def.type,
    name: def.name,
    fields: def.fields.map((f) => ({ name: f.name, optional: f.optional, default: f.default })),
  }));
  return {
    messages,
    sequenced: [...P.SEQUENCED],
    requests: [...P.REQUESTS],
    error_codes: P.ERROR_CODES,
    skeleton_bones: P.SKELETON_BONES,
    visemes: P.VISEMES,
    expressions: P.EXPRESSIONS,
    viseme_to_vrm: P.VISEME_TO_VRM,
    vrm_vowels: P.VRM_VOWELS,
    sizes: {
      quat: P.QUAT_BYTES,
      pose: P.POSE_BYTES,
      crowd: P.CROWD_RECORD_BYTES,
      coarse: P.COARSE_RECORD_BYTES,
      skeleton: P.SKELETON_BYTES,
      animation: P.ANIMATION_FRAME_BYTES,
    },
  };
}

const OPS = {
  // Decode message bytes and encode them again.
  decode: (t) => {
    const msg = P.decode(unhex(t.hex));
    return { decoded: msg, reencoded: hex(P.encode(msg)) };
  },
  decodeArray: (t) => P.fromArrayForm(fromJson(t.array)),
  encode: (t) => hex(P.encode(fromJson(t.message))),
  quant: (t) => QUANT[t.kind](unhex(t.hex)),
  quatCode: (t) => P.decodeQuat(t.code),
  visemesToVrm: (t) => P.visemesToVrm(t.visemes),
  order: (t) => P.orderQuestions(t.questions, t.mode).map((q) => q.id),
  clock: (t) => {
    const c = new P.ClockSync();
    for (const s of t.samples) c.add(...s);
    return { offsetUs: c.offsetUs, rttUs: c.rttUs, count: c.samples.length, localMs: c.toLocalMs(t.media) };
  },
  state: (t) => {
    const s = new P.RoomState();
    for (const m of t.messages) s.apply(P.fromArrayForm(fromJson(m)));
    return {
      seq: s.seq,
      participants: [...s.participants.keys()],
      raised: s.raisedHands().map((p) => p.slot),
      open: s.openQuestions().map((q) => q.id),
      done: s.doneQuestions().map((q) => q.id),
      next: s.nextQuestion()?.id ?? null,
      stage: s.stage?.answer ?? null,
      mode: s.mode,
      review: s.review,
      drafts: [...s.drafts.keys()],
    };
  },
};

const [command, arg] = process.argv.slice(2);
let result;
if (command === "vectors") result = vectors(arg);
else if (command === "catalog") result = catalog();
else if (command === "run") {
  const tasks = JSON.parse(readFileSync(0, "utf8"));
  result = tasks.map((t) => attempt(() => OPS[t.op](t)));
} else {
  console.error(`usage: protocol_check.mjs vectors SPEC.md | catalog | run < tasks.json`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(result));
