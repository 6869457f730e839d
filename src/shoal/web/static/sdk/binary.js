/**
 * The compact binary codec (`Sec-WebSocket-Protocol: shoal.v1.bin`), byte for byte as docs/protocol.md
 * ("Binary frames") describes it and as the server's `shoal/protocol/binary.py` implements it; the frames in
 * tests/vectors/binary.json are produced and accepted identically by both.
 *
 * Poses go out compact: the head's position in 0.1 mm steps (+-838 m), the hands' in 0.05 mm steps relative to
 * the head (+-1.6 m; farther ones, and heads beyond the range, go as exact float64), rotations as smallest-three
 * quaternions in 6 bytes. Hand joints too: each hand's wrist like the head, its other 24 joints in 0.1 mm steps
 * relative to the wrist (+-3.2767 m). Ticks come in compact. Every other message travels as JSON text behind a
 * one-byte tag.
 *
 *   import { binaryCodec } from '/sdk/binary.js';
 *   const client = new ShoalClient({ codec: binaryCodec });   // falls back to JSON if the server declines
 */

import { HAND_JOINTS, JOINT_COUNT, jointsMessage } from './joints.js';

export const SUBPROTOCOL = 'shoal.v1.bin';

export const TAG_JSON = 0x00;
export const TAG_POSE = 0x01;
export const TAG_TICK = 0x02;
export const TAG_JOINTS = 0x03;

const LEFT = 0x01;
const RIGHT = 0x02;
const HAS_T = 0x04;
const HEAD_WIDE = 0x08;
const LEFT_WIDE = 0x10;
const RIGHT_WIDE = 0x20;
const RESERVED_POSE_FLAGS = 0xc0;
const FULL = 0x01;
const ENTITIES = 0x02;
const JOINTS = 0x04;
// hand flags of a joints body
const HAND_LEFT = 0x01;
const HAND_RIGHT = 0x02;
const HAND_LEFT_WIDE = 0x04;
const HAND_RIGHT_WIDE = 0x08;
const RESERVED_HAND_FLAGS = 0xf0;
const HANDS = [
  ['left', HAND_LEFT, HAND_LEFT_WIDE],
  ['right', HAND_RIGHT, HAND_RIGHT_WIDE],
];

const HEAD_SCALE = 10000; // 0.1 mm
const HEAD_LIMIT = 2 ** 23 - 1;
const HAND_SCALE = 20000; // 0.05 mm, relative to the head
const HAND_LIMIT = 2 ** 15 - 1;
const QUAT_STEPS = 16383;
const QUAT_SCALE = QUAT_STEPS * Math.SQRT2;
const QUAT_NORM_LIMIT = 2 * QUAT_STEPS * QUAT_STEPS;
const AGE_SCALE = 100; // 10 microseconds
const JOINT_SCALE = 10000; // 0.1 mm, relative to the decoded wrist
const JOINT_LIMIT = 2 ** 15 - 1;
const MAX_COORDINATE = 10000;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Round half up, as the server does: the same doubles give the same integers in both languages. */
const quantise = (value, scale) => Math.floor(value * scale + 0.5);

/** Bytes being written: a growable view, so callers never count sizes by hand. */
class Writer {
  constructor(size = 64) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
    this.length = 0;
  }

  _room(size) {
    if (this.length + size <= this.bytes.length) return;
    const bigger = new Uint8Array(Math.max(this.bytes.length * 2, this.length + size));
    bigger.set(this.bytes);
    this.bytes = bigger;
    this.view = new DataView(bigger.buffer);
  }

  u8(value) {
    this._room(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
  }

  u16(value) {
    this._room(2);
    this.view.setUint16(this.length, value, true);
    this.length += 2;
  }

  i16(value) {
    this._room(2);
    this.view.setInt16(this.length, value, true);
    this.length += 2;
  }

  /** A little-endian 24-bit signed integer. */
  i24(value) {
    this._room(3);
    this.view.setUint16(this.length, value & 0xffff, true);
    this.view.setInt8(this.length + 2, value >> 16);
    this.length += 3;
  }

  f64(value) {
    this._room(8);
    this.view.setFloat64(this.length, value, true);
    this.length += 8;
  }

  raw(bytes) {
    this._room(bytes.length);
    this.bytes.set(bytes, this.length);
    this.length += bytes.length;
  }

  result() {
    return this.bytes.slice(0, this.length);
  }
}

/**
 * Smallest-three: drop the largest component (by magnitude, first on ties), made positive; store the other three
 * (x, y, z, w order) in 15 bits each; the dropped index rides in the top bits of the first two words.
 */
