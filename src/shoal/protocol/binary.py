"""Shoal protocol v1 in compact binary frames (`Sec-WebSocket-Protocol: shoal.v1.bin`).

docs/protocol.md ("Binary frames") is the byte-by-byte contract; this module and the JavaScript SDK's
`binary.js` implement it, and `tests/vectors/binary.json` holds frames both must produce and accept.

Every frame starts with a one-byte tag. Poses (client -> server) and ticks (server -> client) are compact:
positions are quantised integers (the head to 0.1 mm within +-838 m, hands to 0.05 mm relative to the
head within +-1.6 m; anything further is sent as exact float64), rotations are smallest-three quaternions
in 6 bytes. A full avatar (head + two hands + timestamp) is 48 bytes in a tick, member id included. Every
other message is its JSON text behind the tag `JSON`, so the JSON schema stays the single source of truth
for validation; hand joints have compact frames of their own (`shoal.protocol.joints`).

Quantising rounds half up (`floor(x * scale + 0.5)`), the same arithmetic in Python and JavaScript, so
both produce identical bytes. Re-encoding a decoded pose gives back the same bytes, except for a rotation
whose two largest components are within a step of each other: the other one may be dropped then (for the
same rotation). The server never re-encodes a binary pose: it relays the bytes it received.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

import msgspec

from shoal.protocol.codec import JSON, DecodeFailure, JointsTickEncoder, PoseSource, TickEncoder
from shoal.protocol.errors import ErrorCode
from shoal.protocol.messages import (
    MAX_COORDINATE_M,
    ClientMessage,
    Entity,
    Joints,
    MemberJoints,
    MemberPose,
    Pose,
    ServerMessage,
    ServerMessages,
    Tick,
    Transform,
)
from shoal.speedups import native

if TYPE_CHECKING:
    from shoal.protocol.joints import PackedJoints

SUBPROTOCOL = "shoal.v1.bin"

# ---- frame tags (byte 0) ------------------------------------------------------------------------------
TAG_JSON = 0x00
"""Any message as JSON text (UTF-8) after the tag, both directions."""
TAG_POSE = 0x01
"""Client -> server: the sender's pose."""
TAG_TICK = 0x02
"""Server -> client: a tick."""
TAG_JOINTS = 0x03
"""Client -> server: the sender's hand joints (`shoal.protocol.joints`)."""
_JSON_TAG = bytes((TAG_JSON,))

# ---- pose flags (one byte before each pose body) ------------------------------------------------------
LEFT = 0x01
RIGHT = 0x02
HAS_T = 0x04
HEAD_WIDE = 0x08
"""The head position is 3 x float64 (it is beyond +-838 m, or was sent that way)."""
LEFT_WIDE = 0x10
"""The left hand position is 3 x float64, absolute (it is more than 1.6 m from the head on some axis)."""
RIGHT_WIDE = 0x20
RESERVED_POSE_FLAGS = 0xC0
"""Must be zero (hand joints have a frame of their own: `TAG_JOINTS`)."""

# ---- tick flags ------------------------------------------------------------------------------------------
FULL = 0x01
"""The tick holds the room's complete state (see `tick.full` in docs/protocol.md)."""
ENTITIES = 0x02
"""A JSON object `{"entities": [...], "removed": [...]}` follows the poses, up to the end of the frame."""
JOINTS = 0x04
"""A joints section (u16 count, then member id + hands per entry) follows the poses, before any entity section."""
RESERVED_TICK_FLAGS = 0xF8

