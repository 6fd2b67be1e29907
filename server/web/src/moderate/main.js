// The moderator console (/moderate?token=...): queue, stage, review, settings and people.

import "./moderate.css";
import { languageSwitch, t, translatePage } from "../i18n/index.js";
import { RoomConnection } from "../protocol/connection.js";
import { ErrorCode } from "../protocol/messages.js";
import { RoomState } from "../protocol/state.js";
import { Actions, describeError } from "./actions.js";
import { Scheduler } from "./dom.js";
import { EventView } from "./event.js";
import { PeopleView } from "./people.js";
import { QueueView } from "./queue.js";
import { RecordingsView } from "./recordings.js";
import { SettingsView } from "./settings.js";
import { ReviewView, StageView } from "./stage.js";

const STAFF = new Set(["moderator", "operator"]);
const RETRY_MS = [1000, 2000, 4000, 8000, 15000];

// What a page says when it cannot join, by error code.
const FATAL = {
  [ErrorCode.AUTH_INVALID]: ["mod.fatal.invalid.title", "mod.fatal.invalid.body"],
  [ErrorCode.BAD_TOKEN]: ["mod.fatal.badToken.title", "mod.fatal.badToken.body"],
  [ErrorCode.AUTH_EXPIRED]: ["mod.fatal.expired.title", "mod.fatal.expired.body"],
  [ErrorCode.WRONG_ROOM]: ["mod.fatal.wrongRoom.title", "mod.fatal.wrongRoom.body"],
  [ErrorCode.VERSION_UNSUPPORTED]: ["mod.fatal.version.title", "mod.fatal.version.body"],
  [ErrorCode.REPLACED]: ["mod.fatal.replaced.title", "mod.fatal.replaced.body"],
  [ErrorCode.BANNED]: ["mod.fatal.banned.title", "mod.fatal.banned.body"],
  [ErrorCode.KICKED]: ["mod.fatal.kicked.title", "mod.fatal.kicked.body"],
  [ErrorCode.FLOODING]: ["mod.fatal.flooding.title", "mod.fatal.flooding.body"],
};

const $ = (sel) => document.querySelector(sel);

/** The title and text of a fatal error, in the page's language. */
function fatal(code) {
  return FATAL[code].map((key) => t(key));
}

function notice(title, text, extra = null) {
  $("#console").hidden = true;
  const box = $("#notice");
  box.querySelector("h2").textContent = title;
  box.querySelector("p").textContent = text;
  const more = box.querySelector(".notice-extra");
  more.replaceChildren(...(extra ? [extra] : []));
  box.hidden = false;
  document.title = `${title} · Townhall`;
}

function setConnection(state, text) {
  const pill = $("#conn");
  pill.dataset.state = state;
  pill.textContent = text;
}

