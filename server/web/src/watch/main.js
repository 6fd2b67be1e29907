// The spectator page (/watch?token=T, or no token for an anonymous spectator): the hall in
// 3D with the clone and the audience, the clone's voice, live captions, the AI disclosure
// and each answer's label, and the question board.
//
// Sync (SPEC §5): every StagePacket is stamped on the room's media clock. The page plays
// media time `now - playout delay` (150 ms, more only if packets come later than that; see
// playout.js), where now comes from the connection's clock sync: audio frames are played
// by the AudioWorklet at that local instant, animation frames are interpolated at it and
// caption words appear at it. So voice, lips and words share one clock.
import "./watch.css";
import { languageSwitch, t, translatePage } from "../i18n/index.js";
import * as THREE from "three";
import { RoomConnection } from "../protocol/connection.js";
import { decodeAnimationFrames, decodeCoarse, decodeCrowd, EXPRESSIONS, SKELETON_BONES } from "../protocol/quant.js";
import { ErrorCode } from "../protocol/messages.js";
import { RoomState } from "../protocol/state.js";
import { ProceduralAvatar } from "./avatar.js";
import { Audience } from "./audience.js";
import { StageAudio, audioUnsupportedReason } from "./audio.js";
import { Board } from "./board.js";
import { Captions } from "./captions.js";
import { EventCard } from "./event.js";
import { FrameBuffer } from "./framebuffer.js";
import { FramePace } from "./framepace.js";
import { IdleMotion } from "./idle.js";
import { MicPanel } from "./mic.js";
import { Playout } from "./playout.js";
import { RecordingConnection } from "./recording.js";
import { RecordingPlayer } from "./player.js";
import { EXP, GAZE, HIPS, ROT, VIS, blendPose, closeMouth, mouthOpenOf, newPose } from "./pose.js";
import { StageView, probeWebgl } from "./view.js";

const HOLD_US = 150000; // after the last frame, hold it this long, then ease to idle
const EASE_US = 500000;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const token = params.get("token") ?? "";
// /watch?recording=ID plays a recorded event through the same code as a live room.
const recordingId = params.get("recording");
// /watch?ws=wss://edge-2.example/ws joins through one of the room's edges (README, "Edges
// over NATS"); if it dies the connection moves to another edge the Welcome listed.
const edgeUrl = /^wss?:\/\/[^\s]+$/.test(params.get("ws") ?? "") ? params.get("ws") : undefined;

const ui = {
  status: $("status"),
  alert: $("alert"),
  hallName: $("hall-name"),
  disclosure: $("disclosure"),
  answerInfo: $("answer-info"),
  label: $("label"),
  labelDetail: $("label-detail"),
  questionNow: $("question-now"),
  captionLine: $("caption-line"),
  transcript: $("transcript"),
  notices: $("notices"),
  no3d: $("no3d"),
  sound: $("sound"),
  closeup: $("closeup"),
};

const state = new RoomState();
const conn = recordingId
  ? new RecordingConnection()
  : new RoomConnection({ url: edgeUrl, token, clientInfo: "townhall-watch/0.1" });
const micPanel = new MicPanel({ conn, state, root: document });
const captions = new Captions(ui.captionLine, ui.transcript);
const frames = new FrameBuffer();
const playout = new Playout();
playout.onChange = () => audio?.sync(performance.now(), true);
const board = new Board({
  conn,
  state,
  storageKey: "townhall.votes",
  els: {
    form: $("ask-form"),
    input: $("ask-input"),
    button: $("ask-button"),
    status: $("ask-status"),
    list: $("questions"),
    empty: $("empty-board"),
    nowAnswering: $("now-answering"),
  },
});

const eventCard = new EventCard({
  card: $("event-card"),
  title: $("event-title"),
  detail: $("event-detail"),
  clock: $("event-clock"),
  askInput: $("ask-input"),
  askButton: $("ask-button"),
  askStatus: $("ask-status"),
});