# ---- quantisation ---------------------------------------------------------------------------------------
HEAD_SCALE = 10_000.0
"""Head positions in steps of 0.1 mm (error at most 0.05 mm)."""
HEAD_LIMIT = 2**23 - 1
"""Largest head step count: 24-bit signed, +-838.8607 m."""
HAND_SCALE = 20_000.0
"""Hand positions relative to the head in steps of 0.05 mm (error at most 0.025 mm)."""
HAND_LIMIT = 2**15 - 1
"""Largest hand step count: 16-bit signed, +-1.63835 m from the head on each axis."""
QUAT_STEPS = 16_383
QUAT_SCALE = QUAT_STEPS * math.sqrt(2.0)
"""The three smallest components of a unit quaternion lie in [-1/sqrt(2), 1/sqrt(2)]: 15 bits each."""
_QUAT_NORM_LIMIT = 2 * QUAT_STEPS * QUAT_STEPS
"""QUAT_SCALE^2 as an integer: the squares of three stored components (in steps) may not sum beyond it,
or they are no unit quaternion's."""
AGE_SCALE = 100.0
"""Tick entries carry `tick.t - pose.t` in steps of 10 microseconds (int32: +-5.9 hours)."""
_AGE_LIMIT = 2**31 - 1
MAX_TIMESTAMP = 1e15

_PREFIX = struct.Struct("<BB")
_T = struct.Struct("<d")
_HEAD = struct.Struct("<HbHbHb")  # 3 x little-endian int24, read as (low u16, high i8) pairs
_HAND = struct.Struct("<hhh")
_WIDE = struct.Struct("<ddd")
_QUAT = struct.Struct("<HHH")
_ENTRY = struct.Struct("<IB")
_ENTRY_WITH_AGE = struct.Struct("<IBi")
_AGE = struct.Struct("<i")
_TICK = struct.Struct("<BBIdH")
_TICK_HEADER = struct.Struct("<BBId")
_COUNT = struct.Struct("<H")
_FULL_POSE = struct.Struct("<BBdHbHbHbHHHhhhHHHhhhHHH")
"""The common client pose (head, both hands near it, `t`) in one unpack: the receive path's fast case."""
_FULL_POSE_FLAGS = LEFT | RIGHT | HAS_T
_FULL_POSE_CHECK = struct.Struct("<2xd9x3H6x3H6x3H")
"""What `pack_pose` checks in that layout: `t` and the three rotations (compact positions are in range by
construction)."""


class BinaryFormatError(ValueError):
    """Bytes that break the binary layout (truncated, reserved bits set, an impossible quaternion, ...)."""


def _joints() -> ModuleType:
    """`shoal.protocol.joints`, which builds on this module's helpers (so it cannot be imported at the top)."""
    from shoal.protocol import joints

    return joints


# ---- quaternions ------------------------------------------------------------------------------------------


def pack_quaternion(rot: Sequence[float]) -> tuple[int, int, int]:
    """Smallest-three: the largest component (by magnitude, first on ties) is dropped and made positive;
    the other three, in x, y, z, w order, are stored in 15 bits each; its index rides in the top bits of
    the first two words. A non-unit quaternion is normalised first; a zero one raises ValueError."""
    x, y, z, w = rot
    norm2 = x * x + y * y + z * z + w * w
    if abs(norm2 - 1.0) > 1e-6:
        if not norm2 > 1e-12 or not math.isfinite(norm2):
            raise ValueError("rotation quaternion is zero or not finite")
        norm = math.sqrt(norm2)
        x, y, z, w = x / norm, y / norm, z / norm, w / norm
    ax, ay, az, aw = abs(x), abs(y), abs(z), abs(w)
    if ax >= ay and ax >= az and ax >= aw:
        index, largest, a, b, c = 0, x, y, z, w
    elif ay >= az and ay >= aw:
        index, largest, a, b, c = 1, y, x, z, w
    elif az >= aw:
        index, largest, a, b, c = 2, z, x, y, w
    else:
        index, largest, a, b, c = 3, w, x, y, z
    if largest < 0.0:
        a, b, c = -a, -b, -c
    # Inline, without a helper or min/max (about 0.3 µs a call on CPython 3.11): this runs for every rotation encoded,
    # 50 per hand-joints entry. No clamp is needed: a component other than the largest is at most
    # sqrt(norm2 / 2) <= 0.70710714 (norm2 is within 1e-6 of 1 here), which rounds to at most QUAT_STEPS steps.
    na = math.floor(a * QUAT_SCALE + 0.5) + QUAT_STEPS
    nb = math.floor(b * QUAT_SCALE + 0.5) + QUAT_STEPS
    nc = math.floor(c * QUAT_SCALE + 0.5) + QUAT_STEPS
    return (index >> 1) << 15 | na, (index & 1) << 15 | nb, nc


