// When the 3D view may draw its next frame. The cost that matters is the GPU's, not the
// JavaScript's: three.js only queues GL commands, which the browser's GPU process runs
// later (on a software renderer such as SwiftShader, on the CPU, at up to several hundred
// milliseconds a frame). Timing the render call alone saw 3 ms while the GPU process was
// kept 100 % busy, taking a whole core from the audio and the network.
//
// So each frame ends with a WebGL2 fence; the next frame waits until the fence has passed
// (polled without blocking, once per animation frame), which measures a frame's whole cost
// from the first command to the GPU finishing it. Frames are then spaced at least twice
// that cost apart (the GPU stays at most half busy with this page) and at least
// `minFrameMs` apart. Without fences (WebGL1), the render call's own time is the cost.

/** Paces the view's frames by what they cost the GPU (see above). */
export class FramePace {
  /**
   * @param {WebGLRenderingContext | WebGL2RenderingContext} gl the view's context
   * @param {number} minFrameMs frames at least this far apart (0: as often as the GPU allows)
   */
  constructor(gl, minFrameMs = 0) {
    this.gl = gl;
    this.minFrameMs = minFrameMs;
    this.costMs = 0; // smoothed cost of a frame, GPU included where fences exist
    this._fences = typeof gl.fenceSync === "function";
    this._sync = null;
    this._startedAt = -Infinity;
  }

  /** Whether a frame may start at `nowMs` (a performance.now() / rAF time). */
  ready(nowMs) {
    if (this._sync !== null) {
      const gl = this.gl;
      if (gl.isContextLost() || gl.getSyncParameter(this._sync, gl.SYNC_STATUS) === gl.SIGNALED) {
        gl.deleteSync(this._sync);
        this._sync = null;
        this._record(performance.now() - this._startedAt);
      } else {
        return false;
      }
    }
    return nowMs - this._startedAt >= Math.max(2 * this.costMs, this.minFrameMs);
  }

  /** A frame starts now (call right before drawing it). */
  begin(nowMs) {
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

  // Smoothed, but quick to come down: the first frames also compile shaders and upload the
  // model, and a page must not stay slow for long after them.
  _record(ms) {
    if (this.costMs === 0) this.costMs = ms;
    else if (ms < this.costMs) this.costMs = 0.5 * (this.costMs + ms);
    else this.costMs = 0.8 * this.costMs + 0.2 * ms;
  }
}
