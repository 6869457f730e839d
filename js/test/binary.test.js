// The binary codec (shoal.v1.bin): the frames of tests/vectors/binary.json, which the Python codec produces and
// accepts too (tests/test_codec_binary.py), sizes, refusals, and the client offering binary with a JSON fallback.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';

import {
  binaryCodec,
  decodeJoints,
  decodePose,
  decodeTick,
  encodeJoints,
  encodePose,
  packQuaternion,
  unpackQuaternion,
} from '../../src/shoal/web/static/sdk/binary.js';
import { ShoalClient } from '../../src/shoal/web/static/sdk/shoal.js';

const VECTORS = JSON.parse(readFileSync(new URL('../../tests/vectors/binary.json', import.meta.url), 'utf8')).cases;

const hex = (bytes) => Buffer.from(bytes).toString('hex');
const fromHex = (text) => new Uint8Array(Buffer.from(text, 'hex'));

/** A JSON value without its null fields: how the JS side leaves absent parts out. */
function withoutNulls(value) {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

describe('the vectors shared with Python', () => {
  for (const vector of VECTORS) {
    test(vector.name, () => {
      const frame = fromHex(vector.hex);
      if (vector.kind === 'pose') {
        assert.equal(hex(encodePose(vector.message)), vector.hex);
        assert.deepEqual(decodePose(frame), withoutNulls(vector.decoded));
      } else if (vector.kind === 'joints') {
        assert.equal(hex(encodeJoints(vector.message)), vector.hex);
        assert.equal(hex(binaryCodec.encode(vector.message)), vector.hex);
        assert.deepEqual(decodeJoints(frame), withoutNulls(vector.decoded));
      } else if (vector.kind === 'tick') {
        assert.deepEqual(decodeTick(frame), withoutNulls(vector.decoded));
        assert.deepEqual(binaryCodec.decode(frame.buffer), withoutNulls(vector.decoded));
      } else {
        assert.equal(hex(binaryCodec.encode(vector.message)), vector.hex);
      }
    });
  }
});

describe('binaryCodec', () => {
  const avatar = {
    type: 'pose',
    head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] },
    left: { pos: [-0.3, 1.1, -0.3], rot: [0, 0, 0, 1] },
    right: { pos: [0.3, 1.1, -0.3], rot: [0, Math.SQRT1_2, 0, Math.SQRT1_2] },
    t: 1795262169485.5,
  };

  test('a full avatar pose is 49 bytes, a head alone 17', () => {
    assert.equal(binaryCodec.encode(avatar).length, 49);
    assert.equal(binaryCodec.encode({ type: 'pose', head: avatar.head }).length, 17);
  });

  test('other messages travel as the JSON tag and their JSON text, both ways', () => {
    const frame = binaryCodec.encode({ type: 'join', room: 'lobby' });
    assert.equal(frame[0], 0);
    assert.equal(Buffer.from(frame.subarray(1)).toString(), '{"type":"join","room":"lobby"}');
    const welcome = new TextEncoder().encode('\u0000{"type":"left","room":"lobby"}');
    assert.deepEqual(binaryCodec.decode(welcome.buffer), { type: 'left', room: 'lobby' });
  });

  test('random rotations survive within 0.01 degrees', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
    for (let i = 0; i < 2000; i += 1) {
      const q = [random(), random(), random(), random()];
      const norm = Math.hypot(...q);
      const unit = q.map((v) => v / norm);
      const back = unpackQuaternion(...packQuaternion(q));
      const dot = Math.min(1, Math.abs(unit.reduce((sum, v, k) => sum + v * back[k], 0)));
      assert.ok((2 * Math.acos(dot) * 180) / Math.PI < 0.01, `${q} -> ${back}`);
    }
  });

  test('frames that break the format are refused', () => {
    const full = encodePose(avatar);
    assert.throws(() => decodePose(full.subarray(0, full.length - 1)), RangeError);
    assert.throws(() => decodePose(new Uint8Array([...full, 0])), RangeError);
    const reserved = full.slice();
    reserved[1] |= 0x40;
    assert.throws(() => decodePose(reserved), RangeError);
    assert.throws(() => unpackQuaternion(0x7ffe, 0x7ffe, 0x7ffe), RangeError); // squares sum to 1.5
    assert.throws(() => encodePose({ type: 'pose', head: { pos: [0, 0, 0], rot: [0, 0, 0, 0] } }), RangeError);
    assert.throws(() => binaryCodec.decode('{"type":"tick"}'), TypeError); // a text frame
    assert.throws(() => binaryCodec.decode(new Uint8Array([9]).buffer), RangeError); // an unknown tag
  });
});

