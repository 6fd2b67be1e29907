// The default clone: a humanoid built from primitives, no outside asset. Its bones are
// Object3Ds named and nested like the VRM 1.0 humanoid, in the normalized rest pose the
// protocol assumes (T-pose, every bone's axes parallel to the model's, facing +Z, left
// hand along +X, hips at 0.95 m), so an animation frame's local rotations apply as they
// are: bone.quaternion = frame rotation. The face has eyes that follow the gaze point,
// eyelids for blinks and a mouth that opens with the visemes.
import * as THREE from "three";
import { SKELETON_BONES } from "../protocol/quant.js";
import { BONE, EXP, EXPR, GAZE, HIPS, ROT, mouthOpenOf, vrmVowels } from "./pose.js";

// Bone tree: name, parent, rest offset from the parent (m, model space).
const RIG = [
  ["hips", null, [0, 0.95, 0]],
  ["spine", "hips", [0, 0.1, 0]],
  ["chest", "spine", [0, 0.12, 0]],
  ["upperChest", "chest", [0, 0.12, 0]],
  ["neck", "upperChest", [0, 0.15, -0.01]],
  ["head", "neck", [0, 0.08, 0]],
  ["leftEye", "head", [0.033, 0.08, 0.084]],
  ["rightEye", "head", [-0.033, 0.08, 0.084]],
  ["jaw", "head", [0, 0.03, 0.02]],
  ["leftShoulder", "upperChest", [0.03, 0.1, -0.01]],
  ["leftUpperArm", "leftShoulder", [0.11, 0, 0]],
  ["leftLowerArm", "leftUpperArm", [0.27, 0, 0]],
  ["leftHand", "leftLowerArm", [0.25, 0, 0]],
  ["rightShoulder", "upperChest", [-0.03, 0.1, -0.01]],
  ["rightUpperArm", "rightShoulder", [-0.11, 0, 0]],
  ["rightLowerArm", "rightUpperArm", [-0.27, 0, 0]],
  ["rightHand", "rightLowerArm", [-0.25, 0, 0]],
  ["leftUpperLeg", "hips", [0.09, -0.06, 0]],
  ["leftLowerLeg", "leftUpperLeg", [0, -0.42, 0]],
  ["leftFoot", "leftLowerLeg", [0, -0.39, 0]],
  ["rightUpperLeg", "hips", [-0.09, -0.06, 0]],
  ["rightLowerLeg", "rightUpperLeg", [0, -0.42, 0]],
  ["rightFoot", "rightLowerLeg", [0, -0.39, 0]],
];

const EYE_R = 0.018;
const MOUTH_Y = 0.028; // mouth centre in head-bone space
const MOUTH_Z = 0.088;
const MAX_EYE_YAW = 0.6;
const MAX_EYE_PITCH = 0.45;

function capsule(radius, length, axis, material, scale) {
  const g = new THREE.CapsuleGeometry(radius, length, 4, 12);
  if (axis === "x") g.rotateZ(Math.PI / 2);
  const m = new THREE.Mesh(g, material);
  if (scale) m.scale.set(scale[0], scale[1], scale[2]);
  return m;
}

export class ProceduralAvatar {
  constructor() {
    this.root = new THREE.Group();
    this.root.name = "clone";
    this.bones = [];
    const byName = {};
    for (const [name, parent, offset] of RIG) {
      const bone = new THREE.Object3D();
      bone.name = name;
      bone.position.fromArray(offset);
      (parent ? byName[parent] : this.root).add(bone);
      byName[name] = bone;
    }
    // Indexed in the wire order, like a pose's rotations.
    for (const name of SKELETON_BONES) this.bones.push(byName[name]);
    this.byName = byName;
    this.eyes = [byName.leftEye, byName.rightEye];
    this._build(byName);
    this._eyeTarget = new THREE.Vector3();
    this._m = new THREE.Matrix4();
    this._vowels = new Float32Array(5);
    this.mouthOpen = 0;
  }

