// ShoalClient's logic, with the test playing the server over an in-memory socket: what the client sends,
// and what it makes of each server message, reconnects included. The browser tests (tests/browser/) run the
// same SDK against a real Shoal server.
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';

import { ApiError, CloseCode, ShoalClient, ShoalError } from '../../src/shoal/web/static/sdk/shoal.js';

/** The client's end of a WebSocket; the test speaks for the server through `deliver` and `drop`. */
class ScriptedSocket {
  static opened = [];

  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    ScriptedSocket.opened.push(this);
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.({});
    }, 0);
  }

  send(frame) {
    assert.equal(this.readyState, 1, 'send on a socket that is not open');
    this.sent.push(JSON.parse(frame));
  }

  close(code = 1000, reason = '') {
    this.closedWith = { code, reason };
    this.readyState = 3;
  }

  /** The server sends one message. */
  deliver(message) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }

  /** The connection ends, e.g. the server restarted. */
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  sentOfType(type) {
    return this.sent.filter((message) => message.type === type);
  }
}

const clients = [];

function newClient(options = {}) {
  const client = new ShoalClient({
    url: 'ws://127.0.0.1:9/ws',
    name: 'Ada',
    color: '#3cb44b',
    WebSocket: ScriptedSocket,
    reconnect: { initialDelay: 5, maxDelay: 20 },
    sendRate: 200,
    ...options,
  });
  clients.push(client);
  return client;
}

afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  ScriptedSocket.opened.length = 0;
});

/** Poll `predicate` every few ms; fail after `timeout` ms. */
async function waitFor(predicate, what, timeout = 2000) {
  const deadline = Date.now() + timeout;
  while (!predicate()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const welcome = (id) => ({
  type: 'welcome',
  id,
  resume_token: 'secret',
  server_time: Date.now(),
  tick_rate: 20,
  v: 1,
  server: { name: 'shoal', version: 'test' },
  limits: {},
});
const HEAD = { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] };
const cube = (v, extra = {}) => ({
  id: 'cube-1',
  kind: 'cube',
  persistent: true,
  locked: false,
  pos: [0, 1, -2],
  rot: [0, 0, 0, 1],
  scale: [1, 1, 1],
  props: { color: '#ff0000' },
  v,
  ...extra,
});

/**
 * Connect a client and join `room` with `others` already there; returns the client and its socket. `limits` go in
 * the welcome; the other options to the client.
 */
async function joinedClient(room = 'lobby', others = [], entities = [], { limits = {}, ...options } = {}) {
  const client = newClient(options);
  const connected = client.connect();
  await waitFor(() => ScriptedSocket.opened[0]?.sent.length === 1, 'hello');
  const socket = ScriptedSocket.opened.at(-1);
  socket.deliver({ ...welcome(1), limits });
  await connected;
  const joined = client.join(room);
  socket.deliver({
    type: 'joined',
    room,
    id: 1,
    tick_rate: 20,
    seq: 0,
    members: [{ id: 1, name: 'Ada', color: '#3cb44b' }, ...others],
    entities,
  });
  await joined;
  return { client, socket };
}

describe('connecting', () => {
  test('offers the JSON subprotocol and says hello with name, colour and the token, never put in the URL', async () => {
    const client = newClient({ token: 'a b&c' });
    const connected = client.connect();
    await waitFor(() => ScriptedSocket.opened[0]?.sent.length === 1, 'hello');
    const socket = ScriptedSocket.opened[0];
    assert.deepEqual(socket.protocols, ['shoal.v1.json']);
    assert.equal(socket.url, 'ws://127.0.0.1:9/ws');
    assert.deepEqual(socket.sent[0], { type: 'hello', v: 1, name: 'Ada', color: '#3cb44b', token: 'a b&c' });
    assert.equal(client.state, 'connecting');
    socket.deliver(welcome(7));
    const greeting = await connected;
    assert.equal(greeting.id, 7);
    assert.equal(client.state, 'connected');
    assert.equal(client.id, 7);
  });

  test('a refused hello rejects connect and does not retry', async () => {
    const client = newClient();
    const connected = client.connect();
    await waitFor(() => ScriptedSocket.opened[0]?.sent.length === 1, 'hello');
    ScriptedSocket.opened[0].deliver({
      type: 'error',
      code: 'invalid_message',
      message: 'name too long',
      ref: 'hello',
    });
    await assert.rejects(connected, (error) => error instanceof ShoalError && error.code === 'invalid_message');
    assert.equal(client.state, 'closed');
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(ScriptedSocket.opened.length, 1);
  });

  test('measures the round trip from ping/pong and estimates the server clock', async () => {
    const { client, socket } = await joinedClient();
    await waitFor(() => socket.sentOfType('ping').length >= 1, 'a ping');
    const ping = socket.sentOfType('ping')[0];
    const serverTime = Date.now() + 60_000; // a server clock one minute ahead
    socket.deliver({ type: 'pong', t: ping.t, server_time: serverTime });
    assert.ok(client.rtt !== null && client.rtt >= 0);
    assert.ok(Math.abs(client.serverNow() - (Date.now() + 60_000)) < 1000);
  });
});

describe('presence and poses', () => {
  test('the joined snapshot announces every other member once', async () => {
    const seen = [];
    const client = newClient();
    client.on('member_joined', ({ member }) => seen.push(member.name));
    const connected = client.connect();
    await waitFor(() => ScriptedSocket.opened[0]?.sent.length === 1, 'hello');
    const socket = ScriptedSocket.opened[0];
    socket.deliver(welcome(1));
    await connected;
    client.join('lobby');
    await waitFor(() => socket.sentOfType('join').length === 1, 'join');
    socket.deliver({
      type: 'joined',
      room: 'lobby',
      id: 1,
      tick_rate: 20,
      seq: 3,
      members: [
        { id: 1, name: 'Ada', color: '#3cb44b' },
        { id: 2, name: 'Bob', color: '#4363d8', pose: { id: 2, head: HEAD } },
      ],
    });
    socket.deliver({ type: 'member_joined', room: 'lobby', member: { id: 3, name: 'Cy', color: '#f58231' } });
    assert.deepEqual(seen, ['Bob', 'Cy']);
    assert.equal(client.members.size, 3);
    assert.deepEqual(client.remotePose(2).head.pos, HEAD.pos);
  });

  test('members carry their account, avatar image and role; member_updated replaces what changed', async () => {
    const avatar = '/api/users/u-1/avatar?v=2';
    const bob = { id: 2, name: 'Bob', color: '#4363d8', user: 'u-1', avatar, role: 'moderator' };
    const { client, socket } = await joinedClient('lobby', [bob]);
    assert.deepEqual(client.members.get(2), bob);
    const updates = [];
    client.on('member_updated', (update) => updates.push(update));
    const demoted = { id: 2, name: 'Bob', color: '#4363d8', user: 'u-1', avatar, muted: true };
    socket.deliver({ type: 'member_updated', room: 'lobby', member: demoted });
    assert.deepEqual(client.members.get(2), demoted, 'no role: a plain member again');
    assert.equal(updates.length, 1);
    assert.equal(updates[0].previous.role, 'moderator');
    assert.equal(updates[0].member, client.members.get(2));
    socket.deliver({ type: 'member_updated', room: 'elsewhere', member: { ...demoted, name: 'Robert' } });
    assert.equal(client.members.get(2).name, 'Bob', 'another room is not ours');
  });

  test('sends the latest pose at the send rate, only when it changed, stamped with server time', async () => {
    const { client, socket } = await joinedClient();
    client.setPose({ head: { pos: [0, 1.5, 0], rot: [0, 0, 0, 1] } });
    client.setPose({ head: HEAD });
    await waitFor(() => socket.sentOfType('pose').length === 1, 'a pose');
    await new Promise((resolve) => setTimeout(resolve, 25)); // several send ticks with no change
    const poses = socket.sentOfType('pose');
    assert.equal(poses.length, 1);
    assert.deepEqual(poses[0].head, HEAD);
    assert.ok(Math.abs(poses[0].t - client.serverNow()) < 1000);
  });

  test('a pose equal to the last one is not sent again', async () => {
    const { client, socket } = await joinedClient();
    client.setPose({ head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] } });
    await waitFor(() => socket.sentOfType('pose').length === 1, 'a pose');
    for (let i = 0; i < 5; i += 1) {
      client.setPose({ head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] } }); // a new object, same numbers
      await new Promise((resolve) => setTimeout(resolve, 6));
    }
    assert.equal(socket.sentOfType('pose').length, 1);
    client.setPose({ head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] }, left: { pos: [0, 1, 0], rot: [0, 0, 0, 1] } });
    await waitFor(() => socket.sentOfType('pose').length === 2, 'the pose with a hand');
  });

  test('tick poses reach the interpolation buffers; our own is skipped', async () => {
    const { client, socket } = await joinedClient('lobby', [{ id: 2, name: 'Bob', color: '#4363d8' }]);
    const events = [];
    client.on('pose', ({ member }) => events.push(member.id));
    const t = client.serverNow();
    socket.deliver({
      type: 'tick',
      seq: 1,
      t: t - 200,
      poses: [{ id: 2, head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] } }],
    });
    socket.deliver({
      type: 'tick',
      seq: 2,
      t: t - 150,
      poses: [
        { id: 1, head: HEAD },
        { id: 2, head: { pos: [1, 1.6, 0], rot: [0, 0, 0, 1] } },
      ],
    });
    assert.deepEqual(events, [2, 2]);
    const halfway = client.remotePose(2, t - 75); // renders t - 175: halfway between the two ticks
    assert.ok(Math.abs(halfway.head.pos[0] - 0.5) < 1e-9);
  });

  test('member_left removes the member and its pose', async () => {
    const { client, socket } = await joinedClient('lobby', [{ id: 2, name: 'Bob', color: '#4363d8' }]);
    const left = [];
    client.on('member_left', ({ member }) => left.push(member.name));
    socket.deliver({ type: 'member_left', room: 'lobby', id: 2 });
    assert.deepEqual(left, ['Bob']);
    assert.equal(client.members.has(2), false);
    assert.equal(client.remotePose(2), null);
  });

  test('app messages go to the room or to one member', async () => {
    const { client, socket } = await joinedClient();
    const received = [];
    client.on('message', (message) => received.push(message));
    assert.ok(client.send('chat', { text: 'hi' }));
    assert.ok(client.send('wave', null, 2));
    assert.deepEqual(socket.sentOfType('msg'), [
      { type: 'msg', topic: 'chat', data: { text: 'hi' } },
      { type: 'msg', topic: 'wave', data: null, to: 2 },
    ]);
    socket.deliver({ type: 'msg', topic: 'chat', from: 2, data: 'yo' });
    assert.equal(received[0].from, 2);
  });
});