export function packQuaternion(rot) {
  let [x, y, z, w] = rot;
  const norm2 = x * x + y * y + z * z + w * w;
  if (Math.abs(norm2 - 1) > 1e-6) {
    if (!(norm2 > 1e-12) || !Number.isFinite(norm2)) throw new RangeError('rotation quaternion is zero or not finite');
    const norm = Math.sqrt(norm2);
    [x, y, z, w] = [x / norm, y / norm, z / norm, w / norm];
  }
  const [ax, ay, az, aw] = [Math.abs(x), Math.abs(y), Math.abs(z), Math.abs(w)];
  let index, largest, others;
  if (ax >= ay && ax >= az && ax >= aw) [index, largest, others] = [0, x, [y, z, w]];
  else if (ay >= az && ay >= aw) [index, largest, others] = [1, y, [x, z, w]];
  else if (az >= aw) [index, largest, others] = [2, z, [x, y, w]];
  else [index, largest, others] = [3, w, [x, y, z]];
  const sign = largest < 0 ? -1 : 1;
  const [a, b, c] = others.map(
    (value) => Math.min(Math.max(quantise(sign * value, QUAT_SCALE), -QUAT_STEPS), QUAT_STEPS) + QUAT_STEPS,
  );
  return [((index >> 1) << 15) | a, ((index & 1) << 15) | b, c];
}

/** The unit quaternion of three stored words; throws RangeError if they cannot be one. */
export function unpackQuaternion(first, second, third) {
  const na = (first & 0x7fff) - QUAT_STEPS;
  const nb = (second & 0x7fff) - QUAT_STEPS;
  const nc = third - QUAT_STEPS;
  const squares = na * na + nb * nb + nc * nc;
  if (squares > QUAT_NORM_LIMIT || na > QUAT_STEPS || nb > QUAT_STEPS || nc > QUAT_STEPS) {
    throw new RangeError('rotation is not a unit quaternion');
  }
  const [a, b, c] = [na / QUAT_SCALE, nb / QUAT_SCALE, nc / QUAT_SCALE];
  const largest = Math.sqrt(1 - squares / QUAT_NORM_LIMIT); // integer squares: exact, never below zero
  switch (((first >> 15) << 1) | (second >> 15)) {
    case 0:
      return [largest, a, b, c];
    case 1:
      return [a, largest, b, c];
    case 2:
      return [a, b, largest, c];
    default:
      return [a, b, c, largest];
  }
}

function steps(pos, base, scale, limit) {
  const out = pos.map((value, i) => quantise(value - base[i], scale));
  return out.every((n) => n >= -limit && n <= limit) ? out : null;
}

/** Head, left and right into `writer`; returns the flags (LEFT, RIGHT, *_WIDE) that describe them. */
function writeBody(writer, { head, left, right }) {
  let flags = 0;
  let base = head.pos;
  const headSteps = steps(head.pos, [0, 0, 0], HEAD_SCALE, HEAD_LIMIT);
  if (headSteps === null) {
    flags |= HEAD_WIDE;
    head.pos.forEach((value) => writer.f64(value));
  } else {
    headSteps.forEach((n) => writer.i24(n));
    base = headSteps.map((n) => n / HEAD_SCALE);
  }
  packQuaternion(head.rot).forEach((word) => writer.u16(word));
  for (const [hand, present, wide] of [
    [left, LEFT, LEFT_WIDE],
    [right, RIGHT, RIGHT_WIDE],
  ]) {
    if (!hand) continue;
    flags |= present;
    const handSteps = steps(hand.pos, base, HAND_SCALE, HAND_LIMIT);
    if (handSteps === null) {
      flags |= wide;
      hand.pos.forEach((value) => writer.f64(value));
    } else {
      handSteps.forEach((n) => writer.i16(n));
    }
    packQuaternion(hand.rot).forEach((word) => writer.u16(word));
  }
  return flags;
}

/** Bytes being read, with bounds checks that throw RangeError (a truncated frame). */
class Reader {
  constructor(bytes) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.bytes = bytes;
    this.offset = 0;
  }

  _take(size) {
    const at = this.offset;
    if (at + size > this.view.byteLength) throw new RangeError('the frame is truncated');
    this.offset += size;
    return at;
  }

  u8 = () => this.view.getUint8(this._take(1));
  u16 = () => this.view.getUint16(this._take(2), true);
  u32 = () => this.view.getUint32(this._take(4), true);
  i16 = () => this.view.getInt16(this._take(2), true);
  i32 = () => this.view.getInt32(this._take(4), true);
  f64 = () => this.view.getFloat64(this._take(8), true);

  i24() {
    const at = this._take(3);
    return this.view.getUint16(at, true) | (this.view.getInt8(at + 2) << 16);
  }

  get remaining() {
    return this.view.byteLength - this.offset;
  }
}

