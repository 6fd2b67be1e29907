// The message catalog of protocol/SPEC.md §4: encode and decode every message.
//
// On the wire a message is a msgpack array [type, field1, field2, ...]. Here it is a plain
// object {type: "Name", field1, field2, ...} with the SPEC's snake_case field names; nested
// arrays (Participant, QuestionInfo, Caption, Keyframe.stage) become objects too. Binary
// fields decode to Uint8Array views into the received buffer (copy them to keep them past
// the message). The Python catalog (protocol/messages.py) is the source of truth;
// tests/test_web_protocol.py checks this table against it.

import { Decoder, Encoder } from "@msgpack/msgpack";

const U8 = "u8";
const U16 = "u16";
const U32 = "u32";
const U63 = "u63";
const I64 = "i64";
const SEAT = "seat";
const BOOL = "bool";
const STR = "str";
const BIN = "bin";
const F64 = "f64";

const list = (of) => ({ list: of });
const nested = (name) => ({ nested: name });
const nullable = (of) => ({ nullable: of });

// Nested arrays that are not messages: [name, [field, kind, default?]...].
const STRUCTS = {
  Participant: [
    ["slot", U16],
    ["user_id", STR],
    ["name", STR],
    ["role", STR],
    ["seat", SEAT],
    ["flags", U8, 0],
  ],
  QuestionInfo: [
    ["id", U32],
    ["text", STR],
    ["language", STR],
    ["state", STR],
    ["votes", U32],
    ["asker_slot", SEAT],
    ["asker_name", STR],
    ["pinned", BOOL],
    ["rank", U32],
    ["merged_into", U32],
    ["answer", U32],
  ],
  Caption: [
    ["start_us", I64],
    ["duration_us", U32],
    ["text", STR],
  ],
  InboxItem: [
    ["question", U32],
    ["text", STR],
    ["reason", STR],
    ["detail", STR],
    ["asker_id", STR],
    ["asker_name", STR],
    ["language", STR],
    ["time", F64],
    ["said", STR],
    ["group", U32],
    ["state", STR, "open"],
    ["answer_text", STR, ""],
    ["answer", U32, 0],
  ],
  StatementInfo: [
    ["id", STR],
    ["version", U32],
    ["topic", STR],
    ["text", STR],
    ["language", STR],
    ["date", STR],
    ["tags", list(STR)],
    ["author", STR],
    ["approved", F64],
    ["review_by", STR],
    ["translations", list(STR)],
    ["supersedes", STR],
    ["retired", BOOL],
    ["expired", BOOL],
  ],
  AnswerInfo: [
    ["answer", U32],
    ["question", U32],
    ["question_text", STR],
    ["text", STR],
    ["label", STR],
    ["sources", list(STR)],
    ["language", STR],
    ["time", F64],
    ["outcome", STR],
    ["review", STR, ""],
  ],
  AuditEntry: [
    ["time", F64],
    ["who", STR],
    ["role", STR],
    ["action", STR],
    ["question", U32],
    ["detail", STR],
  ],
};

const STAGE_START_FIELDS = [
  ["seq", U63],
  ["answer", U32],
  ["question", U32],
  ["question_text", STR],
  ["label", STR],
  ["sources", list(STR)],
  ["language", STR],
  ["disclosure", STR],
  ["asker_slot", SEAT],
  ["media_start_us", I64],
];

