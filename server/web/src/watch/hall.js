// The hall from /scene.json: floor, stage deck and backdrop, seats as one InstancedMesh,
// lights, and the spectator camera. Built once; nothing here runs per frame.
import * as THREE from "three";
import { mergeGeometries } from "three/examples/jsm/utils/BufferGeometryUtils.js";
import { expandSeats } from "./seats.js";

export const CLEAR_COLOR = 0x10131a;
// Layer of things only the hall camera draws (seats, audience): the close-up camera looks
// at the clone with its back to them, and skipping them halves its cost.
export const HALL_ONLY = 1;
const DEG = Math.PI / 180;

function shade(geometry, hex) {
  // Baked lighting: faces pointing up are lit, sides darker, undersides darkest; the
  // seats then draw with an unlit material, cheap for thousands of them.
  const base = new THREE.Color(hex);
  const n = geometry.attributes.normal;
  const colors = new Float32Array(n.count * 3);
  const c = new THREE.Color();
  for (let i = 0; i < n.count; i++) {
    const up = n.getY(i);
    const k = up > 0.5 ? 1.0 : up < -0.5 ? 0.35 : 0.62 + 0.08 * n.getX(i);
    c.copy(base).multiplyScalar(k).toArray(colors, i * 3);
  }
  geometry.setAttribute("color", new THREE.BufferAttribute(colors, 3));
  return geometry;
}

function seatGeometry() {
  // A seat facing -Z (toward the stage), origin at its floor point: a backrest and a
  // cushion top, few triangles (a hall has thousands of seats).
  const back = shade(new THREE.BoxGeometry(0.48, 0.55, 0.08).translate(0, 0.68, 0.22), 0x8a3040);
  const cushion = shade(
    new THREE.PlaneGeometry(0.46, 0.42).rotateX(-Math.PI / 2).translate(0, 0.45, -0.02),
    0x9a3a4a,
  );
  const g = mergeGeometries([back, cushion]);
  back.dispose();
  cushion.dispose();
  return g;
}

/**
 * Builds the hall into `scene`; returns {seats, camera, cloneMark: {position, yawDeg, facing}}.
 * `seats` is expandSeats' result (seat number -> floor point and yaw).
 */
