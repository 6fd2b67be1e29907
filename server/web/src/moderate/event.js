// The event's lifecycle (SPEC §5.3): the phase, the buttons that move it, and the scheduled
// start, as Control requests (action "event" / "schedule"). Only the moves the room's
// transition table allows from the current phase are offered.

const PHASES = {
  doors: ["Doors open", "The lobby: people arrive and ask; the clone waits until you go live."],
  live: ["Live", "The clone answers the queue."],
  hold: ["On hold", "The clone has finished its sentence and waits; Resume continues the queue."],
  ended: ["Ended", "The closing card is up; questions, votes and mics are closed."],
};

// From each phase: [event, button label, class] (server/core/lifecycle.py TRANSITIONS).
const MOVES = {
  doors: [["start", "Go live", "primary"], ["end", "End the event", "danger"]],
  live: [["hold", "Hold", ""], ["end", "End the event", "danger"]],
  hold: [["resume", "Resume", "primary"], ["end", "End the event", "danger"]],
  ended: [["open", "Open the doors again", ""]],
};

const DONE = {
  open: "The doors are open: the lobby shows the countdown.",
  start: "The event is live: the clone takes the first question.",
  hold: "On hold: the clone finishes its sentence and waits.",
  resume: "Resumed: the clone continues with the queue.",
  end: "The event has ended: the closing card is up.",
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
      { result: this.result, pending: "Sending…", done: DONE[event], failed: `Could not ${event} the event` },
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
        pending: "Saving the start time…",
        done: seconds ? "Start time saved: the lobby counts down to it." : "Start time cleared.",
        failed: "Could not save the start time",
      },
      { type: "Control", action: "schedule", value: String(seconds) },
    );
    this.busy = false;
    this.render();
  }

  render() {
    const phase = this.state.phase;
    const [name, detail] = PHASES[phase] ?? [phase, ""];
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
          b.textContent = label;
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
