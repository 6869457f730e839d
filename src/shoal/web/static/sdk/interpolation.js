/**
 * Buffered interpolation for remote transforms.
 *
 * Poses arrive at the room's tick rate (20 Hz by default) while a headset renders at 72-90 fps. Drawing
 * each pose as it arrives looks jerky, so, as networked-aframe and Hubs do, a remote avatar is drawn a
 * little in the past (`delay`, 100 ms by default), interpolating between the two snapshots around that
 * moment. Times are server milliseconds (a tick's `t`), so network jitter does not distort the motion.
 *
 * Values are plain arrays: positions and scales `[x, y, z]`, rotations as quaternions `[x, y, z, w]`, hand joints
 * `[x, y, z, qx, qy, qz, qw]`.
 */

/** Linear interpolation of two equal-length number arrays. */
export function lerpVector(a, b, t) {
  return a.map((value, i) => value + (b[i] - value) * t);
}

/** Spherical interpolation of two unit quaternions `[x, y, z, w]` along the shorter arc. */
export function slerpQuaternion(a, b, t) {
  let [bx, by, bz, bw] = b;
  let cos = a[0] * bx + a[1] * by + a[2] * bz + a[3] * bw;
  if (cos < 0) {
    // q and -q are the same rotation: flip one to take the short way round
    [bx, by, bz, bw] = [-bx, -by, -bz, -bw];
    cos = -cos;
  }
  let wa = 1 - t;
  let wb = t;
  if (cos < 0.9995) {
    // far enough apart for a true slerp; closer, the normalised lerp below is exact enough and stable
    const angle = Math.acos(cos);
    const sin = Math.sin(angle);
    wa = Math.sin((1 - t) * angle) / sin;
    wb = Math.sin(t * angle) / sin;
  }
  const out = [a[0] * wa + bx * wb, a[1] * wa + by * wb, a[2] * wa + bz * wb, a[3] * wa + bw * wb];
  const length = Math.hypot(...out) || 1;
  return out.map((value) => value / length);
}

/** The product `a * b` of two quaternions `[x, y, z, w]`: the rotation `b`, then `a`. */
export function multiplyQuaternions(a, b) {
  const [ax, ay, az, aw] = a;
  const [bx, by, bz, bw] = b;
  return [
    aw * bx + ax * bw + ay * bz - az * by,
    aw * by - ax * bz + ay * bw + az * bx,
    aw * bz + ax * by - ay * bx + az * bw,
    aw * bw - ax * bx - ay * by - az * bz,
  ];
}

/** The conjugate of a quaternion `[x, y, z, w]`: for a unit quaternion, the inverse rotation. */
export function conjugateQuaternion(q) {
  return [-q[0], -q[1], -q[2], q[3]];
}

/** `q` scaled to unit length (the identity for a zero quaternion). */
export function normalizeQuaternion(q) {
  const length = Math.hypot(q[0], q[1], q[2], q[3]);
  return length > 0 ? [q[0] / length, q[1] / length, q[2] / length, q[3] / length] : [0, 0, 0, 1];
}

/** The vector `v` `[x, y, z]` turned by the unit quaternion `q` `[x, y, z, w]`. */
export function rotateVector(q, v) {
  const [x, y, z, w] = q;
  const [vx, vy, vz] = v;
  // v + w t + u x t, with u = (x, y, z) and t = 2 u x v
  const tx = 2 * (y * vz - z * vy);
  const ty = 2 * (z * vx - x * vz);
  const tz = 2 * (x * vy - y * vx);
  return [vx + w * tx + (y * tz - z * ty), vy + w * ty + (z * tx - x * tz), vz + w * tz + (x * ty - y * tx)];
}

/**
 * Interpolate two transforms `{pos, rot, scale?}`; `scale` is interpolated when both have one.
 * @returns {{pos: number[], rot: number[], scale?: number[]}}
 */
export function lerpTransform(a, b, t) {
  const out = { pos: lerpVector(a.pos, b.pos, t), rot: slerpQuaternion(a.rot, b.rot, t) };
  if (a.scale && b.scale) out.scale = lerpVector(a.scale, b.scale, t);
  else if (b.scale) out.scale = b.scale;
  return out;
}