export function buildHall(scene, sceneDoc, aspect) {
  scene.background = new THREE.Color(CLEAR_COLOR);
  const seats = expandSeats(sceneDoc);

  // Lights: a dim hall, a bright stage.
  scene.add(new THREE.HemisphereLight(0xb8c4ff, 0x2a2420, 0.9));
  const stage = sceneDoc.stage;
  const [sx, sy, sz] = stage.center;
  const [sw, sh, sd] = stage.size;
  const mark = stage.clone_mark.position;
  const markYaw = stage.clone_mark.yaw_deg ?? 180;
  const facing = new THREE.Vector3(-Math.sin(markYaw * DEG), 0, -Math.cos(markYaw * DEG));

  const key = new THREE.SpotLight(0xfff2e0, 60, 0, 28 * DEG, 0.5, 1.2);
  key.position.set(mark[0] + facing.x * 7 + 2, mark[1] + 6, mark[2] + facing.z * 7);
  key.target.position.set(mark[0], mark[1] + 1.2, mark[2]);
  scene.add(key, key.target);
  const fill = new THREE.DirectionalLight(0xc8d8ff, 0.8);
  fill.position.set(-10, 12, 20);
  scene.add(fill);

  // Floor under everything.
  let minX = sx - sw / 2;
  let maxX = sx + sw / 2;
  let minZ = sz - sd / 2;
  let maxZ = sz + sd / 2;
  for (let i = 0; i < seats.count; i++) {
    minX = Math.min(minX, seats.pos[i * 3]);
    maxX = Math.max(maxX, seats.pos[i * 3]);
    minZ = Math.min(minZ, seats.pos[i * 3 + 2]);
    maxZ = Math.max(maxZ, seats.pos[i * 3 + 2]);
  }
  const floor = new THREE.Mesh(
    new THREE.PlaneGeometry(maxX - minX + 12, maxZ - minZ + 12),
    new THREE.MeshLambertMaterial({ color: 0x2b2f3a }),
  );
  floor.rotation.x = -Math.PI / 2;
  floor.position.set((minX + maxX) / 2, 0, (minZ + maxZ) / 2);
  scene.add(floor);

  // The stage deck: from the floor up to the clone mark's height, across the stage box.
  const deckH = Math.max(0.05, mark[1] - (sy - sh / 2));
  const deck = new THREE.Mesh(
    new THREE.BoxGeometry(sw, deckH, sd),
    new THREE.MeshLambertMaterial({ color: 0x5a3d2b }),
  );
  deck.position.set(sx, sy - sh / 2 + deckH / 2, sz);
  scene.add(deck);
  const edge = new THREE.Mesh(
    new THREE.BoxGeometry(sw, 0.06, 0.06),
    new THREE.MeshBasicMaterial({ color: 0xe0b060 }),
  );
  edge.position.set(sx, sy - sh / 2 + deckH, sz + sd / 2);
  scene.add(edge);
  // A backdrop at the far side of the stage from the audience, and a mark on the deck.
  const back = new THREE.Mesh(
    new THREE.PlaneGeometry(sw, sh),
    new THREE.MeshLambertMaterial({ color: 0x1d3557 }),
  );
  back.position.set(sx, sy, sz - sd / 2);
  scene.add(back);
  // The proscenium: dark pillars and a header framing the stage opening, a warm wash of
  // light on the backdrop, and a low lectern-free front edge.
  const frameMat = new THREE.MeshLambertMaterial({ color: 0x181b22 });
  const pillarW = 1.2;
  for (const side of [-1, 1]) {
    const pillar = new THREE.Mesh(new THREE.BoxGeometry(pillarW, sh + 1.5, 1.0), frameMat);
    pillar.position.set(sx + side * (sw / 2 + pillarW / 2), (sy - sh / 2 + sh + 1.5) / 2, sz + sd / 2 - 0.5);
    scene.add(pillar);
  }
  const header = new THREE.Mesh(new THREE.BoxGeometry(sw + 2 * pillarW, 1.5, 1.0), frameMat);
  header.position.set(sx, sy + sh / 2 + 0.75, sz + sd / 2 - 0.5);
  scene.add(header);
  const glow = new THREE.Mesh(
    new THREE.PlaneGeometry(sw, sh),
    new THREE.ShaderMaterial({
      uniforms: { top: { value: new THREE.Color(0x0e1a30) }, bottom: { value: new THREE.Color(0x35506e) } },
      vertexShader: "varying vec2 vUv; void main() { vUv = uv; gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0); }",
      fragmentShader:
        "uniform vec3 top; uniform vec3 bottom; varying vec2 vUv; void main() {" +
        " float r = length((vUv - vec2(0.5, 0.32)) * vec2(1.0, 1.6));" +
        " gl_FragColor = vec4(mix(bottom, top, clamp(r * 1.6, 0.0, 1.0)), 1.0); }",
    }),
  );
  glow.position.set(sx, sy, sz - sd / 2 + 0.01);
  scene.add(glow);

  // Screens beside the stage showing the close-up (image magnification, as in real town
  // halls): 16:9, angled toward the middle of the audience. Their texture comes from the
  // view's close-up camera (view.js); they are drawn only by the hall camera.
  const screens = [];
  const screenW = Math.min(5.6, sw * 0.28);
  const screenH = (screenW * 9) / 16;
  for (const side of [-1, 1]) {
    const group = new THREE.Group();
    const bezel = new THREE.Mesh(
      new THREE.BoxGeometry(screenW + 0.25, screenH + 0.25, 0.12),
      new THREE.MeshLambertMaterial({ color: 0x0b0c10 }),
    );
    bezel.position.z = -0.07;
    const panel = new THREE.Mesh(new THREE.PlaneGeometry(screenW, screenH), new THREE.MeshBasicMaterial({ color: 0x222222 }));
    group.add(bezel, panel);
    // Inside the stage opening, either side of the clone and above head height.
    group.position.set(
      sx + side * (sw / 2 - screenW / 2 - 0.7),
      mark[1] + 1.9 + screenH / 2,
      Math.max(sz - sd / 2 + 1.0, mark[2] - 3.0),
    );
    group.rotation.y = -side * 14 * DEG;
    group.traverse((o) => o.layers.set(HALL_ONLY));
    scene.add(group);
    screens.push(panel);
  }

  const markDisc = new THREE.Mesh(
    new THREE.CircleGeometry(0.5, 32),
    new THREE.MeshBasicMaterial({ color: 0x3a5a80 }),
  );
  markDisc.rotation.x = -Math.PI / 2;
  markDisc.position.set(mark[0], mark[1] + 0.005, mark[2]);
  scene.add(markDisc);

  // Seats: one draw call for every seat of the hall.
  const seatMesh = new THREE.InstancedMesh(
    seatGeometry(),
    new THREE.MeshBasicMaterial({ vertexColors: true }),
    Math.max(1, seats.count),
  );
  const m = new THREE.Matrix4();
  const q = new THREE.Quaternion();
  const p = new THREE.Vector3();
  const one = new THREE.Vector3(1, 1, 1);
  const up = new THREE.Vector3(0, 1, 0);
  for (let i = 0; i < seats.count; i++) {
    p.set(seats.pos[i * 3], seats.pos[i * 3 + 1], seats.pos[i * 3 + 2]);
    q.setFromAxisAngle(up, seats.yaw[i]);
    seatMesh.setMatrixAt(i, m.compose(p, q, one));
  }
  seatMesh.count = seats.count;
  seatMesh.instanceMatrix.needsUpdate = true;
  seatMesh.computeBoundingSphere();
  seatMesh.layers.set(HALL_ONLY);
  scene.add(seatMesh);

  const cam = sceneDoc.spectator_camera;
  const camera = new THREE.PerspectiveCamera(cam.fov_deg ?? 60, aspect, 0.1, 1000);
  camera.layers.enable(HALL_ONLY);
  camera.position.fromArray(cam.position);
  camera.lookAt(new THREE.Vector3().fromArray(cam.look_at));

  return {
    seats,
    camera,
    screens,
    cloneMark: { position: new THREE.Vector3().fromArray(mark), yawDeg: markYaw, facing },
  };
}
