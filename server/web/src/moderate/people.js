// People: everyone in the room with Mute / Unmute / Kick / Ban, and the raised hands in the
// order they went up.

import { ParticipantFlag } from "../protocol/messages.js";
import { fill, h, plural, reorder, setText } from "./dom.js";

const STAFF = new Set(["moderator", "operator"]);
const SHOWN = 200; // rows in the table at most; the filter finds the rest
const CONFIRM_MS = 5000;

function seatText(p) {
  return p.seat >= 0 ? `seat ${p.seat}` : "no seat";
}

function statusText(p) {
  const bits = [];
  if (p.flags & ParticipantFlag.HAND_RAISED) bits.push("hand raised");
  if (p.flags & ParticipantFlag.MUTED) bits.push("muted");
  if (p.flags & ParticipantFlag.AWAY) bits.push("away (reconnecting)");
  return bits.join(", ") || "present";
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
    return this.state.participants.get(slot)?.name ?? `slot ${slot}`;
  }

  // The open mics with Revoke, and the form to type (or correct) the spoken question.
  renderMics() {
    const open = [...this.state.mics.values()];
    const words = { queued: "queued: gets the mic when the current answer ends", granted: "granted, waiting for them to accept", connecting: "connecting", live: "LIVE" };
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
                  "aria-label": `Revoke the mic of ${this.nameOf(m.slot)}`,
                  onclick: (event) => this.mic("revoke", { slot: m.slot, name: this.nameOf(m.slot) }, event.target.nextElementSibling),
                },
                "Revoke",
              ),
              h("span", { class: "result" }),
            ),
          )
        : [h("p", { class: "empty" }, this.state.lastMicEnd ? `The last mic ended (${this.state.lastMicEnd.reason}).` : "No mic is open.")],
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
    const verbs = { grant: ["Granting the mic to", "has the mic", "grant the mic to"], revoke: ["Revoking the mic of", "no longer has the mic", "revoke the mic of"] }[action];
    // While the clone talks the server queues the grant: the mic follows the current answer.
    if (action === "grant" && this.state.stage) verbs[1] = "gets the mic when the current answer ends";
    await this.actions.run(
      { result: [resultEl, this.result], pending: `${verbs[0]} ${p.name}…`, done: `${p.name} ${verbs[1]}.`, failed: `Could not ${verbs[2]} ${p.name}` },
      { type: "Mic", action, slot: p.slot, text: "" },
    );
  }

  async askSpoken() {
    const text = this.askText.value.trim();
    const name = this.nameOf(this.askSlot);
    const answer = await this.actions.run(
      { result: this.askResult, pending: "Adding the question…", done: `${name}'s question is in the queue.`, failed: "Could not add the question" },
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
              "aria-label": `Grant mic to ${p.name}`,
              onclick: (event) => this.mic("grant", p, event.target.nextElementSibling),
            },
            "Grant mic",
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
    setText(this.more, `Showing ${SHOWN} of ${plural(matches.length, "person", "people")}; type a name to find someone.`);
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
    setText(this.name, isMe ? `${p.name} (you)` : p.name);
    setText(this.role, p.role);
    setText(this.seat, p.seat >= 0 ? String(p.seat) : "—");
    setText(this.status, statusText(p));
    const actionable = !isMe && !STAFF.has(p.role);
    for (const btn of [this.muteBtn, this.kickBtn, this.banBtn]) {
      btn.hidden = !actionable;
      btn.disabled = !this.view.ui.online || this.busy;
    }
    setText(this.muteBtn, this.muted ? "Unmute" : "Mute");
    this.muteBtn.setAttribute("aria-label", `${this.muted ? "Unmute" : "Mute"} ${p.name}`);
    for (const [btn, action, word] of [[this.kickBtn, "kick", "Kick"], [this.banBtn, "ban", "Ban"]]) {
      const confirming = this.confirming === action;
      setText(btn, confirming ? `Confirm ${action}` : word);
      btn.setAttribute("aria-label", confirming ? `Confirm: ${action} ${p.name}` : `${word} ${p.name}`);
      btn.classList.toggle("confirming", confirming);
    }
  }

  // Kick and ban take a second press within a few seconds.
  confirmThen(action) {
    if (this.confirming !== action) {
      this.confirming = action;
      this.update(this.p, false);
      this.result.dataset.kind = "pending";
      this.result.textContent = `Press “Confirm ${action}” to ${action} ${this.p.name}.`;
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
    const words = {
      mute: [`Muting ${name}…`, `${name} is muted: no questions, no raised hand.`, `mute ${name}`],
      unmute: [`Unmuting ${name}…`, `${name} is unmuted.`, `unmute ${name}`],
      kick: [`Removing ${name}…`, `${name} was removed from the room (they may join again).`, `kick ${name}`],
      ban: [`Banning ${name}…`, `${name} was banned from this room.`, `ban ${name}`],
    }[action];
    this.busy = true;
    this.update(this.p, false);
    await this.view.actions.run(
      { result: [this.result, this.view.result], pending: words[0], done: words[1], failed: `Could not ${words[2]}` },
      { type: "People", action, slot: this.slot },
    );
    this.busy = false;
    if (this.el.isConnected) this.update(this.p, false);
  }
}
