/**
 * Shoal JavaScript SDK: a framework-agnostic client for Shoal protocol v1 (docs/protocol.md).
 *
 *   import { ShoalClient } from '/sdk/shoal.js';
 *   const client = new ShoalClient({ name: 'Ada', color: '#3cb44b' });
 *   client.on('member_joined', ({ member }) => console.log(member.name, 'is here'));
 *   await client.connect();
 *   await client.join('lobby');
 *   client.setPose({ head: { pos: [0, 1.6, 0], rot: [0, 0, 0, 1] } });   // sent at the tick rate
 *   // each frame: client.remotePose(id) gives another member's pose, interpolated ~100 ms behind
 *   client.sendJoints({ left: [[x, y, z, qx, qy, qz, qw], ...25] });   // hand tracking, at the joints rate
 *   // each frame: client.remoteJoints(id) gives its hands' joints `{left?, right?}`, interpolated a joints interval
 *   // further back than remotePose(id) (they come further apart) and put on the pose's hands, so the fingers move
 *   // smoothly and stay on the hands (the `joints` event still reports each as it arrives)
 *
 * It has no dependencies (no three.js): positions are `[x, y, z]` arrays in metres and rotations are
 * quaternions `[x, y, z, w]`. It reconnects by itself with backoff and jitter, resuming the same session
 * (same id and avatar) when the server still holds it, or else joining the same room again, and
 * re-announces its pose; but not after a refusal that the same attempt would meet again (a bad token, a
 * forbidden role, an old protocol version, an oversized or invalid message): then the state becomes 'closed'
 * with the close code and the server's error. Logged in, pass `getToken` (see auth.js: `AuthSession`), and each
 * connection sends a fresh token. Types: /sdk/shoal.d.ts.
 */

import { AccountsApi, ApiError, AuthSession } from './auth.js';
import { Backoff } from './backoff.js';
import { binaryCodec } from './binary.js';
import { ClockSync, localNow } from './clock.js';
import { jsonCodec } from './codec.js';
import { Emitter } from './events.js';
import { InterpolationBuffer, lerpJoints, lerpPose, lerpTransform } from './interpolation.js';
import { carryJoints, HAND_JOINTS, jointsMessage, sameJoints } from './joints.js';

export { AccountsApi, ApiError, AuthSession, HAND_JOINTS };
export { Backoff, binaryCodec, ClockSync, Emitter, InterpolationBuffer, jsonCodec, localNow };
export { lerpJoints, lerpPose, lerpTransform };
export { lerpVector, slerpQuaternion } from './interpolation.js';

export const PROTOCOL_VERSION = 1;

/** The WebSocket close codes a Shoal server uses (docs/protocol.md, "Close codes"). */
export const CloseCode = Object.freeze({
  NORMAL: 1000,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  HELLO_TIMEOUT: 4000,
  AUTH_FAILED: 4001,
  UNSUPPORTED_VERSION: 4002,
  FORBIDDEN: 4003,
  RATE_LIMITED: 4008,
  SLOW_CONSUMER: 4009,
});

/**
 * Close codes after which reconnecting as we are cannot help: the server asked us to stop, refused our
 * token, our role's actions or our protocol version, or our messages. The others are reconnected, with resume.
 */
export const FINAL_CLOSE_CODES = Object.freeze([
  CloseCode.NORMAL,
  CloseCode.POLICY_VIOLATION,
  CloseCode.MESSAGE_TOO_BIG,
  CloseCode.AUTH_FAILED,
  CloseCode.UNSUPPORTED_VERSION,
  CloseCode.FORBIDDEN,
]);

/** The server's error code for a refusal that ends the connection, by its close code. */
const REFUSALS = { [CloseCode.AUTH_FAILED]: 'auth_failed', [CloseCode.UNSUPPORTED_VERSION]: 'unsupported_version',
  [CloseCode.FORBIDDEN]: 'forbidden' }; // prettier-ignore
/** The close code that follows a refused `hello`, by error code (others: a bad name or colour, closed by us). */
const HELLO_REFUSALS = { auth_failed: CloseCode.AUTH_FAILED, unsupported_version: CloseCode.UNSUPPORTED_VERSION };

/** An `error` from the server (`code` as in docs/protocol.md), or a local failure such as `disconnected`. */
export class ShoalError extends Error {
  constructor(code, message, { ref = null, seq = null } = {}) {
    super(message);
    this.name = 'ShoalError';
    this.code = code;
    this.ref = ref;
    this.seq = seq;
  }
}