describe('hand joints', () => {
  /** 25 joints along a finger-ish line from the wrist at x. */
  const hand = (x) => Array.from({ length: 25 }, (_, i) => [x, 1 + i / 100, -0.3, 0, 0, 0, 1]);
  const BOB = { id: 2, name: 'Bob', color: '#4363d8' };
  const CY = { id: 3, name: 'Cy', color: '#f58231' };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const tick = (seq, extra) => ({ type: 'tick', seq, t: Date.now(), poses: [], ...extra });

  test('sendJoints sends at most joints_rate a second: the first at once, then the latest each interval', async () => {
    const { client, socket } = await joinedClient('lobby', [], [], { limits: { joints_rate: 20 } });
    assert.equal(client.jointsRate, 20);
    const started = Date.now();
    for (let i = 0; i < 5; i += 1) assert.equal(client.sendJoints({ left: hand(i) }), true);
    assert.deepEqual(socket.sentOfType('joints'), [{ type: 'joints', left: hand(0) }]);
    await waitFor(() => socket.sentOfType('joints').length === 2, 'the latest joints, one interval later');
    assert.ok(Date.now() - started >= 45, `sent after ${Date.now() - started} ms`);
    assert.deepEqual(socket.sentOfType('joints')[1], { type: 'joints', left: hand(4) });
    await sleep(80);
    assert.equal(socket.sentOfType('joints').length, 2, 'nothing new: nothing sent');

    // a stream of joints every few ms for 400 ms: one message per 50 ms interval at most
    const streaming = Date.now();
    for (let i = 0; Date.now() - streaming < 400; i += 1) {
      client.sendJoints({ right: hand(i) });
      await sleep(4);
    }
    // bounds from the time that actually passed: a loaded machine runs fewer, later timers, never more
    const streamed = socket.sentOfType('joints').length - 2;
    const elapsed = Date.now() - streaming;
    assert.ok(streamed >= 1 && streamed <= 1 + Math.ceil(elapsed / 50), `${streamed} joints messages in ${elapsed} ms`);
  });

  test('the rate is what rooms relay at (joints_relay_rate), not the larger budget (joints_rate)', async () => {
    const { client } = await joinedClient('lobby', [], [], { limits: { joints_rate: 30, joints_relay_rate: 10 } });
    assert.equal(client.jointsRate, 10);
  });

  test('the rate never exceeds the budget (joints_rate)', async () => {
    const { client } = await joinedClient('lobby', [], [], { limits: { joints_rate: 5, joints_relay_rate: 10 } });
    assert.equal(client.jointsRate, 5);
  });

  test('without joints_rate in the welcome the rate is 10 a second', async () => {
    const { client, socket } = await joinedClient();
    assert.equal(client.jointsRate, 10);
    const started = Date.now();
    client.sendJoints({ left: hand(0) });
    client.sendJoints({ left: hand(1) });
    assert.equal(socket.sentOfType('joints').length, 1);
    await waitFor(() => socket.sentOfType('joints').length === 2, 'the second joints after 100 ms');
    // a lower bound only: on a loaded machine a fixed sleep can outlast the interval
    assert.ok(Date.now() - started >= 95, `the second joints after ${Date.now() - started} ms`);
  });

  test('{} says the hands are gone: it replaces joints still waiting, and goes once', async () => {
    const { client, socket } = await joinedClient('lobby', [], [], { limits: { joints_rate: 50 } });
    client.sendJoints({ left: hand(0), right: hand(1) });
    client.sendJoints({ left: hand(2) });
    client.sendJoints({});
    await waitFor(() => socket.sentOfType('joints').length === 2, 'the empty joints');
    assert.deepEqual(socket.sentOfType('joints')[1], { type: 'joints' });
    client.sendJoints({ left: null, right: null });
    client.sendJoints();
    await sleep(60);
    assert.equal(socket.sentOfType('joints').length, 2, 'no hands twice: sent once');
  });

  test('joints the server would refuse throw; outside a room nothing is sent', async () => {
    const { client, socket } = await joinedClient();
    assert.throws(() => client.sendJoints({ left: hand(0).slice(1) }), TypeError);
    assert.throws(() => client.sendJoints({ right: hand(0).map(() => [0, 1, 0, 0, 0, 0, 0]) }), /zero rotation/);
    assert.throws(() => client.sendJoints({ right: hand(Infinity) }), RangeError);
    const spread = hand(0).map((joint, i) => (i === 24 ? [4, ...joint.slice(1)] : joint)); // a 4 m finger
    assert.throws(() => client.sendJoints({ left: spread }), /from its wrist/, 'JSON clients are told too');
    const leaving = client.leave();
    socket.deliver({ type: 'left', room: 'lobby' });
    await leaving;
    assert.equal(client.sendJoints({ left: hand(0) }), false);
    assert.equal(newClient().sendJoints({ left: hand(0) }), false);
    await sleep(20);
    assert.deepEqual(socket.sentOfType('joints'), []);
  });

  test('tick joints go to each member with a joints event; an entry without hands removes them; ours are skipped', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB]);
    const events = [];
    client.on('joints', ({ member, joints, time }) => events.push({ id: member.id, joints, time }));
    socket.deliver(tick(1, { joints: [{ id: 2, left: hand(1), right: null }, { id: 1, right: hand(0) }, { id: 9 }] }));
    assert.deepEqual(client.members.get(2).joints, { id: 2, left: hand(1) });
    assert.equal(client.members.get(1).joints, undefined, 'our own joints are not echoed into our member');
    assert.deepEqual(
      events.map(({ id, joints }) => [id, Object.keys(joints)]),
      [[2, ['id', 'left']]],
    );

    socket.deliver({ type: 'member_updated', room: 'lobby', member: { ...BOB, role: 'moderator' } });
    assert.deepEqual(client.members.get(2).joints.left, hand(1), 'presence changes keep the joints');

    socket.deliver(tick(2, { joints: [{ id: 2, left: null, right: null }] }));
    assert.equal(client.members.get(2).joints, undefined);
    assert.deepEqual(events.at(-1).joints, { id: 2 }, 'an entry without hands: hide them');
    socket.deliver(tick(3, { joints: [{ id: 2, right: hand(2) }] }));
    assert.deepEqual(Object.keys(client.members.get(2).joints), ['id', 'right']);
    socket.deliver(tick(4, {}));
    assert.equal(events.length, 3, 'a tick without a joints section changes nothing');
    assert.ok(client.members.get(2).joints.right);
  });

  test("a full tick carries everyone's joints: members it does not list have none", async () => {
    const { client, socket } = await joinedClient('lobby', [BOB, CY]);
    socket.deliver(
      tick(1, {
        joints: [
          { id: 2, left: hand(1) },
          { id: 3, left: hand(2) },
        ],
      }),
    );
    const hidden = [];
    client.on('joints', ({ member, joints }) => joints.left || joints.right || hidden.push(member.id));
    socket.deliver(tick(2, { full: true, joints: [{ id: 3, left: hand(3) }] }));
    assert.equal(client.members.get(2).joints, undefined);
    assert.deepEqual(client.members.get(3).joints.left, hand(3));
    socket.deliver(tick(3, { full: true }));
    assert.deepEqual(hidden, [2, 3]);
    assert.equal(client.members.get(3).joints, undefined);
  });

  test('after a drop the rejoined client sends its hands again (the server forgot them)', async () => {
    const { client, socket } = await joinedClient('plaza');
    client.sendJoints({ left: hand(0) });
    assert.equal(socket.sentOfType('joints').length, 1);
    socket.drop(1012, 'server restarting');
    await waitFor(() => ScriptedSocket.opened[1]?.sent.length === 1, 'a new hello');
    const again = ScriptedSocket.opened[1];
    again.deliver(welcome(11));
    again.deliver({
      type: 'joined',
      room: 'plaza',
      id: 11,
      tick_rate: 20,
      seq: 1,
      members: [{ id: 11, name: 'Ada', color: '#3cb44b' }],
    });
    await waitFor(() => again.sentOfType('joints').length === 1, 'the re-announced joints');
    assert.deepEqual(again.sentOfType('joints')[0], { type: 'joints', left: hand(0) });
  });

  test("a rejoin drops others' joints: the snapshot has none, and hands that stopped meanwhile must not linger", async () => {
    const { client, socket } = await joinedClient('plaza', [BOB]);
    socket.deliver(tick(1, { joints: [{ id: 2, left: hand(1) }] }));
    const events = [];
    client.on('joints', ({ member, joints }) => events.push([member.id, joints]));
    socket.drop(1012, 'server restarting');
    await waitFor(() => ScriptedSocket.opened[1]?.sent.length === 1, 'a new hello');
    const again = ScriptedSocket.opened[1];
    again.deliver(welcome(11));
    const members = [{ id: 11, name: 'Ada', color: '#3cb44b' }, BOB];
    again.deliver({ type: 'joined', room: 'plaza', id: 11, tick_rate: 20, seq: 1, members });
    assert.equal(client.members.get(2).joints, undefined);
    assert.deepEqual(events, [[2, { id: 2 }]]);
    assert.equal(client.remoteJoints(2), null, 'nor are they drawn: what was buffered before the drop is stale');
    again.deliver(tick(2, { t: client.serverNow() - 5000, joints: [{ id: 2, right: hand(2) }] }));
    assert.deepEqual(client.remoteJoints(2), { right: hand(2) }, 'the next joints show, whatever their time');
  });
});