let view = null; // StageView, when WebGL works
let avatar = null;
let audience = null;
let audio = null; // StageAudio, when WebCodecs works
let idle = null;
let mouthOpen = 0;
let framesRendered = 0;
let lastLabel = "";
let currentAnswer = -1;
let skipAudioPackets = 0; // test hook: lose the audio of the next n packets
let stopped = null; // the last answer stopped by a moderator: {answer, atMs}
let paused = false; // test hook: hold the picture still (voice and captions go on)
const labelQueue = []; // [{t: media us, label}] label changes inside an answer, shown when played

// Poses: the live sample, the idle pose, and what is shown (a blend of the two).
const livePose = newPose();
const idlePose = newPose();
const shownPose = newPose();
const stopPose = newPose();
const headPos = new THREE.Vector3();
const mouthPos = new THREE.Vector3();

// ------------------------------------------------------------------ notices

function notice(id, text) {
  let p = document.getElementById(id);
  if (!text) {
    p?.remove();
    return;
  }
  if (!p) {
    p = document.createElement("p");
    p.id = id;
    ui.notices.appendChild(p);
  }
  p.textContent = text;
}

const JOIN_ERRORS = {
  [ErrorCode.AUTH_EXPIRED]: ["join.expired.title", "join.expired.body"],
  [ErrorCode.AUTH_INVALID]: ["join.invalid.title", "join.invalid.body"],
  [ErrorCode.BAD_TOKEN]: ["join.invalid.title", "join.badToken.body"],
  [ErrorCode.WRONG_ROOM]: ["join.wrongRoom.title", "join.wrongRoom.body"],
  [ErrorCode.BANNED]: ["join.banned.title", "join.banned.body"],
  [ErrorCode.KICKED]: ["join.kicked.title", "join.kicked.body"],
  [ErrorCode.ROOM_FULL]: ["join.full.title", "join.full.body"],
  [ErrorCode.REPLACED]: ["join.replaced.title", "join.replaced.body"],
  [ErrorCode.VERSION_UNSUPPORTED]: ["join.version.title", "join.version.body"],
};

function showFatal(err) {
  const keys = JOIN_ERRORS[err?.code];
  const [title, body] = keys
    ? keys.map((k) => t(k))
    : err?.recording
      ? [t("recording.cannotPlay"), err.reason]
      : [t("join.unreachable.title"), err?.code ? `${err.reason}` : t("join.unreachable.body")];
  ui.alert.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = title;
  const p = document.createElement("p");
  p.textContent = body;
  ui.alert.append(h, p);
  ui.alert.hidden = false;
  ui.alert.dataset.code = String(err?.code ?? 0);
  setStatus("closed", title);
}

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

// Connected, the header says where the event is: "Live" only while it is.
function connectedStatus() {
  const phase = { doors: t("status.doors"), hold: t("status.hold"), ended: t("status.ended") }[state.phase];
  setStatus("open", phase ?? t("status.live"));
}

// ------------------------------------------------------------------ label and disclosure

function describeLabel(label, sources) {
  const list = sources && sources.length ? sources.join(", ") : "";
  switch (label) {
    case "approved":
    case "generated":
      return [
        t(`label.${label}`),
        list ? t(`label.${label}.detailSources`, { sources: list }) : t(`label.${label}.detail`),
      ];
    case "escalated":
      return [t("label.escalated"), t("label.escalated.detail")];
    case "moderator":
      return [t("label.moderator"), t("label.moderator.detail")];
    case "leader":
      return [t("label.leader"), t("label.leader.detail")];
    default:
      return [label, ""];
  }
}

function showLabel(label, sources) {
  const [title, detail] = describeLabel(label, sources);
  ui.answerInfo.hidden = false;
  ui.label.dataset.label = label;
  ui.label.textContent = title;
  ui.labelDetail.textContent = detail ? `: ${detail}` : "";
  lastLabel = label;
}