describe('hand joints (tag 0x03)', () => {
  const IDENTITY = [0, 0, 0, 1];
  /** A hand of 25 joints: the wrist at `wrist`, joint i `offset(i)` metres from it, all unrotated. */
  const hand = (wrist, offset = () => [0, 0, 0]) =>
    Array.from({ length: 25 }, (_, i) => [...wrist.map((v, k) => v + offset(i)[k]), ...IDENTITY]);
  const splayed = (i) => [0.01 * (i % 5), 0.02 * Math.floor(i / 5), -0.004 * i];
  const IDENTITY_WORDS = 'ffbfffbfff3f'; // smallest-three of [0, 0, 0, 1]: index 3, the others at zero

  test('the bytes of the spec: the wrist as i24 0.1 mm steps, each joint as i16 steps from the decoded wrist', () => {
    const joints = hand([0.1, 1.5, -0.2]);
    joints[4] = [0.1123, 1.4, -0.2, ...IDENTITY]; // thumb tip: +123 steps in x, -1000 in y
    const frame = encodeJoints({ type: 'joints', left: joints });
    const wrist = 'e80300' + '983a00' + '30f8ff'; // 1000, 15000, -2000 as i24 little-endian
    const still = '000000000000' + IDENTITY_WORDS;
    const tip = '7b0018fc0000' + IDENTITY_WORDS; // 123, -1000, 0 as i16
    assert.equal(hex(frame), '0301' + wrist + IDENTITY_WORDS + still.repeat(3) + tip + still.repeat(20));
    assert.equal(frame.length, 2 + 303);
    const back = decodeJoints(frame);
    assert.deepEqual(Object.keys(back), ['type', 'left']);
    assert.deepEqual(back.left[4], [0.1 + 123 / 10000, 1.5 + -1000 / 10000, -0.2, ...IDENTITY]);
  });

  test('both hands are 608 bytes, no hands 2; a wrist beyond +-838 m goes as float64 with its WIDE flag', () => {
    const both = encodeJoints({ type: 'joints', left: hand([-0.2, 1, -0.3], splayed), right: hand([0.2, 1, -0.3]) });
    assert.equal(both.length, 608);
    assert.equal(both[1], 0x03);
    assert.equal(hex(encodeJoints({ type: 'joints' })), '0300');
    assert.equal(hex(encodeJoints({ type: 'joints', left: null, right: null })), '0300');
    const far = encodeJoints({ type: 'joints', right: hand([1000, 1, 0], splayed) });
    assert.equal(far[1], 0x02 | 0x08);
    assert.equal(far.length, 2 + 24 + 6 + 24 * 12);
    const back = decodeJoints(far);
    assert.deepEqual(back.right[0].slice(0, 3), [1000, 1, 0]); // exact
    assert.equal(back.left, undefined);
  });

  test('round trips within the quantisation step; rotations are normalised', () => {
    const left = hand([-0.21, 1.03, -0.35], splayed);
    left[7] = [left[7][0], left[7][1], left[7][2], 0, 0, 0, 2];
    const back = decodeJoints(encodeJoints({ type: 'joints', left }));
    back.left.forEach((joint, i) => {
      joint.slice(0, 3).forEach((v, k) => assert.ok(Math.abs(v - left[i][k]) <= 1e-4, `joint ${i} axis ${k}`));
    });
    assert.deepEqual(back.left[7].slice(3), IDENTITY);
  });

  test('the tick JOINTS section (flag 0x04) sits after the poses: count, then id + hands per entry', () => {
    const body = encodeJoints({ type: 'joints', left: hand([0.5, 1.2, 0]) }).subarray(1);
    const tick = new Uint8Array(2 + 4 + 8 + 2 + 2 + 4 + body.length);
    const view = new DataView(tick.buffer);
    view.setUint8(0, 0x02);
    view.setUint8(1, 0x04);
    view.setUint32(2, 9, true);
    view.setFloat64(6, 1795262169650, true);
    view.setUint16(14, 0, true); // no poses
    view.setUint16(16, 1, true); // one joints entry
    view.setUint32(18, 42, true);
    tick.set(body, 22);
    const message = binaryCodec.decode(tick.buffer);
    assert.deepEqual(Object.keys(message), ['type', 'seq', 't', 'poses', 'joints']);
    assert.equal(message.joints.length, 1);
    assert.equal(message.joints[0].id, 42);
    assert.deepEqual(message.joints[0].left[24], [0.5, 1.2, 0, ...IDENTITY]);
    assert.throws(() => decodeTick(tick.subarray(0, tick.length - 1)), RangeError);
    assert.throws(() => decodeTick(new Uint8Array([...tick, 0])), RangeError);
  });

  test('frames that break the format are refused', () => {
    const frame = encodeJoints({ type: 'joints', left: hand([0, 1, 0]) });
    assert.throws(() => decodeJoints(frame.subarray(0, frame.length - 1)), /truncated/);
    assert.throws(() => decodeJoints(new Uint8Array([...frame, 0])), /too many/);
    for (const flags of [0x10, 0x80, 0x04, 0x01 | 0x08]) {
      const bad = frame.slice();
      bad[1] = flags;
      assert.throws(() => decodeJoints(bad), RangeError, `hand flags ${flags}`);
    }
    const wide = encodeJoints({ type: 'joints', left: hand([2000, 1, 0]) });
    new DataView(wide.buffer).setFloat64(2, 10001, true); // the wrist's x beyond the +-10 km bound
    assert.throws(() => decodeJoints(wide), /10000/);
    assert.throws(() => binaryCodec.decode(encodePose({ type: 'pose', head: { pos: [0, 0, 0], rot: IDENTITY } })));
  });

  test('joints that the server would refuse throw before anything is sent', () => {
    const good = hand([0, 1, 0]);
    const cases = [
      [{ left: good.slice(1) }, TypeError, /25 joints, got 24/],
      [{ right: 'hand' }, TypeError, /25 joints, got string/],
      [{ left: good.map((joint, i) => (i === 3 ? joint.slice(0, 6) : joint)) }, TypeError, /left joint 3/],
      [{ left: good.map((joint, i) => (i === 2 ? [NaN, ...joint.slice(1)] : joint)) }, RangeError, /finite/],
      [{ left: good.map((joint, i) => (i === 0 ? [0, 10001, ...joint.slice(2)] : joint)) }, RangeError, /10000 m/],
      [{ left: good.map((joint, i) => (i === 9 ? [0, 1, 0, 0, 0, 0, 0] : joint)) }, RangeError, /zero rotation/],
      [{ left: hand([0, 1, 0], (i) => [i === 20 ? 3.3 : 0, 0, 0]) }, RangeError, /joint 20 .* 3\.2766 m/],
    ];
    for (const [joints, kind, message] of cases) {
      assert.throws(() => binaryCodec.encode({ type: 'joints', ...joints }), kind);
      assert.throws(() => encodeJoints({ type: 'joints', ...joints }), message);
    }
    // at the edge: 3.2766 m from the wrist is accepted and encodes; 3.27665 m is refused before encoding
    const reach = (d) => ({ type: 'joints', right: hand([0.00004, 1, 0], (i) => [0, 0, i === 24 ? -d : 0]) });
    assert.equal(new DataView(encodeJoints(reach(3.2766)).buffer).getInt16(2 + 9 + 6 + 23 * 12 + 4, true), -32766);
    assert.throws(() => encodeJoints(reach(3.27665)), /3\.2766 m from its wrist/);
  });
});

