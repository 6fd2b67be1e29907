// The event's recordings (GET /recordings.json): when, how long, how many answers, and a
// link that plays each one in /watch.
import { currentLanguage, t } from "../i18n/index.js";

function duration(s) {
  const m = Math.floor(s / 60);
  return m ? t("mod.recordings.minutes", { m, s: Math.round(s % 60) }) : t("mod.recordings.seconds", { s: Math.round(s) });
}

export class RecordingsView {
  constructor({ root, token }) {
    this.token = token;
    this.list = root.querySelector("#recordings");
    this.empty = root.querySelector("#recordings-empty");
    this.result = root.querySelector("#recordings-result");
    root.querySelector("#recordings-refresh").addEventListener("click", () => this.load());
    this.items = [];
  }

  async load() {
    try {
      const res = await fetch(`/recordings.json?token=${encodeURIComponent(this.token)}`, { cache: "no-store" });
      const body = await res.json();
      if (!res.ok) throw new Error(body.reason ?? `HTTP ${res.status}`);
      this.items = body.recordings;
      this.result.textContent = "";
    } catch (err) {
      this.result.textContent = t("mod.recordings.cannotList", { error: err.message });
      this.result.dataset.kind = "error";
    }
    this.render();
  }

  render() {
    this.empty.hidden = this.items.length > 0;
    this.list.replaceChildren(
      ...[...this.items].reverse().map((r) => {
        const li = document.createElement("li");
        li.dataset.recording = r.id;
        const a = document.createElement("a");
        a.href = `/watch?recording=${encodeURIComponent(r.id)}&token=${encodeURIComponent(this.token)}`;
        a.target = "_blank";
        a.rel = "noopener";
        a.textContent = new Date(r.started * 1000).toLocaleString(currentLanguage());
        const meta = document.createElement("span");
        meta.className = "meta";
        const n = r.chapters.length;
        meta.textContent = ` · ${duration(r.duration_s)} · ${n === 1 ? t("mod.recordings.answer1") : t("mod.recordings.answers", { n })} · ${r.id}`;
        li.append(a, meta);
        return li;
      }),
    );
  }
}