// [type code, name, fields]; a field is [name, kind] or [name, kind, default].
const CATALOG = [
  // ---------------------------------------------------------------- client to server
  [1, "Join", [
    ["min_version", U8],
    ["max_version", U8],
    ["token", STR],
    ["resume", STR, ""],
    ["last_seq", U63, 0],
    ["client", STR, ""],
  ]],
  [2, "Ping", [["client_time_us", I64]]],
  [3, "Pose", [["client_time_us", I64], ["pose", BIN], ["flags", U8, 0]]],
  [4, "Hand", [["raised", BOOL]]],
  [5, "Leave", []],
  [6, "KeyframeRequest", []],
  [7, "Ask", [["ref", U32], ["text", STR], ["language", STR, ""]]],
  [8, "Vote", [["ref", U32], ["question", U32], ["up", BOOL, true]]],
  [9, "Moderate", [
    ["ref", U32],
    ["action", STR],
    ["question", U32],
    ["text", STR, ""],
    ["target", U32, 0],
  ]],
  [10, "Review", [["ref", U32], ["answer", U32], ["decision", STR], ["text", STR, ""]]],
  [11, "Control", [["ref", U32], ["action", STR], ["value", STR, ""]]],
  [12, "People", [["ref", U32], ["action", STR], ["slot", U16]]],
  [13, "Mic", [["ref", U32], ["action", STR], ["slot", U16], ["text", STR, ""]]],
  [14, "MicOffer", [["ref", U32], ["sdp", STR]]],
  [15, "MicRelease", [["ref", U32]]],
  [16, "BoardRequest", [["ref", U32], ["offset", U32, 0], ["count", U16, 100]]],
  // ---------------------------------------------------------------- server to client
  [64, "Welcome", [
    ["version", U8],
    ["room", STR],
    ["slot", U16],
    ["user_id", STR],
    ["name", STR],
    ["role", STR],
    ["seat", SEAT],
    ["resume", STR],
    ["server_time_us", I64],
    ["seq", U63],
    ["pose_hz", U8],
    ["resumed", BOOL, false],
    ["edges", list(STR), []],
  ]],
  [65, "Error", [
    ["code", U16],
    ["reason", STR],
    ["about", U8, 0],
    ["fatal", BOOL, false],
    ["ref", U32, 0],
  ]],
  [66, "Pong", [["client_time_us", I64], ["server_recv_us", I64], ["server_send_us", I64]]],
  [67, "Keyframe", [
    ["seq", U63],
    ["server_time_us", I64],
    ["participants", list(nested("Participant"))],
    ["coarse", BIN],
    ["questions", list(nested("QuestionInfo")), []],
    ["stage", nullable(nested("StageStart")), null],
    ["mode", STR, "auto"],
    ["review", BOOL, false],
    ["phase", STR, "live"],
    ["starts_at", U63, 0],
  ]],
  [68, "Joined", [["seq", U63], ["participant", nested("Participant")]]],
  [69, "Left", [["seq", U63], ["slot", U16]]],
  [70, "HandChanged", [["seq", U63], ["slot", U16], ["raised", BOOL]]],
  [71, "CrowdNear", [["server_time_us", I64], ["records", BIN]]],
  [72, "CrowdFar", [["server_time_us", I64], ["records", BIN]]],
  [73, "Ack", [["ref", U32], ["id", U32, 0], ["merged", BOOL, false]]],
  [74, "QuestionChanged", [["seq", U63], ["question", nested("QuestionInfo")]]],
  [75, "StageStart", STAGE_START_FIELDS],
  [76, "StageEnd", [
    ["seq", U63],
    ["answer", U32],
    ["outcome", STR],
    ["text", STR],
    ["label", STR],
    ["sources", list(STR)],
  ]],
  [77, "StagePacket", [
    ["answer", U32],
    ["index", U32],
    ["media_time_us", I64],
    ["duration_us", U32],
    ["label", STR],
    ["opus", list(BIN)],
    ["anim_times_us", list(U32)],
    ["anim", BIN],
    ["captions", list(nested("Caption"))],
    ["speaker_slot", SEAT, -1],
  ]],
  [78, "Draft", [
    ["answer", U32],
    ["question", U32],
    ["question_text", STR],
    ["text", STR],
    ["label", STR],
    ["sources", list(STR)],
    ["language", STR],
  ]],
  [79, "RoomMode", [["seq", U63], ["mode", STR], ["review", BOOL]]],
  [80, "ParticipantChanged", [["seq", U63], ["participant", nested("Participant")]]],
  [81, "MicChanged", [
    ["seq", U63],
    ["slot", U16],
    ["state", STR],
    ["reason", STR, ""],
    ["ends_us", I64, 0],
  ]],
  [82, "MicAnswer", [["ref", U32], ["sdp", STR]]],
  [90, "EventState", [["seq", U63], ["phase", STR], ["starts_at", U63, 0]]],
  [83, "Board", [
    ["ref", U32],
    ["offset", U32],
    ["open", U32],
    ["questions", list(nested("QuestionInfo"))],
  ]],
  // /studio (SPEC §5.2)
  [17, "StudioList", [["ref", U32], ["what", STR], ["query", STR, ""]]],
  [18, "StatementSave", [
    ["ref", U32],
    ["statement", STR],
    ["version", U32],
    ["topic", STR],
    ["text", STR],
    ["language", STR],
    ["tags", list(STR), []],
    ["review_by", STR, ""],
    ["translations", list(STR), []],
    ["retire", BOOL, false],
  ]],
  [19, "InboxAnswer", [["ref", U32], ["question", U32], ["action", STR], ["text", STR]]],
  [20, "AnswerReview", [
    ["ref", U32],
    ["answer", U32],
    ["action", STR],
    ["text", STR, ""],
    ["topic", STR, "leader"],
    ["notice", BOOL, false],
  ]],
  [84, "StudioItems", [
    ["ref", U32],
    ["what", STR],
    ["inbox", list(nested("InboxItem")), []],
    ["statements", list(nested("StatementInfo")), []],
    ["answers", list(nested("AnswerInfo")), []],
    ["audit", list(nested("AuditEntry")), []],
  ]],
  [85, "FollowUp", [
    ["seq", U63],
    ["question", U32],
    ["kind", STR],
    ["text", STR],
    ["label", STR],
    ["question_text", STR, ""],
  ]],
];

