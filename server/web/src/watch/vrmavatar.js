// The clone's VRM model (the persona's own, or the one the server built from the persona's
// appearance: /avatar.json says which), loaded with three-vrm. Same interface as the
// procedural fallback: the frame's rotations go to the normalized humanoid bones (the
// protocol's convention is three-vrm's normalized pose), visemes to the five VRM mouth
// expressions, the expression weights by name (blinks, emotions), and the gaze point to
// VRM lookAt, which turns the eye bones.
import * as THREE from "three";
import { GLTFLoader } from "three/examples/jsm/loaders/GLTFLoader.js";
import { VRMLoaderPlugin, VRMUtils } from "@pixiv/three-vrm";
import { EXP, GAZE, HIPS, ROT, VRM_VOWELS, mouthOpenOf, vrmVowels } from "./pose.js";

const REST_HIPS_Y = 0.95; // the protocol's hips height; the model's own rest is added

export async function loadVrmAvatar(url, boneNames, expressionNames) {
  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.loadAsync(url);
  const vrm = gltf.userData.vrm;
  if (!vrm || !vrm.humanoid) throw new Error("not a VRM model (no humanoid)");
  VRMUtils.rotateVRM0(vrm); // VRM 0.x faces -Z; make it face +Z like VRM 1.0
  vrm.scene.traverse((o) => {
    if (o.isMesh) o.frustumCulled = false; // skinned bounds are the rest pose's
  });
  return new VrmAvatar(vrm, boneNames, expressionNames);
}

/** Where the mouth is in the rest pose: the centre of the vertices the "aa" expression moves
 * most (any VRM: the persona's own or a built one), relative to the head bone. */
function restMouthOffset(vrm) {
  const head = vrm.humanoid.getRawBoneNode("head");
  const expr = vrm.expressionManager?.getExpression("aa");
  const fallback = new THREE.Vector3(0, 0.03, 0.09);
  if (!head || !expr) return fallback;
  head.updateWorldMatrix(true, false);
  const sum = new THREE.Vector3();
  let n = 0;
  for (const bind of expr.binds ?? []) {
    for (const mesh of bind.primitives ?? []) {
      const delta = mesh.geometry.morphAttributes.position?.[bind.index];
      const pos = mesh.geometry.attributes.position;
      if (!delta || !pos) continue;
      let max = 0;
      for (let i = 0; i < delta.count; i++) max = Math.max(max, Math.hypot(delta.getX(i), delta.getY(i), delta.getZ(i)));
      for (let i = 0; i < delta.count; i++) {
        if (Math.hypot(delta.getX(i), delta.getY(i), delta.getZ(i)) > 0.5 * max) {
          sum.x += pos.getX(i);
          sum.y += pos.getY(i);
          sum.z += pos.getZ(i);
          n++;
        }
      }
    }
  }
  if (!n) return fallback;
  sum.divideScalar(n); // model space at rest (skinned meshes sit at the root)
  vrm.scene.updateWorldMatrix(true, true);
  sum.applyMatrix4(vrm.scene.matrixWorld);
  return head.worldToLocal(sum);
}

export class VrmAvatar {
  constructor(vrm, boneNames, expressionNames) {
    this.kind = "vrm";
    this.vrm = vrm;
    this.root = new THREE.Group();
    this.root.name = "clone";
    this.root.add(vrm.scene);
    this.nodes = boneNames.map((n) => vrm.humanoid.getNormalizedBoneNode(n));
    this.hips = this.nodes[0];
    this.hipsRest = this.hips ? this.hips.position.clone() : new THREE.Vector3();
    const em = vrm.expressionManager;
    const has = (n) => Boolean(em && em.getExpression(n));
    this.expressionNames = expressionNames.map((n) => (has(n) ? n : null));
    this.vowelNames = VRM_VOWELS.map((n) => (has(n) ? n : null));
    this.gazeTarget = new THREE.Object3D();
    this.root.add(this.gazeTarget);
    if (vrm.lookAt) {
      vrm.lookAt.target = this.gazeTarget;
      vrm.lookAt.autoUpdate = true;
    }
    this.mouthOffset = restMouthOffset(vrm);
    const head = vrm.humanoid.getRawBoneNode("head");
    this.headOffset = vrm.lookAt ? vrm.lookAt.offsetFromHeadBone.clone() : new THREE.Vector3(0, 0.06, 0);
    this.headOffset.z = 0.0;
    this._head = head;
    this._vowels = new Float32Array(5);
    this._inv = new THREE.Matrix4();
    this.mouthOpen = 0;
    this._last = performance.now();
  }

  place(position, yawDeg) {
    this.root.position.copy(position);
    this.root.rotation.set(0, ((yawDeg + 180) * Math.PI) / 180, 0);
  }

  apply(pose) {
    const nodes = this.nodes;
    if (this.hips) {
      this.hips.position.set(
        this.hipsRest.x + pose[HIPS],
        this.hipsRest.y + pose[HIPS + 1] - REST_HIPS_Y,
        this.hipsRest.z + pose[HIPS + 2],
      );
    }
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i];
      if (!node) continue;
      const o = ROT + i * 4;
      node.quaternion.set(pose[o], pose[o + 1], pose[o + 2], pose[o + 3]);
    }
    const em = this.vrm.expressionManager;
    if (em) {
      for (let i = 0; i < this.expressionNames.length; i++) {
        const n = this.expressionNames[i];
        if (n) em.setValue(n, pose[EXP + i]);
      }
      const v = vrmVowels(pose, this._vowels);
      for (let k = 0; k < 5; k++) if (this.vowelNames[k]) em.setValue(this.vowelNames[k], v[k]);
    }
    // The gaze target is a world point; the target object lives under the root.
    this.root.updateWorldMatrix(true, false);
    this._inv.copy(this.root.matrixWorld).invert();
    this.gazeTarget.position.set(pose[GAZE], pose[GAZE + 1], pose[GAZE + 2]).applyMatrix4(this._inv);
    const now = performance.now();
    this.vrm.update(Math.min(0.1, (now - this._last) / 1000));
    this._last = now;
    this.mouthOpen = mouthOpenOf(pose);
  }

  headWorldPosition(out) {
    if (!this._head) return out.copy(this.root.position);
    this._head.updateWorldMatrix(true, false);
    return out.copy(this.headOffset).applyMatrix4(this._head.matrixWorld);
  }

  /** World position of a humanoid bone as drawn (null if the model has no such bone). */
  boneWorldPosition(name, out) {
    const node = this.vrm.humanoid.getRawBoneNode(name);
    if (!node) return null;
    node.updateWorldMatrix(true, false);
    return out.setFromMatrixPosition(node.matrixWorld);
  }

  headForward(out) {
    const head = this.vrm.humanoid.getNormalizedBoneNode("head");
    if (!head) return out.set(0, 0, 1);
    head.updateWorldMatrix(true, false);
    return out.set(0, 0, 1).transformDirection(head.matrixWorld);
  }

  mouthWorldPosition(out) {
    if (!this._head) return out.copy(this.root.position);
    this._head.updateWorldMatrix(true, false);
    return out.copy(this.mouthOffset).applyMatrix4(this._head.matrixWorld);
  }

  get headRadius() {
    return 0.13;
  }
}
