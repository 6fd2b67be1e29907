// The question board: open questions in the order the clone takes them, a vote button on
// each (one vote per person and question; pressing again withdraws it), and the form to
// ask. Requests go through the connection; errors (rate limits and the rest) are shown
// as the server words them.
import { t } from "../i18n/index.js";
import { ErrorCode } from "../protocol/messages.js";

const STATE_TEXT = {
  submitted: "board.state.submitted",
  approved: "board.state.approved",
};

/** Plain words for a failed request. */
export function requestErrorText(error) {
  if (!error) return t("error.generic");
  if (error.code === ErrorCode.RATE_LIMITED) return t("error.slowDown", { reason: error.reason });
  if (error.code === ErrorCode.EVENT_ENDED) return t("event.closed");
  if (error.code === 0) {
    return error.reason === "not connected" || error.reason === "connection lost"
      ? t("error.offline")
      : t("error.notSent", { reason: error.reason });
  }
  return error.reason || t("error.refused");
}

export class Board {
  constructor({ conn, state, els, storageKey }) {
    this.conn = conn;
    this.state = state;
    this.els = els; // {form, input, button, status, list, empty, nowAnswering}
    this.items = new Map(); // question id -> {li, text, meta, vote, count}
    this.storageKey = storageKey;
    this.voted = new Set(loadVotes(storageKey));
    this.pending = new Set(); // question ids with a vote in flight
    els.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.ask();
    });
  }

  setStorageKey(key) {
    this.storageKey = key;
    this.voted = new Set(loadVotes(key));
    this.render();
  }

  _say(text, kind) {
    this.els.status.textContent = text;
    this.els.status.dataset.kind = kind;
  }

  async ask() {
    const { input, button } = this.els;
    const text = input.value.replace(/\s+/g, " ").trim();
    if (text.length < 3) {
      this._say("A question needs at least 3 characters.", "error");
      input.focus();
      return;
    }
    if (text.length > 500) {
      this._say("A question can have at most 500 characters.", "error");
      return;
    }
    if (this.asking) return;
    this.asking = true;
    button.setAttribute("aria-disabled", "true");
    this._say(t("board.sending"), "");
    try {
      const res = await this.conn.request({ type: "Ask", text, language: "" });
      if (res.ok) {
        // Only what was sent is cleared: what was typed since stays (the Ack can take a while).
        if (input.value.replace(/\s+/g, " ").trim() === text) input.value = "";
        this.voted.add(res.ack.id); // the asker's own vote counts for it
        this._saveVotes();
        if (res.ack.merged) {
          this._say(t("board.merged"), "ok");
        } else if (this.state.mode === "moderated") {
          this._say(t("board.thanksModerated"), "ok");
        } else {
          this._say(t("board.thanks"), "ok");
        }
        this.render();
      } else {
        this._say(requestErrorText(res.error), "error");
      }
    } finally {
      this.asking = false;
      button.setAttribute("aria-disabled", "false");
    }
  }

  async vote(id) {
    if (this.pending.has(id)) return;
    const up = !this.voted.has(id);
    this.pending.add(id);
    this._renderItem(id);
    try {
      const res = await this.conn.request({ type: "Vote", question: id, up });
      if (res.ok) {
        if (up) this.voted.add(id);
        else this.voted.delete(id);
        this._saveVotes();
        this._say(up ? t("board.voteCounted") : t("board.voteWithdrawn"), "ok");
      } else {
        this._say(requestErrorText(res.error), "error");
      }
    } finally {
      this.pending.delete(id);
      this._renderItem(id);
    }
  }

  _saveVotes() {
    try {
      sessionStorage.setItem(this.storageKey, JSON.stringify([...this.voted]));
    } catch {
      /* private mode: votes are remembered for this page only */
    }
  }

  /** Re-renders the list in place, keeping keyboard focus on the same question's button. */
  render() {
    const { list, empty, nowAnswering } = this.els;
    const stage = this.state.stage;
    // Taken but not yet on stage (the clone is preparing it, or a moderator reviews it).
    const preparing = stage ? null : [...this.state.questions.values()].find((q) => q.state === "answering");
    nowAnswering.dataset.state = stage ? "speaking" : preparing ? "preparing" : "";
    if (stage) {
      nowAnswering.hidden = false;
      nowAnswering.textContent = t("board.nowAnswering", { text: stage.question_text });
    } else if (preparing) {
      nowAnswering.hidden = false;
      nowAnswering.textContent = t("board.preparing", { text: preparing.text });
    } else {
      nowAnswering.hidden = true;
    }
    const open = this.state.openQuestions();
    empty.hidden = open.length > 0;
    const focusedId = document.activeElement?.dataset?.question;
    const keep = new Set();
    open.forEach((q, i) => {
      keep.add(q.id);
      let item = this.items.get(q.id);
      if (!item) item = this._create(q.id);
      this._fill(item, q, i + 1);
      if (list.children[i] !== item.li) list.insertBefore(item.li, list.children[i] ?? null);
    });
    for (const [id, item] of this.items) {
      if (!keep.has(id)) {
        item.li.remove();
        this.items.delete(id);
      }
    }
    if (focusedId !== undefined) {
      const item = this.items.get(Number(focusedId));
      if (item && document.activeElement !== item.vote) item.vote.focus();
    }
  }

  _create(id) {
    const li = document.createElement("li");
    const vote = document.createElement("button");
    vote.type = "button";
    vote.className = "vote";
    vote.dataset.question = String(id);
    const arrow = document.createElement("span");
    arrow.setAttribute("aria-hidden", "true");
    arrow.textContent = "▲";
    const count = document.createElement("span");
    vote.append(arrow, count);
    vote.addEventListener("click", () => this.vote(id));
    const body = document.createElement("div");
    const text = document.createElement("p");
    text.className = "q-text";
    const meta = document.createElement("p");
    meta.className = "q-meta";
    body.append(text, meta);
    li.append(vote, body);
    const item = { li, vote, count, text, meta, q: null };
    this.items.set(id, item);
    return item;
  }

  _fill(item, q, position) {
    item.q = q;
    item.text.textContent = q.text;
    const bits = [];
    if (q.asker_name) bits.push(t("board.askedBy", { name: q.asker_name }));
    const state = q.pinned ? t("board.state.pinned") : STATE_TEXT[q.state] ? t(STATE_TEXT[q.state]) : q.state;
    item.meta.textContent = "";
    const badge = document.createElement("span");
    badge.className = `badge ${q.pinned ? "pinned" : q.state}`;
    badge.textContent = state;
    item.meta.append(badge, document.createTextNode(bits.length ? ` · ${bits.join(" · ")}` : ""));
    item.position = position;
    this._renderVote(item);
  }

  _renderItem(id) {
    const item = this.items.get(id);
    if (item) this._renderVote(item);
  }

  _renderVote(item) {
    const q = item.q;
    const mine = this.voted.has(q.id);
    const votes = q.votes === 1 ? t("board.vote1") : t("board.votes", { n: q.votes });
    item.count.textContent = String(q.votes);
    item.vote.setAttribute("aria-pressed", mine ? "true" : "false");
    item.vote.setAttribute(
      "aria-label",
      mine ? t("board.withdrawVote", { text: q.text, votes }) : t("board.voteFor", { text: q.text, votes }),
    );
    // aria-disabled, not disabled: a disabled button would drop keyboard focus.
    item.vote.setAttribute("aria-disabled", this.pending.has(q.id) ? "true" : "false");
  }
}

function loadVotes(key) {
  try {
    const raw = sessionStorage.getItem(key);
    const ids = raw ? JSON.parse(raw) : [];
    return Array.isArray(ids) ? ids.filter(Number.isInteger) : [];
  } catch {
    return [];
  }
}