function showStage(stage) {
  if (!stage) return;
  if (stage.disclosure) ui.disclosure.textContent = stage.disclosure;
  showLabel(stage.label, stage.sources);
  ui.questionNow.textContent = t("watch.questionNow", { text: stage.question_text });
  audience?.setAsker(stage.asker_slot);
}

// ------------------------------------------------------------------ messages

function onStagePacket(p) {
  playout.arrived(conn.clock.toLocalMs(p.media_time_us), performance.now());
  if (p.speaker_slot >= 0) {
    // An attendee's live voice (SPEC §5.1): heard and captioned like the clone's, but it
    // neither labels an answer nor moves the clone; the speaker is highlighted instead.
    audience?.setAsker(p.speaker_slot);
    captions.add(p);
    audio?.push(p);
    return;
  }
  if (stopped && p.answer === stopped.answer) return; // sent ahead, then stopped
  if (p.answer !== currentAnswer) {
    currentAnswer = p.answer;
    labelQueue.length = 0;
  }
  const last = labelQueue.length ? labelQueue[labelQueue.length - 1].label : state.stage?.label;
  if (p.label !== last) labelQueue.push({ t: p.media_time_us, label: p.label });
  if (p.anim.length) {
    const decoded = tryDecode(decodeAnimationFrames, p.anim) ?? [];
    for (let i = 0; i < decoded.length && i < p.anim_times_us.length; i++) {
      const slot = frames.slotFor(p.media_time_us + p.anim_times_us[i]);
      if (slot) writePose(decoded[i], slot);
    }
  }
  captions.add(p);
  if (skipAudioPackets > 0) skipAudioPackets--;
  else audio?.push(p);
}

/** A moderator stopped the answer: what was sent ahead and not yet heard goes now, the
 * voice, the words and the mouth (which shuts at once rather than holding its last shape). */
function stopSpeech(answer) {
  const nowMs = performance.now();
  const playing = conn.clock.toMediaUs(nowMs) - playout.delayMs * 1000;
  audio?.cut(answer, playing);
  captions.update(playing); // the words already said stay; the rest never show
  captions.cut(answer, playing);
  frames.cut(playing);
  if (frames.sample(playing, stopPose) !== Infinity) {
    frames.slotFor(Math.max(playing, frames.lastTime) + 1)?.set(closeMouth(stopPose));
  }
  stopped = { answer, atMs: nowMs, words: captions.all.length };
}

/** Decoded records, or null (and a warning) for bytes that do not decode: one bad record
 * must not stop the page. */
function tryDecode(decoder, bytes) {
  try {
    return decoder(bytes);
  } catch (err) {
    console.warn("townhall: undecodable records", err);
    return null;
  }
}

function coarse(bytes) {
  const records = bytes?.length ? tryDecode(decodeCoarse, bytes) : null;
  if (records) audience?.applyCoarse(records);
}

function writePose(f, out) {
  out[HIPS] = f.hipsPos[0];
  out[HIPS + 1] = f.hipsPos[1];
  out[HIPS + 2] = f.hipsPos[2];
  out.set(f.rotations, ROT);
  out.set(f.visemes, VIS);
  out.set(f.expressions, EXP);
  out[GAZE] = f.gaze[0];
  out[GAZE + 1] = f.gaze[1];
  out[GAZE + 2] = f.gaze[2];
}

let boardQueued = false;
function renderBoardSoon() {
  if (boardQueued) return;
  boardQueued = true;
  queueMicrotask(() => {
    boardQueued = false;
    board.render();
  });
}