def _component_squares() -> tuple[list[int], list[int]]:
    """For each stored word (0...65535): the square of the component it holds, in steps, or a number beyond
    `_QUAT_NORM_LIMIT` when it holds none (a value of 32767; a third word with bit 15 set). One table for the
    first two words, whose bit 15 is half of the largest component's index, and one for the third."""
    beyond = _QUAT_NORM_LIMIT + 1
    squares = [(value - QUAT_STEPS) ** 2 for value in range(2 * QUAT_STEPS + 1)] + [beyond]
    return squares * 2, squares + [beyond] * len(squares)


_SQUARE_OF_WORD, _SQUARE_OF_THIRD = _component_squares()
# Table lookups instead of arithmetic: one rotation is checked by three lookups and a comparison, and a hand's 25 by
# a loop of those (`all_unit_quaternions`), half the cost of the arithmetic. The tables hold about 2 MB.


def is_unit_quaternion(first: int, second: int, third: int) -> bool:
    """Whether three stored words (each 0...65535) can be a unit quaternion's: each value within 0...32766 (a
    third word with bit 15 set is beyond it) and the squares of the three within 1."""
    return _SQUARE_OF_WORD[first] + _SQUARE_OF_WORD[second] + _SQUARE_OF_THIRD[third] <= _QUAT_NORM_LIMIT


def all_unit_quaternions(words: Sequence[int]) -> bool:
    """`is_unit_quaternion` of every rotation in `words`, which holds their three stored words end to end (first,
    second, third, first, ...): True when there is none."""
    square, square_of_third, limit = _SQUARE_OF_WORD, _SQUARE_OF_THIRD, _QUAT_NORM_LIMIT
    rotations = iter(words)
    # A plain loop over the triples: a list comprehension or `map` chains cost 1.3-1.6 times as much on CPython 3.11
    for first, second, third in zip(rotations, rotations, rotations, strict=True):
        if square[first] + square[second] + square_of_third[third] > limit:
            return False
    return True


def unpack_quaternion(first: int, second: int, third: int) -> tuple[float, float, float, float]:
    """The unit quaternion of three stored words; BinaryFormatError if they cannot be one."""
    if not is_unit_quaternion(first, second, third):
        raise BinaryFormatError("rotation is not a unit quaternion")
    na = (first & 0x7FFF) - QUAT_STEPS
    nb = (second & 0x7FFF) - QUAT_STEPS
    nc = third - QUAT_STEPS
    squares = na * na + nb * nb + nc * nc
    a, b, c = na / QUAT_SCALE, nb / QUAT_SCALE, nc / QUAT_SCALE
    largest = math.sqrt(1.0 - squares / _QUAT_NORM_LIMIT)  # integer squares: exact, never below zero
    index = (first >> 15) << 1 | second >> 15
    if index == 3:
        return (a, b, c, largest)
    if index == 0:
        return (largest, a, b, c)
    if index == 1:
        return (a, largest, b, c)
    return (a, b, largest, c)


# ---- pose bodies: head, [left], [right] ---------------------------------------------------------------------


def _head_steps(pos: Sequence[float]) -> tuple[int, int, int] | None:
    """The head position in 0.1 mm steps, or None if it is beyond the compact range."""
    x = math.floor(pos[0] * HEAD_SCALE + 0.5)
    y = math.floor(pos[1] * HEAD_SCALE + 0.5)
    z = math.floor(pos[2] * HEAD_SCALE + 0.5)
    if -HEAD_LIMIT <= x <= HEAD_LIMIT and -HEAD_LIMIT <= y <= HEAD_LIMIT and -HEAD_LIMIT <= z <= HEAD_LIMIT:
        return x, y, z
    return None


