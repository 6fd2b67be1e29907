// The seated audience, cheaply: one InstancedMesh each for bodies, heads and raised arms,
// rebuilt only when crowd data changes (Keyframe.coarse, CrowdFar coarse records, CrowdNear
// full poses), never per frame. Coarse records turn a head by yaw/pitch in the seat's
// frame; near records place it where the headset is. The current asker is highlighted.
import * as THREE from "three";
import { mergeGeometries } from "three/examples/jsm/utils/BufferGeometryUtils.js";
import { PoseFlag } from "../protocol/quant.js";
import { HALL_ONLY } from "./hall.js";

const DEG = Math.PI / 180;
const SEATED_HEAD_Y = 1.2;
const RAISED_HAND_Y = 1.9;

function colored(geometry, hex) {
  const c = new THREE.Color(hex);
  const n = geometry.attributes.position.count;
  const colors = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) c.toArray(colors, i * 3);
  geometry.setAttribute("color", new THREE.BufferAttribute(colors, 3));
  return geometry;
}

function bodyGeometry() {
  // Seated torso and lap, facing -Z, origin at the seat's floor point.
  const torso = new THREE.CapsuleGeometry(0.17, 0.3, 3, 8).scale(1, 1, 0.7).translate(0, 0.78, 0.05);
  const lap = new THREE.BoxGeometry(0.34, 0.14, 0.4).translate(0, 0.5, -0.15);
  const g = mergeGeometries([torso, lap]);
  torso.dispose();
  lap.dispose();
  return g;
}

function headGeometry() {
  // A head looking along -Z: skin, hair on top and back, dark eyes in front.
  const skull = colored(new THREE.SphereGeometry(0.1, 14, 10).scale(0.9, 1.1, 1), 0xd8a786);
  const hair = colored(
    new THREE.SphereGeometry(0.104, 14, 8, 0, Math.PI * 2, 0, 1.3).rotateX(0.5),
    0x3a2a22,
  );
  const eyes = colored(new THREE.BoxGeometry(0.09, 0.018, 0.02).translate(0, 0.02, -0.095), 0x151515);
  const g = mergeGeometries([skull, hair, eyes]);
  for (const x of [skull, hair, eyes]) x.dispose();
  return g;
}

function armGeometry() {
  // A raised arm: the hand at the origin, the arm hanging below it.
  const arm = new THREE.CapsuleGeometry(0.04, 0.45, 3, 6).translate(0, -0.27, 0);
  const hand = new THREE.SphereGeometry(0.055, 8, 6);
  const g = mergeGeometries([arm, hand]);
  arm.dispose();
  hand.dispose();
  return g;
}

export class Audience {
  constructor(scene, seats) {
    this.seats = seats;
    const max = Math.max(1, seats.count);
    this.bodies = new THREE.InstancedMesh(bodyGeometry(), new THREE.MeshLambertMaterial(), max);
    this.heads = new THREE.InstancedMesh(
      headGeometry(),
      new THREE.MeshLambertMaterial({ vertexColors: true }),
      max,
    );
    this.arms = new THREE.InstancedMesh(armGeometry(), new THREE.MeshLambertMaterial({ color: 0xd8a786 }), max);
    for (const m of [this.bodies, this.heads, this.arms]) {
      m.count = 0;
      m.frustumCulled = false; // instances span the hall; the bounds would go stale
      m.layers.set(HALL_ONLY);
      scene.add(m);
    }
    this.marker = new THREE.Mesh(
      new THREE.ConeGeometry(0.14, 0.3, 12).rotateX(Math.PI),
      new THREE.MeshBasicMaterial({ color: 0xffc83d }),
    );
    this.marker.visible = false;
    this.marker.layers.set(HALL_ONLY);
    scene.add(this.marker);

    // Per-slot state (slots are u16).
    this.seatOf = new Int32Array(65536).fill(-1);
    this.yaw = new Float32Array(65536);
    this.pitch = new Float32Array(65536);
    this.flags = new Uint8Array(65536);
    this.handH = new Float32Array(65536);
    this.near = new Map(); // slot -> Float32Array(7): head x y z (seat frame), qx qy qz qw
    this.present = []; // slots with a seat
    this.asker = -1;
    this.dirty = true;

    this._m = new THREE.Matrix4();
    this._q = new THREE.Quaternion();
    this._q2 = new THREE.Quaternion();
    this._p = new THREE.Vector3();
    this._s = new THREE.Vector3(1, 1, 1);
    this._e = new THREE.Euler(0, 0, 0, "YXZ");
    this._c = new THREE.Color();
    this._up = new THREE.Vector3(0, 1, 0);
  }

