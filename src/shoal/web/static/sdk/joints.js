/**
 * Hand joints (docs/protocol.md, `joints`): 25 per tracked hand, each `[x, y, z, qx, qy, qz, qw]` (a position in
 * metres, room space, and a rotation quaternion), in the order of the WebXR Hand Input spec (`HAND_JOINTS`).
 * They travel at their own, lower rate: `ShoalClient.sendJoints` sends at most `welcome.limits.joints_relay_rate` a
 * second.
 */

import { conjugateQuaternion, multiplyQuaternions, normalizeQuaternion, rotateVector } from './interpolation.js';

/** The 25 joints of a WebXR `XRHand`, in wire order: `hand.get(HAND_JOINTS[i])` is joint `i`. */
export const HAND_JOINTS = Object.freeze(
  ['wrist', 'thumb-metacarpal', 'thumb-phalanx-proximal', 'thumb-phalanx-distal', 'thumb-tip'].concat(
    ...['index-finger', 'middle-finger', 'ring-finger', 'pinky-finger'].map((finger) =>
      ['metacarpal', 'phalanx-proximal', 'phalanx-intermediate', 'phalanx-distal', 'tip'].map(
        (bone) => `${finger}-${bone}`,
      ),
    ),
  ),
);

export const JOINT_COUNT = 25;
/** Metres: the bound on every coordinate, as for poses. */
const MAX_COORDINATE = 10000;
/**
 * Metres from its wrist, per axis, that a joint may be: the wire's +-3.2767 m less 0.1 mm, since the offsets go
 * from the wrist as quantised; whatever passes here encodes. No hand comes near it.
 */
const MAX_REACH = 3.2766;

/**
 * The `joints` message for `{left, right}` (a hand absent or null is not tracked; neither: "no hands any more").
 * Throws TypeError for a hand that is not 25 joints of 7 numbers, RangeError for a number that is not finite,
 * a coordinate beyond +-10 km, a joint over 3.2766 m from its wrist on an axis or a zero rotation: what the server
 * would refuse as `invalid_message`.
 */
export function jointsMessage({ left = null, right = null } = {}) {
  const message = { type: 'joints' };
  if (left !== null) message.left = checkHand(left, 'left');
  if (right !== null) message.right = checkHand(right, 'right');
  return message;
}

function checkHand(joints, side) {
  if (!Array.isArray(joints) || joints.length !== JOINT_COUNT) {
    throw new TypeError(`the ${side} hand must be ${JOINT_COUNT} joints, got ${describe(joints)}`);
  }
  joints.forEach((joint, i) => {
    const where = `${side} joint ${i} (${HAND_JOINTS[i]})`;
    if (!Array.isArray(joint) || joint.length !== 7 || !joint.every((value) => typeof value === 'number')) {
      throw new TypeError(`${where} must be 7 numbers [x, y, z, qx, qy, qz, qw], got ${describe(joint)}`);
    }
    if (!joint.every(Number.isFinite)) throw new RangeError(`${where} has a number that is not finite`);
    if (!joint.slice(0, 3).every((value) => Math.abs(value) <= MAX_COORDINATE)) {
      throw new RangeError(`${where} has a coordinate beyond +-${MAX_COORDINATE} m`);
    }
    if (!joint.slice(3).some((value) => value !== 0)) throw new RangeError(`${where} has a zero rotation`);
    if (!joint.slice(0, 3).every((value, k) => Math.abs(value - joints[0][k]) <= MAX_REACH)) {
      throw new RangeError(`${where} is further than ${MAX_REACH} m from its wrist on an axis`);
    }
  });
  return joints;
}

function describe(value) {
  return Array.isArray(value) ? `${value.length} items` : typeof value;
}

/** True if `a` and `b` (joints messages or entries) carry the same hands with the same numbers. */
export function sameJoints(a, b) {
  return ['left', 'right'].every((side) => {
    const [x, y] = [a?.[side], b?.[side]];
    if (!x || !y) return !x && !y;
    return x.every((joint, i) => joint.every((value, k) => value === y[i][k]));
  });
}

/**
 * One hand's `joints` (world coordinates) moved rigidly from `from` to `to` (transforms `{pos, rot}`, e.g. the hand's
 * wrist and where a pose puts it): each joint keeps its position and rotation relative to the transform, so a joint
 * at `from` ends at `to`.
 */
export function carryJoints(joints, from, to) {
  const [start, end] = [normalizeQuaternion(from.rot), normalizeQuaternion(to.rot)];
  const turn = multiplyQuaternions(end, conjugateQuaternion(start));
  const [fx, fy, fz] = from.pos;
  const [tx, ty, tz] = to.pos;
  return joints.map((joint) => {
    const [x, y, z] = rotateVector(turn, [joint[0] - fx, joint[1] - fy, joint[2] - fz]);
    return [tx + x, ty + y, tz + z, ...multiplyQuaternions(turn, [joint[3], joint[4], joint[5], joint[6]])];
  });
}
