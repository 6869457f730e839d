import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  conjugateQuaternion,
  InterpolationBuffer,
  lerpJoints,
  lerpPose,
  lerpTransform,
  lerpVector,
  multiplyQuaternions,
  normalizeQuaternion,
  rotateVector,
  slerpQuaternion,
} from '../../src/shoal/web/static/sdk/interpolation.js';
import { carryJoints } from '../../src/shoal/web/static/sdk/joints.js';

const IDENTITY = [0, 0, 0, 1];
const YAW_90 = [0, Math.SQRT1_2, 0, Math.SQRT1_2];

function assertClose(actual, expected, tolerance = 1e-9) {
  assert.equal(actual.length, expected.length);
  actual.forEach((value, i) => assert.ok(Math.abs(value - expected[i]) <= tolerance, `${actual} != ${expected}`));
}

describe('vector and quaternion blending', () => {
  test('lerpVector blends each component', () => {
    assertClose(lerpVector([0, 1, 2], [2, 3, 6], 0.25), [0.5, 1.5, 3]);
  });

  test('slerpQuaternion halfway between identity and a 90 degree yaw is a 45 degree yaw', () => {
    const half = Math.PI / 8; // half of 45 degrees
    assertClose(slerpQuaternion(IDENTITY, YAW_90, 0.5), [0, Math.sin(half), 0, Math.cos(half)]);
  });

  test('slerpQuaternion takes the short way when the signs disagree', () => {
    const negatedYaw = YAW_90.map((value) => -value); // the same rotation as YAW_90
    const halfway = slerpQuaternion(IDENTITY, negatedYaw, 0.5);
    const half = Math.PI / 8;
    assertClose(halfway, [0, Math.sin(half), 0, Math.cos(half)]);
  });

  test('slerpQuaternion of nearly equal rotations stays unit length', () => {
    const almost = [0, 1e-4, 0, 1];
    const out = slerpQuaternion(IDENTITY, almost, 0.3);
    assert.ok(Math.abs(Math.hypot(...out) - 1) < 1e-12);
  });

  test('lerpTransform blends scale only when both sides have it', () => {
    const a = { pos: [0, 0, 0], rot: IDENTITY, scale: [1, 1, 1] };
    const b = { pos: [2, 0, 0], rot: IDENTITY, scale: [3, 3, 3] };
    assert.deepEqual(lerpTransform(a, b, 0.5).scale, [2, 2, 2]);
    assert.equal(
      lerpTransform({ pos: [0, 0, 0], rot: IDENTITY }, { pos: [1, 1, 1], rot: IDENTITY }, 0.5).scale,
      undefined,
    );
  });

  test('lerpPose shows a hand that appears and drops a hand that is lost', () => {
    const hand = { pos: [0.3, 1, 0], rot: IDENTITY };
    const a = { head: { pos: [0, 1.6, 0], rot: IDENTITY }, left: hand };
    const b = { head: { pos: [1, 1.6, 0], rot: IDENTITY }, right: hand };
    const out = lerpPose(a, b, 0.5);
    assertClose(out.head.pos, [0.5, 1.6, 0]);
    assert.equal(out.left, undefined);
    assert.deepEqual(out.right, hand);
  });
});

