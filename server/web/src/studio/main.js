// The studio (/studio?token=...): the leader's inbox, the clone's answers, the approved
// statements with their history, insights and the audit. Operators act; moderators read
// the inbox. Everything goes over the wire protocol (SPEC §5.2).

import "./studio.css";
import { RoomConnection } from "../protocol/connection.js";
import { ErrorCode } from "../protocol/messages.js";
import { Actions, show } from "../moderate/actions.js";
import { setLanguage } from "../i18n/index.js";

// The studio is in English only: the shared moderate/actions.js words come from the English
// catalogue here, whatever the browser's languages.
setLanguage("en");

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "for" || k === "role") node.setAttribute(k, v);
    else node[k] = v;
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
};
const when = (t) => new Date(t * 1000).toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
const TABS = ["inbox", "answers", "statements", "insights", "audit"];
const ACTION_LABEL = {
  publish: "Publish to the room now (spoken on stage as your own words)",
  post: "Post as a written follow-up (board and transcript)",
  asker: "Send only to the asker",
  decline: "Decline (the text is your reason)",
};

class Studio {
  constructor(connection, actions, token) {
    this.connection = connection;
    this.token = token;
    this.actions = actions;
    this.role = "spectator";
    this.inbox = new Map();
    this.answers = new Map();
    this.statements = new Map();
    this.histories = new Map();
    this.audit = [];
    this.ref = 0x40000000; // list requests: their own range, apart from connection.request's
  }

  list(what, query = "") {
    this.ref += 1;
    this.connection.send({ type: "StudioList", ref: this.ref, what, query });
  }

  refresh() {
    this.list("inbox");
    if (this.role !== "operator") return;
    for (const what of ["answers", "statements", "audit"]) this.list(what);
  }

  apply(msg) {
    if (msg.type === "StudioItems") {
      for (const item of msg.inbox) this.inbox.set(item.question, item);
      for (const a of msg.answers) this.answers.set(a.answer, a);
      if (msg.what === "history" && msg.statements.length) this.histories.set(msg.statements[0].id, msg.statements);
      else for (const s of msg.statements) {
        const old = this.statements.get(s.id);
        if (!old || old.version <= s.version) this.statements.set(s.id, s);
      }
      if (msg.what === "audit" && msg.ref) this.audit = msg.audit;
      if (msg.ref === 0 && msg.inbox.some((i) => i.state === "open")) {
        this.actions.announce(`New in the inbox: “${msg.inbox[0].text}”`);
      }
      if (msg.ref === 0 && this.role === "operator") this.list("audit");
      this.render();
    } else if (msg.type === "StageEnd" && this.role === "operator") {
      this.list("answers");
    }
  }

  render() {
    this.renderInbox();
    if (this.role === "operator") {
      this.renderAnswers();
      this.renderStatements();
      this.renderInsights();
      this.renderAudit();
    }
  }

  // ------------------------------------------------------------ inbox

  renderInbox() {
    const items = [...this.inbox.values()].sort((a, b) => (a.state === "open") - (b.state === "open") || a.time - b.time).reverse();
    const open = items.filter((i) => i.state === "open").length;
    const count = $("#inbox-count");
    count.textContent = String(open);
    count.toggleAttribute("data-zero", open === 0);
    $("#inbox-empty").hidden = items.length > 0;
    const list = $("#inbox-list");
    const focused = document.activeElement?.closest?.("#inbox-list > li")?.dataset.question;
    const drafts = new Map([...list.querySelectorAll("textarea")].map((t) => [t.dataset.question, t.value]));
    list.replaceChildren(...items.map((item) => this.inboxItem(item, drafts.get(String(item.question)) ?? "")));
    if (focused) list.querySelector(`li[data-question="${focused}"] textarea`)?.focus();
  }

