// The recording's controls: play/pause, a seek bar, the time, and one chapter per question.
import { t } from "../i18n/index.js";

function clock(us) {
  const s = Math.max(0, Math.floor(us / 1e6));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export class RecordingPlayer {
  constructor(conn, els) {
    this.conn = conn;
    this.els = els; // {bar, play, seek, position, chaptersBox, chapters}
    this.dragging = false;
    const { bar, play, seek, chaptersBox } = els;
    bar.hidden = false;
    chaptersBox.hidden = false;
    seek.min = "0";
    seek.max = String(Math.max(1, Math.round((conn.endUs - conn.startUs) / 1e5)));
    seek.step = "1";
    play.addEventListener("click", () => (conn.paused ? conn.play() : conn.pause()));
    seek.addEventListener("input", () => {
      this.dragging = true;
      this._time(conn.startUs + Number(seek.value) * 1e5);
    });
    seek.addEventListener("change", () => {
      this.dragging = false;
      conn.seek(conn.startUs + Number(seek.value) * 1e5);
    });
    conn.addEventListener("progress", () => this.render());
    this._chapters();
    this.render();
  }

  /** Jump to chapter `n` (1-based) and play from there. */
  chapter(n) {
    const c = this.conn.index.chapters[n - 1];
    if (c) this.conn.seek(c.start_us, { play: true });
  }

  render() {
    const { conn, els } = this;
    const pos = conn.positionUs;
    els.play.textContent = conn.paused ? t("player.play") : t("player.pause");
    els.play.setAttribute("aria-pressed", conn.paused ? "false" : "true");
    if (!this.dragging) els.seek.value = String(Math.round((pos - conn.startUs) / 1e5));
    this._time(pos);
    let current = -1;
    conn.index.chapters.forEach((c, i) => {
      if (pos >= c.start_us) current = i;
    });
    for (const [i, li] of [...els.chapters.children].entries()) {
      if (i === current) li.setAttribute("aria-current", "true");
      else li.removeAttribute("aria-current");
    }
  }

  _time(pos) {
    const { conn, els } = this;
    const text = `${clock(pos - conn.startUs)} / ${clock(conn.endUs - conn.startUs)}`;
    els.position.textContent = text;
    els.seek.setAttribute("aria-valuetext", text);
  }

  _chapters() {
    const { conn, els } = this;
    els.chapters.replaceChildren();
    conn.index.chapters.forEach((c, i) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "chapter";
      b.dataset.chapter = String(i + 1);
      const at = document.createElement("span");
      at.className = "chapter-at";
      at.textContent = clock(c.start_us - conn.startUs);
      const text = document.createElement("span");
      text.className = "chapter-text";
      text.textContent = c.text;
      b.append(at, text);
      b.addEventListener("click", () => this.chapter(i + 1));
      li.append(b);
      els.chapters.append(li);
    });
    if (!conn.index.chapters.length) {
      const li = document.createElement("li");
      li.textContent = t("player.noChapters");
      els.chapters.append(li);
    }
  }
}