describe('quaternion helpers', () => {
  const PITCH_90 = [Math.SQRT1_2, 0, 0, Math.SQRT1_2];

  test('multiplyQuaternions applies the right-hand rotation first', () => {
    assertClose(multiplyQuaternions(YAW_90, YAW_90), [0, 1, 0, 0], 1e-12); // two quarter turns: a half turn
    assertClose(multiplyQuaternions(IDENTITY, PITCH_90), PITCH_90);
    // pitch then yaw takes +Y (up) to +Y turned by the yaw after the pitch took it to +Z: (1, 0, 0)
    assertClose(rotateVector(multiplyQuaternions(YAW_90, PITCH_90), [0, 1, 0]), [1, 0, 0], 1e-12);
  });

  test('rotateVector turns a vector; the conjugate turns it back', () => {
    assertClose(rotateVector(YAW_90, [1, 0, 0]), [0, 0, -1], 1e-12); // 90 degrees about +Y: +X goes to -Z
    assertClose(rotateVector(PITCH_90, [0, 1, 0]), [0, 0, 1], 1e-12);
    assertClose(rotateVector(conjugateQuaternion(YAW_90), [0, 0, -1]), [1, 0, 0], 1e-12);
    assertClose(multiplyQuaternions(conjugateQuaternion(PITCH_90), PITCH_90), IDENTITY, 1e-12);
  });

  test('normalizeQuaternion scales to unit length; a zero quaternion becomes the identity', () => {
    assertClose(normalizeQuaternion([0, 2, 0, 2]), YAW_90, 1e-12);
    assert.deepEqual(normalizeQuaternion([0, 0, 0, 0]), IDENTITY);
  });

  test('carryJoints moves joints rigidly with a transform: a joint at `from` ends at `to`', () => {
    const from = { pos: [1, 1, 0], rot: YAW_90 };
    const joints = [
      [1, 1, 0, ...YAW_90], // at `from`, turned as it is
      [1, 1, -0.1, ...IDENTITY], // 10 cm in front of it in the world (-Z): along its +X (turned 90 degrees about Y)
    ];
    assertClose(carryJoints(joints, from, from)[1], joints[1], 1e-12); // not moved: where they were
    // to 1 m higher, turned back to the identity (a rotation given unnormalised)
    const carried = carryJoints(joints, from, { pos: [1, 2, 0], rot: [0, 0, 0, 2] });
    assertClose(carried[0], [1, 2, 0, ...IDENTITY], 1e-12);
    assertClose(carried[1], [1.1, 2, 0, ...conjugateQuaternion(YAW_90)], 1e-12); // along +X of the new transform
    assert.deepEqual(joints[1], [1, 1, -0.1, ...IDENTITY], 'its input is left alone');
  });
});

describe('hand joints blending', () => {
  /** 25 joints `[x, y, z, qx, qy, qz, qw]`, joint i at (x + i / 100, y, 0), all turned by `rot`. */
  const hand = (x, y = 1, rot = IDENTITY) => Array.from({ length: 25 }, (_, i) => [x + i / 100, y, 0, ...rot]);
  const YAW_45 = [0, Math.sin(Math.PI / 8), 0, Math.cos(Math.PI / 8)];

  test('lerpJoints puts every joint at the midpoint, its rotation slerped', () => {
    const a = { left: hand(0, 1), right: hand(1, 1) };
    const b = { left: hand(0.2, 1.4, YAW_90), right: hand(1, 2, YAW_90) };
    const out = lerpJoints(a, b, 0.5);
    assert.deepEqual(Object.keys(out).sort(), ['left', 'right']);
    for (const [side, x, y] of [
      ['left', 0.1, 1.2],
      ['right', 1, 1.5],
    ]) {
      assert.equal(out[side].length, 25);
      out[side].forEach((joint, i) => {
        assert.equal(joint.length, 7);
        assertClose(joint.slice(0, 3), [x + i / 100, y, 0], 1e-12);
        assertClose(joint.slice(3), YAW_45, 1e-12); // halfway to a 90 degree yaw: 45, not a normalised lerp's guess
      });
    }
    // a quarter of the way: a quarter of the distance and of the angle
    const quarter = lerpJoints(a, b, 0.25).left[3];
    assertClose(quarter.slice(0, 3), [0.05 + 0.03, 1.1, 0], 1e-12);
    assertClose(quarter.slice(3), [0, Math.sin(Math.PI / 16), 0, Math.cos(Math.PI / 16)], 1e-12);
  });

  test('lerpJoints takes the short way round when one rotation is negated', () => {
    const flipped = YAW_90.map((value) => -value);
    const out = lerpJoints({ right: hand(0) }, { right: hand(0, 1, flipped) }, 0.5);
    for (const joint of out.right) assertClose(joint.slice(3), YAW_45, 1e-12);
  });

  test('lerpJoints shows a hand that appears at once and drops a hand that is lost', () => {
    const a = { left: hand(0) };
    const b = { right: hand(1) };
    const out = lerpJoints(a, b, 0.1);
    assert.equal(out.left, undefined, 'missing from the newer snapshot: dropped');
    assert.equal(out.right, b.right, 'only in the newer snapshot: shown as it is, not blended from nowhere');
    assert.deepEqual(lerpJoints(a, {}, 0.01), {}, 'no hands any more: nothing to draw');
  });

  test('lerpJoints leaves its inputs alone', () => {
    const a = { left: hand(0) };
    const b = { left: hand(1, 2, YAW_90) };
    const copies = structuredClone([a, b]);
    lerpJoints(a, b, 0.5);
    assert.deepEqual([a, b], copies);
  });

  test('an InterpolationBuffer of joints samples them between two snapshots', () => {
    const buffer = new InterpolationBuffer({ delay: 100, interval: 100, interpolate: lerpJoints });
    buffer.push(1000, { left: hand(0) });
    buffer.push(1100, { left: hand(1, 1, YAW_90) });
    const wrist = buffer.sample(1150).left[0]; // renders 1050: halfway
    assertClose(wrist, [0.5, 1, 0, ...YAW_45], 1e-12);
    buffer.push(1200, {});
    assert.deepEqual(buffer.sample(1250), {}, 'the hands are gone once the rendered moment passes the last hands');
  });
});

