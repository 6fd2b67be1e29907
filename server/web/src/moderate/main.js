// The moderator console (/moderate?token=...): queue, stage, review, settings and people.

import "./moderate.css";
import { RoomConnection } from "../protocol/connection.js";
import { ErrorCode } from "../protocol/messages.js";
import { RoomState } from "../protocol/state.js";
import { Actions, describeError } from "./actions.js";
import { Scheduler } from "./dom.js";
import { PeopleView } from "./people.js";
import { QueueView } from "./queue.js";
import { RecordingsView } from "./recordings.js";
import { SettingsView } from "./settings.js";
import { ReviewView, StageView } from "./stage.js";

const STAFF = new Set(["moderator", "operator"]);
const RETRY_MS = [1000, 2000, 4000, 8000, 15000];

// What a page says when it cannot join, by error code.
const FATAL = {
  [ErrorCode.AUTH_INVALID]: ["This link is not valid", "The token in this link was not accepted. Ask the event organiser for a new moderator link."],
  [ErrorCode.BAD_TOKEN]: ["This link is not valid", "The token in this link was issued wrongly (its times or name are not acceptable). Ask the event organiser for a new moderator link."],
  [ErrorCode.AUTH_EXPIRED]: ["Your link has expired", "Moderator links work for a limited time. Ask the event organiser for a new one."],
  [ErrorCode.WRONG_ROOM]: ["This link is for another room", "The token in this link admits you to a different room than the one this server runs."],
  [ErrorCode.VERSION_UNSUPPORTED]: ["This page is out of date", "The server speaks a newer protocol. Reload the page."],
  [ErrorCode.REPLACED]: ["The console was opened somewhere else", "Your link was used in another tab or window, which took over. Reload this page to use it here."],
  [ErrorCode.BANNED]: ["You may not join this room", "This account was banned from the room."],
  [ErrorCode.KICKED]: ["You were removed from the room", "A moderator removed you. Reload the page to join again."],
  [ErrorCode.FLOODING]: ["Disconnected", "The server closed the connection after too many rejected messages. Reload the page."],
};

const $ = (sel) => document.querySelector(sel);

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
  const token = new URLSearchParams(location.search).get("token") ?? "";
  if (!token) {
    notice("This page needs your moderator link", "Open the moderator link you were given: it ends in ?token=… . Without it the console cannot sign you in.");
    setConnection("closed", "Not connected");
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
  };

  connection.addEventListener("message", (event) => {
    const msg = event.detail;
    if (msg.type === "StagePacket") {
      views.stage.addCaptions(msg);
      return;
    }
    if (msg.type === "Error" && !msg.ref && !msg.fatal) {
      if (msg.code === ErrorCode.RESUME_FAILED) actions.announce("Reconnected with a fresh copy of the room.");
      else actions.announce(`The server reported: ${describeError(msg)}`, "error");
    }
    if (msg.type === "StageStart") actions.announce(`The clone is answering question ${msg.question} (${msg.label}).`);
    if (msg.type === "StageEnd") {
      const q = state.stage?.answer === msg.answer ? ` to question ${state.stage.question}` : "";
      actions.announce(`The answer${q} ended: ${msg.outcome}.`);
    }
    if (msg.type === "Draft") actions.announce(`A draft answer to question ${msg.question} is waiting for review.`);
    const changed = state.apply(msg);
    for (const part of changed) scheduler.mark(...(touches[part] ?? []));
  });

  connection.addEventListener("state", (event) => {
    const { state: s, error, delayMs } = event.detail;
    ui.online = s === "open";
    document.body.dataset.connection = s;
    if (s === "open") {
      setConnection("open", "Connected");
      if (wasOpen) actions.announce("Reconnected; the console is up to date.", "ok");
    } else if (s === "reconnecting") {
      setConnection("reconnecting", "Reconnecting…");
      actions.announce(`Connection lost (${error?.reason ?? "closed"}); reconnecting in ${Math.ceil(delayMs / 1000)} s…`, "error");
    } else if (s === "connecting") {
      setConnection("connecting", "Connecting…");
    } else {
      setConnection("closed", "Disconnected");
      if (error && FATAL[error.code]) notice(...FATAL[error.code]);
      else if (error) actions.announce(`Disconnected: ${describeError(error)}`, "error");
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
        watch.textContent = "Watch the event instead";
        notice(
          "Moderators only",
          `You joined as ${welcome.name}, a ${welcome.role}. The moderator console needs a moderator link; ask the event organiser for one.`,
          watch,
        );
        return;
      }
      attempt = 0;
      $("#who").textContent = `${welcome.name} · ${welcome.role} · room ${welcome.room}`;
      $("#console").hidden = false;
      recordings.load();
      actions.announce(`Connected to room ${welcome.room} as ${welcome.name}.`, "ok");
      wasOpen = true;
    } catch (err) {
      if (FATAL[err.code]) {
        notice(...FATAL[err.code]);
        return;
      }
      // The server is unreachable, full or restarting: try again with backoff.
      const delay = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
      attempt += 1;
      setConnection("reconnecting", "Cannot reach the server");
      actions.announce(`Cannot join the room (${describeError(err)}); trying again in ${Math.round(delay / 1000)} s…`, "error");
      setTimeout(start, delay);
    }
  };
  start();
}

main();
