// Live captions on the media clock: each word appears at its start_us (SPEC §5), on the
// same clock as the voice and the mouth. The visible line is for the eyes; each finished
// sentence also goes, whole, to a polite live region (the transcript), so the log reads as
// sentences and a screen reader reads them rather than a stream of single words.

const MAX_LINE_WORDS = 14;
const PAUSE_US = 100000; // a silence this long after a sentence's last word: it goes to the log
// The last word of every sentence carries its end mark (SPEC §5: the clone's captions), so
// the log gets whole sentences; a long silence or a very long run of words also closes one.
// Words come in packets that can arrive late on a busy machine (the voice then catches up):
// running out of words mid-sentence is a late packet, not a finished sentence, unless the
// answer has ended (StageEnd) or the silence is a long one.
// 3 s: on a very busy machine a packet came more than 1.5 s late and split a sentence.
const LONG_PAUSE_US = 3000000;
const MAX_SENTENCE_WORDS = 60;
const SENTENCE_END = /[.!?…。]["'”»)\]]*$/;
const LIVE_KEEP = 6;

export class Captions {
  constructor(lineEl, liveEl) {
    this.lineEl = lineEl; // visible caption line (aria-hidden: the live log speaks)
    this.liveEl = liveEl; // role=log, aria-live=polite
    this.words = []; // {answer, start, end, text}, in start order
    this.answer = -1;
    this.shown = 0; // words of this.words already shown
    this.lineStart = 0; // index of the first word on the visible line
    this.sentenceStart = 0; // index of the first word of the sentence being spoken
    this.text = ""; // what the line shows now
    this.all = []; // every word shown since the page opened (debug and tests)
    this.cleared = true;
    this.ended = false; // the answer being shown has ended: no more words will come for it
  }

  /** Words from a StagePacket. */
  add(packet) {
    if (packet.answer !== this.answer) this._startAnswer(packet.answer);
    for (const c of packet.captions) {
      this.words.push({ answer: packet.answer, start: c.start_us, end: c.start_us + c.duration_us, text: c.text });
    }
  }

  /** The answer has ended (StageEnd): its words are all here, its last sentence is whole. */
  end(answer) {
    if (answer === this.answer) this.ended = true;
  }

  /** A stopped answer: its words from `fromUs` (media time) on are not shown. */
  cut(answer, fromUs) {
    if (answer !== this.answer) return;
    const keep = this.words.findIndex((w) => w.start >= fromUs);
    if (keep >= 0 && keep >= this.shown) this.words.length = keep;
  }

  /** Forget every word (a recording jumped to another time). */
  reset() {
    this.answer = -1;
    this.words.length = 0;
    this.shown = 0;
    this.lineStart = 0;
    this.sentenceStart = 0;
    this.text = "";
    this.lineEl.textContent = "";
    this.liveEl.replaceChildren();
    this.cleared = true;
    this.ended = false;
  }

  _startAnswer(answer) {
    this._flushSentence();
    this.answer = answer;
    this.ended = false;
    this.words.length = 0;
    this.shown = 0;
    this.lineStart = 0;
    this.sentenceStart = 0;
  }

  /** Called once per rendered frame with the media time being played. Cheap when idle. */
  update(mediaUs) {
    const words = this.words;
    let n = this.shown;
    while (n < words.length && words[n].start <= mediaUs) n++;
    if (n !== this.shown) {
      for (let i = this.shown; i < n; i++) {
        this.all.push(words[i].text);
        const brk = i > 0 && i > this.sentenceStart && this._breaksBefore(words[i - 1], words[i], i);
        if (brk) {
          // The previous word closed a sentence: it goes to the live log, the line restarts.
          this.shown = i;
          this._flushSentence();
          this.lineStart = i;
        } else if (i - this.lineStart >= MAX_LINE_WORDS) {
          this.lineStart = i;
        }
      }
      this.shown = n;
      this._render();
      this.cleared = false;
    } else if (!this.cleared && words.length && n === words.length) {
      // Everything shown: the last sentence goes to the log once its last word has been
      // said, and the line clears a few seconds later. A sentence without its end mark waits
      // for the rest of its words (a late packet) unless the answer has ended.
      const last = words[words.length - 1];
      const whole = this.ended || SENTENCE_END.test(last.text);
      if (this.sentenceStart < n && mediaUs > last.end + (whole ? PAUSE_US : LONG_PAUSE_US)) {
        this._flushSentence();
      }
      if (mediaUs > last.end + 4e6) {
        this.text = "";
        this.lineEl.textContent = "";
        this.cleared = true;
      }
    }
  }

  _breaksBefore(prev, word, i) {
    if (SENTENCE_END.test(prev.text)) return true;
    if (word.start - prev.end >= LONG_PAUSE_US) return true;
    return i - this.sentenceStart >= MAX_SENTENCE_WORDS;
  }

  _render() {
    let text = "";
    for (let i = this.lineStart; i < this.shown; i++) text += (i > this.lineStart ? " " : "") + this.words[i].text;
    this.text = text;
    this.lineEl.textContent = text;
  }

  _flushSentence() {
    if (this.sentenceStart >= this.shown) return;
    let text = "";
    for (let i = this.sentenceStart; i < this.shown; i++) text += (text ? " " : "") + this.words[i].text;
    this.sentenceStart = this.shown;
    const p = document.createElement("p");
    p.textContent = text;
    this.liveEl.appendChild(p);
    while (this.liveEl.childElementCount > LIVE_KEEP) this.liveEl.firstElementChild.remove();
  }
}
