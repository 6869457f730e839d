// The binary codec (shoal.v1.bin): the frames of tests/vectors/binary.json, which the Python codec produces and
// accepts too (tests/test_codec_binary.py), sizes, refusals, and the client offering binary with a JSON fallback.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { afterEach, describe, test } from 'node:test';

import {
  binaryCodec,
  decodePose,
  decodeTick,
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
    await new Promise((resolve) => setTimeout(resolve, 5));
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