  _build(b) {
    const skin = new THREE.MeshStandardMaterial({ color: 0xd9a07e, roughness: 0.7 });
    const suit = new THREE.MeshStandardMaterial({ color: 0x24345a, roughness: 0.8 });
    const shirt = new THREE.MeshStandardMaterial({ color: 0xeeeeee, roughness: 0.8 });
    const trousers = new THREE.MeshStandardMaterial({ color: 0x2c2c34, roughness: 0.9 });
    const shoes = new THREE.MeshStandardMaterial({ color: 0x18120e, roughness: 0.6 });
    const hair = new THREE.MeshStandardMaterial({ color: 0x3b2a20, roughness: 0.9 });
    const white = new THREE.MeshStandardMaterial({ color: 0xffffff, roughness: 0.3 });
    const iris = new THREE.MeshBasicMaterial({ color: 0x2b1a10 });
    const mouth = new THREE.MeshBasicMaterial({ color: 0x3a0c12 });
    const lip = new THREE.MeshStandardMaterial({ color: 0xb0605a, roughness: 0.6 });
    const tie = new THREE.MeshStandardMaterial({ color: 0x8c1c2c, roughness: 0.7 });
    this.materials = [skin, suit, shirt, trousers, shoes, hair, white, iris, mouth, lip, tie];

    const add = (bone, mesh, x, y, z) => {
      mesh.position.set(x, y, z);
      b[bone].add(mesh);
      return mesh;
    };
    // Trunk.
    add("hips", capsule(0.13, 0.06, "x", trousers, [1, 1, 0.75]), 0, 0, 0);
    add("spine", capsule(0.13, 0.06, "y", suit, [1.1, 1, 0.75]), 0, 0.06, 0);
    add("chest", capsule(0.145, 0.06, "y", suit, [1.12, 1, 0.78]), 0, 0.07, 0);
    add("upperChest", capsule(0.15, 0.05, "x", suit, [1.0, 0.75, 0.7]), 0, 0.06, -0.01);
    // Shirt front and tie, just proud of the jacket.
    add("upperChest", new THREE.Mesh(new THREE.BoxGeometry(0.1, 0.17, 0.02), shirt), 0, 0.05, 0.098);
    add("upperChest", new THREE.Mesh(new THREE.BoxGeometry(0.03, 0.16, 0.02), tie), 0, 0.045, 0.104);
    add("chest", new THREE.Mesh(new THREE.BoxGeometry(0.036, 0.1, 0.02), tie), 0, 0.1, 0.112);
    add("neck", new THREE.Mesh(new THREE.CylinderGeometry(0.056, 0.066, 0.05, 16), shirt), 0, 0.0, 0);
    add("neck", new THREE.Mesh(new THREE.CylinderGeometry(0.045, 0.05, 0.12, 12), skin), 0, 0.04, 0);
    // Head.
    const head = add("head", new THREE.Mesh(new THREE.SphereGeometry(0.11, 28, 20), skin), 0, 0.09, 0.01);
    head.scale.set(0.85, 1.1, 0.9);
    const hairCap = add("head",
      new THREE.Mesh(new THREE.SphereGeometry(0.116, 24, 12, 0, Math.PI * 2, 0, 1.35), hair),
      0, 0.1, 0.0);
    hairCap.scale.set(0.88, 1.08, 0.95);
    hairCap.rotation.x = -0.35;
    const nose = add("head", new THREE.Mesh(new THREE.ConeGeometry(0.016, 0.04, 8), skin), 0, 0.06, 0.1);
    nose.rotation.x = Math.PI / 2 + 0.5;
    add("head", new THREE.Mesh(new THREE.SphereGeometry(0.02, 10, 8), skin), 0.092, 0.085, 0.0)
      .scale.set(0.5, 1, 0.8); // ears
    add("head", new THREE.Mesh(new THREE.SphereGeometry(0.02, 10, 8), skin), -0.092, 0.085, 0.0)
      .scale.set(0.5, 1, 0.8);
    // Eyes: white balls on the eye bones, irises at their front (+Z), so turning the bone
    // turns the look; lids on the head close over them.
    this.lids = [];
    for (const side of ["leftEye", "rightEye"]) {
      const ball = add(side, new THREE.Mesh(new THREE.SphereGeometry(EYE_R, 16, 12), white), 0, 0, 0);
      ball.add(new THREE.Mesh(new THREE.CircleGeometry(EYE_R * 0.55, 16), iris));
      ball.children[0].position.z = EYE_R * 0.97;
      const lid = new THREE.Mesh(
        new THREE.SphereGeometry(EYE_R * 1.15, 16, 8, 0, Math.PI * 2, 0, Math.PI / 2),
        skin,
      );
      lid.position.copy(b[side].position);
      b.head.add(lid);
      this.lids.push(lid);
      const brow = add("head", new THREE.Mesh(new THREE.BoxGeometry(0.03, 0.006, 0.01), hair),
        b[side].position.x, 0.108, 0.096);
      brow.rotation.z = side === "leftEye" ? 0.12 : -0.12;
    }
    // Mouth: a dark opening between lips; its height follows the jaw opening.
    this.mouth = add("head", new THREE.Mesh(new THREE.SphereGeometry(1, 20, 10), mouth),
      0, MOUTH_Y, MOUTH_Z);
    this.upperLip = add("head", capsule(0.004, 0.03, "x", lip), 0, MOUTH_Y + 0.004, MOUTH_Z + 0.003);
    this.lowerLip = add("head", capsule(0.0045, 0.028, "x", lip), 0, MOUTH_Y - 0.004, MOUTH_Z + 0.003);
    // Arms.
    for (const [s, sign] of [["left", 1], ["right", -1]]) {
      add(`${s}Shoulder`, capsule(0.05, 0.07, "x", suit), sign * 0.06, 0, 0);
      add(`${s}UpperArm`, capsule(0.048, 0.2, "x", suit), sign * 0.135, 0, 0);
      add(`${s}LowerArm`, capsule(0.042, 0.19, "x", suit), sign * 0.125, 0, 0);
      add(`${s}Hand`, new THREE.Mesh(new THREE.BoxGeometry(0.1, 0.03, 0.08), skin), sign * 0.055, 0, 0);
      add(`${s}UpperLeg`, capsule(0.07, 0.3, "y", trousers), 0, -0.21, 0);
      add(`${s}LowerLeg`, capsule(0.055, 0.3, "y", trousers), 0, -0.2, 0);
      add(`${s}Foot`, new THREE.Mesh(new THREE.BoxGeometry(0.1, 0.07, 0.25), shoes), 0, -0.045, 0.05);
    }
    this.root.traverse((o) => {
      if (o.isMesh) o.castShadow = false;
    });
  }