conn.addEventListener("message", (e) => {
  const msg = e.detail;
  const changed = state.apply(msg);
  micPanel.onMessage(msg);
  switch (msg.type) {
    case "Welcome":
      board.setStorageKey(`townhall.votes.${msg.room}.${msg.user_id}`);
      break;
    case "Keyframe":
      audience?.setParticipants(state.participants);
      coarse(msg.coarse);
      if (msg.stage) showStage(msg.stage);
      else audience?.setAsker(-1);
      break;
    case "StagePacket":
      onStagePacket(msg);
      break;
    case "StageStart":
      showStage(msg);
      break;
    case "StageEnd":
      if (msg.outcome === "stopped") stopSpeech(msg.answer);
      captions.end(msg.answer);
      showLabel(msg.label, msg.sources);
      labelQueue.length = 0;
      audience?.setAsker(-1);
      break;
    case "FollowUp": {
      // The leader's written follow-up, or a correction or retraction notice (SPEC §5.2).
      const heads = { answer: t("followUp.answer"), correction: t("followUp.correction"), retraction: t("followUp.retraction") };
      const head = heads[msg.kind] ?? t("followUp.other");
      const about = msg.question_text ? t("followUp.about", { text: msg.question_text }) : "";
      const line = document.createElement("p");
      line.className = "follow-up";
      line.dataset.label = msg.label;
      line.dataset.kind = msg.kind;
      line.textContent = `${head}${about}: ${msg.text}`;
      ui.transcript.appendChild(line);
      notice(`follow-up-${msg.question}`, `${head}${about}: ${msg.text}`);
      break;
    }
    case "CrowdFar":
      coarse(msg.records);
      break;
    case "CrowdNear": {
      const records = msg.records.length && audience ? tryDecode(decodeCrowd, msg.records) : null;
      if (records) audience.applyNear(records);
      break;
    }
    case "Error":
      if (!msg.ref && !msg.fatal) console.warn("townhall: server error", msg);
      break;
    default:
      break;
  }
  if (changed.has("participants") || changed.has("hands")) audience?.setParticipants(state.participants);
  if (changed.has("questions") || changed.has("stage") || changed.has("mode")) renderBoardSoon();
  if (changed.has("event")) {
    eventCard.show(state.phase, state.startsAt);
    if (ui.status.dataset.state === "open") connectedStatus();
  }
});

// A recording jumped to another time: what the page had queued is not at that time.
conn.addEventListener("seek", () => {
  audio?.flush();
  captions.reset();
  frames.clear();
  labelQueue.length = 0;
  currentAnswer = -1;
  stopped = null;
});

conn.addEventListener("state", (e) => {
  const { state: s, error } = e.detail;
  if (s === "open" && recordingId) setStatus("recording", t("status.recording"));
  else if (s === "open") connectedStatus();
  else if (s === "connecting") setStatus("connecting", t("status.connecting"));
  else if (s === "reconnecting") setStatus("reconnecting", t("status.reconnecting"));
  else if (s === "closed" && error) showFatal(error);
  else if (s === "closed") setStatus("closed", t("status.disconnected"));
});

// ------------------------------------------------------------------ the render loop

// Rendering must not starve the network and the audio: frames are spaced so that the GPU
// (on a software renderer, a CPU core) is at most half busy with this page (framepace.js),
// and a software renderer, which competes with the audio threads for the cores, draws at
// most SOFTWARE_FPS frames a second.
const SOFTWARE_FPS = 15;
let pace = null;

function tick(nowMs) {
  requestAnimationFrame(tick);
  playout.settle(nowMs, state.stage !== null);
  const mediaUs = conn.clock.serverNowUs() - playout.delayMs * 1000;
  while (labelQueue.length && labelQueue[0].t <= mediaUs) {
    const { label } = labelQueue.shift();
    showLabel(label, state.stage?.sources ?? []);
  }
  captions.update(mediaUs);
  if (audio) audio.sync(nowMs);
  if (!view || paused || !pace.ready(nowMs)) return;
  pace.begin(nowMs);
  // The clone: the stream's pose at the played media time, eased to idle when it ends.
  idle.fill(idlePose, nowMs / 1000);
  const past = frames.sample(mediaUs, livePose);
  let live = 0;
  if (past <= HOLD_US) live = 1;
  else if (past < HOLD_US + EASE_US) live = 1 - (past - HOLD_US) / EASE_US;
  if (live >= 1) shownPose.set(livePose);
  else if (live <= 0) shownPose.set(idlePose);
  else blendPose(idlePose, livePose, live * live * (3 - 2 * live), shownPose);
  avatar.apply(shownPose);
  mouthOpen = avatar.mouthOpen;
  audience.update();
  view.render();
  pace.end();
  framesRendered++;
}