describe('interpolated hand joints (remoteJoints)', () => {
  /** 25 joints from the wrist at (x, y, -0.3), each turned by `rot`. */
  const hand = (x, y = 1, rot = [0, 0, 0, 1]) => Array.from({ length: 25 }, (_, i) => [x, y + i / 100, -0.3, ...rot]);
  const YAW_90 = [0, Math.SQRT1_2, 0, Math.SQRT1_2];
  const YAW_45 = [0, Math.sin(Math.PI / 8), 0, Math.cos(Math.PI / 8)];
  const BOB = { id: 2, name: 'Bob', color: '#4363d8' };
  const CY = { id: 3, name: 'Cy', color: '#f58231' };
  const tick = (seq, t, extra) => ({ type: 'tick', seq, t, poses: [], ...extra });
  const close = (actual, expected, what, tolerance = 1e-9) =>
    actual.forEach((value, i) =>
      assert.ok(Math.abs(value - expected[i]) < tolerance, `${what}: ${actual} != ${expected}`),
    );

  test('null for a member that has sent no joints, and for an unknown id', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB, CY]);
    assert.equal(client.remoteJoints(2), null);
    assert.equal(client.remoteJoints(99), null);
    socket.deliver(tick(1, client.serverNow(), { joints: [{ id: 3 }] })); // hands gone that we never saw
    assert.equal(client.remoteJoints(3), null);
  });

  test('between two joints ticks: positions lerped, rotations slerped, one joints interval behind the pose', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB], [], { limits: { joints_relay_rate: 10 } });
    assert.equal(client.jointsDelay, 200, 'interpolationDelay (100) + the joints interval (100)');
    const t = client.serverNow();
    socket.deliver({ ...tick(1, t - 300, { joints: [{ id: 2, left: hand(0, 1), right: hand(1, 1) }] }) });
    socket.deliver(tick(2, t - 150, { poses: [{ id: 2, head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] } }] }));
    socket.deliver(tick(3, t - 200, { joints: [{ id: 2, left: hand(0.2, 1.4, YAW_90), right: hand(1, 1) }] }));
    socket.deliver(tick(4, t - 50, { poses: [{ id: 2, head: { pos: [1, 1.6, 0], rot: [0, 0, 0, 1] } }] }));

    // joints at t - 250, halfway between their ticks; the pose (no hands: nothing to carry them) at t - 150
    const at = t - 50;
    const joints = client.remoteJoints(2, at);
    assert.deepEqual(Object.keys(joints).sort(), ['left', 'right']);
    assert.equal(joints.left.length, 25);
    joints.left.forEach((joint, i) => {
      close(joint.slice(0, 3), [0.1, 1.2 + i / 100, -0.3], `left joint ${i}`);
      close(joint.slice(3), YAW_45, `left joint ${i} rotation`);
    });
    close(joints.right[24], hand(1, 1)[24], 'the right hand did not move');
    close(client.remotePose(2, at).head.pos, [0, 1.6, 0], 'the pose at the same moment');

    const quarter = client.remoteJoints(2, t - 75).left[0]; // joints at t - 275: a quarter of the way
    close(quarter, [0.05, 1.1, -0.3, 0, Math.sin(Math.PI / 16), 0, Math.cos(Math.PI / 16)], 'a quarter');
    // past the last joints tick: the newest, as received, the same object every frame while the hands rest
    const latest = client.remoteJoints(2, t + 500);
    assert.deepEqual(latest, { left: hand(0.2, 1.4, YAW_90), right: hand(1, 1) });
    assert.equal(client.remoteJoints(2, t + 510), latest);
  });

  test('the joints ticks are expected at the joints relay rate, not the tick rate', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB], [], { limits: { joints_relay_rate: 5 } });
    assert.equal(client.jointsDelay, 300, 'one 200 ms joints interval behind the poses');
    const t = client.serverNow();
    socket.deliver(tick(1, t - 400, { joints: [{ id: 2, left: hand(0) }] }));
    socket.deliver(tick(2, t - 200, { joints: [{ id: 2, left: hand(1) }] })); // one relay interval (200 ms) later
    // renders t - 300: halfway, not held still as a 200 ms gap at the 50 ms tick interval would be
    close(client.remoteJoints(2, t).left[0], [0.5, 1, -0.3, 0, 0, 0, 1], 'the wrist halfway');
  });

  test('an empty joints message hides the hands once the rendered moment reaches it; the joints event is at once', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB]);
    const events = [];
    client.on('joints', ({ joints }) => events.push(joints));
    const t = client.serverNow();
    socket.deliver(tick(1, t - 200, { joints: [{ id: 2, left: hand(0), right: hand(1) }] }));
    socket.deliver(tick(2, t - 100, { joints: [{ id: 2, left: null, right: null }] }));
    assert.deepEqual(events.at(-1), { id: 2 }, 'the event still says it as it arrives');
    // the joints are drawn jointsDelay (200 ms) behind
    assert.deepEqual(client.remoteJoints(2, t), { left: hand(0), right: hand(1) }, 'renders t - 200: shown');
    assert.deepEqual(client.remoteJoints(2, t + 50), {}, 'renders t - 150: gone');
    assert.deepEqual(client.remoteJoints(2, t + 1000), {});
    // a hand tracked again appears at once (renders t - 50, halfway from no hands), without blending from nowhere
    socket.deliver(tick(3, t, { joints: [{ id: 2, right: hand(2) }] }));
    assert.deepEqual(client.remoteJoints(2, t + 150), { right: hand(2) });
  });

  test('a full tick that does not list a member hides its hands the same way', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB, CY]);
    const t = client.serverNow();
    socket.deliver(
      tick(1, t - 200, {
        joints: [
          { id: 2, left: hand(0) },
          { id: 3, left: hand(1) },
        ],
      }),
    );
    socket.deliver(tick(2, t - 100, { full: true, joints: [{ id: 3, left: hand(1) }] }));
    assert.deepEqual(client.remoteJoints(2, t + 1000), {});
    assert.deepEqual(client.remoteJoints(3, t + 1000), { left: hand(1) });
  });

  test('our own joints are not buffered', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB]);
    socket.deliver(tick(1, client.serverNow(), { joints: [{ id: 1, left: hand(0) }] }));
    assert.equal(client.remoteJoints(1), null);
  });

  test('a member leaving takes its buffered joints along; so does our leaving the room', async () => {
    const { client, socket } = await joinedClient('lobby', [BOB, CY]);
    const t = client.serverNow();
    socket.deliver(
      tick(1, t - 100, {
        joints: [
          { id: 2, left: hand(0) },
          { id: 3, right: hand(1) },
        ],
      }),
    );
    assert.ok(client.remoteJoints(2)?.left);
    socket.deliver({ type: 'member_left', room: 'lobby', id: 2 });
    assert.equal(client.remoteJoints(2), null);
    assert.ok(client.remoteJoints(3)?.right, 'the others stay');
    // Bob comes back: nothing of his old hands lingers
    socket.deliver({ type: 'member_joined', room: 'lobby', member: BOB });
    assert.equal(client.remoteJoints(2), null);

    const leaving = client.leave();
    socket.deliver({ type: 'left', room: 'lobby' });
    await leaving;
    assert.equal(client.remoteJoints(3), null);
  });

  // ---- a hand in motion, as a headset sees it ------------------------------------------------------------------
  // Quaternion arithmetic of the test's own, to build what a sender tracks (the SDK's is checked against it).
  const axisAngle = ([x, y, z], angle) => {
    const sin = Math.sin(angle / 2);
    return [x * sin, y * sin, z * sin, Math.cos(angle / 2)];
  };
  const times = ([ax, ay, az, aw], [bx, by, bz, bw]) => [
    aw * bx + ax * bw + ay * bz - az * by,
    aw * by + ay * bw + az * bx - ax * bz,
    aw * bz + az * bw + ax * by - ay * bx,
    aw * bw - ax * bx - ay * by - az * bz,
  ];
  const inverse = ([x, y, z, w]) => [-x, -y, -z, w];
  const turn = (q, [x, y, z]) => times(times(q, [x, y, z, 0]), inverse(q)).slice(0, 3);
  const plus = (a, b) => a.map((value, i) => value + b[i]);
  const minus = (a, b) => a.map((value, i) => value - b[i]);
  /** `transform` then `offset` (both `{pos, rot}`): the offset as seen from the transform. */
  const compose = (transform, offset) => ({
    pos: plus(transform.pos, turn(transform.rot, offset.pos)),
    rot: times(transform.rot, offset.rot),
  });
  /** Rotations `a` and `b` within `tolerance` of each other (q and -q are the same rotation). */
  const sameRotation = (a, b, what, tolerance) => {
    const sign = a.reduce((sum, value, i) => sum + value * b[i], 0) < 0 ? -1 : 1;
    const aligned = b.map((value) => value * sign);
    close(a, aligned, what, tolerance);
  };

  /**
   * The sender's right hand `s` seconds into its motion: the wrist goes round a circle while it turns about two
   * axes, unevenly, and the fingers curl further and further. Joint 0 is the wrist; joint i of a finger (thumb 1-4,
   * then five per finger) sits along it, bent by the curl.
   */
  function movingHand(s) {
    const wrist = {
      pos: [0.3 + 0.15 * Math.cos(2 * s), 1.2 + 0.1 * Math.sin(2 * s), -0.4 + 0.05 * s],
      rot: times(axisAngle([0, 1, 0], 1.2 * Math.sin(1.5 * s)), axisAngle([1, 0, 0], 0.7 * s)),
    };
    const curl = 0.2 + 0.6 * s;
    const joints = Array.from({ length: 25 }, (_, i) => {
      if (i === 0) return [...wrist.pos, ...wrist.rot];
      const [finger, bone] = i < 5 ? [0, i] : [Math.floor(i / 5), i % 5];
      const bend = (curl * bone) / 4;
      const along = [0.02 * (finger - 2), -0.03 * bone * Math.sin(bend), -0.03 * bone * Math.cos(bend)];
      const joint = compose(wrist, { pos: along, rot: axisAngle([1, 0, 0], bend) });
      return [...joint.pos, ...joint.rot];
    });
    return { wrist, joints };
  }
  const HEAD_AT = { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] };
  const TIP = 9; // index-finger-tip

  /**
   * Join a client to a room with Bob and play the room's server to it while Bob moves his right hand (`movingHand`)
   * for `moveFor` ms from server time `start` (now): pose ticks every 50 ms, with `poseHand(hand)` as the pose's right
   * hand (none when it gives null), and his joints in every other tick (10 Hz), each tick arriving `latency` ms after
   * its `t`. A 90 Hz headset draws a frame every 11 ms from 250 ms to `drawFor` ms: returns the client, its socket,
   * `start`, and per frame its time `at`, joints and pose.
   */
  async function playHand({ moveFor, drawFor = moveFor, latency = 30, poseHand }) {
    const { client, socket } = await joinedClient('lobby', [BOB], [], { limits: { joints_relay_rate: 10 } });
    const start = Math.round(client.serverNow());
    const [end, from, to] = [start + moveFor, start + 250, start + drawFor];
    const ticks = [];
    for (let seq = 0; start + seq * 50 <= end; seq += 1) {
      const t = start + seq * 50;
      const moving = movingHand((t - start) / 1000);
      const pose = { id: 2, head: HEAD_AT };
      const right = poseHand(moving);
      if (right) pose.right = right;
      const extra = { poses: [pose] };
      if (seq % 2 === 0) extra.joints = [{ id: 2, right: moving.joints }];
      ticks.push(tick(seq + 1, t, extra));
    }
    const frames = [];
    for (let at = from; at <= to; at += 11) {
      while (ticks.length && ticks[0].t + latency <= at) socket.deliver(ticks.shift());
      frames.push({ at, joints: client.remoteJoints(2, at), pose: client.remotePose(2, at) });
    }
    return { client, socket, start, frames };
  }

  /** The tip's position as seen from the wrist (both as drawn): what the fingers' shape makes of it. */
  const tipFromWrist = (joints) => turn(inverse(joints[0].slice(3)), minus(joints[TIP], joints[0]).slice(0, 3));
  const moved = (a, b) => Math.hypot(...minus(a, b));

  test('with 30 ms of latency the fingers move in every 90 Hz frame while the hand moves: they never freeze', async () => {
    const wristPose = ({ wrist }) => wrist; // the pose's hand is the wrist
    const { start, frames } = await playHand({ moveFor: 2000, poseHand: wristPose });
    assert.ok(frames.length > 150);
    for (let i = 1; i < frames.length; i += 1) {
      const [before, now] = [frames[i - 1].joints.right, frames[i].joints.right];
      const when = `frame at ${frames[i].at - start} ms`;
      assert.ok(moved(now[TIP].slice(0, 3), before[TIP].slice(0, 3)) > 1e-6, `${when}: the fingertip stood still`);
      assert.ok(moved(tipFromWrist(now), tipFromWrist(before)) > 1e-7, `${when}: the fingers' shape stood still`);
    }
  });

  test('without hands in the pose the joints are drawn as interpolated, jointsDelay behind, and never freeze', async () => {
    const { start, frames } = await playHand({ moveFor: 1500, poseHand: () => null });
    for (let i = 1; i < frames.length; i += 1) {
      const [before, now] = [frames[i - 1].joints.right, frames[i].joints.right];
      assert.ok(moved(now[TIP].slice(0, 3), before[TIP].slice(0, 3)) > 1e-6, `frame at ${frames[i].at - start} ms`);
    }
    // at t + 200, jointsDelay (200 ms) behind, the joints are exactly the tick of t
    const at = frames.find((frame) => (frame.at - 200 - start) % 100 === 0);
    const sent = movingHand((at.at - 200 - start) / 1000).joints;
    at.joints.right.forEach((joint, i) => close(joint, sent[i], `joint ${i}`));
  });

  test('the drawn wrist is the hand remotePose shows at the same moment (to 1e-6) while the hand moves and turns', async () => {
    const { start, frames } = await playHand({ moveFor: 2000, poseHand: ({ wrist }) => wrist }); // as the app's: the wrist joint
    let turned = 0;
    for (const { at, joints, pose } of frames) {
      const wrist = joints.right[0];
      close(wrist.slice(0, 3), pose.right.pos, `wrist at ${at - start} ms`, 1e-6);
      sameRotation(wrist.slice(3), pose.right.rot, `wrist rotation at ${at - start} ms`, 1e-6);
      turned = Math.max(turned, 1 - Math.abs(pose.right.rot[3])); // the hand does turn
      // the fingers are shaped as the joints were jointsDelay (200 ms) behind: at a joints tick, as it was sent
      if ((at - 200 - start) % 100 === 0) {
        const sent = movingHand((at - 200 - start) / 1000).joints;
        close(tipFromWrist(joints.right), tipFromWrist(sent), `the fingers' shape at ${at - start} ms`);
      }
    }
    assert.ok(turned > 0.05);
  });

  test('while pose and joints rest the same object comes back every frame; a pose that moves carries the joints', async () => {
    const { client, socket, start, frames } = await playHand({
      moveFor: 500,
      drawFor: 1000,
      poseHand: ({ wrist }) => wrist,
    });
    const resting = frames.filter(({ at }) => at > start + 750); // past both the pose's and the joints' last tick
    assert.ok(resting.length > 10);
    for (const { joints } of resting) assert.equal(joints, resting[0].joints);
    assert.notEqual(frames[0].joints, frames[1].joints, 'moving: new joints');

    // the hand moves on without new joints (the sender's fingers keep still): the joints go with the pose
    const at = start + 2000;
    const wrist = movingHand(0.5).wrist;
    const lifted = { pos: plus(wrist.pos, [0, 0.1, 0]), rot: times(axisAngle([0, 1, 0], 0.5), wrist.rot) };
    socket.deliver(tick(99, at - 100, { poses: [{ id: 2, head: HEAD_AT, right: lifted }] }));
    const joints = client.remoteJoints(2, at);
    assert.notEqual(joints, resting[0].joints);
    close(joints.right[0].slice(0, 3), lifted.pos, 'the wrist on the lifted hand');
    close(tipFromWrist(joints.right), tipFromWrist(resting[0].joints.right), 'the same fingers', 1e-9);
    // and rest there, the same object frame after frame
    const rested = client.remoteJoints(2, at + 200);
    close(rested.right[0].slice(0, 3), lifted.pos, 'the wrist where the hand rests');
    assert.equal(client.remoteJoints(2, at + 211), rested);
  });
});

