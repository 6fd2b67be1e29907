// The client's copy of the room, rebuilt from Keyframes and kept current by sequenced
// messages (like plugin/state.py). Pure: feed it decoded messages, read the state.
//
//   const state = new RoomState();
//   conn.addEventListener("message", (e) => {
//     const changed = state.apply(e.detail); // a Set: "participants", "hands", "questions",
//   });                                      // "stage", "mode", "drafts", "welcome", "event"

import { ParticipantFlag } from "./messages.js";

export const OPEN_STATES = new Set(["submitted", "approved"]);

/** Is this question still on the queue (not answered, rejected or merged)? */
export function isOpen(q) {
  return OPEN_STATES.has(q.state) && !q.merged_into;
}

/**
 * Open questions in the order the clone takes them (SPEC §5 "Order"): pinned first; then in
 * auto mode by votes, then the moderator's rank, then age; in moderated mode by rank, then
 * votes, then age. Age is the question id (ids grow with time); rank 0 means not placed.
 */
export function orderQuestions(questions, mode) {
  const placed = (q) => (q.rank ? q.rank : 2 ** 30);
  const key = mode === "auto"
    ? (q) => [q.pinned ? 0 : 1, -q.votes, placed(q), q.id]
    : (q) => [q.pinned ? 0 : 1, placed(q), -q.votes, q.id];
  return [...questions]
    .filter(isOpen)
    .map((q) => [key(q), q])
    .sort(([a], [b]) => {
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
      return 0;
    })
    .map(([, q]) => q);
}

export class RoomState {
  constructor() {
    this.reset();
  }

  reset() {
    this.welcome = null;
    this.seq = 0;
    this.hasKeyframe = false;
    this.participants = new Map(); // slot -> Participant
    this.raised = new Map(); // slot -> true, in the order hands went up
    this.questions = new Map(); // id -> QuestionInfo
    this.openTotal = 0; // open questions on the whole board (a Board says; the Keyframe has the top)
    this.stage = null; // the StageStart being spoken, or null
    this.lastEnd = null; // the latest StageEnd
    this.mode = "auto";
    this.review = false;
    this.phase = "live"; // the event: doors (lobby), live, hold, ended
    this.startsAt = 0; // its scheduled start, unix seconds (0: none)
    this.drafts = new Map(); // answer -> Draft awaiting review (moderators only)
    this.mics = new Map(); // slot -> MicChanged of every open mic (granted, connecting, live)
    this.lastMicEnd = null; // the latest MicChanged "ended"
    this.coarse = null; // the Keyframe's coarse records (bytes)
  }

  /** Apply one decoded message; returns the Set of parts that changed. */
  apply(msg) {
    const changed = new Set();
    switch (msg.type) {
      case "Welcome":
        this.welcome = msg;
        changed.add("welcome");
        break;
      case "Keyframe":
        this._keyframe(msg, changed);
        break;
      case "Draft":
        this.drafts.set(msg.answer, msg);
        changed.add("drafts");
        break;
      case "Board": // more of the board than the Keyframe's top: merged in
        for (const q of msg.questions) this.questions.set(q.id, q);
        this.openTotal = msg.open;
        changed.add("questions");
        break;
      default:
        if ("seq" in msg && msg.type !== "Welcome") this._sequenced(msg, changed);
    }
    return changed;
  }

  /** Forget a draft (e.g. once a Review for it was acknowledged). */
  dropDraft(answer) {
    return this.drafts.delete(answer);
  }

  /** Open questions in the clone's order. */
  openQuestions() {
    return orderQuestions(this.questions.values(), this.mode);
  }

  /** The approved question the clone takes next, or null. */
  nextQuestion() {
    return this.openQuestions().find((q) => q.state === "approved") ?? null;
  }

  /** Answered, escalated, rejected and merged questions, newest first. */
  doneQuestions() {
    return [...this.questions.values()].filter((q) => !isOpen(q)).sort((a, b) => b.id - a.id);
  }