function main() {
  translatePage();
  languageSwitch($("#lang"));
  const token = new URLSearchParams(location.search).get("token") ?? "";
  if (!token) {
    notice(t("mod.needsLink.title"), t("mod.needsLink.body"));
    setConnection("closed", t("mod.notConnected"));
    return;
  }

  const connection = new RoomConnection({ token, clientInfo: "townhall-moderate/0.1" });
  const state = new RoomState();
  const statusEl = $("#status");
  const actions = new Actions(connection, statusEl);
  const ui = { online: false };
  const root = document;
  const views = {
    queue: new QueueView({ root, state, actions, ui }),
    stage: new StageView({ root, state, actions, ui }),
    review: new ReviewView({ root, state, actions, ui }),
    settings: new SettingsView({ root, state, actions, ui }),
    event: new EventView({ root, state, actions, ui }),
    people: new PeopleView({ root, state, actions, ui }),
  };
  const recordings = new RecordingsView({ root, token });
  const scheduler = new Scheduler(Object.fromEntries(Object.entries(views).map(([k, v]) => [k, () => v.render()])));
  const everything = Object.keys(views);
  views.settings.onChange = () => scheduler.mark(...touches.mode);
  globalThis.townhall = { connection, state, views, recordings }; // for the curious, and for tests

  let wasOpen = false; // joined once: later "open" states are reconnections

  // Which views a change touches.
  const touches = {
    welcome: ["people"],
    participants: ["people", "stage"],
    hands: ["people"],
    mics: ["people"],
    questions: ["queue", "stage"],
    stage: ["stage", "queue"],
    mode: ["settings", "queue", "review", "stage"],
    drafts: ["review"],
    event: ["event"],
  };

  connection.addEventListener("message", (event) => {
    const msg = event.detail;
    if (msg.type === "StagePacket") {
      views.stage.addCaptions(msg);
      return;
    }
    if (msg.type === "Error" && !msg.ref && !msg.fatal) {
      if (msg.code === ErrorCode.RESUME_FAILED) actions.announce(t("mod.resumeFailed"));
      else actions.announce(t("mod.serverReported", { error: describeError(msg) }), "error");
    }
    if (msg.type === "StageStart") actions.announce(t("mod.answering", { question: msg.question, label: msg.label }));
    if (msg.type === "StageEnd") {
      const to = state.stage?.answer === msg.answer;
      actions.announce(
        to
          ? t("mod.answerEndedTo", { question: state.stage.question, outcome: msg.outcome })
          : t("mod.answerEnded", { outcome: msg.outcome }),
      );
    }
    if (msg.type === "Draft") actions.announce(t("mod.draftWaiting", { question: msg.question }));
    const changed = state.apply(msg);
    for (const part of changed) scheduler.mark(...(touches[part] ?? []));
  });

  connection.addEventListener("state", (event) => {
    const { state: s, error, delayMs } = event.detail;
    ui.online = s === "open";
    document.body.dataset.connection = s;
    if (s === "open") {
      setConnection("open", t("mod.connected"));
      if (wasOpen) actions.announce(t("mod.reconnected"), "ok");
    } else if (s === "reconnecting") {
      setConnection("reconnecting", t("mod.reconnecting"));
      actions.announce(t("mod.connectionLost", { reason: error?.reason ?? t("mod.closed"), s: Math.ceil(delayMs / 1000) }), "error");
    } else if (s === "connecting") {
      setConnection("connecting", t("status.connecting"));
    } else {
      setConnection("closed", t("status.disconnected"));
      if (error && FATAL[error.code]) notice(...fatal(error.code));
      else if (error) actions.announce(t("mod.disconnectedWhy", { error: describeError(error) }), "error");
    }
    scheduler.mark(...everything);
  });

  let attempt = 0;
  const start = async () => {
    try {
      const welcome = await connection.connect();
      if (!STAFF.has(welcome.role)) {
        connection.close();
        const watch = document.createElement("a");
        watch.href = `/watch?token=${encodeURIComponent(token)}`;
        watch.textContent = t("mod.watchInstead");
        notice(
          t("mod.staffOnly.title"),
          t("mod.staffOnly.body", { name: welcome.name, role: welcome.role }),
          watch,
        );
        return;
      }
      attempt = 0;
      $("#who").textContent = t("mod.who", { name: welcome.name, role: welcome.role, room: welcome.room });
      $("#console").hidden = false;
      recordings.load();
      actions.announce(t("mod.connectedTo", { room: welcome.room, name: welcome.name }), "ok");
      wasOpen = true;
    } catch (err) {
      if (FATAL[err.code]) {
        notice(...fatal(err.code));
        return;
      }
      // The server is unreachable, full or restarting: try again with backoff.
      const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
      attempt += 1;
      setConnection("reconnecting", t("mod.cannotReach"));
      actions.announce(t("mod.cannotJoin", { error: describeError(err), s: Math.round(delay / 1000) }), "error");
      setTimeout(start, delay);
    }
  };
  start();
}

main();
