// People: everyone in the room with Mute / Unmute / Kick / Ban, and the raised hands in the
// order they went up.

import { ParticipantFlag } from "../protocol/messages.js";
import { t } from "../i18n/index.js";
import { fill, h, reorder, setText } from "./dom.js";

const STAFF = new Set(["moderator", "operator"]);
const SHOWN = 200; // rows in the table at most; the filter finds the rest
const CONFIRM_MS = 5000;

function seatText(p) {
  return p.seat >= 0 ? t("mod.p.seat", { seat: p.seat }) : t("mod.p.noSeat");
}

function statusText(p) {
  const bits = [];
  if (p.flags & ParticipantFlag.HAND_RAISED) bits.push(t("mod.p.hand"));
  if (p.flags & ParticipantFlag.MUTED) bits.push(t("mod.p.muted"));
  if (p.flags & ParticipantFlag.AWAY) bits.push(t("mod.p.away"));
  return bits.join(", ") || t("mod.p.present");
}

export class PeopleView {
  constructor({ root, state, actions, ui }) {
    this.state = state;
    this.actions = actions;
    this.ui = ui;
    this.rows = new Map(); // slot -> PersonRow
    this.count = root.querySelector("#people-count");
    this.hands = root.querySelector("#hands");
    this.handsEmpty = root.querySelector("#hands-empty");
    this.handsCount = root.querySelector("#hands-count");
    this.filter = root.querySelector("#people-filter");
    this.tbody = root.querySelector("#people-rows");
    this.more = root.querySelector("#people-more");
    this.result = root.querySelector("#people-result");
    this.filter.addEventListener("input", () => this.render());
    this.mics = root.querySelector("#mics");
    this.askForm = root.querySelector("#mic-ask");
    this.askText = root.querySelector("#mic-ask-text");
    this.askName = root.querySelector("#mic-ask-name");
    this.askResult = root.querySelector("#mic-ask-result");
    this.askSlot = -1;
    this.askForm.addEventListener("submit", (event) => {
      event.preventDefault();
      this.askSpoken();
    });
  }

  nameOf(slot) {
    return this.state.participants.get(slot)?.name ?? t("mod.p.slot", { slot });
  }

  // The open mics with Revoke, and the form to type (or correct) the spoken question.
  renderMics() {
    const open = [...this.state.mics.values()];
    const words = { queued: t("mod.mic.queued"), granted: t("mod.mic.granted"), connecting: t("mod.mic.connecting"), live: t("mod.mic.live") };
    fill(
      this.mics,
      open.length
        ? open.map((m) =>
            h(
              "p",
              { class: `mic ${m.state}`, dataset: { slot: m.slot } },
              h("span", { class: "name" }, this.nameOf(m.slot)),
              h("span", { class: "state" }, ` ${words[m.state] ?? m.state} `),
              h(
                "button",
                {
                  type: "button",
                  class: "revoke danger-quiet",
                  disabled: !this.ui.online,
                  "aria-label": t("mod.mic.revokeOf", { name: this.nameOf(m.slot) }),
                  onclick: (event) => this.mic("revoke", { slot: m.slot, name: this.nameOf(m.slot) }, event.target.nextElementSibling),
                },
                t("mod.mic.revoke"),
              ),
              h("span", { class: "result" }),
            ),
          )
        : [h("p", { class: "empty" }, this.state.lastMicEnd ? t("mod.mic.lastEnded", { reason: this.state.lastMicEnd.reason }) : t("mod.noMic"))],
    );
    const speaker = open[0]?.slot ?? this.state.lastMicEnd?.slot ?? -1;
    if (speaker !== this.askSlot) {
      this.askSlot = speaker;
      this.askText.value = "";
    }
    this.askForm.hidden = speaker < 0;
    setText(this.askName, speaker >= 0 ? this.nameOf(speaker) : "");
  }

  async mic(action, p, resultEl) {
    let [pending, done, failed] = ["Pending", "Done", "Failed"].map((w) => t(`mod.mic.${action}${w}`, { name: p.name }));
    // While the clone talks the server queues the grant: the mic follows the current answer.
    if (action === "grant" && this.state.stage) done = t("mod.mic.grantQueued", { name: p.name });
    await this.actions.run(
      { result: [resultEl, this.result], pending, done, failed },
      { type: "Mic", action, slot: p.slot, text: "" },
    );
  }

  async askSpoken() {
    const text = this.askText.value.trim();
    const name = this.nameOf(this.askSlot);
    const answer = await this.actions.run(
      { result: this.askResult, pending: t("mod.mic.askPending"), done: t("mod.mic.askDone", { name }), failed: t("mod.mic.askFailed") },
      { type: "Mic", action: "ask", slot: this.askSlot, text },
    );
    if (answer.ok) this.askText.value = "";
  }