// ------------------------------------------------------------------ start-up

async function setupAudio() {
  const why = await audioUnsupportedReason();
  if (why) {
    ui.sound.hidden = true;
    notice("no-audio", t("notice.noAudio", { why }));
    return;
  }
  try {
    audio = await StageAudio.create(conn.clock, playout);
  } catch (err) {
    ui.sound.hidden = true;
    notice("no-audio", t("notice.audioFailed", { error: err.message }));
    return;
  }
  const refresh = () => {
    if (!audio.running) {
      ui.sound.textContent = t("sound.on");
      ui.sound.setAttribute("aria-pressed", "false");
    } else {
      ui.sound.textContent = audio.muted ? t("sound.unmute") : t("sound.mute");
      ui.sound.setAttribute("aria-pressed", audio.muted ? "true" : "false");
    }
  };
  ui.sound.addEventListener("click", async () => {
    if (!audio.running) await audio.resume();
    else audio.muted = !audio.muted;
    refresh();
  });
  audio.ctx.addEventListener("statechange", refresh);
  // Browsers start audio only after a gesture; any key or click on the page counts.
  const unlock = () => {
    if (!audio.running) audio.resume().then(refresh, () => {});
  };
  window.addEventListener("pointerdown", unlock, { capture: true });
  window.addEventListener("keydown", unlock, { capture: true });
  refresh();
}

async function loadScene() {
  const res = await fetch("/scene.json", { cache: "no-store" });
  if (!res.ok) throw new Error(`GET /scene.json: ${res.status}`);
  return res.json();
}

function sameOriginUrl(raw) {
  try {
    const u = new URL(raw, location.href);
    return u.origin === location.origin ? u.href : null;
  } catch {
    return null;
  }
}

async function setupView(sceneDoc) {
  const gl = probeWebgl();
  if (gl.reason) {
    ui.no3d.hidden = false;
    ui.no3d.textContent = t("notice.no3d", { why: gl.reason });
    ui.closeup.hidden = true;
    $("canvas").hidden = true;
    return;
  }
  view = new StageView($("canvas"), $("view"), $("closeup-frame"), { software: gl.software });
  pace = new FramePace(view.renderer.getContext(), gl.software ? 1000 / SOFTWARE_FPS - 4 : 0);
  const hall = view.buildHall(sceneDoc);
  const mark = hall.cloneMark;
  // The clone's model: ?avatar=URL (same origin) wins, else the server's (/avatar.json: the
  // persona's own VRM or the one built from its appearance). The procedural figure is only
  // a fallback when no model loads, and the page says so.
  let avatarUrl = params.get("avatar");
  if (!avatarUrl) {
    try {
      const info = await (await fetch("/avatar.json", { cache: "no-store" })).json();
      if (info && typeof info.vrm === "string") avatarUrl = info.vrm;
    } catch {
      /* no model information: the fallback below says so */
    }
  }
  const url = avatarUrl ? sameOriginUrl(avatarUrl) : null;
  if (url) {
    try {
      const { loadVrmAvatar } = await import("./vrmavatar.js");
      avatar = await loadVrmAvatar(url, SKELETON_BONES, EXPRESSIONS);
    } catch (err) {
      console.warn("townhall: avatar failed to load", err);
      notice("avatar", t("notice.avatarFailed"));
    }
  } else {
    notice(
      "avatar",
      avatarUrl
        ? t("notice.avatarElsewhere")
        : t("notice.noAvatar"),
    );
  }
  if (!avatar) avatar = new ProceduralAvatar();
  avatar.place(mark.position, mark.yawDeg);
  view.scene.add(avatar.root);
  // At rest the clone looks out at the middle of the audience, at seated eye height.
  const gaze = new THREE.Vector3().copy(mark.position).addScaledVector(mark.facing, 10);
  idle = new IdleMotion([gaze.x, mark.position.y + 1.2, gaze.z]);
  audience = new Audience(view.scene, hall.seats);
  audience.setParticipants(state.participants);
  coarse(state.coarse);
  if (state.stage) audience.setAsker(state.stage.asker_slot);
  ui.closeup.addEventListener("click", () => {
    const on = !view.closeupOn;
    view.setCloseup(on);
    ui.closeup.setAttribute("aria-pressed", on ? "true" : "false");
  });
}