def _hand_steps(pos: Sequence[float], base: Sequence[float]) -> tuple[int, int, int] | None:
    """A hand position relative to the (decoded) head in 0.05 mm steps, or None if too far for that."""
    x = math.floor((pos[0] - base[0]) * HAND_SCALE + 0.5)
    y = math.floor((pos[1] - base[1]) * HAND_SCALE + 0.5)
    z = math.floor((pos[2] - base[2]) * HAND_SCALE + 0.5)
    if -HAND_LIMIT <= x <= HAND_LIMIT and -HAND_LIMIT <= y <= HAND_LIMIT and -HAND_LIMIT <= z <= HAND_LIMIT:
        return x, y, z
    return None


def encode_body(head: Transform, left: Transform | None, right: Transform | None) -> tuple[int, bytes]:
    """The pose flags (LEFT, RIGHT, *_WIDE) and the bytes of head, left and right, as both directions carry them."""
    flags = 0
    steps = _head_steps(head.pos)
    if steps is None:
        flags |= HEAD_WIDE
        base: Sequence[float] = head.pos
        parts = [_WIDE.pack(*head.pos)]
    else:
        x, y, z = steps
        base = (x / HEAD_SCALE, y / HEAD_SCALE, z / HEAD_SCALE)
        parts = [_HEAD.pack(x & 0xFFFF, x >> 16, y & 0xFFFF, y >> 16, z & 0xFFFF, z >> 16)]
    parts.append(_QUAT.pack(*pack_quaternion(head.rot)))
    for hand, present, wide in ((left, LEFT, LEFT_WIDE), (right, RIGHT, RIGHT_WIDE)):
        if hand is None:
            continue
        flags |= present
        steps = _hand_steps(hand.pos, base)
        if steps is None:
            flags |= wide
            parts.append(_WIDE.pack(*hand.pos))
        else:
            parts.append(_HAND.pack(*steps))
        parts.append(_QUAT.pack(*pack_quaternion(hand.rot)))
    return flags, b"".join(parts)


def decode_body(frame: bytes, offset: int, flags: int) -> tuple[Transform, Transform | None, Transform | None, int]:
    """Head, left and right from `frame` at `offset`, and the offset after them. Raises BinaryFormatError
    (or struct.error when the frame is too short)."""
    if flags & HEAD_WIDE:
        base = _wide_position(frame, offset)
        offset += 24
    else:
        xl, xh, yl, yh, zl, zh = _HEAD.unpack_from(frame, offset)
        base = ((xh << 16 | xl) / HEAD_SCALE, (yh << 16 | yl) / HEAD_SCALE, (zh << 16 | zl) / HEAD_SCALE)
        offset += 9
    head = Transform(base, unpack_quaternion(*_QUAT.unpack_from(frame, offset)))
    offset += 6
    hands: list[Transform | None] = []
    for wide in hand_forms(flags, (LEFT, LEFT_WIDE), (RIGHT, RIGHT_WIDE)):
        if wide is None:
            hands.append(None)
            continue
        if wide:
            pos = _wide_position(frame, offset)
            offset += 24
        else:
            dx, dy, dz = _HAND.unpack_from(frame, offset)
            pos = (base[0] + dx / HAND_SCALE, base[1] + dy / HAND_SCALE, base[2] + dz / HAND_SCALE)
            offset += 6
        hands.append(Transform(pos, unpack_quaternion(*_QUAT.unpack_from(frame, offset))))
        offset += 6
    return head, hands[0], hands[1], offset


def hand_forms(flags: int, *hands: tuple[int, int]) -> list[bool | None]:
    """For each hand's (present, wide) bits in `flags`: None when it is absent, else whether it is in the wide
    form. Raises BinaryFormatError for a wide bit on an absent hand. Poses and joints share this rule."""
    forms: list[bool | None] = []
    for present, wide in hands:
        if flags & present:
            forms.append(bool(flags & wide))
        elif flags & wide:
            raise BinaryFormatError("a wide flag is set for an absent hand")
        else:
            forms.append(None)
    return forms


