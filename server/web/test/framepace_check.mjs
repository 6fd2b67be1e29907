// FramePace (src/watch/framepace.js) against a scripted GPU: a fake WebGL context whose
// fences pass when a scripted cost has elapsed on a fake clock, polled once per 16 ms
// animation frame. Prints, per scenario, when each frame started and what it cost.
// Run by tests/test_web_framepace.py.
import { FramePace } from "../src/watch/framepace.js";

let clock = 0;
Object.defineProperty(globalThis, "performance", {
  value: { now: () => clock },
  configurable: true,
});

function fakeGl({ fences = true, signals = true }) {
  const gl = {
    SYNC_STATUS: 1,
    SIGNALED: 2,
    UNSIGNALED: 3,
    SYNC_GPU_COMMANDS_COMPLETE: 4,
    pendingCost: 0,
    isContextLost: () => false,
    flush() {},
    deleteSync() {},
    getSyncParameter(sync) {
      return signals && clock >= sync.doneAt ? gl.SIGNALED : gl.UNSIGNALED;
    },
  };
  if (fences) gl.fenceSync = () => ({ doneAt: clock + gl.pendingCost });
  return gl;
}

/** Runs `costs.length` frames; returns [{start, cost}] and the pace's final costMs. */
function run(costs, { fences = true, signals = true, minFrameMs = 0 } = {}) {
  clock = 0;
  const gl = fakeGl({ fences, signals });
  const pace = new FramePace(gl, minFrameMs);
  const frames = [];
  for (let step = 0; frames.length < costs.length && step < 1_000_000; step++) {
    clock = step * 16;
    if (!pace.ready(clock)) continue;
    pace.begin(clock);
    const cost = costs[frames.length];
    frames.push({ start: clock, cost });
    if (fences) gl.pendingCost = cost;
    else clock += cost; // without fences the render call itself takes the time
    pace.end();
  }
  return { frames, costMs: pace.costMs };
}

const steady = Array(12).fill(300);
// A shader-compiling first frame, then a model upload in the middle of steady frames.
const spikes = [3000, 200, 200, 200, 200, 200, 5000, 200, 200, 200, 200, 200];
process.stdout.write(
  JSON.stringify({
    steady: run(steady),
    spikes: run(spikes),
    neverSignals: run(Array(6).fill(100), { signals: false }),
    noFences: run(Array(8).fill(100), { fences: false }),
    cheap: run(Array(10).fill(2), { minFrameMs: 100 }),
  }),
);