/** Message definitions by name: {type, name, fields: [{name, kind, default?, optional}]}. */
export const MESSAGES = {};
/** Message definitions by type code. */
export const BY_TYPE = new Map();

function fieldsOf(spec) {
  return spec.map(([name, kind, ...rest]) => ({
    name,
    kind,
    optional: rest.length > 0,
    default: rest[0],
  }));
}

const STRUCT_FIELDS = Object.fromEntries(
  Object.entries(STRUCTS).map(([name, spec]) => [name, fieldsOf(spec)]),
);

for (const [type, name, spec] of CATALOG) {
  const def = Object.freeze({ type, name, fields: fieldsOf(spec) });
  MESSAGES[name] = def;
  BY_TYPE.set(type, def);
}
Object.freeze(MESSAGES);

/** Client-to-server type codes are 1-63, server-to-client 64-127. */
export const isClientType = (type) => type >= 1 && type <= 63;

/** Sequenced messages carry the room's `seq` (SPEC §5); Keyframe sets it outright. */
export const SEQUENCED = new Set([
  "Joined",
  "Left",
  "HandChanged",
  "QuestionChanged",
  "StageStart",
  "StageEnd",
  "RoomMode",
  "ParticipantChanged",
  "MicChanged",
  "FollowUp",
  "EventState",
]);

/** Requests answered by exactly one Ack (same `ref`) or Error (`request` = `ref`). */
export const REQUESTS = new Set([
  "Ask",
  "Vote",
  "Moderate",
  "Review",
  "Control",
  "People",
  "Mic",
  "MicOffer",
  "MicRelease",
  "StatementSave",
  "InboxAnswer",
  "AnswerReview",
]);

/** Participant.flags bits. */
export const ParticipantFlag = Object.freeze({ HAND_RAISED: 1, AWAY: 2, MUTED: 4 });