def _wide_position(frame: bytes, offset: int) -> tuple[float, float, float]:
    position = _WIDE.unpack_from(frame, offset)
    for value in position:
        if not -MAX_COORDINATE_M <= value <= MAX_COORDINATE_M:  # also refuses NaN
            raise BinaryFormatError(f"coordinate {value} is not within +-{MAX_COORDINATE_M:g} m")
    return position


# ---- client frames ------------------------------------------------------------------------------------------------


def encode_pose(pose: Pose) -> bytes:
    """A client `pose` as a binary frame (what SDKs send)."""
    flags, body = encode_body(pose.head, pose.left, pose.right)
    if pose.t is None:
        return _PREFIX.pack(TAG_POSE, flags) + body
    return _PREFIX.pack(TAG_POSE, flags | HAS_T) + _T.pack(pose.t) + body


def decode_pose(frame: bytes) -> Pose:
    """A client pose frame, validated as the JSON schema validates a `pose`; raises BinaryFormatError."""
    try:
        if len(frame) == _FULL_POSE.size and frame[1] == _FULL_POSE_FLAGS:
            return _decode_full_pose(frame)
        flags = frame[1]
        if flags & RESERVED_POSE_FLAGS:
            raise BinaryFormatError(f"reserved pose flags set: {flags:#04x}")
        offset, t = 2, None
        if flags & HAS_T:
            (t,) = _T.unpack_from(frame, 2)
            _check_timestamp(t)
            offset = 10
        head, left, right, offset = decode_body(frame, offset, flags)
    except (struct.error, IndexError):
        raise BinaryFormatError("the pose frame is truncated") from None
    if offset != len(frame):
        raise BinaryFormatError(f"the pose frame has {len(frame) - offset} bytes too many")
    return Pose(head=head, left=left, right=right, t=t)


def _decode_full_pose(frame: bytes) -> Pose:
    (_, _, t, xl, xh, yl, yh, zl, zh, h1, h2, h3, lx, ly, lz, l1, l2, l3, rx, ry, rz, r1, r2, r3) = _FULL_POSE.unpack(
        frame
    )
    _check_timestamp(t)
    x, y, z = (xh << 16 | xl) / HEAD_SCALE, (yh << 16 | yl) / HEAD_SCALE, (zh << 16 | zl) / HEAD_SCALE
    return Pose(
        head=Transform((x, y, z), unpack_quaternion(h1, h2, h3)),
        left=Transform((x + lx / HAND_SCALE, y + ly / HAND_SCALE, z + lz / HAND_SCALE), unpack_quaternion(l1, l2, l3)),
        right=Transform((x + rx / HAND_SCALE, y + ry / HAND_SCALE, z + rz / HAND_SCALE), unpack_quaternion(r1, r2, r3)),
        t=t,
    )


def _check_timestamp(t: float) -> None:
    if not -MAX_TIMESTAMP <= t <= MAX_TIMESTAMP:  # also refuses NaN
        raise BinaryFormatError(f"t = {t} is not a timestamp within +-1e15 ms")


