// Room settings: Q&A mode (auto / moderated) and review (on / off), as Control requests.
import { t } from "../i18n/index.js";

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
    const on = value === "on";
    const words =
      action === "mode"
        ? {
            pending: t("mod.set.modePending", { mode: value }),
            done: value === "auto" ? t("mod.set.autoDone") : t("mod.set.moderatedDone"),
            failed: t("mod.set.modeFailed", { mode: value }),
          }
        : {
            pending: on ? t("mod.set.reviewPendingOn") : t("mod.set.reviewPendingOff"),
            done: on ? t("mod.set.reviewOn") : t("mod.set.reviewOff"),
            failed: on ? t("mod.set.reviewFailedOn") : t("mod.set.reviewFailedOff"),
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