  render() {
    const me = this.state.welcome?.slot;
    const everyone = [...this.state.participants.values()];
    setText(this.count, String(everyone.length));

    const raised = this.state.raisedHands();
    setText(this.handsCount, String(raised.length));
    this.handsEmpty.hidden = raised.length > 0;
    fill(
      this.hands,
      raised.map((p, i) =>
        h(
          "li",
          { class: "hand", dataset: { slot: p.slot } },
          h("span", { class: "pos", "aria-hidden": "true" }, String(i + 1)),
          h("span", { class: "name" }, p.name),
          h("span", { class: "meta" }, ` ${p.role}, ${seatText(p)}`),
          h(
            "button",
            {
              type: "button",
              class: "grant",
              disabled: !this.ui.online,
              "aria-label": t("mod.mic.grantTo", { name: p.name }),
              onclick: (event) => this.mic("grant", p, event.target.nextElementSibling),
            },
            t("mod.mic.grant"),
          ),
          h("span", { class: "result" }),
        ),
      ),
    );
    this.renderMics();

    const needle = this.filter.value.trim().toLowerCase();
    const matches = everyone
      .filter((p) => !needle || p.name.toLowerCase().includes(needle) || p.user_id.toLowerCase().includes(needle) || String(p.seat) === needle)
      .sort((a, b) => Number(STAFF.has(b.role)) - Number(STAFF.has(a.role)) || a.name.localeCompare(b.name) || a.slot - b.slot);
    const shown = matches.slice(0, SHOWN);
    const rows = shown.map((p) => {
      let row = this.rows.get(p.slot);
      if (!row || row.userId !== p.user_id) {
        row = new PersonRow(this, p);
        this.rows.set(p.slot, row);
      }
      row.update(p, p.slot === me);
      return row.el;
    });
    const shownSlots = new Set(shown.map((p) => p.slot));
    for (const [slot, row] of this.rows) {
      if (!shownSlots.has(slot)) {
        row.el.remove();
        this.rows.delete(slot);
      }
    }
    reorder(this.tbody, rows);
    this.more.hidden = matches.length <= SHOWN;
    setText(this.more, t("mod.p.more", { shown: SHOWN, n: matches.length }));
  }
}

class PersonRow {
  constructor(view, p) {
    this.view = view;
    this.slot = p.slot;
    this.userId = p.user_id;
    this.busy = false;
    this.confirming = null; // "kick" | "ban" while waiting for the second press
    this.name = h("td", { class: "name" });
    this.role = h("td");
    this.seat = h("td");
    this.status = h("td");
    this.result = h("span", { class: "result" });
    this.muteBtn = h("button", { type: "button", onclick: () => this.act(this.muted ? "unmute" : "mute") });
    this.kickBtn = h("button", { type: "button", class: "danger-quiet", onclick: () => this.confirmThen("kick") });
    this.banBtn = h("button", { type: "button", class: "danger", onclick: () => this.confirmThen("ban") });
    this.actionsCell = h("td", { class: "actions" }, this.muteBtn, this.kickBtn, this.banBtn, this.result);
    this.el = h("tr", { dataset: { slot: p.slot } }, this.name, this.role, this.seat, this.status, this.actionsCell);
  }

  update(p, isMe) {
    this.p = p;
    this.muted = Boolean(p.flags & ParticipantFlag.MUTED);
    setText(this.name, isMe ? t("mod.p.you", { name: p.name }) : p.name);
    setText(this.role, p.role);
    setText(this.seat, p.seat >= 0 ? String(p.seat) : "—");
    setText(this.status, statusText(p));
    const actionable = !isMe && !STAFF.has(p.role);
    for (const btn of [this.muteBtn, this.kickBtn, this.banBtn]) {
      btn.hidden = !actionable;
      btn.disabled = !this.view.ui.online || this.busy;
    }
    const mute = this.muted ? t("mod.p.unmute") : t("mod.p.mute");
    setText(this.muteBtn, mute);
    this.muteBtn.setAttribute("aria-label", t("mod.p.actionOn", { action: mute, name: p.name }));
    for (const [btn, action] of [[this.kickBtn, "kick"], [this.banBtn, "ban"]]) {
      const confirming = this.confirming === action;
      const word = t(`mod.p.${action}`);
      setText(btn, confirming ? t(`mod.p.confirm.${action}`) : word);
      btn.setAttribute(
        "aria-label",
        confirming ? t(`mod.p.confirmOn.${action}`, { name: p.name }) : t("mod.p.actionOn", { action: word, name: p.name }),
      );
      btn.classList.toggle("confirming", confirming);
    }
  }

  // Kick and ban take a second press within a few seconds.
  confirmThen(action) {
    if (this.confirming !== action) {
      this.confirming = action;
      this.update(this.p, false);
      this.result.dataset.kind = "pending";
      this.result.textContent = t(`mod.p.press.${action}`, { name: this.p.name });
      clearTimeout(this.confirmTimer);
      this.confirmTimer = setTimeout(() => {
        this.confirming = null;
        this.result.textContent = "";
        if (this.el.isConnected) this.update(this.p, false);
      }, CONFIRM_MS);
      return;
    }
    clearTimeout(this.confirmTimer);
    this.confirming = null;
    this.act(action);
  }

  async act(action) {
    const name = this.p.name;
    const words = ["Pending", "Done", "Failed"].map((w) => t(`mod.p.${action}${w}`, { name }));
    this.busy = true;
    this.update(this.p, false);
    await this.view.actions.run(
      { result: [this.result, this.view.result], pending: words[0], done: words[1], failed: words[2] },
      { type: "People", action, slot: this.slot },
    );
    this.busy = false;
    if (this.el.isConnected) this.update(this.p, false);
  }
}