/** A socket whose server accepts the subprotocol `accepts` (or none of ours). */
function socketAccepting(accepts) {
  return class FakeSocket {
    static last = null;
    constructor(url, protocols) {
      this.offered = protocols;
      this.protocol = protocols.includes(accepts) ? accepts : '';
      this.readyState = 0;
      this.sent = [];
      FakeSocket.last = this;
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.({});
      }, 0);
    }
    send(frame) {
      this.sent.push(frame);
    }
    close() {
      this.readyState = 3;
    }
  };
}

describe('a client built with binaryCodec', () => {
  const clients = [];
  afterEach(() => clients.splice(0).forEach((client) => client.close()));

  async function opened(accepts) {
    const Socket = socketAccepting(accepts);
    const client = new ShoalClient({ url: 'ws://127.0.0.1:9/ws', codec: binaryCodec, WebSocket: Socket });
    clients.push(client);
    client.connect().catch(() => {});
    // until the hello is out: a fixed sleep can end first on a loaded machine (seen under CI)
    for (const deadline = Date.now() + 2000; !Socket.last?.sent.length && Date.now() < deadline;) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    return [client, Socket.last];
  }

  test('offers binary then JSON and speaks binary when the server picks it', async () => {
    const [client, socket] = await opened('shoal.v1.bin');
    assert.deepEqual(socket.offered, ['shoal.v1.bin', 'shoal.v1.json']);
    assert.equal(client.wire, binaryCodec);
    const [hello] = socket.sent;
    assert.ok(hello instanceof Uint8Array && hello[0] === 0);
    assert.equal(JSON.parse(Buffer.from(hello.subarray(1)).toString()).type, 'hello');
  });

  test('falls back to JSON text when the server does not speak binary', async () => {
    const [client, socket] = await opened('shoal.v1.json');
    assert.equal(client.wire.subprotocol, 'shoal.v1.json');
    assert.equal(typeof socket.sent[0], 'string');
    assert.equal(JSON.parse(socket.sent[0]).type, 'hello');
  });
});
