// When the 3D view may draw its next frame. The cost that matters is the GPU's, not the
// JavaScript's: three.js only queues GL commands, which the browser's GPU process runs
// later (on a software renderer such as SwiftShader, on the CPU, at up to several hundred
// milliseconds a frame). Timing the render call alone saw 3 ms while the GPU process was
// kept 100 % busy, taking a whole core from the audio and the network.
//
// So each frame ends with a WebGL2 fence; the next frame waits until the fence has passed
// (polled without blocking, once per animation frame), which measures a frame's whole cost
// from the first command to the GPU finishing it. Frames are then spaced at least twice
// that cost apart (the GPU stays at most half busy with this page: SwiftShader spreads a
// frame over every core, so that is about half the machine) and at least `minFrameMs`
// apart. Without fences (WebGL1), the render call's own time is the cost.
//
// The cost is the median of the last few frames, so one frame that compiles shaders or
// uploads a model (seconds on a software renderer) does not hold the next ones back; the
// first frames, where there is no median yet, only wait for the one before them. A fence
// that has not passed after `FENCE_GIVE_UP_MS` is given up, so a driver that never signals
// one slows the view down but never stops it.

const RECENT_FRAMES = 5;
const FRAMES_BEFORE_PACING = 3;
const FENCE_GIVE_UP_MS = 4000;

/** Paces the view's frames by what they cost the GPU (see above). */
export class FramePace {
  /**
   * @param {WebGLRenderingContext | WebGL2RenderingContext} gl the view's context
   * @param {number} minFrameMs frames at least this far apart (0: as often as the GPU allows)
   */
  constructor(gl, minFrameMs = 0) {
    this.gl = gl;
    this.minFrameMs = minFrameMs;
    this.costMs = 0; // median cost of the recent frames, GPU included where fences exist
    this._recent = [];
    this._frames = 0;
    this._fences = typeof gl.fenceSync === "function";
    this._sync = null;
    this._startedAt = -Infinity;
  }

  /** Whether a frame may start at `nowMs` (a performance.now() / rAF time). */
  ready(nowMs) {
    if (this._sync !== null) {
      const gl = this.gl;
      const took = performance.now() - this._startedAt;
      const passed =
        gl.isContextLost() || gl.getSyncParameter(this._sync, gl.SYNC_STATUS) === gl.SIGNALED;
      if (!passed && took < FENCE_GIVE_UP_MS) return false;
      gl.deleteSync(this._sync);
      this._sync = null;
      this._record(took);
    }
    const paced = this._frames > FRAMES_BEFORE_PACING ? 2 * this.costMs : 0;
    return nowMs - this._startedAt >= Math.max(paced, this.minFrameMs);
  }

  /** A frame starts now (call right before drawing it). */
  begin(nowMs) {
    this._frames++;
    this._startedAt = Math.min(nowMs, performance.now());
  }

  /** The frame's commands are all issued: fence them, or time the call where fences lack. */
  end() {
    if (!this._fences || this.gl.isContextLost()) {
      this._record(performance.now() - this._startedAt);
      return;
    }
    this._sync = this.gl.fenceSync(this.gl.SYNC_GPU_COMMANDS_COMPLETE, 0);
    if (this._sync === null) this._record(performance.now() - this._startedAt);
    else this.gl.flush();
  }

  _record(ms) {
    this._recent.push(ms);
    if (this._recent.length > RECENT_FRAMES) this._recent.shift();
    const sorted = [...this._recent].sort((a, b) => a - b);
    this.costMs = sorted[Math.floor((sorted.length - 1) / 2)];
  }
}