class PackedPose(msgspec.Struct, gc=False):
    """A client pose frame that passed validation, kept as its bytes.

    The server relays these bytes to binary members as they are and decodes the floats only when
    something needs them (JSON members, snapshots, the interest grid, the stored last position), so in
    a binary room a pose costs one struct unpack and a few integer checks. A Struct, not a class with
    `__init__`: one is made per incoming pose, and msgspec builds it without running Python code.
    """

    frame: bytes
    t: float | None
    """The sender's timestamp (ms), if the frame has one."""
    decoded: Pose | None = None
    """The floats, when validation had to decode them anyway (an uncommon layout)."""

    def head_position(self) -> tuple[float, float, float]:
        """The head position alone (what the interest grid needs), without decoding the rest."""
        frame = self.frame
        flags = frame[1]
        offset = 10 if flags & HAS_T else 2
        if flags & HEAD_WIDE:
            return _WIDE.unpack_from(frame, offset)
        xl, xh, yl, yh, zl, zh = _HEAD.unpack_from(frame, offset)
        return (xh << 16 | xl) / HEAD_SCALE, (yh << 16 | yl) / HEAD_SCALE, (zh << 16 | zl) / HEAD_SCALE

    def unpack(self, member_id: int) -> MemberPose:
        """The pose as floats, stamped with its sender's id (rotations come out unit length)."""
        pose = self.decoded if self.decoded is not None else decode_pose(self.frame)
        return MemberPose(id=member_id, head=pose.head, left=pose.left, right=pose.right, t=pose.t)


def pack_pose(frame: bytes) -> PackedPose:
    """A client pose frame validated exactly as `decode_pose` validates it, without decoding its floats
    when it has the common layout (compact head, both hands near it, `t`); raises BinaryFormatError."""
    if len(frame) == _FULL_POSE.size and frame[1] == _FULL_POSE_FLAGS:
        t, h1, h2, h3, l1, l2, l3, r1, r2, r3 = _FULL_POSE_CHECK.unpack(frame)
        if (  # `is_unit_quaternion` of the three rotations, inline: this runs for every pose a server receives
            -MAX_TIMESTAMP <= t <= MAX_TIMESTAMP  # also refuses NaN
            and _SQUARE_OF_WORD[h1] + _SQUARE_OF_WORD[h2] + _SQUARE_OF_THIRD[h3] <= _QUAT_NORM_LIMIT
            and _SQUARE_OF_WORD[l1] + _SQUARE_OF_WORD[l2] + _SQUARE_OF_THIRD[l3] <= _QUAT_NORM_LIMIT
            and _SQUARE_OF_WORD[r1] + _SQUARE_OF_WORD[r2] + _SQUARE_OF_THIRD[r3] <= _QUAT_NORM_LIMIT
        ):
            return PackedPose(frame, t)
        _check_timestamp(t)  # says which check failed
        raise BinaryFormatError("rotation is not a unit quaternion")
    pose = decode_pose(frame)
    return PackedPose(frame, pose.t, pose)


def encode_client(message: ClientMessage) -> bytes:
    """Any client message as a binary frame: poses compact, everything else as tagged JSON."""
    if type(message) is Pose:
        return encode_pose(message)
    if type(message) is Joints:
        return _joints().encode_joints(message)
    return _JSON_TAG + JSON.encode(message)  # type: ignore[arg-type]  # msgspec encodes any Struct


# ---- server frames -------------------------------------------------------------------------------------------------


def pose_entry(pose: MemberPose, tick_t: float) -> bytes:
    """One member's pose as an entry of a tick frame: id, flags, age of `t` relative to the tick, body."""
    flags, body = encode_body(pose.head, pose.left, pose.right)
    if pose.t is not None:
        age = math.floor((tick_t - pose.t) * AGE_SCALE + 0.5)
        if -_AGE_LIMIT <= age <= _AGE_LIMIT:
            return _ENTRY_WITH_AGE.pack(pose.id, flags | HAS_T, age) + body
    return _ENTRY.pack(pose.id, flags) + body


def packed_entry(member_id: int, packed: PackedPose, tick_t: float) -> bytes:
    """The tick entry of a pose that arrived in binary: the sender's body copied as it is (its own
    quantisation, relayed unchanged), behind the id, its flags and its age."""
    frame = packed.frame
    flags = frame[1]
    if packed.t is None:
        return _ENTRY.pack(member_id, flags) + frame[2:]
    steps = (tick_t - packed.t) * AGE_SCALE + 0.5
    if -_AGE_LIMIT <= steps < _AGE_LIMIT + 1:  # its floor fits in an int32 (also refuses NaN)
        return _ENTRY_WITH_AGE.pack(member_id, flags, math.floor(steps)) + frame[10:]
    return _ENTRY.pack(member_id, flags & ~HAS_T) + frame[10:]  # t too far from the tick: left out