  /** Places the root at the clone's mark: R_y(yaw + 180°) turns the model's +Z to its facing. */
  place(position, yawDeg) {
    this.root.position.copy(position);
    this.root.rotation.set(0, ((yawDeg + 180) * Math.PI) / 180, 0);
  }

  /** Shows a pose (pose.js layout). Allocation-free. */
  apply(pose) {
    const bones = this.bones;
    bones[BONE.hips].position.set(pose[HIPS], pose[HIPS + 1], pose[HIPS + 2]);
    for (let i = 0; i < bones.length; i++) {
      const o = ROT + i * 4;
      bones[i].quaternion.set(pose[o], pose[o + 1], pose[o + 2], pose[o + 3]);
    }
    this._aimEyes(pose);
    // Blinks: a lid turns down over its eye, from tilted back (open) to covering the front.
    for (let k = 0; k < 2; k++) {
      const w = pose[EXP + (k === 0 ? EXPR.blinkLeft : EXPR.blinkRight)];
      this.lids[k].rotation.x = -0.45 + w * (Math.PI / 2 + 0.45);
    }
    // Mouth: opening from the visemes; wider for ee/ih, narrower and rounder for ou/oh.
    const open = mouthOpenOf(pose);
    const v = vrmVowels(pose, this._vowels); // aa ih ou ee oh
    const happy = pose[EXP + EXPR.happy];
    const width = 0.017 + 0.006 * (v[1] + v[3]) - 0.006 * (v[2] + v[4]) + 0.003 * happy;
    this.mouth.scale.set(width, 0.0015 + 0.02 * open, 0.008);
    this.upperLip.position.y = MOUTH_Y + 0.0035 + 0.006 * open;
    this.lowerLip.position.y = MOUTH_Y - 0.0035 - 0.014 * open;
    this.upperLip.scale.x = this.lowerLip.scale.x = width / 0.019;
    this.mouthOpen = open;
  }

  _aimEyes(pose) {
    // The gaze point is in world space; turn each eye bone toward it, in head space.
    const gx = pose[GAZE];
    const gy = pose[GAZE + 1];
    const gz = pose[GAZE + 2];
    if (gx === 0 && gy === 0 && gz === 0) return; // no gaze: keep the frame's eye bones
    const head = this.byName.head;
    head.updateWorldMatrix(true, false);
    this._m.copy(head.matrixWorld).invert();
    for (let k = 0; k < 2; k++) {
      const eye = this.eyes[k];
      const t = this._eyeTarget.set(gx, gy, gz).applyMatrix4(this._m).sub(eye.position);
      const yaw = Math.max(-MAX_EYE_YAW, Math.min(MAX_EYE_YAW, Math.atan2(t.x, t.z)));
      const pitch = Math.max(
        -MAX_EYE_PITCH,
        Math.min(MAX_EYE_PITCH, Math.atan2(-t.y, Math.hypot(t.x, t.z))),
      );
      eye.rotation.set(pitch, yaw, 0, "YXZ");
    }
  }

  headWorldPosition(out) {
    this.byName.head.updateWorldMatrix(true, false);
    return out.set(0, 0.09, 0.01).applyMatrix4(this.byName.head.matrixWorld);
  }

  /** World position of a bone as drawn (null if there is no such bone). */
  boneWorldPosition(name, out) {
    const node = this.byName[name];
    if (!node) return null;
    node.updateWorldMatrix(true, false);
    return out.setFromMatrixPosition(node.matrixWorld);
  }

  /** World direction the face points to (the head bone's +Z). */
  headForward(out) {
    this.byName.head.updateWorldMatrix(true, false);
    return out.set(0, 0, 1).transformDirection(this.byName.head.matrixWorld);
  }

  mouthWorldPosition(out) {
    this.byName.head.updateWorldMatrix(true, false);
    return out.set(0, MOUTH_Y, MOUTH_Z).applyMatrix4(this.byName.head.matrixWorld);
  }

  /** World-space radius of the head (for screen rectangles). */
  get headRadius() {
    return 0.13;
  }
}