function exposeDebug() {
  const debug = {
    audioPeak: () => (audio ? audio.peak() : 0),
    mouthOpen: () => mouthOpen,
    get framesRendered() {
      return framesRendered;
    },
    get lastLabel() {
      return lastLabel;
    },
    get captions() {
      return captions.text;
    },
    get captionsAll() {
      return captions.all.join(" ");
    },
    get audioStats() {
      return audio ? { ...audio.stats, state: audio.ctx.state } : null;
    },
    get playoutDelayMs() {
      return playout.delayMs;
    },
    // A frame's cost, the GPU's work included where WebGL2 fences measure it.
    get renderCostMs() {
      return pace ? pace.costMs : 0;
    },
    get has3d() {
      return Boolean(view);
    },
    get hasAudio() {
      return Boolean(audio);
    },
    // "vrm" once the model has loaded, "procedural" for the fallback figure.
    get avatarKind() {
      return avatar ? avatar.kind ?? "procedural" : null;
    },
    // The five VRM mouth expressions' weights as the model shows them now (VRM only).
    mouthExpressions: () => {
      const em = avatar?.vrm?.expressionManager;
      if (!em) return null;
      return Object.fromEntries(["aa", "ih", "ou", "ee", "oh"].map((n) => [n, em.getValue(n) ?? 0]));
    },
    headScreenRect: (which) =>
      view && avatar ? view.screenRect(avatar.headWorldPosition(headPos), avatar.headRadius, which) : null,
    hallScreenRects: () => (view ? view.hallScreenRects() : []),
    // A bone's world position as drawn ([x, y, z], metres; y up), or null.
    boneWorld: (name) => avatar?.boneWorldPosition(name, new THREE.Vector3())?.toArray() ?? null,
    mouthScreenRect: (which) =>
      view && avatar ? view.screenRect(avatar.mouthWorldPosition(mouthPos), 0.04, which) : null,
    // Where the clone's head points vs where its gaze target is, as yaw angles (degrees,
    // counter-clockwise from above, 0 = the mark's facing): the bone conventions check.
    headAndGazeYaw: () => {
      if (!avatar || !view) return null;
      const mark = view.hall.cloneMark;
      const base = Math.atan2(mark.facing.x, mark.facing.z);
      const yawOf = (x, z) => {
        let a = Math.atan2(x, z) - base;
        while (a > Math.PI) a -= 2 * Math.PI;
        while (a < -Math.PI) a += 2 * Math.PI;
        return (a * 180) / Math.PI;
      };
      const head = avatar.headWorldPosition(new THREE.Vector3());
      const fwd = avatar.headForward(new THREE.Vector3());
      return {
        head: yawOf(fwd.x, fwd.z),
        gaze: yawOf(shownPose[GAZE] - head.x, shownPose[GAZE + 2] - head.z),
      };
    },
    // Every seat as the page placed it, by seat number: [x, y, z, yaw degrees].
    seats: () => {
      const s = view?.hall.seats;
      if (!s) return [];
      return Array.from({ length: s.count }, (_, i) => [
        s.pos[i * 3],
        s.pos[i * 3 + 1],
        s.pos[i * 3 + 2],
        (s.yaw[i] * 180) / Math.PI,
      ]);
    },
    setAvatarVisible: (on) => {
      if (avatar) avatar.root.visible = Boolean(on);
    },
    setCloseup: (on) => view?.setCloseup(Boolean(on)),
    // Hold the picture (the last rendered frame stays on screen, so mouthOpen() and the
    // screen rectangles describe exactly what a screenshot shows); resumes on false.
    pause: (on) => {
      paused = Boolean(on);
    },
    clockSynced: () => conn.clock.synced,
    // Lip-sync probe: the output's loudness by the time it is heard, and the mouth opening
    // the page shows at each instant, sampled every 10 ms on the same clock (performance.now).
    startSyncProbe: () => {
      audio?.startProbe();
      const mouth = [];
      const pose = newPose();
      const timer = setInterval(() => {
        const now = performance.now();
        const media = conn.clock.toMediaUs(now) - playout.delayMs * 1000;
        const past = frames.sample(media, pose);
        mouth.push([now, past <= HOLD_US ? mouthOpenOf(pose) : 0]);
      }, 10);
      debug.stopSyncProbe = () => {
        clearInterval(timer);
        return { audio: audio?.probe ?? [], mouth };
      };
    },
    dropConnection: () => conn.ws?.close(4000, "test: dropped"),
    // Where the page is connected now, and its place in the room's sequence.
    get connection() {
      return { url: conn.url, lastSeq: conn.lastSeq, resumed: !!conn.welcome?.resumed, slot: conn.welcome?.slot };
    },
    // When the page last heard an answer was stopped (performance.now()), for which, and
    // how many caption words had been shown by then.
    get stopped() {
      return stopped;
    },
    // Speech decoded and waiting to be heard (ms), and when the audio thread last said so.
    get queuedSpeechMs() {
      return audio?.queued.ms ?? 0;
    },
    get queuedSpeechAtMs() {
      return audio?.queued.atMs ?? 0;
    },
    // The same as the audio thread answered the last stop: {ms, atMs}, or null.
    get queuedAfterStop() {
      return audio?.afterCut ?? null;
    },
    // Lose the audio of the next n packets, as a client that falls behind would.
    loseAudioPackets: (n) => {
      skipAudioPackets = n;
    },
    get audience() {
      return audience ? { present: audience.present.length, arms: audience.arms.count, asker: audience.asker } : null;
    },
  };
  window.townhallDebug = debug;
}