python_pack_pose, python_packed_entry = pack_pose, packed_entry
python_pack_quaternion, python_encode_body = pack_quaternion, encode_body
"""The Python versions, whatever `pack_pose`, `packed_entry`, `pack_quaternion` and `encode_body` are bound to
(tests compare the two)."""
if native is not None:  # the same functions in C (shoal/speedups.py)
    # what `pack_pose` builds, and where each fast path sends what it does not take (every error among them)
    native.bind(
        packed_pose=PackedPose,
        pack_pose=python_pack_pose,
        pack_quaternion=python_pack_quaternion,
        encode_body=python_encode_body,
    )
    pack_pose, packed_entry = native.pack_pose, native.packed_entry
    pack_quaternion, encode_body = native.pack_quaternion, native.encode_body


def tick_encoder(tick: Tick) -> TickEncoder:
    """The tick's header and entity section encoded once; the result adds pose entries to make a frame."""
    flags, tail = _tick_flags_and_tail(tick)
    header = _TICK_HEADER.pack(TAG_TICK, flags, tick.seq & 0xFFFFFFFF, tick.t)
    count = _COUNT.pack
    return lambda entries: b"".join((header, count(len(entries)), *entries, tail))


def _tick_flags_and_tail(tick: Tick) -> tuple[int, bytes]:
    """The tick flags and the frame's bytes after the pose entries: `tick.joints`, then the entity section."""
    flags = FULL if tick.full else 0
    tail = b""
    if tick.entities or tick.removed:
        flags |= ENTITIES
        tail = _SECTION_ENCODER.encode(_EntitySection(tick.entities, tick.removed))
    if tick.joints:
        flags |= JOINTS
        joints = _joints()
        tail = joints.joints_section([joints.joints_entry(entry.id, entry) for entry in tick.joints]) + tail
    return flags, tail


def tick_frame(tick: Tick, entries: Sequence[bytes]) -> bytes:
    """A tick frame with `entries` (from `pose_entry`) as its poses; `tick.poses` is not read."""
    return tick_encoder(tick)(entries)


class _EntitySection(msgspec.Struct, omit_defaults=True):
    """The JSON section of a binary tick: entity changes are rare, reliable and carry free-form `props`,
    so they keep their JSON form rather than a compact one of their own."""

    entities: list[Entity] = msgspec.field(default_factory=list)
    removed: list[str] = msgspec.field(default_factory=list)


_SECTION_ENCODER = msgspec.json.Encoder()
_SECTION_DECODER = msgspec.json.Decoder(_EntitySection)
_SERVER_JSON_DECODER = msgspec.json.Decoder(ServerMessages)


def decode_tick(frame: bytes) -> Tick:
    """A binary tick frame as a `Tick` (for clients and tests; the server never decodes ticks)."""
    try:
        _, flags, seq, t, count = _TICK.unpack_from(frame)
        if flags & RESERVED_TICK_FLAGS:
            raise BinaryFormatError(f"reserved tick flags set: {flags:#04x}")
        offset = _TICK.size
        poses = []
        for _ in range(count):
            member_id, pose_flags = _ENTRY.unpack_from(frame, offset)
            if pose_flags & RESERVED_POSE_FLAGS:
                raise BinaryFormatError(f"reserved pose flags set: {pose_flags:#04x}")
            offset += _ENTRY.size
            pose_t = None
            if pose_flags & HAS_T:
                (age,) = _AGE.unpack_from(frame, offset)
                pose_t = t - age / AGE_SCALE
                offset += _AGE.size
            head, left, right, offset = decode_body(frame, offset, pose_flags)
            poses.append(MemberPose(id=member_id, head=head, left=left, right=right, t=pose_t))
        joints: list[MemberJoints] = []
        if flags & JOINTS:
            joints, offset = _joints().decode_joints_section(frame, offset)
    except (struct.error, IndexError):
        raise BinaryFormatError("the tick frame is truncated") from None
    section = _EntitySection()
    if flags & ENTITIES:
        section = _SECTION_DECODER.decode(memoryview(frame)[offset:])
    elif offset != len(frame):
        raise BinaryFormatError(f"the tick frame has {len(frame) - offset} bytes too many")
    return Tick(
        seq=seq, t=t, poses=poses, entities=section.entities, removed=section.removed, full=bool(flags & FULL),
        joints=joints,
    )  # fmt: skip