  inboxItem(item, draft) {
    const li = el("li", { "data-question": item.question, "data-state": item.state });
    li.append(
      el("p", { className: "q", text: item.text }),
      el("p", {
        className: "meta",
        text: `#${item.question} · ${item.reason}${item.detail ? ` (${item.detail})` : ""} · asked by ${item.asker_name || item.asker_id || "unknown"} · ${item.language} · ${when(item.time)}` +
          (item.group !== item.question ? ` · similar to #${item.group}` : ""),
      }),
    );
    if (item.said) li.append(el("p", { className: "said", text: `The clone said: ${item.said}` }));
    if (item.state !== "open") {
      li.append(el("p", { className: "meta", text: `Done: ${item.state}${item.answer ? ` (answer ${item.answer})` : ""} — ${item.answer_text}` }));
      return li;
    }
    if (this.role !== "operator") return li;
    const id = `answer-${item.question}`;
    const text = el("textarea", { id, rows: 3, maxLength: 4000, value: draft, "data-question": item.question });
    const select = el("select", { "aria-label": "What to do with your answer" },
      ...Object.entries(ACTION_LABEL).map(([value, label]) => el("option", { value, text: label })));
    const result = el("span", { className: "result" });
    const form = el("form", {},
      el("label", { for: id, text: "Your answer, in your own words" }), text,
      el("div", { className: "row" }, select, el("button", { type: "submit", className: "primary", text: "Send" }), result));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const answer = await this.actions.run(
        { result, pending: "Sending…", done: `Answered question ${item.question} (${select.value})`, failed: "Could not answer" },
        { type: "InboxAnswer", question: item.question, action: select.value, text: text.value },
      );
      if (answer.ok) this.list("answers");
    });
    li.append(form);
    return li;
  }

  // ------------------------------------------------------------ answers

  renderAnswers() {
    const items = [...this.answers.values()].sort((a, b) => b.answer - a.answer);
    $("#answers-empty").hidden = items.length > 0;
    const list = $("#answers-list");
    if (list.contains(document.activeElement) && document.activeElement.tagName === "TEXTAREA") return;
    list.replaceChildren(...items.map((a) => this.answerItem(a)));
  }

  answerItem(a) {
    const li = el("li", { "data-answer": a.answer });
    const sources = a.sources.length ? ` · sources: ${a.sources.join(", ")}` : "";
    li.append(
      el("p", { className: "q", text: a.question_text || `Question ${a.question}` }),
      el("p", { className: "meta" }, el("span", { className: "badge", "data-label": a.label, text: a.label }),
        ` answer ${a.answer} · ${a.language} · ${a.outcome} · ${when(a.time)}${sources}${a.review ? ` · ${a.review}` : ""}`),
      el("p", { className: "said", text: a.text || "(nothing was said)" }),
    );
    const result = el("span", { className: "result" });
    const review = (action, text = "", notice = false) => this.actions.run(
      { result, pending: "Saving…", done: `Answer ${a.answer}: ${action}`, failed: `Could not ${action}` },
      { type: "AnswerReview", answer: a.answer, action, text, topic: "leader", notice },
    ).then((r) => { if (r.ok) this.list("answers"); });
    const correction = el("form", { className: "editor", hidden: true });
    const id = `correct-${a.answer}`;
    const text = el("textarea", { id, rows: 3, maxLength: 1200, value: a.text });
    const notice = el("input", { type: "checkbox", id: `${id}-notice`, checked: true });
    correction.append(
      el("label", { for: id, text: "Corrected text (becomes an approved statement that supersedes the old one)" }), text,
      el("div", { className: "row" }, notice, el("label", { for: `${id}-notice`, text: "Send a correction notice to the room, the asker and the transcript" }),
        el("button", { type: "submit", className: "primary", text: "Save correction" })),
    );
    correction.addEventListener("submit", (e) => { e.preventDefault(); review("correct", text.value, notice.checked); });
    // Play: the answer as it was heard (voice, captions, label), in the /watch player. A tab of
    // its own: pages may not be framed (frame-ancestors 'none').
    const play = el("a", {
      className: "button", text: "Play", target: "_blank", rel: "noopener",
      title: `Answer ${a.answer} as it was heard, in the player`,
      href: `/watch?recording=answer-${a.answer}&token=${encodeURIComponent(this.token)}&play=1`,
    });
    const row = el("div", { className: "row" }, play,
      el("button", { type: "button", text: "Endorse", onclick: () => review("endorse") }),
      el("button", { type: "button", text: "Correct…", onclick: () => { correction.hidden = false; text.focus(); } }),
      el("button", { type: "button", text: "Retract", onclick: () => review("retract", "", true) }),
      result);
    li.append(row, correction);
    return li;
  }

  // ------------------------------------------------------------ statements

  renderStatements() {
    const list = $("#statements-list");
    const query = $("#statement-query").value.toLowerCase().split(/\s+/).filter(Boolean);
    const items = [...this.statements.values()]
      .filter((s) => query.every((w) => `${s.id} ${s.topic} ${s.tags.join(" ")} ${s.text}`.toLowerCase().includes(w)))
      .sort((a, b) => a.id.localeCompare(b.id, undefined, { numeric: true }));
    list.replaceChildren(...items.map((s) => this.statementItem(s)));
  }

  statementItem(s) {
    const li = el("li", { "data-statement": s.id });
    const flags = [];
    if (s.retired) flags.push(el("span", { className: "badge", text: "retired" }));
    if (s.expired) flags.push(el("span", { className: "badge expired", text: "past review-by: not used" }));
    li.append(
      el("p", { className: "q" }, `${s.id} `, el("span", { className: "meta", text: `v${s.version} · ${s.topic} · ${s.language}` }), " ", ...flags),
      el("p", { text: s.text }),
      el("p", {
        className: "meta",
        text: `approved by ${s.author} ${when(s.approved)} · said ${s.date}` +
          (s.review_by ? ` · review by ${s.review_by}` : "") +
          (s.translations.length ? ` · translations: ${s.translations.join(", ")}` : "") +
          (s.supersedes ? ` · supersedes ${s.supersedes}` : ""),
      }),
    );
    const result = el("span", { className: "result" });
    const history = this.histories.get(s.id);
    li.append(el("div", { className: "row" },
      el("button", { type: "button", text: "Edit", onclick: () => this.edit(s) }),
      el("button", { type: "button", text: s.retired ? "Re-approve" : "Retire", onclick: () => this.save(s, { retire: !s.retired }, result) }),
      el("button", { type: "button", text: "History", onclick: () => this.list("history", s.id) }),
      result));
    if (history) {
      li.append(el("ol", { className: "history" }, ...history.map((h) =>
        el("li", { text: `v${h.version} by ${h.author}, ${when(h.approved)}${h.retired ? " (retired)" : ""}: ${h.text}` }))));
    }
    return li;
  }

  edit(s) {
    const form = $("#statement-form");
    form.hidden = false;
    $("#statement-form-title").textContent = s ? `Edit ${s.id} (version ${s.version})` : "New statement";
    $("#sf-id").value = s?.id ?? "";
    $("#sf-version").value = String(s?.version ?? 0);
    $("#sf-text").value = s?.text ?? "";
    $("#sf-topic").value = s?.topic ?? "leader";
    $("#sf-language").value = s?.language ?? "en";
    $("#sf-tags").value = (s?.tags ?? []).join(", ");
    $("#sf-review").value = s?.review_by ?? "";
    $("#sf-translations").value = (s?.translations ?? []).join(", ");
    show($("#sf-result"), "pending", "");
    $("#sf-text").focus();
  }

  async save(base, change, result) {
    const split = (v) => v.split(",").map((x) => x.trim()).filter(Boolean);
    const msg = base
      ? { type: "StatementSave", statement: base.id, version: base.version, topic: base.topic, text: base.text,
          language: base.language, tags: base.tags, review_by: base.review_by, translations: base.translations, retire: false, ...change }
      : {
          type: "StatementSave", statement: $("#sf-id").value, version: Number($("#sf-version").value), topic: $("#sf-topic").value,
          text: $("#sf-text").value, language: $("#sf-language").value, tags: split($("#sf-tags").value),
          review_by: $("#sf-review").value, translations: split($("#sf-translations").value), retire: false,
        };
    const answer = await this.actions.run({ result, pending: "Saving…", done: `Saved ${msg.statement || "a new statement"}`, failed: "Not saved" }, msg);
    if (answer.ok && !base) $("#statement-form").hidden = true;
    return answer;
  }

  // ------------------------------------------------------------ insights and audit

  renderInsights() {
    const bars = (target, counts) => {
      const entries = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 8);
      const max = Math.max(1, ...entries.map(([, n]) => n));
      $(target).replaceChildren(...entries.map(([k, n]) => el("li", {}, el("span", { text: k }),
        el("span", { className: "bar", style: `width:${Math.round((100 * n) / max)}%` }), el("span", { text: String(n) }))));
      if (!entries.length) $(target).replaceChildren(el("li", { className: "empty", text: "nothing yet" }));
    };
    const count = (values) => values.reduce((m, v) => m.set(v, (m.get(v) ?? 0) + 1), new Map());
    const answers = [...this.answers.values()];
    const topics = answers.flatMap((a) => a.sources.map((id) => this.statements.get(id)?.topic).filter(Boolean));
    bars("#ins-topics", count(topics));
    bars("#ins-labels", count(answers.map((a) => a.label)));
    const inbox = [...this.inbox.values()];
    bars("#ins-reasons", count(inbox.map((i) => i.reason.split(":")[0])));
    const gaps = inbox.filter((i) => i.reason === "no_material");
    $("#ins-gaps").replaceChildren(...(gaps.length ? gaps.map((g) => el("li", { text: `${g.text} (${g.state})` })) : [el("li", { className: "empty", text: "no knowledge gaps" })]));
  }

  // Per event, day or week: computed by the server from the store (/studio/insights.json).
  async loadPeriods() {
    const result = $("#ins-result");
    result.textContent = "Loading…";
    delete result.dataset.kind;
    try {
      const res = await fetch(`/studio/insights.json?token=${encodeURIComponent(this.token)}`, { cache: "no-store" });
      const body = await res.json();
      if (!res.ok) throw new Error(`${body.code}: ${body.reason}`);
      this.periods = body;
      result.textContent = "";
      this.renderPeriods();
    } catch (err) {
      result.dataset.kind = "error";
      result.textContent = `Could not load insights: ${err.message}`;
    }
  }

  renderPeriods() {
    if (!this.periods) return;
    const by = $("#ins-by").value;
    const list = (items) => items.length ? el("ul", {}, ...items.map((t) => el("li", { text: t }))) : "—";
    const pairs = (o) => Object.entries(o).map(([k, n]) => `${k}: ${n}`);
    const day = (t) => new Date(t * 1000).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
    const when = (g) => {
      if (by !== "events") return g.key;
      const parts = [g.key, g.start ? `from ${day(g.start)}` : ""];
      if (g.live) parts.push(`live ${day(g.live)}`);
      parts.push(g.ended ? `ended ${day(g.ended)}` : "not ended");
      return parts.filter(Boolean).join(" · ");
    };
    const groups = [...this.periods[by]].reverse(); // the newest first
    $("#ins-periods tbody").replaceChildren(...groups.map((g) => el("tr", { "data-key": g.key },
      el("th", { scope: "row", text: when(g) }),
      el("td", {}, `${g.answers} — `, pairs(g.labels).join(", ") || "none"),
      el("td", {}, list(g.topics.map(([k, n]) => `${k} (${n})`))),
      el("td", {}, `${g.escalations} — `, pairs(g.reasons).join(", ") || "none"),
      el("td", {}, list(g.gaps)))));
    if (!groups.length) $("#ins-periods tbody").replaceChildren(el("tr", {}, el("td", { colSpan: 5, text: "nothing yet" })));
  }

  renderAudit() {
    $("#audit-list").replaceChildren(...this.audit.map((a) => el("li", {
      text: `${when(a.time)} · ${a.who} (${a.role}) · ${a.action}${a.question ? ` on #${a.question}` : ""}${a.detail ? `: ${a.detail}` : ""}`,
    })));
  }
}

