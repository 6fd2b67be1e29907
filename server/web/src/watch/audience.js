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

function merged(parts) {
  const g = mergeGeometries(parts.map((p) => (p.index ? p.toNonIndexed() : p)));
  for (const p of parts) p.dispose();
  return g;
}

function bodyGeometry() {
  // A seated person facing -Z, origin at the seat's floor point: torso and shoulders in
  // the clothing colour (the instance colour), forearms resting on the lap, thighs
  // forward, a neck in a skin tone (vertex colour, multiplied by the instance colour,
  // so a pale instance colour is used for it: see Audience.update).
  const torso = new THREE.CapsuleGeometry(0.155, 0.26, 4, 10).scale(1.05, 1, 0.62).translate(0, 0.84, 0.04);
  const shoulders = new THREE.CapsuleGeometry(0.06, 0.3, 3, 8).rotateZ(Math.PI / 2).translate(0, 1.02, 0.04);
  const parts = [torso, shoulders];
  for (const side of [-1, 1]) {
    const upper = new THREE.CapsuleGeometry(0.045, 0.22, 3, 6).rotateX(0.25).translate(side * 0.2, 0.86, 0.0);
    const fore = new THREE.CapsuleGeometry(0.04, 0.22, 3, 6).rotateX(Math.PI / 2).translate(side * 0.16, 0.64, -0.14);
    const thigh = new THREE.CapsuleGeometry(0.07, 0.3, 3, 6).rotateX(Math.PI / 2).translate(side * 0.1, 0.52, -0.16);
    parts.push(upper, fore, thigh);
  }
  return merged(parts);
}

function headGeometry() {
  // A head looking along -Z with a neck; skin (the instance colour sets the tone).
  const skull = new THREE.SphereGeometry(0.095, 16, 12).scale(0.86, 1.08, 1);
  const neck = new THREE.CylinderGeometry(0.045, 0.05, 0.12, 10).translate(0, -0.12, 0.01);
  const nose = new THREE.ConeGeometry(0.018, 0.05, 6).rotateX(-Math.PI / 2).translate(0, -0.01, -0.1);
  return merged([skull, neck, nose]);
}

function hairGeometry() {
  // Hair over the top and back of the head (instance colour: the hair colour).
  const cap = new THREE.SphereGeometry(0.102, 16, 10, 0, Math.PI * 2, 0, 1.75).scale(0.9, 1.08, 1.05);
  cap.rotateX(-0.45).translate(0, 0.012, 0.012);
  return merged([cap]);
}

function armGeometry() {
  // A raised arm: the hand at the origin, the arm hanging below it.
  const arm = new THREE.CapsuleGeometry(0.04, 0.45, 3, 6).translate(0, -0.27, 0);
  const hand = new THREE.SphereGeometry(0.055, 8, 6);
  return merged([arm, hand]);
}

// Palettes: what people wear to a town hall, skin tones, hair colours.
const CLOTHES = [0x2b3a55, 0x3b3f46, 0x1d1f24, 0xd9d6cf, 0x5b6f8a, 0x6b2f36, 0x3e5a48, 0x7a6a58, 0x8d9bb0, 0x4a3b5c, 0xb9a38a, 0x2f4f6f];
const SKIN = [0xf1c9ad, 0xe0ac8a, 0xc98f6b, 0xa8714e, 0x8a5636, 0x5e3a24, 0xd8a786, 0xb57f5a];
const HAIR = [0x16110e, 0x2e1d14, 0x4a2f1e, 0x6e4a2c, 0xb89868, 0x8d8a86, 0x2a2420, 0x5a3a24, 0xcfc9c0];

function pick(list, slot, salt) {
  const h = Math.imul(slot + 1, 2654435761) ^ Math.imul(salt, 40503);
  return list[(h >>> 7) % list.length];
}

export class Audience {
  constructor(scene, seats) {
    this.seats = seats;
    const max = Math.max(1, seats.count);
    this.bodies = new THREE.InstancedMesh(bodyGeometry(), new THREE.MeshLambertMaterial(), max);
    this.heads = new THREE.InstancedMesh(headGeometry(), new THREE.MeshLambertMaterial(), max);
    this.hair = new THREE.InstancedMesh(hairGeometry(), new THREE.MeshLambertMaterial(), max);
    this.arms = new THREE.InstancedMesh(armGeometry(), new THREE.MeshLambertMaterial(), max);
    for (const m of [this.bodies, this.heads, this.hair, this.arms]) {
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
      this.bodies.setColorAt(i, isAsker ? this._c.set(0xffc83d) : this._c.set(pick(CLOTHES, slot, 1)));
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
      this.hair.setMatrixAt(i, m);
      const skin = pick(SKIN, slot, 2);
      this.heads.setColorAt(i, this._c.set(skin));
      this.hair.setColorAt(i, this._c.set(pick(HAIR, slot, 3)));
      if (isAsker) {
        this.marker.position.set(p.x, p.y + 0.45, p.z);
        this.marker.visible = true;
      }
      if (this.flags[slot] & PoseFlag.HAND_RAISED) {
        const h = this.handH[slot] > 1.3 ? this.handH[slot] : RAISED_HAND_Y;
        p.set(sx + cos * 0.22 + sin * -0.05, sy + h, sz - sin * 0.22 + cos * -0.05);
        q.setFromAxisAngle(this._up, sYaw);
        this.arms.setColorAt(arms, this._c.set(skin));
        this.arms.setMatrixAt(arms++, m.compose(p, q, this._s));
      }
    }
    this.bodies.count = this.heads.count = this.hair.count = this.present.length;
    this.arms.count = arms;
    for (const mesh of [this.bodies, this.heads, this.hair, this.arms]) {
      mesh.instanceMatrix.needsUpdate = true;
      if (mesh.instanceColor) mesh.instanceColor.needsUpdate = true;
    }
  }
}