/**
 * Interpolate two avatar poses `{head, left?, right?}`. A hand present only in `b` appears at once;
 * a hand missing from `b` (tracking lost) is dropped.
 */
export function lerpPose(a, b, t) {
  const out = { head: lerpTransform(a.head, b.head, t) };
  for (const hand of ['left', 'right']) {
    if (b[hand]) out[hand] = a[hand] ? lerpTransform(a[hand], b[hand], t) : b[hand];
  }
  return out;
}

/**
 * Interpolate two hands' joints `{left?, right?}` (each 25 joints `[x, y, z, qx, qy, qz, qw]`): per joint the
 * position is lerped and the rotation slerped. As in `lerpPose`, a hand present only in `b` appears at once and a
 * hand missing from `b` (tracking lost) is dropped, so `b` without hands gives `{}`.
 * @returns {{left?: number[][], right?: number[][]}}
 */
export function lerpJoints(a, b, t) {
  const out = {};
  for (const hand of ['left', 'right']) {
    if (b[hand]) out[hand] = a[hand] ? lerpHand(a[hand], b[hand], t) : b[hand];
  }
  return out;
}

/** One hand's joints blended joint by joint (both hands have the same joints, in the same order). */
function lerpHand(a, b, t) {
  return a.map((from, i) => {
    const to = b[i];
    const joint = lerpVector(from, to, t); // the position; the rotation's slots are overwritten below
    const rotation = slerpQuaternion(from.slice(3), to.slice(3), t);
    for (let k = 0; k < 4; k += 1) joint[3 + k] = rotation[k];
    return joint;
  });
}

export class InterpolationBuffer {
  /**
   * @param {object} [options]
   * @param {number} [options.delay] how far in the past to render, in ms (default 100: two 20 Hz ticks).
   * @param {number} [options.interval] the expected time between snapshots in ms (default 50, the tick interval).
   * @param {(a: any, b: any, t: number) => any} [options.interpolate] blends two values (default `lerpTransform`;
   *   use `lerpPose` for avatar poses, `lerpJoints` for hand joints).
   * @param {number} [options.capacity] snapshots kept at most (default 32).
   */
  constructor({ delay = 100, interval = 50, interpolate = lerpTransform, capacity = 32 } = {}) {
    Object.assign(this, { delay, interval, interpolate, capacity });
    /** @type {{time: number, value: any}[]} oldest first */
    this.snapshots = [];
  }

  /**
   * Add the value a remote object had at server time `time` (ms). A snapshot older than the newest is
   * ignored; one with the same time replaces it.
   */
  push(time, value) {
    const last = this.snapshots.at(-1);
    if (last) {
      if (time < last.time) return;
      if (time === last.time) {
        last.value = value;
        return;
      }
      // Nothing arrived for a while because the object stood still (the server sends only changes).
      // It started moving one interval ago, not when the previous snapshot was taken: hold it until then.
      if (time - last.time > 2.5 * this.interval)
        this.snapshots.push({ time: time - this.interval, value: last.value });
    }
    this.snapshots.push({ time, value });
    if (this.snapshots.length > this.capacity) this.snapshots.splice(0, this.snapshots.length - this.capacity);
  }

  /**
   * The value at server time `now - delay`: interpolated between the snapshots around it, the oldest one
   * before the buffer starts, the newest one once past its end (no extrapolation). Null when empty.
   */
  sample(now) {
    const snapshots = this.snapshots;
    if (snapshots.length === 0) return null;
    const at = now - this.delay;
    if (at <= snapshots[0].time) return snapshots[0].value;
    const newest = snapshots.length - 1;
    if (at >= snapshots[newest].time) {
      if (newest > 0) snapshots.splice(0, newest); // the past is no longer needed
      return snapshots[0].value;
    }
    let i = 0;
    while (snapshots[i + 1].time <= at) i += 1;
    if (i > 0) snapshots.splice(0, i);
    const [from, to] = snapshots;
    return this.interpolate(from.value, to.value, (at - from.time) / (to.time - from.time));
  }

  /** The newest value pushed, or null. */
  get latest() {
    return this.snapshots.at(-1)?.value ?? null;
  }

  clear() {
    this.snapshots.length = 0;
  }
}
