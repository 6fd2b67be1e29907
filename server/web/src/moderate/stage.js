// "Now speaking" (the current answer, Stop and Next) and "Review" (drafts awaiting a decision).

import { t } from "../i18n/index.js";
import { clip, fill, h, reorder, setText } from "./dom.js";

export const LABEL_TEXT = {
  approved: "mod.label.approved",
  generated: "mod.label.generated",
  escalated: "mod.label.escalated",
  moderator: "mod.label.moderator",
  leader: "mod.label.leader",
};

const OUTCOME_TEXT = {
  done: "mod.outcome.done",
  stopped: "mod.outcome.stopped",
  skipped: "mod.outcome.skipped",
  failed: "mod.outcome.failed",
};
const CAPTION_WORDS = 40;

function labelBadge(label) {
  return h("span", { class: `badge label-${label}` }, LABEL_TEXT[label] ? t(LABEL_TEXT[label]) : label);
}

function sourcesText(sources) {
  return sources.length ? sources.join(", ") : t("mod.none");
}

export class StageView {
  constructor({ root, state, actions, ui }) {
    this.state = state;
    this.actions = actions;
    this.ui = ui;
    this.body = root.querySelector("#stage-body");
    this.last = root.querySelector("#stage-last");
    this.result = root.querySelector("#stage-result");
    this.stopBtn = root.querySelector("#stop");
    this.nextBtn = root.querySelector("#next");
    this.captions = []; // words of the current answer, latest last
    this.captionAnswer = 0;
    this.captionEl = null;
    this.stopBtn.addEventListener("click", () => this.control("stop"));
    this.nextBtn.addEventListener("click", () => this.control("next"));
  }

  control(action) {
    const words =
      action === "stop"
        ? { pending: t("mod.stopPending"), done: t("mod.stopDone"), failed: t("mod.stopFailed") }
        : { pending: t("mod.nextPending"), done: t("mod.nextDone"), failed: t("mod.nextFailed") };
    return this.actions.run({ result: this.result, ...words }, { type: "Control", action });
  }

  /** Caption words from a StagePacket of the current answer. */
  addCaptions(packet) {
    const stage = this.state.stage;
    if (!stage || packet.answer !== stage.answer || !packet.captions.length) return;
    if (this.captionAnswer !== stage.answer) {
      this.captionAnswer = stage.answer;
      this.captions = [];
    }
    for (const c of packet.captions) this.captions.push(c.text);
    if (this.captions.length > CAPTION_WORDS) this.captions.splice(0, this.captions.length - CAPTION_WORDS);
    if (this.captionEl) setText(this.captionEl, this.captions.join(" "));
  }

  render() {
    const stage = this.state.stage;
    const online = this.ui.online;
    this.stopBtn.disabled = !online || !stage;
    this.nextBtn.disabled = !online;
    if (stage) {
      if (this.captionAnswer !== stage.answer) {
        this.captionAnswer = stage.answer;
        this.captions = [];
      }
      const asker = stage.asker_slot >= 0 ? this.state.participants.get(stage.asker_slot) : null;
      this.captionEl = h("p", { class: "captions", "aria-live": "off" }, this.captions.join(" "));
      fill(
        this.body,
        h("p", { class: "speaking-line" }, h("span", { class: "live-dot", "aria-hidden": "true" }), t("mod.speakingNow"), labelBadge(stage.label)),
        h("blockquote", { class: "stage-question" }, stage.question_text),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, t("mod.fact.answer")), h("dd", {}, t("mod.answerTo", { answer: stage.answer, question: stage.question })),
          h("dt", {}, t("mod.fact.label")), h("dd", { class: "stage-label" }, stage.label),
          h("dt", {}, t("mod.fact.sources")), h("dd", {}, sourcesText(stage.sources)),
          h("dt", {}, t("mod.fact.language")), h("dd", {}, stage.language || t("mod.unknown")),
          asker ? [h("dt", {}, t("mod.fact.asker")), h("dd", {}, t("mod.askerSeat", { name: asker.name, seat: stage.asker_slot }))] : null,
          h("dt", {}, t("mod.fact.disclosure")), h("dd", {}, stage.disclosure),
        ),
        h("p", { class: "captions-title" }, t("mod.liveCaptions")),
        this.captionEl,
      );
    } else {
      this.captionEl = null;
      const next = this.state.nextQuestion();
      fill(
        this.body,
        h("p", { class: "idle" }, t("mod.idle")),
        h(
          "p",
          { class: "meta" },
          next ? t("mod.nextUp", { id: next.id, text: clip(next.text, 90) }) : t("mod.noneWaiting"),
        ),
      );
    }
    const end = this.state.lastEnd;
    this.last.hidden = !end;
    if (end) {
      fill(
        this.last,
        h("summary", {}, t("mod.lastAnswer", { answer: end.answer, outcome: OUTCOME_TEXT[end.outcome] ? t(OUTCOME_TEXT[end.outcome]) : end.outcome }), labelBadge(end.label)),
        h("p", { class: "last-text" }, end.text || t("mod.nothingSpoken")),
        h("p", { class: "meta" }, t("mod.sourcesLine", { sources: sourcesText(end.sources) })),
      );
    }
  }
}