function readWide(reader) {
  const pos = [reader.f64(), reader.f64(), reader.f64()];
  if (!pos.every((value) => value >= -MAX_COORDINATE && value <= MAX_COORDINATE)) {
    throw new RangeError('a coordinate is not within +-10000 m');
  }
  return pos;
}

function readQuaternion(reader) {
  return unpackQuaternion(reader.u16(), reader.u16(), reader.u16());
}

/** Head, left and right from `reader` as `{head, left?, right?}` (absent hands are not set). */
function readBody(reader, flags) {
  if (flags & RESERVED_POSE_FLAGS) throw new RangeError(`reserved pose flags set: ${flags}`);
  const base =
    flags & HEAD_WIDE ? readWide(reader) : [reader.i24(), reader.i24(), reader.i24()].map((n) => n / HEAD_SCALE);
  const pose = { head: { pos: base, rot: readQuaternion(reader) } };
  for (const [name, present, wide] of [
    ['left', LEFT, LEFT_WIDE],
    ['right', RIGHT, RIGHT_WIDE],
  ]) {
    if (!(flags & present)) {
      if (flags & wide) throw new RangeError('a wide flag is set for an absent hand');
      continue;
    }
    const pos =
      flags & wide
        ? readWide(reader)
        : [reader.i16(), reader.i16(), reader.i16()].map((n, i) => base[i] + n / HAND_SCALE);
    pose[name] = { pos, rot: readQuaternion(reader) };
  }
  return pose;
}

/**
 * One hand's 25 joints into `writer`: the wrist absolute (0.1 mm steps, or float64 metres beyond +-838 m), every
 * other joint in 0.1 mm steps relative to the wrist as decoded. Returns true if the wrist went wide.
 */
function writeHand(writer, joints, side) {
  const [wrist] = joints;
  const wristSteps = steps(wrist.slice(0, 3), [0, 0, 0], HEAD_SCALE, HEAD_LIMIT);
  let base = wrist.slice(0, 3);
  if (wristSteps === null) {
    base.forEach((value) => writer.f64(value));
  } else {
    wristSteps.forEach((n) => writer.i24(n));
    base = wristSteps.map((n) => n / HEAD_SCALE);
  }
  packQuaternion(wrist.slice(3)).forEach((word) => writer.u16(word));
  for (let i = 1; i < JOINT_COUNT; i += 1) {
    const relative = steps(joints[i].slice(0, 3), base, JOINT_SCALE, JOINT_LIMIT);
    if (relative === null) {
      throw new RangeError(`${side} joint ${i} (${HAND_JOINTS[i]}) is further than 3.2767 m from its wrist`);
    }
    relative.forEach((n) => writer.i16(n));
    packQuaternion(joints[i].slice(3)).forEach((word) => writer.u16(word));
  }
  return wristSteps === null;
}

/** A joints body (the hand flags byte, then the hands) into `writer`, from a checked `joints` message. */
function writeJoints(writer, message) {
  const at = writer.length;
  writer.u8(0); // the hand flags, filled in below
  let flags = 0;
  for (const [side, present, wide] of HANDS) {
    if (!message[side]) continue;
    flags |= present | (writeHand(writer, message[side], side) ? wide : 0);
  }
  writer.bytes[at] = flags;
}

function readHand(reader, wide) {
  const base = wide ? readWide(reader) : [reader.i24(), reader.i24(), reader.i24()].map((n) => n / HEAD_SCALE);
  const joints = [[...base, ...readQuaternion(reader)]];
  for (let i = 1; i < JOINT_COUNT; i += 1) {
    const pos = [reader.i16(), reader.i16(), reader.i16()].map((n, k) => base[k] + n / JOINT_SCALE);
    joints.push([...pos, ...readQuaternion(reader)]);
  }
  return joints;
}

/** A joints body from `reader` as `{left?, right?}` (absent hands are not set). */
function readJoints(reader) {
  const flags = reader.u8();
  if (flags & RESERVED_HAND_FLAGS) throw new RangeError(`reserved hand flags set: ${flags}`);
  const hands = {};
  for (const [side, present, wide] of HANDS) {
    if (flags & present) hands[side] = readHand(reader, flags & wide);
    else if (flags & wide) throw new RangeError('a wide flag is set for an absent hand');
  }
  return hands;
}

