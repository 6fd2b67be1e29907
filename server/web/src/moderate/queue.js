// The question board: open questions in the order the clone takes them, with moderation
// actions per question, and the closed ones in a collapsed "Done" list.

import { t } from "../i18n/index.js";
import { clip, fill, h, reorder, setText } from "./dom.js";

/** "1 vote", "3 votes" in the page's language. */
function votes(n) {
  return n === 1 ? t("mod.vote1") : t("mod.votesN", { n });
}

const STATE_TEXT = {
  submitted: "mod.state.submitted",
  approved: "mod.state.approved",
  answering: "mod.state.answering",
  answered: "mod.state.answered",
  rejected: "mod.state.rejected",
  escalated: "mod.state.escalated",
};

export class QueueView {
  constructor({ root, state, actions, ui }) {
    this.state = state;
    this.actions = actions;
    this.ui = ui;
    this.rows = new Map(); // id -> QuestionRow
    this.list = root.querySelector("#queue-list");
    this.empty = root.querySelector("#queue-empty");
    this.summary = root.querySelector("#queue-summary");
    this.order = root.querySelector("#queue-order");
    this.doneList = root.querySelector("#done-list");
    this.doneCount = root.querySelector("#done-count");
  }

  render() {
    const open = this.state.openQuestions();
    const next = this.state.nextQuestion();
    const rows = open.map((q, i) => {
      let row = this.rows.get(q.id);
      if (!row) {
        row = new QuestionRow(this, q.id);
        this.rows.set(q.id, row);
      }
      row.update(q, i + 1, next?.id === q.id, open.length);
      return row.el;
    });
    const openIds = new Set(open.map((q) => q.id));
    for (const [id, row] of this.rows) {
      if (!openIds.has(id)) {
        row.el.remove();
        this.rows.delete(id);
      }
    }
    reorder(this.list, rows);
    this.empty.hidden = open.length > 0;
    const waiting = open.filter((q) => q.state === "submitted").length;
    setText(this.summary, open.length === 1 ? t("mod.queueSummary1", { waiting }) : t("mod.queueSummary", { open: open.length, waiting }));
    setText(
      this.order,
      this.state.mode === "auto"
        ? t("mod.orderAuto")
        : t("mod.orderModerated"),
    );
    this.renderDone();
  }

  renderDone() {
    // The question being answered shows under "Now speaking", not here.
    const done = this.state.doneQuestions().filter((q) => q.state !== "answering");
    setText(this.doneCount, String(done.length));
    fill(
      this.doneList,
      done.map((q) =>
        h(
          "li",
          { class: "done-item", dataset: { id: q.id } },
          h("span", { class: `badge state-${q.state}` }, q.merged_into ? t("mod.mergedInto", { id: q.merged_into }) : (STATE_TEXT[q.state] ? t(STATE_TEXT[q.state]) : q.state)),
          " ",
          h("span", { class: "q-id" }, `#${q.id}`),
          " ",
          h("span", { class: "done-text" }, q.text),
          h("span", { class: "meta" }, ` — ${q.asker_name || t("mod.anonymous")}, ${votes(q.votes)}`),
        ),
      ),
    );
  }

  /** Open questions other than `id`, for the merge picker. */
  others(id) {
    return this.state.openQuestions().filter((q) => q.id !== id);
  }
}