describe('reconnecting', () => {
  test('after a drop it reconnects with backoff, joins the same room again and re-announces its pose', async () => {
    const { client, socket } = await joinedClient('plaza', [{ id: 2, name: 'Bob', color: '#4363d8' }]);
    client.setPose({ head: HEAD });
    await waitFor(() => socket.sentOfType('pose').length === 1, 'the first pose');
    const states = [];
    const left = [];
    client.on('state', (change) => states.push(change));
    client.on('member_left', ({ member }) => left.push(member.id));

    socket.drop(1012, 'server restarting');
    assert.equal(client.state, 'reconnecting');
    assert.equal(states[0].code, 1012);
    assert.ok(states[0].retryIn > 0 && states[0].retryIn <= 5);
    await waitFor(
      () => ScriptedSocket.opened.length === 2 && ScriptedSocket.opened[1].sent.length === 1,
      'a new hello',
    );
    const again = ScriptedSocket.opened[1];
    again.deliver(welcome(11));
    await waitFor(() => again.sentOfType('join').length === 1, 'the re-join');
    assert.deepEqual(again.sentOfType('join')[0], { type: 'join', room: 'plaza' });
    // Bob left while we were away; Cy arrived
    again.deliver({
      type: 'joined',
      room: 'plaza',
      id: 11,
      tick_rate: 20,
      seq: 9,
      members: [
        { id: 11, name: 'Ada', color: '#3cb44b' },
        { id: 3, name: 'Cy', color: '#f58231' },
      ],
    });
    assert.deepEqual(left, [2]);
    assert.deepEqual(
      [...client.members.keys()].sort((a, b) => a - b),
      [3, 11],
    );
    await waitFor(() => again.sentOfType('pose').length === 1, 'the re-announced pose');
    assert.equal(client.state, 'connected');
  });

  test('after a drop it asks for its session back; a resumed session is rejoined by the server', async () => {
    const { client, socket } = await joinedClient('plaza', [{ id: 2, name: 'Bob', color: '#4363d8' }]);
    client.setPose({ head: HEAD });
    await waitFor(() => socket.sentOfType('pose').length === 1, 'the first pose');
    const left = [];
    client.on('member_left', ({ member }) => left.push(member.id));
    socket.drop(1006);
    await waitFor(() => ScriptedSocket.opened[1]?.sent.length === 1, 'a new hello');
    const again = ScriptedSocket.opened[1];
    assert.deepEqual(again.sent[0], { type: 'hello', v: 1, name: 'Ada', color: '#3cb44b', resume: 'secret' });
    again.deliver({ ...welcome(1), resumed: true, resume_token: 'next' });
    again.deliver({
      type: 'joined',
      room: 'plaza',
      id: 1,
      tick_rate: 20,
      seq: 9,
      members: [
        { id: 1, name: 'Ada', color: '#3cb44b' },
        { id: 2, name: 'Bob', color: '#4363d8' },
      ],
    });
    await waitFor(() => again.sentOfType('pose').length === 1, 'the re-announced pose');
    assert.equal(again.sentOfType('join').length, 0, 'the server put us back; no join needed');
    assert.deepEqual(left, [], 'Bob never left');
    assert.equal(client.id, 1);
    assert.equal(client.welcome.resume_token, 'next');
  });

  test('keeps retrying while the server is unreachable, with growing delays', async () => {
    const client = newClient({ reconnect: { initialDelay: 2, maxDelay: 8, jitter: 0 } });
    const delays = [];
    client.on('state', (change) => change.retryIn !== undefined && delays.push(change.retryIn));
    client.connect().catch(() => {});
    for (let attempt = 1; attempt <= 4; attempt += 1) {
      await waitFor(() => ScriptedSocket.opened.length === attempt, `attempt ${attempt}`);
      ScriptedSocket.opened[attempt - 1].drop(1006);
    }
    assert.deepEqual(delays, [2, 4, 8, 8]);
  });

  test('does not reconnect after a close code that means "not as you are", and says why', async () => {
    const refusals = { 1008: 'disconnected', 1009: 'disconnected', 4001: 'auth_failed', 4002: 'unsupported_version',
      4003: 'forbidden' }; // prettier-ignore
    for (const [code, errorCode] of Object.entries(refusals).map(([code, error]) => [Number(code), error])) {
      const { client, socket } = await joinedClient();
      const pending = client.updateEntity('cube-1', { props: { color: '#00ff00' } });
      const closed = new Promise((resolve) =>
        client.on('state', (change) => change.state === 'closed' && resolve(change)),
      );
      socket.drop(code, 'refused');
      const change = await closed;
      assert.equal(change.code, code);
      assert.equal(change.reason, 'refused');
      assert.equal(change.error.code, errorCode, `error code after ${code}`);
      assert.deepEqual(client.lastClose, { code, reason: 'refused', error: change.error });
      await assert.rejects(pending, (error) => error === change.error);
      await new Promise((resolve) => setTimeout(resolve, 25));
      assert.equal(ScriptedSocket.opened.length, 1, `reconnected after ${code}`);
      assert.equal(client.state, 'closed');
      client.close();
      ScriptedSocket.opened.length = 0;
    }
  });

  test('reconnects, resuming its session, after every other close code', async () => {
    for (const code of [1001, 1006, 1011, 1012, 4000, 4008, 4009]) {
      const { client, socket } = await joinedClient();
      socket.drop(code);
      assert.equal(client.state, 'reconnecting', `after ${code}`);
      assert.equal(client.lastClose.code, code);
      await waitFor(() => ScriptedSocket.opened[1]?.sent.length === 1, `the hello after ${code}`);
      assert.equal(ScriptedSocket.opened[1].sent[0].resume, 'secret');
      client.close();
      ScriptedSocket.opened.length = 0;
    }
  });

  test('close() stops everything and rejects what is pending', async () => {
    const { client, socket } = await joinedClient('lobby', [], [cube(1)]);
    const pending = client.updateEntity('cube-1', { props: { color: '#00ff00' } });
    client.close();
    await assert.rejects(pending, (error) => error.code === 'disconnected');
    assert.deepEqual(socket.closedWith, { code: 1000, reason: 'client closed' });
    assert.equal(client.state, 'closed');
  });
});

