// The attendee's hand and live mic on the watch page: raise a hand, accept the mic when a
// moderator grants it, speak (the browser's microphone over WebRTC), release it. Shown only
// to attendees. SPEC §5.1: the offer carries its candidates (we wait for gathering), no trickle.
// The hand button shows what the room says (HandChanged), never what was merely asked for: a
// refused Hand (an Error about it) leaves it as it was and says why.

import { t } from "../i18n/index.js";
import { ErrorCode, errorName } from "../protocol/messages.js";

const GATHER_TIMEOUT_MS = 5000;
const HAND = 4; // the Hand message's type, as an Error's "about" names it

/** What went wrong, as the server said it (code and reason), with what to do where we know. */
function failureText(error) {
  const reason = error.reason || t("mic.noReason");
  let hint = "";
  if (/outside allowed networks/.test(reason)) {
    hint = t("mic.hintNetworks");
  } else if (/mdns name/.test(reason)) {
    hint = t("mic.hintMdns");
  }
  return `${error.code ? errorName(error.code) : "ERROR"}: ${reason}.${hint}`;
}

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

export class MicPanel {
  constructor({ conn, state, root }) {
    this.conn = conn;
    this.state = state;
    this.el = root.querySelector("#mic-panel");
    this.handBtn = root.querySelector("#hand");
    this.acceptBtn = root.querySelector("#mic-accept");
    this.releaseBtn = root.querySelector("#mic-release");
    this.status = root.querySelector("#mic-status");
    this.raised = false;
    this.handPending = false; // a Hand sent, the room's answer not yet here
    this.micState = "";
    this.pc = null;
    this.stream = null;
    this.failure = ""; // why the last mic failed, kept for its "ended (failed)"
    this.handBtn.addEventListener("click", () => this.setHand(!this.raised));
    this.acceptBtn.addEventListener("click", () => this.accept());
    this.releaseBtn.addEventListener("click", () => this.release());
  }

  get slot() {
    return this.state.welcome?.slot ?? -1;
  }

  onMessage(msg) {
    if (msg.type === "Welcome") this.el.hidden = msg.role !== "attendee";
    if (msg.type === "HandChanged" && msg.slot === this.slot) {
      this.raised = msg.raised;
      this.handPending = false;
    }
    if (msg.type === "Keyframe") {
      const me = msg.participants.find((p) => p.slot === this.slot);
      this.raised = Boolean(me && me.flags & 1);
    }
    if (msg.type === "Error" && msg.about === HAND) {
      this.handPending = false;
      this.say(t("mic.handRefused", { reason: msg.reason }));
    }
    if (msg.type === "MicChanged" && msg.slot === this.slot) {
      this.micState = msg.state;
      if (msg.state === "ended") {
        this.hangUp();
        if (msg.reason === "failed" && this.failure) this.say(t("mic.failed", { why: this.failure }));
        else this.say(t("mic.ended", { reason: msg.reason }));
      } else if (msg.state === "granted") this.say(t("mic.granted"));
      else if (msg.state === "live") this.say(t("mic.live"));
      else if (msg.state === "queued") this.say(t("mic.queued"));
    }
    if (msg.type === "Error" && (msg.code === ErrorCode.MIC_FAILED || msg.code === ErrorCode.BAD_SDP)) {
      this.failure = failureText(msg);
      this.say(t("mic.failed", { why: this.failure }));
    }
    this.render();
  }

  render() {
    this.handBtn.textContent = this.raised ? t("mic.lower") : t("mic.raise");
    this.handBtn.setAttribute("aria-pressed", String(this.raised));
    this.handBtn.setAttribute("aria-busy", String(this.handPending));
    this.acceptBtn.hidden = this.micState !== "granted";
    this.releaseBtn.hidden = !["granted", "connecting", "live"].includes(this.micState);
    this.releaseBtn.textContent = this.micState === "granted" ? t("mic.decline") : t("mic.release");
  }

  say(text) {
    this.status.textContent = text;
  }

  setHand(raised) {
    if (this.handPending) return;
    this.handPending = this.conn.send({ type: "Hand", raised });
    if (!this.handPending) this.say(t("mic.offline"));
    // A Hand that changes nothing gets no answer: stop waiting after a while.
    clearTimeout(this.handTimer);
    this.handTimer = setTimeout(() => {
      this.handPending = false;
      this.render();
    }, 5000);
    this.render();
  }

  async accept() {
    this.acceptBtn.disabled = true;
    this.failure = "";
    try {
      this.say(t("mic.starting"));
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      const pc = (this.pc = new RTCPeerConnection({ iceServers: [] }));
      for (const track of this.stream.getAudioTracks()) pc.addTrack(track, this.stream);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      const answer = await this.conn.request({ type: "MicOffer", sdp: pc.localDescription.sdp });
      if (!answer.ok) {
        this.failure = failureText(answer.error);
        this.say(t("mic.couldNotStart", { why: this.failure }));
        this.hangUp();
        return;
      }
      await pc.setRemoteDescription({ type: "answer", sdp: answer.ack.sdp });
      this.say(t("mic.connecting"));
    } catch (err) {
      this.say(t("mic.couldNotStart", { why: err.message }));
      this.hangUp();
    } finally {
      this.acceptBtn.disabled = false;
    }
  }

  async release() {
    await this.conn.request({ type: "MicRelease" });
    this.hangUp();
  }

  hangUp() {
    this.pc?.close();
    this.pc = null;
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }
}