class QuestionRow {
  constructor(view, id) {
    this.view = view;
    this.id = id;
    this.q = null;
    this.busy = false;
    const b = (text, onclick, cls = "") =>
      h("button", { type: "button", class: cls, "aria-label": t("mod.q.actionLabel", { action: text, id }), onclick }, text);

    this.pos = h("span", { class: "pos", "aria-hidden": "true" });
    this.badges = h("span", { class: "badges" });
    this.text = h("p", { class: "q-text", id: `q-${id}-text` });
    this.meta = h("p", { class: "meta" });
    this.result = h("p", { class: "result", "aria-live": "off" });

    this.approveBtn = b(t("mod.q.approve"), () => this.moderate("approve"), "primary");
    this.rejectBtn = b(t("mod.q.reject"), () => this.moderate("reject"), "danger-quiet");
    this.editBtn = b(t("mod.q.edit"), () => this.openPanel("edit"));
    this.pinBtn = b(t("mod.q.pin"), () => this.moderate(this.q.pinned ? "unpin" : "pin"));
    this.mergeBtn = b(t("mod.q.mergeInto"), () => this.openPanel("merge"));
    this.moveBtn = b(t("mod.q.moveTo"), () => this.openPanel("move"));
    for (const [btn, panel] of [[this.editBtn, "edit"], [this.mergeBtn, "merge"], [this.moveBtn, "move"]]) {
      btn.setAttribute("aria-expanded", "false");
      btn.setAttribute("aria-controls", `q-${id}-${panel}`);
    }

    // Panels: inline forms, one open at a time. Enter submits, Escape cancels.
    this.editInput = h("input", {
      type: "text",
      maxlength: "500",
      "aria-label": t("mod.q.newText", { id }),
      class: "grow",
    });
    this.mergeSelect = h("select", { "aria-label": t("mod.q.mergeTarget", { id }), class: "grow" });
    this.moveInput = h("input", {
      type: "number",
      min: "1",
      step: "1",
      inputmode: "numeric",
      "aria-label": t("mod.q.newPosition", { id }),
      class: "narrow",
    });
    this.panels = {
      edit: this.panel("edit", this.editBtn, [this.editInput], t("mod.q.save"), () => this.saveEdit()),
      merge: this.panel("merge", this.mergeBtn, [this.mergeSelect], t("mod.q.merge"), () => this.merge()),
      move: this.panel("move", this.moveBtn, [h("span", {}, t("mod.q.position")), this.moveInput], t("mod.q.move"), () => this.move()),
    };

    this.actionsEl = h(
      "div",
      { class: "actions", role: "group", "aria-label": t("mod.q.actions", { id }) },
      this.approveBtn,
      this.rejectBtn,
      this.editBtn,
      this.pinBtn,
      this.mergeBtn,
      this.moveBtn,
    );
    this.el = h(
      "li",
      { class: "question", dataset: { id }, "aria-labelledby": `q-${id}-text` },
      h("div", { class: "q-head" }, this.pos, this.badges),
      this.text,
      this.meta,
      this.actionsEl,
      Object.values(this.panels).map((p) => p.form),
      this.result,
    );
  }