export class ReviewView {
  constructor({ root, state, actions, ui }) {
    this.state = state;
    this.actions = actions;
    this.ui = ui;
    this.cards = new Map(); // answer -> DraftCard
    this.list = root.querySelector("#drafts");
    this.mode = root.querySelector("#review-mode");
    this.empty = root.querySelector("#drafts-empty");
    this.result = root.querySelector("#review-result");
  }

  render() {
    setText(
      this.mode,
      this.state.review
        ? t("mod.reviewOnText")
        : t("mod.reviewOffText"),
    );
    const drafts = [...this.state.drafts.values()];
    const rows = drafts.map((d) => {
      let card = this.cards.get(d.answer);
      if (!card) {
        card = new DraftCard(this, d);
        this.cards.set(d.answer, card);
      }
      card.update();
      return card.el;
    });
    for (const [answer, card] of this.cards) {
      if (!this.state.drafts.has(answer)) {
        card.el.remove();
        this.cards.delete(answer);
      }
    }
    reorder(this.list, rows);
    this.empty.hidden = drafts.length > 0;
  }
}

class DraftCard {
  constructor(view, draft) {
    this.view = view;
    this.draft = draft;
    this.busy = false;
    this.decided = false;
    const n = draft.answer;
    this.result = h("p", { class: "result" });
    this.speakBtn = h("button", { type: "button", class: "primary", onclick: () => this.decide("speak") }, t("mod.speak"));
    this.editBtn = h(
      "button",
      { type: "button", "aria-expanded": "false", "aria-controls": `draft-${n}-edit`, onclick: () => this.openEdit() },
      t("mod.edit"),
    );
    this.skipBtn = h("button", { type: "button", class: "danger-quiet", onclick: () => this.decide("skip") }, t("mod.skip"));
    for (const [btn, what] of [[this.speakBtn, "speak"], [this.editBtn, "edit"], [this.skipBtn, "skip"]]) {
      btn.setAttribute("aria-label", t(`mod.draftAction.${what}`, { question: draft.question }));
    }
    this.textarea = h("textarea", {
      rows: "6",
      maxlength: "4000",
      "aria-label": t("mod.editedAnswer", { question: draft.question }),
    });
    this.speakEditBtn = h("button", { type: "submit", class: "primary" }, t("mod.speakEdited"));
    this.editForm = h(
      "form",
      {
        class: "panel column",
        id: `draft-${n}-edit`,
        hidden: true,
        onsubmit: (e) => {
          e.preventDefault();
          this.decide("edit");
        },
        onkeydown: (e) => {
          if (e.key === "Escape") {
            e.preventDefault();
            this.closeEdit();
          }
        },
      },
      this.textarea,
      h("p", { class: "meta edit-label" }, t("mod.editLabel")),
      h("div", { class: "actions" }, this.speakEditBtn, h("button", { type: "button", onclick: () => this.closeEdit() }, t("mod.cancel"))),
    );
    this.el = h(
      "li",
      { class: "draft", dataset: { answer: n } },
      h("p", { class: "q-head" }, labelBadge(draft.label), h("span", { class: "meta" }, t("mod.draftHead", { answer: n, question: draft.question, language: draft.language || t("mod.unknown") }))),
      h("p", { class: "draft-question" }, h("span", { class: "muted" }, t("mod.questionPrefix")), draft.question_text),
      h("p", { class: "draft-text" }, draft.text),
      h("p", { class: "meta" }, t("mod.sourcesLine", { sources: sourcesText(draft.sources) })),
      h("div", { class: "actions", role: "group", "aria-label": t("mod.decisionOn", { question: draft.question }) }, this.speakBtn, this.editBtn, this.skipBtn),
      this.editForm,
      this.result,
    );
  }

  update() {
    const off = !this.view.ui.online || this.busy || this.decided;
    for (const btn of [this.speakBtn, this.editBtn, this.skipBtn, this.speakEditBtn]) btn.disabled = off;
  }

  openEdit() {
    this.textarea.value = this.draft.text;
    this.editForm.hidden = false;
    this.editBtn.setAttribute("aria-expanded", "true");
    this.textarea.focus();
  }

  closeEdit() {
    this.editForm.hidden = true;
    this.editBtn.setAttribute("aria-expanded", "false");
    this.editBtn.focus();
  }

  async decide(decision) {
    const q = this.draft.question;
    const text = decision === "edit" ? this.textarea.value.trim() : "";
    if (decision === "edit" && !text) {
      this.textarea.focus();
      return;
    }
    const words = ["Pending", "Done", "Failed"].map((w) => t(`mod.review.${decision}${w}`, { question: q }));
    this.busy = true;
    this.update();
    const answer = await this.view.actions.run(
      { result: [this.result, this.view.result], pending: words[0], done: words[1], failed: words[2] },
      { type: "Review", answer: this.draft.answer, decision, text },
    );
    this.busy = false;
    if (answer.ok) {
      this.decided = true;
      this.editForm.hidden = true;
      // The card stays (disabled, with its result) until the answer starts or a moment passes.
      setTimeout(() => {
        if (this.view.state.dropDraft(this.draft.answer)) this.view.render();
      }, decision === "skip" ? 3000 : 8000);
    }
    this.update();
  }
}
