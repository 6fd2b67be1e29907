// Running a request and showing its outcome: next to the control, and in the status line.

import { t } from "../i18n/index.js";
import { errorName } from "../protocol/messages.js";

/** "question 4 is answered (NOT_ALLOWED, code 6)", or the plain reason when there is no code. */
export function describeError(error) {
  if (!error) return t("error.unknown");
  return error.code ? t("error.withCode", { reason: error.reason, name: errorName(error.code), code: error.code }) : error.reason;
}

export class Actions {
  /**
   * @param {import("../protocol/connection.js").RoomConnection} connection
   * @param {HTMLElement} statusEl the page's aria-live status line
   */
  constructor(connection, statusEl) {
    this.connection = connection;
    this.statusEl = statusEl;
  }

  /** Announce a line in the status region (polite live region). */
  announce(text, kind = "info") {
    const time = new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    this.statusEl.dataset.kind = kind;
    this.statusEl.textContent = `${time} — ${text}`;
  }

  /**
   * Send `message` as a request and report it.
   * @param {object} o
   * @param {HTMLElement[]|HTMLElement|null} o.result where to show the outcome (next to the control)
   * @param {string} o.pending shown while waiting
   * @param {string} o.done shown on Ack
   * @param {string} o.failed prefix for the error
   * @returns {Promise<{ok: boolean, ack?: object, error?: object}>}
   */
  async run({ result = null, pending, done, failed }, message) {
    const targets = [result].flat().filter(Boolean);
    for (const el of targets) show(el, "pending", pending);
    const answer = await this.connection.request(message);
    if (answer.ok) {
      for (const el of targets) show(el, "ok", done);
      this.announce(done, "ok");
    } else {
      const text = `${failed}: ${describeError(answer.error)}`;
      for (const el of targets) show(el, "error", text);
      this.announce(text, "error");
    }
    return answer;
  }
}

/** Show an outcome in a result element (data-kind styles it: pending, ok, error). */
export function show(el, kind, text) {
  el.dataset.kind = kind;
  el.textContent = kind === "ok" ? `✓ ${text}` : kind === "error" ? `✗ ${text}` : text;
}
