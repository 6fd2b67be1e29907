// The 3D view: renderer, the hall camera (scene.spectator_camera) and a close-up camera on
// the clone drawn as an inset (the clone's face is a few pixels tall from the back of a big
// hall), plus projections of the clone's head and mouth to page pixels.
import * as THREE from "three";
import { CLEAR_COLOR, buildHall } from "./hall.js";
import { t } from "../i18n/index.js";

const DEG = Math.PI / 180;
const CLOSEUP_FOV = 20;
const CLOSEUP_DISTANCE = 1.7;

/**
 * Whether WebGL works here: {reason: why not ("" if it does), software: drawn by the CPU
 * (SwiftShader, llvmpipe...), where the page trades antialiasing for frame rate}.
 */
export function probeWebgl() {
  try {
    const c = document.createElement("canvas");
    const gl = c.getContext("webgl2") || c.getContext("webgl");
    if (!gl) return { reason: t("why.noWebgl"), software: false };
    const info = gl.getExtension("WEBGL_debug_renderer_info");
    const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    gl.getExtension("WEBGL_lose_context")?.loseContext();
    return { reason: "", software: /swiftshader|llvmpipe|software|softpipe/i.test(name) };
  } catch (err) {
    return { reason: t("why.webglFailed", { error: err.message }), software: false };
  }
}