/** Error codes (SPEC §6) by number. */
export const ERROR_CODES = Object.freeze({
  1: "BAD_FRAME",
  2: "BAD_MESSAGE",
  3: "UNKNOWN_TYPE",
  4: "TOO_LARGE",
  5: "RATE_LIMITED",
  6: "NOT_ALLOWED",
  7: "AUTH_INVALID",
  8: "AUTH_EXPIRED",
  9: "WRONG_ROOM",
  10: "VERSION_UNSUPPORTED",
  11: "NOT_JOINED",
  12: "ALREADY_JOINED",
  13: "ROOM_FULL",
  14: "RESUME_FAILED",
  15: "SLOW_CONSUMER",
  16: "FLOODING",
  17: "JOIN_TIMEOUT",
  18: "REPLACED",
  19: "BANNED",
  20: "INTERNAL",
  21: "SERVER_SHUTDOWN",
  22: "KICKED",
  23: "MIC_BUSY",
  24: "BAD_SDP",
  25: "MIC_FAILED",
  26: "BAD_TOKEN",
  27: "BOARD_FULL",
  28: "CONFLICT",
  29: "NOT_FOUND",
  30: "EVENT_ENDED",
  31: "STORE",
  32: "ROOM_UNAVAILABLE",
});

/** Error codes by name, e.g. ErrorCode.AUTH_EXPIRED === 8. */
export const ErrorCode = Object.freeze(
  Object.fromEntries(Object.entries(ERROR_CODES).map(([code, name]) => [name, Number(code)])),
);

/** The name of an error code ("AUTH_EXPIRED"), or "ERROR_<n>" for one this client does not know. */
export function errorName(code) {
  return ERROR_CODES[code] ?? `ERROR_${code}`;
}

/** Thrown for bytes that are not a valid message, or an object that cannot be encoded. */
export class ProtocolError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProtocolError";
  }
}

// ---------------------------------------------------------------- values

const INT_RANGES = {
  [U8]: [0, 255],
  [U16]: [0, 65535],
  [U32]: [0, 4294967295],
  [U63]: [0, 2 ** 63 - 1],
  [I64]: [-(2 ** 63), 2 ** 63 - 1],
  [SEAT]: [-1, 65535],
};

function describe(value) {
  if (value === null) return "nil";
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return `${typeof value} ${JSON.stringify(value)?.slice(0, 40)}`;
}

function asBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  return null;
}

// Turn a wire value into its JS value (decode) or a JS value into its wire value (encode).
function convert(kind, value, where, encoding) {
  if (typeof kind === "string") {
    if (kind in INT_RANGES) {
      const [lo, hi] = INT_RANGES[kind];
      if (!Number.isInteger(value) || value < lo || value > hi) {
        throw new ProtocolError(`${where}: expected ${kind}, got ${describe(value)}`);
      }
      return value;
    }
    if (kind === F64) {
      if (typeof value !== "number" || !Number.isFinite(value)) {
        throw new ProtocolError(`${where}: expected a number, got ${describe(value)}`);
      }
      return value;
    }
    if (kind === BOOL) {
      if (typeof value !== "boolean") throw new ProtocolError(`${where}: expected bool, got ${describe(value)}`);
      return value;
    }
    if (kind === STR) {
      if (typeof value !== "string") throw new ProtocolError(`${where}: expected str, got ${describe(value)}`);
      return value;
    }
    if (kind === BIN) {
      const bytes = asBytes(value);
      if (bytes === null) throw new ProtocolError(`${where}: expected bin, got ${describe(value)}`);
      return bytes;
    }
    throw new ProtocolError(`${where}: unknown field kind ${kind}`);
  }
  if (kind.list) {
    if (!Array.isArray(value)) throw new ProtocolError(`${where}: expected an array, got ${describe(value)}`);
    return value.map((item, i) => convert(kind.list, item, `${where}[${i}]`, encoding));
  }
  if (kind.nullable) {
    return value === null || value === undefined ? null : convert(kind.nullable, value, where, encoding);
  }
  if (kind.nested) {
    const name = kind.nested;
    if (name in STRUCT_FIELDS) {
      return encoding
        ? toArray(STRUCT_FIELDS[name], value, where, [])
        : fromArray(STRUCT_FIELDS[name], value, 0, where, {});
    }
    // A nested message (Keyframe.stage) keeps its type code on the wire.
    return encoding ? toWire({ ...value, type: name }, where) : fromWire(value, where, name);
  }
  throw new ProtocolError(`${where}: unknown field kind`);
}

