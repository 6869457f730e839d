// Hand tracking: our tracked hands' 25 joints go to the room at the joints rate (read in the XR frame by
// xr.js), and every other member's joints are drawn as small spheres in their colour, every frame where the SDK
// interpolates them (`client.remoteJoints`: a joints interval behind the avatar's pose, and put on its hands; see
// avatars.js). A tracked hand's pose, which they are put on, is its wrist joint (xr.js handPoses).
import * as THREE from 'three';

import { HAND_JOINTS } from 'shoal';

const JOINT_RADIUS = 0.009; // metres: a fingertip's size, so that a hand reads as a hand
const SIDES = ['left', 'right'];
const _matrix = new THREE.Matrix4();
const _position = new THREE.Vector3();
const _rotation = new THREE.Quaternion();
const _scale = new THREE.Vector3();
const UNIT = new THREE.Vector3(1, 1, 1);

/** Sends our tracked hands' joints, at most `client.jointsRate` a second, and `{}` once when tracking stops. */
export class JointsSender {
  /**
   * @param {import('shoal').ShoalClient} client
   * @param {{presenting: boolean, handJoints: () => {left?: number[][], right?: number[][]}}} xr
   */
  constructor(client, xr) {
    this.client = client;
    this.xr = xr;
    this.readAt = -Infinity;
    this.tracking = false;
    /** What was sent last: `{left?, right?}` (empty once the hands are gone). */
    this.sent = {};
  }

  /** Once per frame (`now`: ms). Joints are read only when they are due, so most frames cost nothing. */
  update(now) {
    if (!this.xr.presenting) {
      this.stopped();
      return;
    }
    if (now - this.readAt < 1000 / this.client.jointsRate) return;
    this.readAt = now;
    const hands = this.xr.handJoints();
    if (!hands.left && !hands.right) {
      this.stopped();
      return;
    }
    try {
      if (!this.client.sendJoints(hands)) return;
    } catch (error) {
      // a runtime's odd joint poses (not finite, ...) skip this reading, not every frame after it
      console.warn('hand joints not sent:', error.message);
      return;
    }
    this.tracking = true;
    this.sent = hands;
  }

  /** No hand is tracked (any more): others hide ours. Said once, not every frame. */
  stopped() {
    if (!this.tracking) return;
    this.tracking = false;
    this.sent = {};
    this.client.sendJoints({});
  }
}

/** The joints of `hand` (an `XRHand`) in `frame`, world coordinates (`toWorld`: reference space to world), or null. */
export function readHand(frame, hand, space, toWorld) {
  const joints = [];
  for (const name of HAND_JOINTS) {
    const joint = readJoint(frame, hand.get(name), space, toWorld);
    if (!joint) return null; // a hand is all or nothing: half a hand would draw fingers off in space
    joints.push([...joint.pos, ...joint.rot]);
  }
  return joints;
}

/** Where `joint` (an `XRJointSpace`) is in `frame`: a world transform `{pos, rot}`, or null while it is not tracked. */
export function readJoint(frame, joint, space, toWorld) {
  const pose = joint && frame.getJointPose(joint, space);
  if (!pose) return null;
  _matrix.fromArray(pose.transform.matrix).premultiply(toWorld).decompose(_position, _rotation, _scale);
  return { pos: _position.toArray(), rot: _rotation.toArray() };
}

/** One member's hand joints: one InstancedMesh of small spheres (25 per hand), hidden while no hand is tracked. */
export class JointSpheres {
  constructor(material) {
    this.mesh = new THREE.InstancedMesh(
      new THREE.SphereGeometry(JOINT_RADIUS, 10, 6),
      material,
      SIDES.length * HAND_JOINTS.length,
    );
    this.mesh.name = 'hand-joints';
    this.mesh.count = 0;
    this.mesh.visible = false;
    // the spheres move every update: bounds computed once would cull them where they no longer are
    this.mesh.frustumCulled = false;
    /** The hands shown: `{left, right}`, each the joints drawn (interpolated) or null. */
    this.hands = { left: null, right: null };
  }

  /**
   * Show `joints` (`{left?, right?}`, each 25 `[x, y, z, qx, qy, qz, qw]`); null or neither hand hides the spheres.
   * Called every frame while the hands move: it allocates nothing.
   */
  show(joints) {
    let count = 0;
    for (const side of SIDES) {
      const hand = joints?.[side] ?? null;
      this.hands[side] = hand;
      if (!hand) continue;
      for (const joint of hand) {
        _position.fromArray(joint, 0);
        _rotation.fromArray(joint, 3);
        this.mesh.setMatrixAt(count, _matrix.compose(_position, _rotation, UNIT));
        count += 1;
      }
    }
    this.mesh.count = count;
    this.mesh.visible = count > 0;
    this.mesh.instanceMatrix.needsUpdate = true;
  }

  dispose() {
    this.mesh.geometry.dispose();
    this.mesh.dispose();
  }
}