  /** The room's participants (Map slot -> Participant): who sits where. */
  setParticipants(participants) {
    for (const slot of this.present) this.seatOf[slot] = -1;
    this.present.length = 0;
    for (const p of participants.values()) {
      if (p.seat >= 0 && p.seat < this.seats.count) {
        this.seatOf[p.slot] = p.seat;
        this.present.push(p.slot);
        // The participant's own hand flag until a crowd record says otherwise.
        this.flags[p.slot] = (this.flags[p.slot] & ~PoseFlag.HAND_RAISED) | (p.flags & 1);
      }
    }
    for (const slot of [...this.near.keys()]) if (this.seatOf[slot] < 0) this.near.delete(slot);
    this.dirty = true;
  }

  /** Coarse records (decodeCoarse). */
  applyCoarse(records) {
    for (const r of records) {
      this.yaw[r.slot] = r.yawDeg * DEG;
      this.pitch[r.slot] = r.pitchDeg * DEG;
      this.flags[r.slot] = r.flags;
      this.handH[r.slot] = r.handHeightM;
      this.near.delete(r.slot);
    }
    if (records.length) this.dirty = true;
  }

  /** Full crowd records (decodeCrowd): head pose and hands in the seat's frame. */
  applyNear(records) {
    for (const r of records) {
      let n = this.near.get(r.slot);
      if (!n) this.near.set(r.slot, (n = new Float32Array(7)));
      n.set(r.head.pos, 0);
      n.set(r.head.rot, 3);
      this.flags[r.slot] = r.flags;
      let h = 0;
      if (r.flags & PoseFlag.LEFT_TRACKED) h = Math.max(h, r.left.pos[1]);
      if (r.flags & PoseFlag.RIGHT_TRACKED) h = Math.max(h, r.right.pos[1]);
      this.handH[r.slot] = h;
    }
    if (records.length) this.dirty = true;
  }

  setAsker(slot) {
    if (slot !== this.asker) {
      this.asker = slot;
      this.dirty = true;
    }
  }

  /** Rebuilds the instances if anything changed; a no-op otherwise (call every frame). */
  update() {
    if (!this.dirty) return;
    this.dirty = false;
    const { pos, yaw: seatYaw } = this.seats;
    const m = this._m;
    const p = this._p;
    const q = this._q;
    let arms = 0;
    this.marker.visible = false;
    for (let i = 0; i < this.present.length; i++) {
      const slot = this.present[i];
      const seat = this.seatOf[slot];
      const sx = pos[seat * 3];
      const sy = pos[seat * 3 + 1];
      const sz = pos[seat * 3 + 2];
      const sYaw = seatYaw[seat];
      const cos = Math.cos(sYaw);
      const sin = Math.sin(sYaw);
      q.setFromAxisAngle(this._up, sYaw);
      p.set(sx, sy, sz);
      this.bodies.setMatrixAt(i, m.compose(p, q, this._s));
      const isAsker = slot === this.asker;
      this.bodies.setColorAt(i, isAsker ? this._c.set(0xffc83d) : this._c.setHSL(((slot * 0.618) % 1), 0.35, 0.45));
      // Head: from a near record (where the headset is), else seated height turned by yaw/pitch.
      const near = this.near.get(slot);
      let hx = 0;
      let hy = SEATED_HEAD_Y;
      let hz = 0;
      if (near) {
        hx = near[0];
        hy = near[1];
        hz = near[2];
        this._q2.set(near[3], near[4], near[5], near[6]);
      } else {
        this._e.set(this.pitch[slot], this.yaw[slot], 0, "YXZ");
        this._q2.setFromEuler(this._e);
      }
      // Seat frame -> world: rotate by the seat's yaw about +Y, then move to the seat.
      p.set(sx + cos * hx + sin * hz, sy + hy, sz - sin * hx + cos * hz);
      q.multiply(this._q2);
      this.heads.setMatrixAt(i, m.compose(p, q, this._s));
      this.heads.setColorAt(i, isAsker ? this._c.set(0xfff0b0) : this._c.set(0xffffff));
      if (isAsker) {
        this.marker.position.set(p.x, p.y + 0.45, p.z);
        this.marker.visible = true;
      }
      if (this.flags[slot] & PoseFlag.HAND_RAISED) {
        const h = this.handH[slot] > 1.3 ? this.handH[slot] : RAISED_HAND_Y;
        p.set(sx + cos * 0.22 + sin * -0.05, sy + h, sz - sin * 0.22 + cos * -0.05);
        q.setFromAxisAngle(this._up, sYaw);
        this.arms.setMatrixAt(arms++, m.compose(p, q, this._s));
      }
    }
    this.bodies.count = this.heads.count = this.present.length;
    this.arms.count = arms;
    for (const mesh of [this.bodies, this.heads, this.arms]) {
      mesh.instanceMatrix.needsUpdate = true;
      if (mesh.instanceColor) mesh.instanceColor.needsUpdate = true;
    }
  }
}