  /** Participants with a raised hand, in the order they raised it. */
  raisedHands() {
    return [...this.raised.keys()].map((slot) => this.participants.get(slot)).filter(Boolean);
  }

  _keyframe(msg, changed) {
    this.seq = msg.seq;
    this.hasKeyframe = true;
    this.participants = new Map(msg.participants.map((p) => [p.slot, p]));
    const stillRaised = new Set(msg.participants.filter(raisedFlag).map((p) => p.slot));
    // Keep the known raise order for hands still up; hands new to us go to the end.
    const raised = new Map([...this.raised.keys()].filter((s) => stillRaised.has(s)).map((s) => [s, true]));
    for (const slot of stillRaised) if (!raised.has(slot)) raised.set(slot, true);
    this.raised = raised;
    this.questions = new Map(msg.questions.map((q) => [q.id, q]));
    this.stage = msg.stage;
    this.mode = msg.mode;
    this.review = msg.review;
    this.phase = msg.phase;
    this.startsAt = msg.starts_at;
    this.coarse = msg.coarse;
    if (this.stage) this.drafts.delete(this.stage.answer);
    for (const part of ["participants", "hands", "questions", "stage", "mode", "drafts", "event"]) changed.add(part);
  }

  _sequenced(msg, changed) {
    if (msg.seq !== 0) {
      // seq 0 is a private update (for staff, or a question's asker): applied as it comes.
      if (msg.seq <= this.seq) return; // duplicate
      this.seq = msg.seq;
    }
    switch (msg.type) {
      case "Joined":
      case "ParticipantChanged": {
        const p = msg.participant;
        this.participants.set(p.slot, p);
        this._setRaised(p.slot, raisedFlag(p), changed);
        changed.add("participants");
        break;
      }
      case "Left":
        this.participants.delete(msg.slot);
        this._setRaised(msg.slot, false, changed);
        changed.add("participants");
        break;
      case "HandChanged": {
        const p = this.participants.get(msg.slot);
        if (p) {
          const flags = msg.raised ? p.flags | ParticipantFlag.HAND_RAISED : p.flags & ~ParticipantFlag.HAND_RAISED;
          this.participants.set(msg.slot, { ...p, flags });
          changed.add("participants");
        }
        this._setRaised(msg.slot, msg.raised, changed);
        break;
      }
      case "QuestionChanged":
        this.questions.set(msg.question.id, msg.question);
        changed.add("questions");
        // A draft whose question was settled without a Review (e.g. skipped by Next) is gone.
        if (msg.question.state !== "answering") {
          for (const [answer, d] of this.drafts) {
            if (d.question === msg.question.id && this.drafts.delete(answer)) changed.add("drafts");
          }
        }
        break;
      case "StageStart":
        this.stage = msg;
        if (this.drafts.delete(msg.answer)) changed.add("drafts");
        changed.add("stage");
        break;
      case "StageEnd":
        if (this.stage && this.stage.answer === msg.answer) this.stage = null;
        this.lastEnd = msg;
        if (this.drafts.delete(msg.answer)) changed.add("drafts");
        changed.add("stage");
        break;
      case "MicChanged":
        if (msg.state === "ended") this.mics.delete(msg.slot);
        else this.mics.set(msg.slot, msg);
        this.lastMicEnd = msg.state === "ended" ? msg : this.lastMicEnd;
        changed.add("mics");
        break;
      case "EventState":
        this.phase = msg.phase;
        this.startsAt = msg.starts_at;
        changed.add("event");
        break;
      case "RoomMode":
        this.mode = msg.mode;
        this.review = msg.review;
        changed.add("mode");
        changed.add("questions"); // the order depends on the mode
        break;
      default:
        break;
    }
  }

  _setRaised(slot, raised, changed) {
    if (raised === this.raised.has(slot)) return;
    if (raised) this.raised.set(slot, true);
    else this.raised.delete(slot);
    changed.add("hands");
  }
}

function raisedFlag(p) {
  return (p.flags & ParticipantFlag.HAND_RAISED) !== 0;
}