async function main() {
  translatePage();
  languageSwitch($("lang"));
  exposeDebug();
  const scenePromise = loadScene().catch((err) => {
    console.warn("townhall: no scene", err);
    return null;
  });
  const audioReady = setupAudio();
  const sceneDoc = await scenePromise;
  if (sceneDoc?.name) {
    ui.hallName.textContent = sceneDoc.name;
    document.title = t(recordingId ? "watch.titleRecording" : "watch.titleLive", { hall: sceneDoc.name });
  }
  if (sceneDoc) await setupView(sceneDoc);
  else {
    ui.no3d.hidden = false;
    ui.no3d.textContent = t("notice.noHall");
  }
  await audioReady;
  requestAnimationFrame(tick);
  if (recordingId) {
    document.body.classList.add("recording");
    $("empty-board").dataset.i18n = "board.emptyRecording";
    translatePage();
    try {
      await conn.load(recordingId, token);
    } catch (err) {
      showFatal({ code: err.status === 401 ? ErrorCode[err.codeName] ?? 0 : 0, reason: err.message, recording: true });
      return;
    }
    const player = new RecordingPlayer(conn, {
      bar: $("player"),
      play: $("play"),
      seek: $("seek"),
      position: $("position"),
      chaptersBox: $("chapters-box"),
      chapters: $("chapters"),
    });
    window.townhallDebug.player = player;
    if (audio && !audio.running) audio.resume().catch(() => {});
  }
  try {
    await conn.connect();
  } catch (err) {
    showFatal(err);
  }
  // /studio's "Play" opens one answer with play=1: it starts at once.
  if (recordingId && params.get("play") === "1") conn.play();
}

main();