def decode_server(frame: bytes) -> ServerMessage:
    """Any server frame (for clients): a tick, or a tagged JSON message. Raises BinaryFormatError or
    msgspec errors for frames that break the protocol."""
    if not frame:
        raise BinaryFormatError("empty frame")
    if frame[0] == TAG_TICK:
        return decode_tick(frame)
    if frame[0] == TAG_JSON:
        return _SERVER_JSON_DECODER.decode(memoryview(frame)[1:])
    raise BinaryFormatError(f"unknown frame tag {frame[0]:#04x}")


# ---- the codec -----------------------------------------------------------------------------------------------------


class BinaryCodec:
    """The server side of `shoal.v1.bin`: decodes client frames, encodes server frames.

    Decoding validates as the JSON codec does and fails with the same error codes: a broken pose
    (truncated, reserved bits, impossible quaternion, coordinate beyond +-10 km, non-finite `t`) is
    `invalid_message`, an unknown tag or an empty frame is `unknown_type`, and a tagged JSON message
    gets exactly the JSON codec's verdict.
    """

    name = "binary"
    binary = True
    subprotocol = SUBPROTOCOL

    def decode(self, frame: bytes) -> ClientMessage | PackedPose | PackedJoints:
        """A pose or joints frame comes back packed (`PackedPose`, `PackedJoints`: validated, floats not
        decoded); anything else as the message it holds."""
        if not frame:
            raise DecodeFailure(ErrorCode.UNKNOWN_TYPE, "empty frame: no tag")
        tag = frame[0]
        if tag == TAG_POSE:
            try:
                return pack_pose(frame)
            except BinaryFormatError as exc:
                raise DecodeFailure(ErrorCode.INVALID_MESSAGE, str(exc)) from None
        if tag == TAG_JOINTS:
            try:
                return _joints().pack_joints(frame)
            except BinaryFormatError as exc:
                raise DecodeFailure(ErrorCode.INVALID_MESSAGE, str(exc)) from None
        if tag == TAG_JSON:
            return JSON.decode(memoryview(frame)[1:])  # type: ignore[arg-type]  # msgspec reads any buffer
        raise DecodeFailure(ErrorCode.UNKNOWN_TYPE, f"unknown frame tag {tag:#04x}")

    def encode(self, message: ServerMessage) -> bytes:
        if type(message) is Tick:
            return tick_frame(message, [pose_entry(pose, message.t) for pose in message.poses])
        return _JSON_TAG + JSON.encode(message)

    @staticmethod
    def pose_entry(sender: PoseSource, tick_t: float) -> bytes:
        packed = sender.packed
        if packed is not None:
            return packed_entry(sender.id, packed, tick_t)
        return pose_entry(sender.pose, tick_t)  # type: ignore[arg-type]  # the room asks only for senders with a pose

    @staticmethod
    def tick_encoder(tick: Tick) -> TickEncoder:
        return tick_encoder(tick)

    @staticmethod
    def joints_entry(member_id: int, joints: MemberJoints | PackedJoints) -> bytes:
        return _joints().joints_entry(member_id, joints)

    @staticmethod
    def joints_tick_encoder(tick: Tick) -> JointsTickEncoder:
        return _joints().joints_tick_encoder(tick)


BINARY = BinaryCodec()
"""The shared binary codec instance (codecs are stateless)."""
