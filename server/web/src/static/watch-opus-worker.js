// Townhall /watch: decodes the clone's Opus frames off the main thread (WebCodecs
// AudioDecoder: "opus", 48 kHz mono, no description, no pre-skip; SPEC §5) and posts the
// PCM, stamped with its media time, straight to the playout AudioWorklet through a
// MessagePort. The page's 3D rendering can then hold the main thread without making the
// voice late.
//
// From the page: {type: "init", port} (the worklet's port), {type: "packet", answer,
// media_time_us, frames: [ArrayBuffer]} (one StagePacket's 20 ms frames, in order).
// To the worklet: {ts: media us of sample 0, pcm: Float32Array (transferred)}.
// To the page: {type: "error", message}.
"use strict";

const FRAME_US = 20000;
const CONFIG = { codec: "opus", sampleRate: 48000, numberOfChannels: 1 };
let out = null; // MessagePort to the worklet
let decoder = null;
let answer = -1;

function makeDecoder() {
  decoder = new AudioDecoder({
    output(data) {
      try {
        const n = data.numberOfFrames;
        if (n > 0 && out) {
          const pcm = new Float32Array(n);
          data.copyTo(pcm, { planeIndex: 0, format: "f32-planar" });
          out.postMessage({ ts: data.timestamp, pcm }, [pcm.buffer]);
        }
      } finally {
        data.close();
      }
    },
    error(err) {
      self.postMessage({ type: "error", message: String(err && err.message ? err.message : err) });
      makeDecoder(); // a decoder that failed is closed for good
    },
  });
  decoder.configure(CONFIG);
}

// Chromium stamps a decoder's output by counting samples from the first chunk after a
// reset, ignoring gaps in the input timestamps. So at a gap (a late packet skipped, a
// packet dropped by the server) or a new answer, the decoder is flushed and restarted,
// and output timestamps start again from the next chunk's.
let expected = null; // media time (us) of the next frame if the input has no gap
let chain = Promise.resolve();

async function restart() {
  if (decoder.state === "configured") {
    try {
      await decoder.flush();
    } catch {
      /* a failed decoder is replaced by its error callback */
    }
  }
  if (decoder.state === "configured") decoder.reset();
  if (decoder.state === "closed") makeDecoder();
  else decoder.configure(CONFIG);
}

async function handle(msg) {
  if (msg.type === "init") {
    out = msg.port;
    makeDecoder();
    return;
  }
  if (msg.type !== "packet" || !decoder || !msg.frames.length) return;
  if (msg.answer !== answer || msg.media_time_us !== expected) {
    answer = msg.answer;
    await restart();
  }
  for (let i = 0; i < msg.frames.length; i++) {
    if (decoder.state !== "configured") return;
    decoder.decode(
      new EncodedAudioChunk({
        type: "key",
        timestamp: msg.media_time_us + i * FRAME_US,
        duration: FRAME_US,
        data: msg.frames[i],
      }),
    );
  }
  expected = msg.media_time_us + msg.frames.length * FRAME_US;
}

self.onmessage = (event) => {
  const msg = event.data;
  chain = chain.then(() => handle(msg)).catch((err) => {
    self.postMessage({ type: "error", message: String(err && err.message ? err.message : err) });
  });
};
