// Backoff, clock sync and the JSON codec: the SDK's small pure pieces.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Backoff } from '../../src/shoal/web/static/sdk/backoff.js';
import { ClockSync } from '../../src/shoal/web/static/sdk/clock.js';
import { jsonCodec } from '../../src/shoal/web/static/sdk/codec.js';
import { mergeProps } from '../../src/shoal/web/static/sdk/shoal.js';

describe('Backoff', () => {
  test('doubles from initialDelay up to maxDelay without jitter', () => {
    const backoff = new Backoff({ initialDelay: 100, maxDelay: 1000, jitter: 0 });
    const delays = Array.from({ length: 6 }, () => backoff.next());
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    assert.equal(backoff.attempt, 6);
  });

  test('jitter removes up to its fraction of each delay', () => {
    const lowest = new Backoff({ initialDelay: 1000, jitter: 0.5, random: () => 0.999999 });
    const highest = new Backoff({ initialDelay: 1000, jitter: 0.5, random: () => 0 });
    assert.ok(Math.abs(lowest.next() - 500) < 0.01);
    assert.equal(highest.next(), 1000);
  });

  test('random delays stay within their bounds', () => {
    const backoff = new Backoff({ initialDelay: 200, maxDelay: 5000 });
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const base = Math.min(5000, 200 * 2 ** attempt);
      const delay = backoff.next();
      assert.ok(delay > base / 2 - 1e-9 && delay <= base, `attempt ${attempt}: ${delay}`);
    }
  });

  test('reset starts again from initialDelay', () => {
    const backoff = new Backoff({ initialDelay: 100, jitter: 0 });
    backoff.next();
    backoff.next();
    backoff.reset();
    assert.equal(backoff.next(), 100);
  });

  test('refuses nonsense settings', () => {
    assert.throws(() => new Backoff({ initialDelay: 0 }), RangeError);
    assert.throws(() => new Backoff({ jitter: 2 }), RangeError);
  });
});

describe('ClockSync', () => {
  test('a pong gives the round trip and the offset at the midpoint', () => {
    const clock = new ClockSync();
    // sent at local 1000, the server read 5060 at the midpoint, received at local 1100
    clock.addSample(1000, 5060, 1100);
    assert.equal(clock.rtt, 100);
    assert.equal(clock.offset, 4010);
    assert.equal(clock.serverNow(2000), 6010);
    assert.ok(clock.synced);
  });

  test('the sample with the shortest round trip decides the offset', () => {
    const clock = new ClockSync();
    clock.addSample(0, 5000, 200); // rtt 200, offset 4900
    clock.addSample(1000, 5010 + 1000, 1020); // rtt 20, offset 5000
    clock.addSample(2000, 7000, 2300); // rtt 300, offset 5150
    assert.equal(clock.offset, 5000);
    assert.equal(clock.rtt, 300, 'rtt reports the latest round trip');
  });

  test('old samples leave the window', () => {
    const clock = new ClockSync({ window: 2 });
    clock.addSample(0, 100, 10); // rtt 10, offset 95
    clock.addSample(100, 1000, 150); // rtt 50
    clock.addSample(200, 1100, 250); // rtt 50: the rtt-10 sample is gone
    assert.equal(clock.offset, 1100 + 25 - 250);
  });

  test('seed gives a first estimate that the first pong replaces', () => {
    const clock = new ClockSync();
    clock.seed(10_000, 1000);
    assert.equal(clock.offset, 9000);
    clock.addSample(2000, 11_010, 2020);
    assert.equal(clock.offset, 9000);
    clock.seed(0, 0);
    assert.equal(clock.offset, 9000, 'a seed no longer overrides measured samples');
  });
});

describe('jsonCodec', () => {
  test('round-trips a message as one text frame', () => {
    const message = { type: 'pose', head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] } };
    const frame = jsonCodec.encode(message);
    assert.equal(typeof frame, 'string');
    assert.deepEqual(jsonCodec.decode(frame), message);
    assert.equal(jsonCodec.subprotocol, 'shoal.v1.json');
  });

  test('refuses binary frames, bad JSON and objects without a type', () => {
    assert.throws(() => jsonCodec.decode(new ArrayBuffer(4)), TypeError);
    assert.throws(() => jsonCodec.decode('{nope'), SyntaxError);
    assert.throws(() => jsonCodec.decode('{"seq": 1}'), TypeError);
    assert.throws(() => jsonCodec.decode('[1, 2]'), TypeError);
  });
});

describe('mergeProps', () => {
  test('replaces top-level keys and deletes keys set to null, as the server does', () => {
    const merged = mergeProps(
      { color: '#ff0000', label: 'a', nested: { x: 1 } },
      { color: '#00ff00', label: null, nested: { y: 2 } },
    );
    assert.deepEqual(merged, { color: '#00ff00', nested: { y: 2 } });
  });
});
