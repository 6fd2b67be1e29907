// The event's phase on /watch (SPEC §5.3): a card over the stage in the lobby (with the
// countdown to the scheduled start), on hold and after the end (the closing card), and the
// Ask form closed once the event has ended. Live, the card is hidden.

const TEXT = {
  doors: ["Doors are open", "Ask your questions now: the town hall starts soon."],
  hold: ["On hold", "The town hall will continue shortly. Your questions stay in the queue."],
  ended: ["This town hall has ended", "Thank you for joining. Questions are closed."],
};

/** "in 4 min 05 s", "in 1 h 02 min", or "any moment now" once the time has passed. */
export function countdown(startsAt, nowMs = Date.now()) {
  const left = Math.round(startsAt - nowMs / 1000);
  if (left <= 0) return "any moment now";
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  if (h) return `in ${h} h ${String(m).padStart(2, "0")} min`;
  return `in ${m} min ${String(s).padStart(2, "0")} s`;
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
      this.title.textContent = text[0];
      this.detail.textContent = text[1];
    }
    const ended = phase === "ended";
    this.askInput.disabled = ended;
    this.askButton.disabled = ended;
    if (ended) {
      this.askStatus.dataset.kind = "error";
      this.askStatus.textContent = "The event has ended: questions are closed.";
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
    const time = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    this.clock.textContent = `Starts at ${time}, ${countdown(this.startsAt)}`;
  }
}