describe('tokens', () => {
  test("a refused hello token ends the client with the server's reason and no retry", async () => {
    const client = newClient({ token: 'forged' });
    const states = [];
    client.on('state', (change) => states.push(change));
    const connected = client.connect();
    await waitFor(() => ScriptedSocket.opened[0]?.sent.length === 1, 'hello');
    const socket = ScriptedSocket.opened[0];
    socket.deliver({ type: 'error', code: 'auth_failed', message: "the token's signature is invalid", ref: 'hello' });
    socket.drop(4001, 'authentication failed'); // what the server does next; the client has already let go
    await assert.rejects(connected, (error) => error instanceof ShoalError && error.code === 'auth_failed');
    const closed = states.at(-1);
    assert.equal(closed.state, 'closed');
    assert.equal(closed.code, CloseCode.AUTH_FAILED);
    assert.equal(closed.error.message, "the token's signature is invalid");
    assert.equal(client.lastClose.code, 4001);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(ScriptedSocket.opened.length, 1);
    assert.deepEqual(
      states.map((change) => change.state),
      ['connecting', 'closed'],
    );
  });

  test('getToken is asked before every attempt: a reconnect sends a fresh token with its resume token', async () => {
    let issued = 0;
    const { client, socket } = await joinedClient('lobby', [], [], { getToken: async () => `token-${++issued}` });
    assert.equal(socket.sent[0].token, 'token-1');
    socket.drop(1012, 'server restarting');
    await waitFor(() => ScriptedSocket.opened[1]?.sent.length === 1, 'the second hello');
    assert.deepEqual(ScriptedSocket.opened[1].sent[0], {
      type: 'hello',
      v: 1,
      name: 'Ada',
      color: '#3cb44b',
      token: 'token-2',
      resume: 'secret',
    });
    assert.equal(client.state, 'reconnecting');
  });

  test('getToken refused (401) ends the client as a 4001 would, without opening a socket', async () => {
    const client = newClient({ getToken: () => Promise.reject(new ApiError(401, 'the session has ended')) });
    const connected = client.connect();
    await assert.rejects(
      connected,
      (error) => error.code === 'auth_failed' && error.message === 'the session has ended',
    );
    assert.equal(client.state, 'closed');
    assert.equal(client.lastClose.code, CloseCode.AUTH_FAILED);
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(ScriptedSocket.opened.length, 0);
  });

  test('getToken failing for another reason (server unreachable) is retried with backoff', async () => {
    let calls = 0;
    const getToken = async () => {
      calls += 1;
      if (calls < 3) throw new ApiError(0, 'the server could not be reached');
      return 'finally';
    };
    const client = newClient({ getToken, reconnect: { initialDelay: 2, maxDelay: 4 } });
    const reasons = [];
    client.on('state', (change) => change.retryIn !== undefined && reasons.push(change.reason));
    const connected = client.connect();
    await waitFor(() => ScriptedSocket.opened[0]?.sent.length === 1, 'hello after two failures');
    assert.equal(ScriptedSocket.opened[0].sent[0].token, 'finally');
    assert.deepEqual(reasons, Array(2).fill('no token: the server could not be reached'));
    ScriptedSocket.opened[0].deliver(welcome(3));
    assert.equal((await connected).id, 3);
  });

  test('close() while the token is being fetched opens no socket', async () => {
    let release;
    const client = newClient({ getToken: () => new Promise((resolve) => (release = resolve)) });
    const connected = client.connect();
    await waitFor(() => release !== undefined, 'getToken called');
    client.close();
    release('late');
    await assert.rejects(connected, (error) => error.code === 'disconnected');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(ScriptedSocket.opened.length, 0);
    assert.equal(client.state, 'closed');
  });
});