function tabs() {
  const buttons = TABS.map((t) => $(`#tab-${t}`));
  const select = (i, focus = true) => {
    buttons.forEach((b, j) => {
      b.setAttribute("aria-selected", String(i === j));
      b.tabIndex = i === j ? 0 : -1;
      $(`#${TABS[j]}`).hidden = i !== j;
    });
    $(`#${TABS[i]}`).dispatchEvent(new Event("shown")); // by click or by keyboard
    if (focus) buttons[i].focus();
  };
  buttons.forEach((b, i) => {
    b.addEventListener("click", () => select(i));
    b.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight") select((i + 1) % buttons.length);
      else if (e.key === "ArrowLeft") select((i + buttons.length - 1) % buttons.length);
      else if (e.key === "Home") select(0);
      else if (e.key === "End") select(buttons.length - 1);
    });
  });
  return select;
}

function main() {
  const token = new URLSearchParams(location.search).get("token") ?? "";
  const fail = (title, text) => {
    $("#studio").hidden = true;
    const box = $("#notice");
    box.querySelector("h2").textContent = title;
    box.querySelector("p").textContent = text;
    box.hidden = false;
  };
  if (!token) {
    fail("This page needs your studio link", "Open the operator link you were given: it ends in ?token=… .");
    return;
  }
  const connection = new RoomConnection({ token, clientInfo: "townhall-studio/0.1" });
  const actions = new Actions(connection, $("#status"));
  const studio = new Studio(connection, actions, token);
  globalThis.townhall = { connection, studio };
  const select = tabs();
  $("#statement-search").addEventListener("submit", (e) => { e.preventDefault(); studio.renderStatements(); });
  $("#statement-query").addEventListener("input", () => studio.renderStatements());
  $("#statement-new").addEventListener("click", () => studio.edit(null));
  $("#ins-form").addEventListener("submit", (e) => { e.preventDefault(); studio.loadPeriods(); });
  $("#ins-by").addEventListener("change", () => studio.renderPeriods());
  $("#insights").addEventListener("shown", () => studio.loadPeriods());
  $("#sf-cancel").addEventListener("click", () => { $("#statement-form").hidden = true; });
  $("#statement-form").addEventListener("submit", (e) => { e.preventDefault(); studio.save(null, {}, $("#sf-result")); });
  connection.addEventListener("message", (event) => studio.apply(event.detail));
  connection.addEventListener("state", (event) => {
    const s = event.detail.state;
    document.body.dataset.connection = s;
    const pill = $("#conn");
    pill.dataset.state = s;
    pill.textContent = s === "open" ? "Connected" : s === "closed" ? "Disconnected" : "Reconnecting…";
    if (s === "open") studio.refresh();
  });
  connection.connect().then((welcome) => {
    if (welcome.role !== "operator" && welcome.role !== "moderator") {
      connection.close();
      fail("Operators only", `You joined as ${welcome.name}, a ${welcome.role}. The studio needs an operator link.`);
      return;
    }
    studio.role = welcome.role;
    $("#who").textContent = `${welcome.name} · ${welcome.role} · room ${welcome.room}`;
    if (welcome.role !== "operator") {
      for (const t of TABS.slice(1)) $(`#tab-${t}`).hidden = true;
    }
    $("#studio").hidden = false;
    select(0, false);
    studio.refresh();
    actions.announce(`Connected to room ${welcome.room} as ${welcome.name}.`, "ok");
  }).catch((err) => {
    if (err.code === ErrorCode.AUTH_EXPIRED) fail("Your link has expired", "Ask for a new operator link.");
    else fail("Cannot join", err.reason ?? String(err));
  });
}

main();