export class StageView {
  constructor(canvas, container, frameEl, { software = false } = {}) {
    this.canvas = canvas;
    this.container = container;
    this.frameEl = frameEl;
    this.software = software;
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: !software });
    this.renderer.setPixelRatio(software ? 1 : Math.min(window.devicePixelRatio || 1, 2));
    this.renderer.setClearColor(CLEAR_COLOR);
    this.renderer.outputColorSpace = THREE.SRGBColorSpace;
    this.scene = new THREE.Scene();
    this.closeupOn = true;
    this.inset = { x: 0, y: 0, w: 0, h: 0 }; // CSS px, from the canvas' top-left
    this.width = 1;
    this.height = 1;
    this._drawn = false; // once a frame is drawn, a resize draws again at once
    this._v = new THREE.Vector3();
    new ResizeObserver(() => this.resize()).observe(container);
  }

  /** Builds the hall from the scene document; returns buildHall's result. */
  buildHall(sceneDoc) {
    this.hall = buildHall(this.scene, sceneDoc, 1);
    this.camera = this.hall.camera;
    const { position, facing } = this.hall.cloneMark;
    this.closeCam = new THREE.PerspectiveCamera(CLOSEUP_FOV, 4 / 3, 0.05, 200);
    const target = new THREE.Vector3(position.x, position.y + 1.52, position.z);
    this.closeCam.position.copy(target).addScaledVector(facing, CLOSEUP_DISTANCE);
    this.closeCam.position.y += 0.08;
    this.closeCam.lookAt(target);
    // The screens beside the stage show the close-up camera, drawn into a texture.
    this.screenTarget = new THREE.WebGLRenderTarget(this.software ? 320 : 960, this.software ? 180 : 540, {
      colorSpace: THREE.SRGBColorSpace,
    });
    this.screenCam = this.closeCam.clone();
    this.screenCam.fov = 24;
    this.screenCam.aspect = 16 / 9;
    this.screenCam.updateProjectionMatrix();
    for (const panel of this.hall.screens) {
      panel.material.dispose();
      panel.material = new THREE.MeshBasicMaterial({ map: this.screenTarget.texture, toneMapped: false });
    }
    this._screenFrame = 0;
    this.resize();
    return this.hall;
  }

  resize() {
    const w = Math.max(1, this.container.clientWidth);
    const h = Math.max(1, this.container.clientHeight);
    this.width = w;
    this.height = h;
    this.renderer.setSize(w, h, false);
    if (this.camera) {
      this.camera.aspect = w / h;
      this.camera.updateProjectionMatrix();
    }
    const iw = Math.round(Math.min(w * 0.36, 440));
    const ih = Math.round((iw * 3) / 4);
    this.inset = { x: w - iw - 12, y: 12, w: iw, h: ih };
    this._placeFrame();
    // Sizing a canvas clears it, and the render loop may not draw again for a while (it
    // skips frames on a busy machine, and not at all while a test holds the picture): draw
    // the scene as it stands now, so the view never goes blank and a held picture stays
    // the one the page describes, at the new size.
    if (this._drawn) this.render();
  }

  setCloseup(on) {
    this.closeupOn = on;
    this._placeFrame();
  }

  _placeFrame() {
    const f = this.frameEl;
    if (!f) return;
    f.style.display = this.closeupOn && this.closeCam ? "block" : "none";
    f.style.left = `${this.inset.x - 2}px`;
    f.style.top = `${this.inset.y - 2}px`;
    f.style.width = `${this.inset.w + 4}px`;
    f.style.height = `${this.inset.h + 4}px`;
  }

  render() {
    const r = this.renderer;
    if (!this.camera) return;
    this._drawn = true;
    // The screens' picture: every frame, or every sixth one on a software renderer (the cores are the audio's too).
    if (this.screenTarget && (!this.software || this._screenFrame++ % 6 === 0)) {
      r.setRenderTarget(this.screenTarget);
      r.render(this.scene, this.screenCam);
      r.setRenderTarget(null);
    }
    r.setScissorTest(false);
    r.setViewport(0, 0, this.width, this.height);
    r.render(this.scene, this.camera);
    if (this.closeupOn) {
      const { x, y, w, h } = this.inset;
      const glY = this.height - y - h; // GL viewports count from the bottom
      r.setScissorTest(true);
      r.setScissor(x, glY, w, h);
      r.setViewport(x, glY, w, h);
      r.render(this.scene, this.closeCam);
      r.setScissorTest(false);
    }
  }

  /**
   * Page-pixel rectangles of the screens beside the stage as the hall camera sees them,
   * cut to the canvas (none for a screen behind the camera). For tests and tools.
   */
  hallScreenRects() {
    const box = this.canvas.getBoundingClientRect();
    const rects = [];
    for (const panel of this.hall.screens) {
      panel.updateWorldMatrix(true, false);
      const { width: w, height: h } = panel.geometry.parameters;
      let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity, behind = false;
      for (const [u, v] of [[-1, -1], [1, -1], [1, 1], [-1, 1]]) {
        const p = this._v.set((u * w) / 2, (v * h) / 2, 0).applyMatrix4(panel.matrixWorld).project(this.camera);
        if (p.z > 1) behind = true;
        const x = ((p.x + 1) / 2) * this.width;
        const y = ((1 - p.y) / 2) * this.height;
        x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
      x0 = Math.max(0, x0); y0 = Math.max(0, y0);
      x1 = Math.min(this.width, x1); y1 = Math.min(this.height, y1);
      if (behind || x1 <= x0 || y1 <= y0) continue;
      rects.push({ x: box.left + x0, y: box.top + y0, width: x1 - x0, height: y1 - y0 });
    }
    return rects;
  }

  /**
   * Page-pixel rectangle of a sphere (world centre, radius) in a view: "closeup" (the inset)
   * or "hall"; default: the close-up when it is shown. For tests and tools, not per frame.
   */
  screenRect(center, radius, view) {
    const which = view || (this.closeupOn ? "closeup" : "hall");
    const cam = which === "closeup" ? this.closeCam : this.camera;
    const vp = which === "closeup" ? this.inset : { x: 0, y: 0, w: this.width, h: this.height };
    const p = this._v.copy(center).project(cam);
    const dist = cam.position.distanceTo(center);
    const pr = (radius / (dist * Math.tan((cam.fov * DEG) / 2))) * (vp.h / 2);
    const box = this.canvas.getBoundingClientRect();
    const cx = box.left + vp.x + ((p.x + 1) / 2) * vp.w;
    const cy = box.top + vp.y + ((1 - p.y) / 2) * vp.h;
    return { x: cx - pr, y: cy - pr, width: 2 * pr, height: 2 * pr, view: which };
  }
}