function fromArray(fields, array, offset, where, out) {
  if (!Array.isArray(array)) throw new ProtocolError(`${where}: expected an array, got ${describe(array)}`);
  const given = array.length - offset;
  if (given > fields.length) {
    throw new ProtocolError(`${where}: ${given} fields, at most ${fields.length} expected`);
  }
  fields.forEach((f, i) => {
    if (i < given) {
      out[f.name] = convert(f.kind, array[offset + i], `${where}.${f.name}`, false);
    } else if (f.optional) {
      out[f.name] = freshDefault(f.default);
    } else {
      throw new ProtocolError(`${where}: missing field ${f.name}`);
    }
  });
  return out;
}

function toArray(fields, obj, where, out) {
  if (obj === null || typeof obj !== "object") {
    throw new ProtocolError(`${where}: expected an object, got ${describe(obj)}`);
  }
  for (const f of fields) {
    let value = obj[f.name];
    if (value === undefined) {
      if (!f.optional) throw new ProtocolError(`${where}: missing field ${f.name}`);
      value = freshDefault(f.default);
    }
    out.push(convert(f.kind, value, `${where}.${f.name}`, true));
  }
  return out;
}

function freshDefault(value) {
  return Array.isArray(value) ? [] : value;
}

function fromWire(raw, where = "message", expect = null) {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new ProtocolError(`${where}: expected an array [type, fields...], got ${describe(raw)}`);
  }
  const code = raw[0];
  if (!Number.isInteger(code)) throw new ProtocolError(`${where}: the type code must be an integer`);
  const def = BY_TYPE.get(code);
  if (def === undefined) throw new ProtocolError(`unknown message type ${code}`);
  if (expect !== null && def.name !== expect) {
    throw new ProtocolError(`${where}: expected ${expect}, got ${def.name}`);
  }
  return fromArray(def.fields, raw, 1, def.name, { type: def.name });
}

function toWire(msg, where = "message") {
  if (msg === null || typeof msg !== "object") throw new ProtocolError(`${where}: expected a message object`);
  const def = MESSAGES[msg.type];
  if (def === undefined) throw new ProtocolError(`unknown message type ${JSON.stringify(msg.type)}`);
  return toArray(def.fields, msg, def.name, [def.type]);
}

// ---------------------------------------------------------------- encode / decode

const encoder = new Encoder({ useBigInt64: false });
const decoder = new Decoder({ useBigInt64: false });

/** Encode one message object ({type: "Ask", ref, text}) as the bytes of one binary frame. */
export function encode(msg) {
  return encoder.encode(toWire(msg));
}

/** Decode the bytes of one binary frame into a message object; throws ProtocolError. */
export function decode(bytes) {
  const data = asBytes(bytes);
  if (data === null) throw new ProtocolError("decode: expected bytes (Uint8Array or ArrayBuffer)");
  let raw;
  try {
    raw = decoder.decode(data);
  } catch (err) {
    throw new ProtocolError(`not a msgpack value: ${err.message}`);
  }
  return fromWire(raw);
}

/** The wire array of a message without msgpack (for tests and debugging). */
export function toArrayForm(msg) {
  return toWire(msg);
}

/** A message object from its wire array (for tests and debugging). */
export function fromArrayForm(array) {
  return fromWire(array);
}