  panel(name, toggle, fields, submitText, onSubmit) {
    const cancel = h("button", { type: "button", onclick: () => this.closePanel(name, true) }, t("mod.cancel"));
    const submit = h("button", { type: "submit", class: "primary" }, submitText);
    const form = h(
      "form",
      {
        class: "panel",
        id: `q-${this.id}-${name}`,
        hidden: true,
        onsubmit: (e) => {
          e.preventDefault();
          onSubmit();
        },
        onkeydown: (e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            this.closePanel(name, true);
          }
        },
      },
      fields,
      submit,
      cancel,
    );
    return { form, toggle, submit, first: fields.find((f) => f.matches?.("input, select")) ?? fields[0] };
  }

  openPanel(name) {
    for (const other of Object.keys(this.panels)) if (other !== name) this.closePanel(other, false);
    const p = this.panels[name];
    if (name === "edit") this.editInput.value = this.q.text;
    if (name === "merge") this.fillMerge();
    if (name === "move") this.moveInput.value = String(this.position);
    p.form.hidden = false;
    p.toggle.setAttribute("aria-expanded", "true");
    p.first.focus();
    if (name === "edit") this.editInput.select();
  }

  closePanel(name, refocus) {
    const p = this.panels[name];
    if (p.form.hidden) return;
    p.form.hidden = true;
    p.toggle.setAttribute("aria-expanded", "false");
    if (refocus) p.toggle.focus();
  }

  fillMerge() {
    const others = this.view.others(this.id);
    fill(
      this.mergeSelect,
      others.length
        ? others.map((o) => h("option", { value: String(o.id) }, `#${o.id}: ${clip(o.text)} (${votes(o.votes)})`))
        : h("option", { value: "" }, t("mod.q.noOther")),
    );
  }

  update(q, position, isNext, count) {
    this.q = q;
    this.position = position;
    setText(this.pos, String(position));
    fill(
      this.badges,
      h("span", { class: `badge state-${q.state}` }, (STATE_TEXT[q.state] ? t(STATE_TEXT[q.state]) : q.state)),
      q.pinned ? h("span", { class: "badge pinned" }, t("mod.q.pinned")) : null,
      isNext ? h("span", { class: "badge next" }, t("mod.q.next")) : null,
    );
    setText(this.text, q.text);
    const bits = [
      `#${q.id}`,
      q.asker_slot >= 0
        ? t("mod.q.askedBySeat", { name: q.asker_name || t("mod.anonymous"), seat: q.asker_slot })
        : t("mod.q.askedBy", { name: q.asker_name || t("mod.anonymous") }),
      q.language ? t("mod.q.language", { language: q.language }) : t("mod.q.languageUnknown"),
      votes(q.votes),
    ];
    if (q.rank) bits.push(t("mod.q.yourOrder", { rank: q.rank }));
    setText(this.meta, bits.join(" · "));
    const online = this.view.ui.online;
    const enable = (btn, ok = true) => (btn.disabled = !online || this.busy || !ok);
    this.approveBtn.hidden = q.state !== "submitted";
    enable(this.approveBtn);
    enable(this.rejectBtn);
    enable(this.editBtn);
    const pin = q.pinned ? t("mod.q.unpin") : t("mod.q.pin");
    setText(this.pinBtn, pin);
    this.pinBtn.setAttribute("aria-label", t("mod.q.actionLabel", { action: pin, id: q.id }));
    this.pinBtn.setAttribute("aria-pressed", q.pinned ? "true" : "false");
    enable(this.pinBtn);
    enable(this.mergeBtn, count > 1);
    enable(this.moveBtn, count > 1);
    this.moveInput.max = String(count);
    for (const p of Object.values(this.panels)) p.submit.disabled = !online || this.busy;
    if (!this.panels.merge.form.hidden && !this.mergeSelect.matches(":focus")) this.fillMerge();
  }

  async request(message, words) {
    this.busy = true;
    this.view.render();
    const answer = await this.view.actions.run({ result: this.result, ...words }, { type: "Moderate", question: this.id, ...message });
    this.busy = false;
    if (this.el.isConnected) this.view.render();
    return answer;
  }

  moderate(action) {
    const id = this.id;
    const [pending, done, failed] = ["Pending", "Done", "Failed"].map((w) => t(`mod.q.${action}${w}`, { id }));
    return this.request({ action }, { pending, done, failed });
  }

  async saveEdit() {
    const text = this.editInput.value.trim();
    if (text === this.q.text) {
      this.closePanel("edit", true);
      return;
    }
    const answer = await this.request(
      { action: "edit", text },
      { pending: t("mod.q.editPending", { id: this.id }), done: t("mod.q.editDone", { id: this.id }), failed: t("mod.q.editFailed", { id: this.id }) },
    );
    if (answer.ok) this.closePanel("edit", true);
  }

  async merge() {
    const target = Number(this.mergeSelect.value);
    if (!target) return;
    const answer = await this.request(
      { action: "merge", target },
      {
        pending: t("mod.q.mergePending", { id: this.id, target }),
        done: t("mod.q.mergeDone", { id: this.id, target }),
        failed: t("mod.q.mergeFailed", { id: this.id, target }),
      },
    );
    if (answer.ok && this.el.isConnected) this.closePanel("merge", false);
  }

  async move() {
    const target = Math.round(Number(this.moveInput.value));
    if (!Number.isFinite(target) || target < 1) {
      this.moveInput.focus();
      return;
    }
    const answer = await this.request(
      { action: "move", target },
      {
        pending: t("mod.q.movePending", { id: this.id, target }),
        done: t("mod.q.moveDone", { id: this.id, target }),
        failed: t("mod.q.moveFailed", { id: this.id }),
      },
    );
    if (answer.ok) this.closePanel("move", true);
  }
}