/** `ws(s)://<this page's host>/ws`: the endpoint of the server that served the page. */
export function defaultUrl(location = globalThis.location) {
  if (!location) throw new TypeError('no page location: pass the server URL, e.g. ws://127.0.0.1:8080/ws');
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

const IDENTITY_ROTATION = Object.freeze([0, 0, 0, 1]);
const SIDES = ['left', 'right'];
const QUICK_PINGS = 4; // the first pings come fast so that the clock estimate settles within a second
const DEFAULT_JOINTS_RATE = 10; // joints a second, when the server's welcome does not say

export class ShoalClient extends Emitter {
  /**
   * Nothing happens until `connect()`. See shoal.d.ts (`ShoalClientOptions`) for every option and default.
   */
  constructor(options = {}) {
    super();
    this.url = options.url ?? defaultUrl();
    this.name = options.name ?? '';
    this.color = options.color ?? null;
    this.token = options.token ?? null;
    this.getToken = options.getToken ?? (() => this.token);
    this.codec = options.codec ?? jsonCodec;
    this.sendRate = options.sendRate ?? null;
    this.interpolationDelay = options.interpolationDelay ?? 100;
    this.pingInterval = options.pingInterval ?? 2000;
    this.reconnect = options.reconnect !== false;
    this.backoff = new Backoff(typeof options.reconnect === 'object' ? options.reconnect : {});
    this.WebSocket = options.WebSocket ?? globalThis.WebSocket;
    this.clock = new ClockSync();

    /** 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed' */
    this.state = 'idle';
    /** How the last connection ended: `{code, reason, error?}` (`error` when the server refused us), or null. */
    this.lastClose = null;
    /** This session's member id (a reconnect that cannot resume the session gets a new one). */
    this.id = null;
    this.welcome = null;
    /** The room we are in, or null. */
    this.room = null;
    /**
     * Everyone in the room, us included, by id: `{id, name, color, user?, avatar?, role?, muted?, pose?, joints?}`
     * (`joints`: the latest hand joints received, while the member's hands are tracked; draw `remoteJoints(id)`).
     */
    this.members = new Map();
    /** Every entity in the room by id, as the server last described it (plus our own unsent changes). */
    this.entities = new Map();

    this._socket = null;
    this._attempts = 0; // numbers connection attempts, so that one overtaken while getting its token gives up
    /** The codec this connection speaks: `codec`, or JSON when the server did not accept `codec`. */
    this.wire = jsonCodec;
    this._wantedRoom = null;
    this._connectWaiters = [];
    this._joinWaiters = [];
    this._leaveWaiters = [];
    this._claimWaiters = [];
    this._pending = new Map(); // seq -> {type, resolve, reject}: reliable changes awaiting their ack
    this._nextSeq = 1;
    this._pose = null;
    this._poseDirty = false;
    this._joints = null; // the latest joints message given to sendJoints in this room
    this._jointsDirty = false;
    this._jointsSentAt = -Infinity;
    this._jointsTimer = null;
    this._streamed = new Map(); // entity id -> transform to send at the next send tick
    this._poseBuffers = new Map();
    this._jointsBuffers = new Map(); // member id -> its hands' joints `{left?, right?}`, at each joints tick's time
    this._jointsDrawn = new WeakMap(); // joints buffer -> what remoteJoints gave last, and from what (see there)
    this._entityBuffers = new Map();
    this._sendTimer = null;
    this._pingTimer = null;
    this._retryTimer = null;
    this._pingsSent = 0;
    this._resumeToken = null; // from the last welcome: asks for the same session after a drop
    this._resumed = false; // the last welcome resumed a session: the server rejoins its room
  }

  // ---- connection ------------------------------------------------------------------------------------

  /** Open the connection and say hello. Resolves with the `welcome`; retries by itself while it fails. */
  connect() {
    if (this.state === 'connected') return Promise.resolve(this.welcome);
    const welcomed = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (this.state === 'idle' || this.state === 'closed') this._open();
    return welcomed;
  }

  /** Close for good: no reconnect. Pending promises are rejected with `disconnected`. Closed already: nothing. */
  close(code = 1000, reason = 'client closed') {
    if (this.state === 'closed') return; // and `lastClose` keeps saying why, e.g. a refused token
    this._resumeToken = null; // a session we ended ourselves is over
    this._end({ code, reason }, new ShoalError('disconnected', reason), { code, reason });
  }

  /** True once the server welcomed this connection. */
  get connected() {
    return this.state === 'connected';
  }

  /** The latest round-trip time to the server in ms, or null before the first pong. */
  get rtt() {
    return this.clock.rtt;
  }

  /** The estimated server clock, in ms since the epoch. */
  serverNow() {
    return this.clock.serverNow();
  }

  // ---- rooms and presence ----------------------------------------------------------------------------

  /**
   * Join `room` (created if needed), leaving the current one. Remembered: after a reconnect the client
   * joins it again. Resolves with the `joined` snapshot; rejects with the server's error (`room_full`, ...).
   */
  join(room) {
    this._wantedRoom = room;
    const joined = new Promise((resolve, reject) => this._joinWaiters.push({ room, resolve, reject }));
    if (this.connected) this._send({ type: 'join', room });
    return joined;
  }

  /** Leave the current room. Resolves when the server confirms. */
  leave() {
    this._wantedRoom = null;
    if (!this.connected || this.room === null) return Promise.resolve();
    const left = new Promise((resolve, reject) => this._leaveWaiters.push({ resolve, reject }));
    this._send({ type: 'leave' });
    return left;
  }

  /**
   * Set this member's avatar pose `{head, left?, right?}` (each `{pos, rot}`). The latest one is sent at
   * `sendRate` (the room's tick rate by default), and only if it differs from the last one, so calling
   * this every frame costs nothing extra and a member standing still sends nothing.
   */
  setPose(pose) {
    if (this._pose && samePose(this._pose, pose)) return;
    this._pose = pose;
    this._poseDirty = true;
  }

  /**
   * Member `id`'s pose interpolated `interpolationDelay` ms behind server time `at` (default: now), or
   * null if it has sent none.
   */
  remotePose(id, at = this.serverNow()) {
    return this._poseBuffers.get(id)?.sample(at) ?? null;
  }

  /**
   * Member `id`'s hand joints `{left?, right?}` (each 25 `[x, y, z, qx, qy, qz, qw]`, world coordinates) to draw at
   * server time `at` (default: now) with `remotePose(id, at)`. The joints are interpolated `jointsDelay` behind `at`
   * (positions lerped, rotations slerped, between the joints ticks around that moment), a joints interval further
   * back than the pose, so that the joints tick after that moment has arrived and the fingers never stand still
   * waiting for it. To stay on the hand all the same, each hand is then moved rigidly so that its wrist (joint 0)
   * is the pose's transform of that hand (`left` / `right`) at the pose's moment: the hand moves as smoothly and as
   * recently as the pose, and the fingers' shape is one joints interval older. So a sender's pose must carry, while a
   * hand's joints are sent, that hand's wrist joint (the app's does); a hand the pose has no transform for is drawn
   * as interpolated, at the joints' moment. A hand that starts being tracked appears at once; one that stops, and
   * every hand after an empty joints message, is gone once the joints' moment reaches it, `jointsDelay` later. Null
   * if the member has sent no joints (in this room, since we joined it). While the hands and the pose rest, the same
   * object comes back frame after frame.
   */
  remoteJoints(id, at = this.serverNow()) {
    const buffer = this._jointsBuffers.get(id);
    const sampled = buffer?.sample(at);
    if (!buffer || !sampled) return null;
    // The wrist at the pose's moment is the pose's hand: while hands are tracked the app sends each one's wrist joint
    // as the pose's hand (xr.js handPoses), not its controller grip. An offset measured between the pose's hand and
    // the joints' wrist (which would allow a grip) is not used: a sender's pose and joints leave at different moments
    // (poses at the send rate, joints at once), so that offset swings by however far the hand moved in between (on
    // an emulated headset a hand raised 30 cm showed 50 cm up for a moment), and one measured at a joints tick goes
    // stale while the joints rest (sent once).
    const pose = this.remotePose(id, at);
    const last = this._jointsDrawn.get(buffer);
    if (last && last.sampled === sampled && last.left === pose?.left && last.right === pose?.right) return last.hands;
    const hands = {};
    for (const side of SIDES) {
      const joints = sampled[side];
      if (!joints) continue;
      const wrist = { pos: joints[0].slice(0, 3), rot: joints[0].slice(3) };
      hands[side] = pose?.[side] ? carryJoints(joints, wrist, pose[side]) : joints;
    }
    this._jointsDrawn.set(buffer, { sampled, left: pose?.left, right: pose?.right, hands });
    return hands;
  }

  /**
   * How far behind server time `remoteJoints` interpolates the joints, in ms: `interpolationDelay` plus one joints
   * interval (1000 / `jointsRate`; 200 ms by default). Joints ticks come one joints interval apart (100 ms at 10 Hz),
   * twice as far apart as pose ticks: sampled with the poses' delay, the sample point would pass the newest joints
   * whenever they are late at all (with 30 ms of latency, 30 % of the time) and the fingers would stop, then jump.
   * One interval further back, the joints tick after the sample point is there unless it is over
   * `interpolationDelay` late: more slack than poses get (`interpolationDelay` less a tick), on purpose, as joints
   * come less regularly (a sender reads them on its frames, at most `jointsRate` a second, so now and then a relay
   * tick has none and the gap doubles). It costs little: the hands still move with the pose (see `remoteJoints`);
   * only the fingers' shape is older.
   */
  get jointsDelay() {
    return this.interpolationDelay + this._jointsInterval;
  }

  /**
   * Send this member's hand joints `{left?, right?}`: for each tracked hand its 25 joints `[x, y, z, qx, qy, qz,
   * qw]` in `HAND_JOINTS` order (world positions in metres); a hand absent or null is not tracked, and `{}` says
   * that no hand is tracked any more (others hide them). At most `jointsRate` (the rooms' relay rate, default 10) go out
   * a second: a call within that interval replaces the unsent joints, which go when the interval is over; the
   * same joints twice in a row are sent once. False when not in a room (nothing is kept). Throws TypeError or
   * RangeError for joints the server would refuse (not 25 of 7 finite numbers, beyond +-10 km, a joint over
   * 3.2766 m from its wrist on an axis, a zero rotation). Meanwhile make the pose's hand (`setPose`) that hand's
   * wrist joint, every frame: others draw the joints on it (`remoteJoints`).
   */
  sendJoints(joints = {}) {
    const message = jointsMessage(joints);
    if (!this.connected || this.room === null) return false;
    if (sameJoints(message, this._joints)) return true;
    this._joints = message;
    this._jointsDirty = true;
    this._scheduleJoints();
    return true;
  }

  /**
   * Joints sent a second at most: the rate rooms relay them at (`welcome.limits.joints_relay_rate`), never above
   * the server's budget (`joints_rate`); 10 from a server that names neither. Faster would be dropped or replaced.
   */
  get jointsRate() {
    const limits = this.welcome?.limits ?? {};
    const rates = [limits.joints_relay_rate, limits.joints_rate].filter((rate) => typeof rate === 'number' && rate > 0);
    return rates.length ? Math.min(...rates) : DEFAULT_JOINTS_RATE;
  }

  /** Send an app message to the room, or to one member with `to`. False when not in a room. */
  send(topic, data = null, to = undefined) {
    if (!this.connected || this.room === null) return false;
    const message = { type: 'msg', topic, data };
    if (to !== undefined && to !== null) message.to = to;
    return this._send(message);
  }

  // ---- entities --------------------------------------------------------------------------------------

  /**
   * Create an entity. `kind` is required; `id` is generated here when absent, so that the caller knows it.
   * Resolves with the id once the server acknowledged it (for a persistent entity: once it is stored).
   */
  createEntity(spec) {
    const id = spec.id ?? `${spec.kind}-${randomId()}`;
    return this._reliable({ ...spec, type: 'entity_create', id }).then(() => id);
  }

  /**
   * Change an entity: any of `pos`, `rot`, `scale`, `props` (merged; a key set to null is deleted), `locked`.
   * Applied locally at once. With `reliable` (the default) it resolves on the server's ack and rejects
   * with its error (`not_owner`, ...); without, it resolves at once and errors arrive as `error` events.
   */
  updateEntity(id, changes, { reliable = true } = {}) {
    this._streamed.delete(id);
    this._applyLocal(id, changes);
    const message = { ...changes, type: 'entity_update', id };
    if (reliable) return this._reliable(message);
    this._send(message);
    return Promise.resolve();
  }

  /**
   * Move an entity you own every frame: the transform `{pos?, rot?, scale?}` is applied locally at once
   * and the latest one is sent at `sendRate`, like the pose.
   */
  streamEntity(id, transform) {
    this._applyLocal(id, transform);
    this._streamed.set(id, { ...this._streamed.get(id), ...transform });
  }

  deleteEntity(id) {
    this._streamed.delete(id);
    return this._reliable({ type: 'entity_delete', id });
  }

  /** Ask for ownership of an entity. Resolves with true when granted (the `claim_result`). */
  claim(id) {
    if (!this.connected) return Promise.reject(new ShoalError('disconnected', 'not connected'));
    const result = new Promise((resolve, reject) => this._claimWaiters.push({ id, resolve, reject }));
    this._send({ type: 'entity_claim', id });
    return result;
  }

  /** Give ownership back to the room; any streamed transform not yet sent goes first. */
  release(id) {
    this._flushStream(id);
    const entity = this.entities.get(id);
    if (entity && entity.owner === this.id) delete entity.owner;
    return this._reliable({ type: 'entity_release', id });
  }

  /**
   * Entity `id`'s transform `{pos, rot, scale}` to draw at server time `at` (default: now): interpolated
   * behind like poses while someone else moves it, exact for our own changes. Null for an unknown id.
   */
  entityTransform(id, at = this.serverNow()) {
    const entity = this.entities.get(id);
    if (!entity) return null;
    if (entity.owner === this.id) return entity;
    return this._entityBuffers.get(id)?.sample(at) ?? entity;
  }

  // ---- the socket ------------------------------------------------------------------------------------

  /** One connection attempt: get a token (when logged in), then open the socket. */
  _open() {
    if (typeof this.WebSocket !== 'function') throw new TypeError('no WebSocket: pass options.WebSocket');
    new URL(this.url); // a malformed URL throws here, from connect(), rather than on every retry
    this._setState(this.state === 'reconnecting' ? 'reconnecting' : 'connecting');
    const attempt = ++this._attempts;
    const current = () => attempt === this._attempts && this.state !== 'closed';
    Promise.resolve()
      .then(() => this.getToken())
      .then(
        (token) => current() && this._openSocket(token ?? null),
        (error) => current() && this._tokenFailed(error),
      )
      .catch(
        (error) => current() && this._end({ reason: String(error) }, new ShoalError('disconnected', String(error))),
      );
  }

  /** A refused token ends the connection as a 4001 would; anything else (server unreachable) is retried. */
  _tokenFailed(error) {
    const reason = `no token: ${error?.message ?? error}`;
    if (error?.status === 401 || error?.status === 403) {
      this._end({ code: CloseCode.AUTH_FAILED, reason }, new ShoalError('auth_failed', error.message ?? reason));
    } else {
      this._retry({ reason });
    }
  }

  /**
   * The token goes in `hello`, not in the URL: URLs end up in logs, and a refused `hello` token gets a close
   * code (4001) and the server's reason, where a refused `?token=` is an HTTP 401 that a browser hides.
   */
  _openSocket(token) {
    // offer the chosen codec, and JSON as the fallback the server picks if it does not speak the other
    const codecs = [...new Set([this.codec, jsonCodec])];
    const socket = new this.WebSocket(
      this.url,
      codecs.map((codec) => codec.subprotocol),
    );
    socket.binaryType = 'arraybuffer';
    this._socket = socket;
    this.wire = jsonCodec;
    socket.onopen = () => {
      this.wire = codecs.find((codec) => codec.subprotocol === socket.protocol) ?? jsonCodec;
      const hello = { type: 'hello', v: PROTOCOL_VERSION, name: this.name };
      if (this.color) hello.color = this.color;
      if (token) hello.token = token;
      // after a drop, ask for the same session back (the server keeps it for a minute)
      if (this._resumeToken) hello.resume = this._resumeToken;
      this._send(hello);
    };
    socket.onmessage = (event) => this._receive(event.data);
    socket.onclose = (event) => {
      if (this._socket === socket) this._closed(event.code, event.reason);
    };
    socket.onerror = () => {}; // a close event always follows, with the code
  }

  _send(message) {
    const socket = this._socket;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(this.wire.encode(message));
    return true;
  }

  _receive(data) {
    let message;
    try {
      message = this.wire.decode(data);
    } catch (error) {
      this.emit('error', new ShoalError('bad_frame', String(error?.message ?? error)));
      return;
    }
    const handle = this._handlers[message.type];
    if (handle) handle.call(this, message);
  }

  _closed(code, reason) {
    this._socket = null;
    if (!FINAL_CLOSE_CODES.includes(code)) {
      this._retry({ code, reason });
      return;
    }
    const message = reason || `connection closed (${code})`;
    this._end({ code, reason }, new ShoalError(REFUSALS[code] ?? 'disconnected', message));
  }

  /** The connection is gone for now: fail what it carried and try again after the backoff delay. */
  _retry({ code, reason }) {
    const error = new ShoalError('disconnected', reason || `connection closed (${code})`);
    if (!this.reconnect) {
      this._end({ code, reason }, error);
      return;
    }
    this.lastClose = { code, reason };
    this._connectionLost(error, false);
    const retryIn = this.backoff.next();
    this._setState('reconnecting', { code, reason, retryIn, attempt: this.backoff.attempt });
    this._retryTimer = setTimeout(() => this._open(), retryIn);
  }

  /**
   * No more connections: stop retrying, reject what waits with `error`, enter the 'closed' state with `code`,
   * `reason` and `error`, and close the socket if it is still open (with `closeWith`).
   */
  _end({ code, reason }, error, closeWith = { code: CloseCode.NORMAL, reason: 'client closed' }) {
    const socket = this._socket;
    this._socket = null;
    this._attempts += 1; // an attempt still getting its token stops there
    clearTimeout(this._retryTimer);
    this.lastClose = { code, reason, error };
    this._connectionLost(error, true);
    this._setState('closed', { code, reason, error });
    if (socket && socket.readyState <= 1) socket.close(closeWith.code, closeWith.reason);
  }

  /** The socket is gone: stop the timers and fail what can no longer be answered. */
  _connectionLost(error, final) {
    clearInterval(this._sendTimer);
    clearTimeout(this._pingTimer);
    clearTimeout(this._jointsTimer);
    this._sendTimer = this._pingTimer = this._jointsTimer = null;
    for (const { reject } of this._pending.values()) reject(error);
    this._pending.clear();
    for (const waiter of this._claimWaiters.splice(0)) waiter.reject(error);
    for (const waiter of this._leaveWaiters.splice(0)) waiter.resolve(); // the server removed us anyway
    if (final) {
      for (const waiter of [...this._connectWaiters.splice(0), ...this._joinWaiters.splice(0)]) waiter.reject(error);
    }
  }

  _setState(state, details = {}) {
    const previous = this.state;
    this.state = state;
    this.emit('state', { state, previous, ...details });
  }

  // ---- timers ----------------------------------------------------------------------------------------

  _startTimers(tickRate) {
    clearInterval(this._sendTimer);
    this._sendTimer = setInterval(() => this._flush(), 1000 / (this.sendRate ?? tickRate));
    this._pingsSent = 0;
    this._ping();
  }

  _ping() {
    this._send({ type: 'ping', t: localNow() });
    this._pingsSent += 1;
    this._pingTimer = setTimeout(() => this._ping(), this._pingsSent < QUICK_PINGS ? 250 : this.pingInterval);
  }

  /** Send the pose and streamed entity transforms that changed since the last send tick. */
  _flush() {
    if (this.room === null) return;
    if (this._poseDirty && this._pose) {
      this._poseDirty = false;
      this._send({ type: 'pose', ...this._pose, t: this.serverNow() });
    }
    for (const id of [...this._streamed.keys()]) this._flushStream(id);
  }

  /** Send the unsent joints now if the joints interval allows it, or else when it does. */
  _scheduleJoints() {
    if (this._jointsTimer !== null || !this._jointsDirty) return;
    const wait = this._jointsSentAt + 1000 / this.jointsRate - localNow();
    if (wait > 0) {
      this._jointsTimer = setTimeout(() => {
        this._jointsTimer = null;
        this._scheduleJoints();
      }, wait);
      return;
    }
    this._jointsDirty = false;
    if (this.room === null) return;
    this._jointsSentAt = localNow();
    this._send(this._joints);
  }

  _flushStream(id) {
    const transform = this._streamed.get(id);
    if (!transform) return;
    this._streamed.delete(id);
    this._send({ type: 'entity_update', id, ...transform });
  }

  // ---- reliable changes ------------------------------------------------------------------------------

  _reliable(message) {
    if (!this.connected || this.room === null) {
      return Promise.reject(new ShoalError('not_in_room', 'join a room before changing entities'));
    }
    const seq = this._nextSeq++;
    const acked = new Promise((resolve, reject) => this._pending.set(seq, { type: message.type, resolve, reject }));
    this._send({ ...message, seq });
    return acked;
  }

  /** Apply our own change to the local copy at once (the server's echo confirms it a tick later). */
  _applyLocal(id, changes) {
    const entity = this.entities.get(id);
    if (!entity) return;
    const previous = { ...entity };
    this._entityBuffers.delete(id); // our change is exact: draw it, not a blend with what came before
    for (const key of ['pos', 'rot', 'scale', 'locked']) if (changes[key] !== undefined) entity[key] = changes[key];
    if (changes.props) entity.props = mergeProps(entity.props, changes.props);
    this.emit('entity_changed', { entity, previous, local: true });
  }

  // ---- state from the server -------------------------------------------------------------------------

  _resetRoom() {
    for (const member of this.members.values()) if (member.id !== this.id) this.emit('member_left', { member });
    for (const entity of this.entities.values()) this.emit('entity_removed', { entity });
    this.members.clear();
    this.entities.clear();
    this._poseBuffers.clear();
    this._jointsBuffers.clear();
    this._entityBuffers.clear();
    this._streamed.clear();
    this._joints = null; // the server forgot them too
    this._jointsDirty = false;
    this.room = null;
  }

  _addMember(info, time) {
    const member = setPresence({ id: info.id }, info);
    this.members.set(member.id, member);
    if (member.id === this.id) return member;
    const buffer = this._newBuffer(lerpPose);
    this._poseBuffers.set(member.id, buffer);
    if (info.pose) {
      member.pose = info.pose;
      buffer.push(time, info.pose);
    }
    this.emit('member_joined', { member });
    return member;
  }

  /**
   * An interpolation buffer for what arrives in ticks: `delay` behind (by default `interpolationDelay`), at `interval`
   * ms (by default the tick interval).
   */
  _newBuffer(interpolate, interval = 1000 / (this.welcome?.tick_rate ?? 20), delay = this.interpolationDelay) {
    return new InterpolationBuffer({ delay, interval, interpolate });
  }

  /**
   * Ms between two joints ticks: rooms relay joints at `welcome.limits.joints_relay_rate` (10 a second if unsaid),
   * and senders send them at `jointsRate`, which is never above it but may be below (a smaller `joints_rate` budget).
   */
  get _jointsInterval() {
    const rate = this.welcome?.limits?.joints_relay_rate;
    return 1000 / Math.min(this.jointsRate, typeof rate === 'number' && rate > 0 ? rate : DEFAULT_JOINTS_RATE);
  }

  _removeMember(id) {
    const member = this.members.get(id);
    if (!member) return;
    this.members.delete(id);
    this._poseBuffers.delete(id);
    this._jointsBuffers.delete(id);
    this.emit('member_left', { member });
  }

  /** Take the server's view of one entity. Our own entity keeps our local transform and props. */
  _applyEntity(incoming, time) {
    const previous = this.entities.get(incoming.id);
    if (previous && incoming.v < previous.v) return; // older than what we have
    const entity = { ...incoming };
    if (previous && incoming.owner === this.id) {
      for (const key of ['pos', 'rot', 'scale', 'props']) entity[key] = previous[key];
    } else {
      let buffer = this._entityBuffers.get(entity.id);
      if (!buffer) {
        buffer = this._newBuffer(lerpTransform);
        this._entityBuffers.set(entity.id, buffer);
      }
      buffer.push(time, { pos: entity.pos, rot: entity.rot ?? IDENTITY_ROTATION, scale: entity.scale });
    }
    this.entities.set(entity.id, entity);
    if (previous) this.emit('entity_changed', { entity, previous, local: false });
    else this.emit('entity_added', { entity });
  }

  _removeEntity(id) {
    const entity = this.entities.get(id);
    if (!entity) return;
    this.entities.delete(id);
    this._entityBuffers.delete(id);
    this._streamed.delete(id);
    this.emit('entity_removed', { entity });
  }

  /**
   * The joints entries of a tick: each member listed gets its new joints (an entry without hands removes them);
   * a full tick lists everyone's, so members it does not list have none.
   */
  _applyJoints({ joints = [], full = false, t }) {
    const listed = new Set();
    for (const entry of joints) {
      listed.add(entry.id);
      const member = entry.id === this.id ? undefined : this.members.get(entry.id);
      if (member) this._setJoints(member, entry, t);
    }
    if (!full) return;
    for (const member of this.members.values()) {
      if (member.joints && !listed.has(member.id)) this._setJoints(member, { id: member.id }, t);
    }
  }

  /** Member's new joints at server time `time`: kept as its latest, buffered for `remoteJoints`, and emitted. */
  _setJoints(member, entry, time) {
    const hands = {}; // JSON ticks may say null for an untracked hand: leave it out, as binary does
    if (entry.left) hands.left = entry.left;
    if (entry.right) hands.right = entry.right;
    const joints = { id: member.id, ...hands };
    if (hands.left || hands.right) member.joints = joints;
    else delete member.joints;
    let buffer = this._jointsBuffers.get(member.id);
    if (!buffer && (hands.left || hands.right)) {
      buffer = this._newBuffer(lerpJoints, this._jointsInterval, this.jointsDelay);
      this._jointsBuffers.set(member.id, buffer);
    }
    buffer?.push(time, hands); // no hands: hidden once the interpolated moment gets there, as a pose loses a hand
    this.emit('joints', { member, joints, time });
  }

  _settle(waiters, predicate, settle) {
    const kept = waiters.filter((waiter) => {
      if (!predicate(waiter)) return true;
      settle(waiter);
      return false;
    });
    waiters.splice(0, waiters.length, ...kept);
  }
}

/** Message handlers, by `type`; `this` is the client. */
ShoalClient.prototype._handlers = {
  welcome(message) {
    if (this.id !== null) this.members.delete(this.id); // our old self left with the old connection
    this.id = message.id;
    this.welcome = message;
    this._resumeToken = message.resume_token ?? null;
    this.clock.seed(message.server_time);
    this.backoff.reset();
    this._setState('connected');
    this._startTimers(message.tick_rate);
    this.emit('welcome', message);
    for (const waiter of this._connectWaiters.splice(0)) waiter.resolve(message);
    // a resumed session is put back in its room by the server (a `joined` follows); otherwise join again
    this._resumed = Boolean(message.resumed);
    if (this._wantedRoom !== null && !this._resumed) this._send({ type: 'join', room: this._wantedRoom });
  },

  joined(message) {
    if (this._resumed) {
      this._resumed = false;
      // the session came back in its old room, but join() asked for another meanwhile
      if (this._wantedRoom !== null && this._wantedRoom !== message.room)
        this._send({ type: 'join', room: this._wantedRoom });
    }
    const time = this.serverNow();
    const sameRoom = this.room === message.room;
    if (!sameRoom) this._resetRoom();
    this.room = message.room;
    this.id = message.id;
    const present = new Set(message.members.map((info) => info.id));
    for (const id of [...this.members.keys()]) if (!present.has(id)) this._removeMember(id);
    for (const info of message.members) {
      const known = this.members.get(info.id);
      if (known) setPresence(known, info);
      else this._addMember(info, time);
      // snapshots carry no joints, and hands that stopped while we were away would stay up forever: drop them
      // (hands still tracked come back with their next joints), at once: what we buffered before is stale, and the
      // next joints tick must start afresh whatever its time
      if (known?.joints) {
        this._jointsBuffers.delete(known.id);
        this._setJoints(known, { id: known.id }, time);
      }
    }
    const entities = message.entities ?? [];
    const listed = new Set(entities.map((entity) => entity.id));
    for (const id of [...this.entities.keys()]) if (!listed.has(id)) this._removeEntity(id);
    for (const entity of entities) this._applyEntity(entity, time);
    this._poseDirty = this._pose !== null; // re-announce where we are
    // and our hands: a rejoin (after a drop) made the server forget them
    this._jointsDirty = Boolean(this._joints?.left || this._joints?.right);
    this._scheduleJoints();
    this.emit('joined', message);
    this._settle(
      this._joinWaiters,
      (waiter) => waiter.room === message.room,
      (waiter) => waiter.resolve(message),
    );
  },

  left(message) {
    this._resetRoom();
    this.emit('left', message);
    for (const waiter of this._leaveWaiters.splice(0)) waiter.resolve();
  },

  member_joined(message) {
    if (message.room === this.room && !this.members.has(message.member.id)) {
      this._addMember(message.member, this.serverNow());
    }
  },

  member_left(message) {
    if (message.room === this.room) this._removeMember(message.id);
  },

  member_updated(message) {
    const member = message.room === this.room ? this.members.get(message.member.id) : undefined;
    if (!member) return;
    const previous = { ...member };
    setPresence(member, message.member);
    this.emit('member_updated', { member, previous });
  },

  tick(message) {
    for (const pose of message.poses ?? []) {
      if (pose.id === this.id) continue;
      const member = this.members.get(pose.id);
      if (!member) continue;
      member.pose = pose;
      this._poseBuffers.get(pose.id)?.push(message.t, pose);
      this.emit('pose', { member, pose, time: message.t });
    }
    if (message.full) {
      const listed = new Set((message.entities ?? []).map((entity) => entity.id));
      for (const id of [...this.entities.keys()]) if (!listed.has(id)) this._removeEntity(id);
    }
    for (const entity of message.entities ?? []) this._applyEntity(entity, message.t);
    for (const id of message.removed ?? []) this._removeEntity(id);
    if (message.joints || message.full) this._applyJoints(message);
    this.emit('tick', message);
  },

  pong(message) {
    this.clock.addSample(message.t, message.server_time);
    this.emit('clock', { rtt: this.clock.rtt, offset: this.clock.offset });
  },

  msg(message) {
    this.emit('message', message);
  },

  ack(message) {
    const pending = this._pending.get(message.seq);
    if (!pending) return;
    this._pending.delete(message.seq);
    pending.resolve();
  },

  claim_result(message) {
    if (message.granted) {
      const entity = this.entities.get(message.id);
      if (entity) entity.owner = message.owner ?? this.id;
      this._entityBuffers.delete(message.id); // ours now: drawn where we put it
    }
    this.emit('claim', message);
    let settled = false;
    this._settle(
      this._claimWaiters,
      (waiter) => !settled && waiter.id === message.id && (settled = true),
      (waiter) => waiter.resolve(message.granted),
    );
  },

  error(message) {
    const error = new ShoalError(message.code, message.message, message);
    this.emit('error', error);
    const pending = message.seq !== undefined ? this._pending.get(message.seq) : undefined;
    if (pending) {
      this._pending.delete(message.seq);
      pending.reject(error);
    } else if (message.ref === 'hello') {
      // a refused token or version (the server closes 4001 or 4002 next), name or colour: the same hello would
      // be refused again, so end here, with the server's own message
      this._end({ code: HELLO_REFUSALS[error.code] ?? CloseCode.NORMAL, reason: error.message }, error);
    } else if (message.ref === 'join') {
      this._wantedRoom = this.room;
      for (const waiter of this._joinWaiters.splice(0)) waiter.reject(error);
    } else if (message.ref === 'entity_claim') {
      this._claimWaiters.shift()?.reject(error); // claims are answered in the order they were sent
    }
  },
};

/**
 * Make `member` show the presence `info` as the server sent it (name, colour, and when they apply `user`,
 * `avatar`, `role`, `muted`): fields it no longer has are removed. Its pose and joints are kept.
 */
function setPresence(member, { pose, joints, ...presence }) {
  for (const key of Object.keys(member)) if (!KEPT_MEMBER_FIELDS.has(key)) delete member[key];
  return Object.assign(member, presence);
}

/** What a member carries besides its presence: not removed when the presence changes. */
const KEPT_MEMBER_FIELDS = new Set(['id', 'pose', 'joints']);

function sameNumbers(a, b) {
  return (
    a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((value, i) => value === b[i]))
  );
}

function samePose(a, b) {
  return ['head', 'left', 'right'].every(
    (part) =>
      a[part] === b[part] ||
      (a[part] && b[part] && sameNumbers(a[part].pos, b[part].pos) && sameNumbers(a[part].rot, b[part].rot)),
  );
}

/** `props` with `changes` merged in: top-level keys replaced, a key set to null deleted (as the server does). */
export function mergeProps(props, changes) {
  const merged = { ...props };
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

function randomId() {
  const bytes = new Uint8Array(6);
  if (globalThis.crypto?.getRandomValues) globalThis.crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256); // old Node only
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