/** A `pose` message `{type: 'pose', head, left?, right?, t?}` as a binary frame (a Uint8Array). */
export function encodePose(message) {
  const writer = new Writer(64);
  writer.u8(TAG_POSE);
  writer.u8(0); // flags, filled in below
  if (message.t !== undefined && message.t !== null) writer.f64(message.t);
  const flags = writeBody(writer, message);
  writer.bytes[1] = flags | (message.t !== undefined && message.t !== null ? HAS_T : 0);
  return writer.result();
}

/** A binary pose frame as a `pose` message (what the server decodes; the SDK uses it in its tests). */
export function decodePose(bytes) {
  const reader = new Reader(bytes);
  if (reader.u8() !== TAG_POSE) throw new RangeError('not a pose frame');
  const flags = reader.u8();
  const t = flags & HAS_T ? reader.f64() : undefined;
  const message = { type: 'pose', ...readBody(reader, flags) };
  if (t !== undefined) message.t = t;
  if (reader.remaining) throw new RangeError(`the pose frame has ${reader.remaining} bytes too many`);
  return message;
}

/**
 * A `joints` message `{type: 'joints', left?, right?}` as a binary frame: 2 bytes without hands, 608 with both
 * (near the origin). Throws as `jointsMessage` does, and RangeError for a joint over 3.2767 m from its wrist.
 */
export function encodeJoints(message) {
  const writer = new Writer(2 + 2 * 303);
  writer.u8(TAG_JOINTS);
  writeJoints(writer, jointsMessage(message));
  return writer.result();
}

/** A binary joints frame as a `joints` message (what the server decodes; the SDK uses it in its tests). */
export function decodeJoints(bytes) {
  const reader = new Reader(bytes);
  if (reader.u8() !== TAG_JOINTS) throw new RangeError('not a joints frame');
  const message = { type: 'joints', ...readJoints(reader) };
  if (reader.remaining) throw new RangeError(`the joints frame has ${reader.remaining} bytes too many`);
  return message;
}

/** A binary tick frame as a `tick` message, shaped exactly like a JSON one (absent fields are not set). */
export function decodeTick(bytes) {
  const reader = new Reader(bytes);
  if (reader.u8() !== TAG_TICK) throw new RangeError('not a tick frame');
  const flags = reader.u8();
  const message = { type: 'tick', seq: reader.u32(), t: reader.f64(), poses: [] };
  const count = reader.u16();
  for (let i = 0; i < count; i += 1) {
    const id = reader.u32();
    const poseFlags = reader.u8();
    const age = poseFlags & HAS_T ? reader.i32() : null;
    const pose = { id, ...readBody(reader, poseFlags) };
    if (age !== null) pose.t = message.t - age / AGE_SCALE;
    message.poses.push(pose);
  }
  if (flags & JOINTS) {
    message.joints = [];
    const entries = reader.u16();
    for (let i = 0; i < entries; i += 1) message.joints.push({ id: reader.u32(), ...readJoints(reader) });
  }
  if (flags & ENTITIES) {
    const section = JSON.parse(utf8Decoder.decode(bytes.subarray(reader.offset)));
    if (section.entities) message.entities = section.entities;
    if (section.removed) message.removed = section.removed;
  } else if (reader.remaining) {
    throw new RangeError(`the tick frame has ${reader.remaining} bytes too many`);
  }
  if (flags & FULL) message.full = true;
  return message;
}

function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw new TypeError('text frame on a binary connection');
}

export const binaryCodec = Object.freeze({
  subprotocol: SUBPROTOCOL,
  binary: true,

  /** Poses and joints compact; any other message as the JSON tag and its JSON text. @returns {Uint8Array} */
  encode(message) {
    if (message.type === 'pose') return encodePose(message);
    if (message.type === 'joints') return encodeJoints(message);
    const json = utf8Encoder.encode(JSON.stringify(message));
    const frame = new Uint8Array(json.length + 1);
    frame[0] = TAG_JSON;
    frame.set(json, 1);
    return frame;
  },

  /** A tick, or a tagged JSON message. Throws on a text frame or bytes that break the format. */
  decode(data) {
    const bytes = toBytes(data);
    if (bytes[0] === TAG_TICK) return decodeTick(bytes);
    if (bytes[0] === TAG_JSON) {
      const message = JSON.parse(utf8Decoder.decode(bytes.subarray(1)));
      if (message === null || typeof message !== 'object' || typeof message.type !== 'string') {
        throw new TypeError('frame is not a Shoal message (no "type")');
      }
      return message;
    }
    throw new RangeError(`unknown frame tag ${bytes[0]}`);
  },
});