describe('entities', () => {
  test('the joined snapshot adds entities; ticks change and remove them', async () => {
    const added = [];
    const removed = [];
    const { client, socket } = await joinedClient('lobby', [], [cube(1)], {});
    client.on('entity_added', ({ entity }) => added.push(entity.id));
    client.on('entity_removed', ({ entity }) => removed.push(entity.id));
    assert.equal(client.entities.get('cube-1').props.color, '#ff0000');
    socket.deliver({
      type: 'tick',
      seq: 1,
      t: client.serverNow(),
      poses: [],
      entities: [cube(2, { props: { color: '#0000ff' } })],
    });
    assert.equal(client.entities.get('cube-1').props.color, '#0000ff');
    socket.deliver({ type: 'tick', seq: 2, t: client.serverNow(), poses: [], entities: [cube(1)] });
    assert.equal(client.entities.get('cube-1').v, 2, 'an older version is ignored');
    socket.deliver({
      type: 'tick',
      seq: 3,
      t: client.serverNow(),
      poses: [],
      entities: [{ ...cube(1), id: 'ball-1' }],
    });
    socket.deliver({ type: 'tick', seq: 4, t: client.serverNow(), poses: [], removed: ['cube-1'] });
    assert.deepEqual(added, ['ball-1']);
    assert.deepEqual(removed, ['cube-1']);
  });

  test('a full tick drops entities it does not list', async () => {
    const { client, socket } = await joinedClient('lobby', [], [cube(1), { ...cube(1), id: 'gone' }]);
    socket.deliver({ type: 'tick', seq: 5, t: client.serverNow(), poses: [], entities: [cube(1)], full: true });
    assert.deepEqual([...client.entities.keys()], ['cube-1']);
  });

  test('a reliable update applies locally at once, resolves on its ack and rejects on its error', async () => {
    const { client, socket } = await joinedClient('lobby', [], [cube(1)]);
    const changes = [];
    client.on('entity_changed', ({ entity, local }) => changes.push([entity.props.color, local]));
    const first = client.updateEntity('cube-1', { props: { color: '#00ff00' } });
    const second = client.updateEntity('cube-1', { pos: [1, 1, 1] });
    assert.equal(client.entities.get('cube-1').props.color, '#00ff00');
    const [one, two] = socket.sentOfType('entity_update');
    assert.deepEqual(one, { type: 'entity_update', id: 'cube-1', props: { color: '#00ff00' }, seq: one.seq });
    socket.deliver({ type: 'error', code: 'not_owner', message: 'owned by 5', ref: 'entity_update', seq: two.seq });
    socket.deliver({ type: 'ack', seq: one.seq });
    await first;
    await assert.rejects(second, (error) => error.code === 'not_owner' && error.seq === two.seq);
    assert.deepEqual(changes, [
      ['#00ff00', true],
      ['#00ff00', true],
    ]);
  });

  test('createEntity names the entity itself and resolves with the id on ack', async () => {
    const { client, socket } = await joinedClient();
    const created = client.createEntity({ kind: 'ball', pos: [0, 1, 0], persistent: true, owned: false });
    const [message] = socket.sentOfType('entity_create');
    assert.match(message.id, /^ball-[0-9a-f]{12}$/);
    assert.equal(message.persistent, true);
    socket.deliver({ type: 'ack', seq: message.seq });
    assert.equal(await created, message.id);
  });

  test('a granted claim makes the entity ours; streamed moves are local at once, echoes never pull back', async () => {
    const { client, socket } = await joinedClient('lobby', [], [cube(1)]);
    const claimed = client.claim('cube-1');
    assert.deepEqual(socket.sentOfType('entity_claim'), [{ type: 'entity_claim', id: 'cube-1' }]);
    socket.deliver({ type: 'claim_result', id: 'cube-1', granted: true, owner: 1 });
    assert.equal(await claimed, true);
    assert.equal(client.entities.get('cube-1').owner, 1);

    client.streamEntity('cube-1', { pos: [0, 1, -1] });
    client.streamEntity('cube-1', { pos: [0, 1, 0] });
    assert.deepEqual(client.entityTransform('cube-1').pos, [0, 1, 0]);
    await waitFor(() => socket.sentOfType('entity_update').length === 1, 'the streamed update');
    assert.deepEqual(socket.sentOfType('entity_update')[0], { type: 'entity_update', id: 'cube-1', pos: [0, 1, 0] });
    // an echo of an older move of ours must not pull the entity back
    socket.deliver({
      type: 'tick',
      seq: 1,
      t: client.serverNow(),
      poses: [],
      entities: [cube(3, { owner: 1, pos: [0, 1, -1] })],
    });
    assert.deepEqual(client.entityTransform('cube-1').pos, [0, 1, 0]);
    assert.equal(client.entities.get('cube-1').v, 3);

    client.streamEntity('cube-1', { pos: [0, 2, 0] });
    const released = client.release('cube-1');
    const sent = socket.sent.slice(-2);
    assert.deepEqual(
      sent[0],
      { type: 'entity_update', id: 'cube-1', pos: [0, 2, 0] },
      'the last move goes before the release',
    );
    assert.equal(sent[1].type, 'entity_release');
    socket.deliver({ type: 'ack', seq: sent[1].seq });
    await released;
  });

  test('a denied claim resolves false; a claim for an unknown entity rejects', async () => {
    const { client, socket } = await joinedClient('lobby', [], [cube(1, { owner: 5, locked: true })]);
    const denied = client.claim('cube-1');
    const unknown = client.claim('nope');
    socket.deliver({ type: 'claim_result', id: 'cube-1', granted: false, owner: 5 });
    socket.deliver({ type: 'error', code: 'no_such_entity', message: 'no entity nope', ref: 'entity_claim' });
    assert.equal(await denied, false);
    await assert.rejects(unknown, (error) => error.code === 'no_such_entity');
  });

  test('changing entities outside a room is refused locally', async () => {
    const client = newClient();
    await assert.rejects(client.createEntity({ kind: 'cube' }), (error) => error.code === 'not_in_room');
  });
});
