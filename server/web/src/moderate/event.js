// The event's lifecycle (SPEC §5.3): the phase, the buttons that move it, and the scheduled
// start, as Control requests (action "event" / "schedule"). Only the moves the room's
// transition table allows from the current phase are offered. Words: the catalogue (i18n).

import { t } from "../i18n/index.js";

const PHASES = {
  doors: ["mod.event.doors", "mod.event.doors.detail"],
  live: ["mod.event.live", "mod.event.live.detail"],
  hold: ["mod.event.hold", "mod.event.hold.detail"],
  ended: ["mod.event.ended", "mod.event.ended.detail"],
};

// From each phase: [event, button label, class] (server/core/lifecycle.py TRANSITIONS).
const MOVES = {
  doors: [["start", "mod.event.move.start", "primary"], ["end", "mod.event.move.end", "danger"]],
  live: [["hold", "mod.event.move.hold", ""], ["end", "mod.event.move.end", "danger"]],
  hold: [["resume", "mod.event.move.resume", "primary"], ["end", "mod.event.move.end", "danger"]],
  ended: [["open", "mod.event.move.open", ""]],
};

const DONE = {
  open: "mod.event.done.open",
  start: "mod.event.done.start",
  hold: "mod.event.done.hold",
  resume: "mod.event.done.resume",
  end: "mod.event.done.end",
};

/** A unix time as the value of <input type="datetime-local"> (local time), or "". */
function localInput(seconds) {
  if (!seconds) return "";
  const d = new Date(seconds * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export class EventView {
  constructor({ root, state, actions, ui }) {
    this.state = state;
    this.actions = actions;
    this.ui = ui;
    this.busy = false;
    this.phaseEl = root.querySelector("#event-phase");
    this.detailEl = root.querySelector("#event-detail");
    this.buttons = root.querySelector("#event-buttons");
    this.result = root.querySelector("#event-result");
    this.startInput = root.querySelector("#event-start");
    this.form = root.querySelector("#event-schedule");
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.schedule();
    });
    this.shownPhase = null;
  }

  async move(event) {
    this.busy = true;
    this.render();
    await this.actions.run(
      { result: this.result, pending: t("mod.sending"), done: t(DONE[event]), failed: t(`mod.event.failed.${event}`) },
      { type: "Control", action: "event", value: event },
    );
    this.busy = false;
    this.render();
  }

  async schedule() {
    const value = this.startInput.value;
    const seconds = value ? Math.round(new Date(value).getTime() / 1000) : 0;
    this.busy = true;
    this.render();
    await this.actions.run(
      {
        result: this.result,
        pending: t("mod.event.saving"),
        done: seconds ? t("mod.event.saved") : t("mod.event.cleared"),
        failed: t("mod.event.saveFailed"),
      },
      { type: "Control", action: "schedule", value: String(seconds) },
    );
    this.busy = false;
    this.render();
  }

  render() {
    const phase = this.state.phase;
    const keys = PHASES[phase];
    const [name, detail] = keys ? keys.map((k) => t(k)) : [phase, ""];
    this.phaseEl.textContent = name;
    this.phaseEl.dataset.phase = phase;
    this.detailEl.textContent = detail;
    const off = !this.ui.online || this.busy;
    if (this.shownPhase !== phase) {
      // Rebuilt only when the phase changes, so focus stays put while nothing moves.
      const hadFocus = this.buttons.contains(document.activeElement);
      this.buttons.replaceChildren(
        ...(MOVES[phase] ?? []).map(([event, label, cls]) => {
          const b = document.createElement("button");
          b.type = "button";
          b.textContent = t(label);
          b.dataset.event = event;
          if (cls) b.className = cls;
          b.addEventListener("click", () => this.move(event));
          return b;
        }),
      );
      if (hadFocus) this.buttons.querySelector("button")?.focus();
      this.shownPhase = phase;
    }
    for (const b of this.buttons.querySelectorAll("button")) b.disabled = off;
    if (document.activeElement !== this.startInput) this.startInput.value = localInput(this.state.startsAt);
    for (const el of this.form.querySelectorAll("input, button")) el.disabled = off;
  }
}