describe('InterpolationBuffer', () => {
  const at = (x) => ({ pos: [x, 0, 0], rot: IDENTITY });

  test('an empty buffer samples null', () => {
    assert.equal(new InterpolationBuffer().sample(1000), null);
  });

  test('samples delay ms in the past, between the two snapshots around that moment', () => {
    const buffer = new InterpolationBuffer({ delay: 100, interval: 50 });
    buffer.push(1000, at(0));
    buffer.push(1050, at(1));
    buffer.push(1100, at(2));
    assertClose(buffer.sample(1125).pos, [0.5, 0, 0]); // renders 1025: halfway from 1000 to 1050
    assertClose(buffer.sample(1175).pos, [1.5, 0, 0]);
  });

  test('holds the oldest snapshot before the buffer starts and the newest after it ends', () => {
    const buffer = new InterpolationBuffer({ delay: 100, interval: 50 });
    buffer.push(1000, at(0));
    buffer.push(1050, at(1));
    assertClose(buffer.sample(1000).pos, [0, 0, 0]);
    assertClose(buffer.sample(5000).pos, [1, 0, 0]);
    assert.equal(buffer.snapshots.length, 1, 'snapshots in the past are dropped');
  });

  test('ignores a snapshot older than the newest and replaces one with the same time', () => {
    const buffer = new InterpolationBuffer({ delay: 0 });
    buffer.push(1000, at(0));
    buffer.push(1050, at(1));
    buffer.push(1020, at(9));
    buffer.push(1050, at(2));
    assert.equal(buffer.snapshots.length, 2);
    assertClose(buffer.latest.pos, [2, 0, 0]);
  });

  test('after standing still, motion starts one interval before the new snapshot, not at the old one', () => {
    const buffer = new InterpolationBuffer({ delay: 100, interval: 50 });
    buffer.push(1000, at(0));
    buffer.push(5000, at(1)); // nothing for 4 s: the object stood still at 0 until about 4950
    assertClose(buffer.sample(5000).pos, [0, 0, 0]); // renders 4900: still standing
    assertClose(buffer.sample(5075).pos, [0.5, 0, 0]); // renders 4975: halfway through the move
  });

  test('keeps at most capacity snapshots', () => {
    const buffer = new InterpolationBuffer({ capacity: 4 });
    for (let i = 0; i < 10; i += 1) buffer.push(1000 + i * 50, at(i));
    assert.equal(buffer.snapshots.length, 4);
    assertClose(buffer.latest.pos, [9, 0, 0]);
  });

  test('blends poses with lerpPose', () => {
    const buffer = new InterpolationBuffer({ delay: 100, interpolate: lerpPose });
    buffer.push(1000, { head: at(0) });
    buffer.push(1050, { head: at(2) });
    assertClose(buffer.sample(1125).head.pos, [1, 0, 0]);
  });
});
