// Room settings: Q&A mode (auto / moderated) and review (on / off), as Control requests.

export class SettingsView {
  constructor({ root, state, actions, ui }) {
    this.state = state;
    this.actions = actions;
    this.ui = ui;
    this.busy = false;
    this.modeInputs = [...root.querySelectorAll('input[name="mode"]')];
    this.review = root.querySelector("#review-toggle");
    this.result = root.querySelector("#settings-result");
    for (const input of this.modeInputs) {
      input.addEventListener("change", () => {
        if (input.checked) this.set("mode", input.value);
      });
    }
    this.review.addEventListener("change", () => this.set("review", this.review.checked ? "on" : "off"));
  }

  async set(action, value) {
    const words =
      action === "mode"
        ? {
            pending: `Switching to ${value} mode…`,
            done: value === "auto" ? "Auto mode: questions go straight to the queue." : "Moderated mode: you approve each question.",
            failed: `Could not switch to ${value} mode`,
          }
        : {
            pending: `Turning review ${value}…`,
            done: value === "on" ? "Review is on: you decide on each answer before it is spoken." : "Review is off: answers are spoken at once.",
            failed: `Could not turn review ${value}`,
          };
    this.busy = true;
    this.render();
    const answer = await this.actions.run({ result: this.result, ...words }, { type: "Control", action, value });
    this.busy = false;
    if (answer.ok) {
      // Stored by the server; its RoomMode (next tick) will say the same.
      if (action === "mode") this.state.mode = value;
      else this.state.review = value === "on";
      this.onChange?.();
    }
    this.render(); // the room's setting: the new one, or the old one after an error
  }

  render() {
    const off = !this.ui.online || this.busy;
    for (const input of this.modeInputs) {
      if (!this.busy) input.checked = input.value === this.state.mode; // keep the choice while asking
      input.disabled = off;
    }
    if (!this.busy) this.review.checked = this.state.review;
    this.review.disabled = off;
  }
}
