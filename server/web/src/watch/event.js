// The event's phase on /watch (SPEC §5.3): a card over the stage in the lobby (with the
// countdown to the scheduled start), on hold and after the end (the closing card), and the
// Ask form closed once the event has ended. Live, the card is hidden. Words: the catalogue.

import { currentLanguage, t } from "../i18n/index.js";

const TEXT = {
  doors: ["event.doors", "event.doors.detail"],
  hold: ["event.hold", "event.hold.detail"],
  ended: ["event.ended", "event.ended.detail"],
};

/** "in 4 min 05 s", "in 1 h 02 min", or "any moment now" once the time has passed. */
export function countdown(startsAt, nowMs = Date.now()) {
  const left = Math.round(startsAt - nowMs / 1000);
  if (left <= 0) return t("event.anyMoment");
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  if (h) return t("event.inHours", { h, m: String(m).padStart(2, "0") });
  return t("event.inMinutes", { m, s: String(s).padStart(2, "0") });
}

export class EventCard {
  constructor({ card, title, detail, clock, askInput, askButton, askStatus }) {
    Object.assign(this, { card, title, detail, clock, askInput, askButton, askStatus });
    this.phase = "live";
    this.startsAt = 0;
    this.timer = null;
  }

  /** Show the phase (from the room state) and start or stop the countdown. */
  show(phase, startsAt) {
    this.phase = phase;
    this.startsAt = startsAt;
    const text = TEXT[phase];
    this.card.hidden = !text;
    this.card.dataset.phase = phase;
    document.body.dataset.phase = phase;
    if (text) {
      this.title.textContent = t(text[0]);
      this.detail.textContent = t(text[1]);
    }
    const ended = phase === "ended";
    this.askInput.disabled = ended;
    this.askButton.disabled = ended;
    if (ended) {
      this.askStatus.dataset.kind = "error";
      this.askStatus.textContent = t("event.closed");
    }
    this.tick();
    const counting = phase === "doors" && startsAt > 0;
    if (counting && !this.timer) this.timer = setInterval(() => this.tick(), 1000);
    if (!counting && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  tick() {
    const counting = this.phase === "doors" && this.startsAt > 0;
    this.clock.hidden = !counting;
    if (!counting) return;
    const at = new Date(this.startsAt * 1000);
    const time = at.toLocaleTimeString(currentLanguage(), { hour: "2-digit", minute: "2-digit" });
    this.clock.textContent = t("event.startsAt", { time, countdown: countdown(this.startsAt) });
  }
}
