"""Hand joints in binary frames (`shoal.v1.bin`): the JOINTS client frame and the joints section of a tick.

docs/protocol.md ("Hand joints") is the byte-by-byte contract. After its tag (client frame) or member id (tick
entry), a joints body is one flags byte, then the left hand (if LEFT), then the right hand (if RIGHT). A hand is
its wrist (position as 3 x i24 in 0.1 mm, or 3 x float64 metres with its WIDE flag; smallest-three rotation) and
the 24 joints after the wrist, each a position relative to the decoded wrist in 3 x i16 of 0.1 mm and a
smallest-three rotation: 303 bytes (318 wide). The quantisation and quaternion helpers are the pose ones of
`shoal.protocol.binary`, so both SDKs produce identical bytes.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from shoal.protocol.binary import (
    _QUAT,
    _TICK_HEADER,
    HEAD_SCALE,
    JOINTS,
    TAG_JOINTS,
    TAG_TICK,
    BinaryFormatError,
    _head_steps,
    _tick_flags_and_tail,
    _wide_position,
    all_unit_quaternions,
    hand_forms,
    pack_quaternion,
    unpack_quaternion,
)
from shoal.protocol.codec import JointsTickEncoder
from shoal.protocol.messages import JOINTS_PER_HAND, Joints, MemberJoints, Tick
from shoal.speedups import native

# ---- hand flags (the byte before the hands) -------------------------------------------------------------------
LEFT = 0x01
RIGHT = 0x02
LEFT_WIDE = 0x04
"""The left wrist position is 3 x float64 (it is beyond +-838 m)."""
RIGHT_WIDE = 0x08
RESERVED_HAND_FLAGS = 0xF0

JOINT_SCALE = HEAD_SCALE
"""Wrist positions, and joint positions relative to the wrist, in steps of 0.1 mm."""
JOINT_LIMIT = 2**15 - 1
"""Largest joint step count: 16-bit signed, +-3.2767 m from the wrist on each axis."""

HAND_BYTES = 9 + 6 + (JOINTS_PER_HAND - 1) * 12
"""303: a hand with its wrist in 0.1 mm steps (a wide wrist adds 15)."""

Joint = tuple[float, float, float, float, float, float, float]
Hand = Sequence[Sequence[float]]

_WRIST = struct.Struct("<HbHbHbHHH")  # 3 x int24 (low u16, high i8) and a quaternion
_WIDE_WRIST = struct.Struct("<dddHHH")
_FINGERS = struct.Struct("<" + "hhhHHH" * (JOINTS_PER_HAND - 1))
_FINGER_ROTATIONS = "6xHHH" * (JOINTS_PER_HAND - 1)
_HAND_ROTATIONS = struct.Struct(f"<{_WRIST.size - 6}xHHH{_FINGER_ROTATIONS}")
_WIDE_HAND_ROTATIONS = struct.Struct(f"<{_WIDE_WRIST.size - 6}xHHH{_FINGER_ROTATIONS}")
"""A hand's 25 rotations (75 words) in one unpack that skips its positions, for `pack_joints`: compact
positions are in range by construction, and a wide wrist is checked on its own."""
_ID = struct.Struct("<I")
_COUNT = struct.Struct("<H")


class HandTooBig(ValueError):
    """A joint is more than 3.2767 m from its wrist on some axis (no hand is that big), or not finite."""


# ---- encoding -------------------------------------------------------------------------------------------------------


def _wrist_base(hand: Hand) -> tuple[Sequence[float], tuple[int, int, int] | None]:
    """The wrist as decoders will see it, and its 0.1 mm steps (None: beyond +-838 m, sent as float64)."""
    position = hand[0][:3]
    if not all(math.isfinite(value) for value in position):
        raise ValueError("a wrist position is not finite")
    steps = _head_steps(position)
    if steps is None:
        return position, None
    return (steps[0] / JOINT_SCALE, steps[1] / JOINT_SCALE, steps[2] / JOINT_SCALE), steps


def _offsets(hand: Hand, base: Sequence[float]) -> list[int]:
    """The positions of joints 1..24 relative to `base`, in 0.1 mm steps (x, y, z of each, flat). Raises
    `HandTooBig` for a joint beyond +-3.2767 m of `base` on some axis, or a position that is not finite."""
    bx, by, bz = base
    floor, scale = math.floor, JOINT_SCALE
    steps: list[int] = []
    try:
        for joint in hand[1:]:
            steps += (
                floor((joint[0] - bx) * scale + 0.5),
                floor((joint[1] - by) * scale + 0.5),
                floor((joint[2] - bz) * scale + 0.5),
            )
    except (ValueError, OverflowError):  # NaN, infinity
        raise HandTooBig("a joint position is not finite") from None
    # The range is checked once, on the extremes, rather than step by step: a Python comparison per number is
    # most of this function's cost.
    lowest, highest = min(steps), max(steps)
    if lowest < -JOINT_LIMIT or highest > JOINT_LIMIT:
        farthest = lowest if -lowest > highest else highest
        raise HandTooBig(f"a joint is {farthest / JOINT_SCALE:.4f} m from its wrist on one axis (at most +-3.2767 m)")
    return steps


def check_hand(hand: Hand) -> None:
    """Raise `HandTooBig` if `hand` (25 joints) cannot be encoded: a joint too far from its wrist, or a position
    that is not finite."""
    x, y, z = list(zip(*hand[1:], strict=True))[:3]  # the joints' coordinates by axis, transposed in C
    if not math.isfinite(sum(x) + sum(y) + sum(z)):  # `min` and `max` could pass over a NaN
        raise HandTooBig("a joint position is not finite")
    # A joint's step count grows with its coordinate, so the lowest and highest on each axis decide: two joints made
    # of those are checked as `_offsets` checks every joint when encoding, without a Python loop over 72 numbers.
    _offsets((hand[0], (min(x), min(y), min(z)), (max(x), max(y), max(z))), _wrist_base(hand)[0])


def _encode_hand(hand: Hand) -> tuple[bool, bytes]:
    """Whether the wrist is wide, and the hand's bytes."""
    if len(hand) != JOINTS_PER_HAND:
        raise ValueError(f"a hand has {JOINTS_PER_HAND} joints, not {len(hand)}")
    base, steps = _wrist_base(hand)
    offsets = iter(_offsets(hand, base))
    values: list[int] = []
    for joint, dx, dy, dz in zip(hand[1:], offsets, offsets, offsets, strict=True):
        values += (dx, dy, dz, *pack_quaternion(joint[3:7]))
    fingers = _FINGERS.pack(*values)
    rotation = pack_quaternion(hand[0][3:7])
    if steps is None:
        head = _WIDE_WRIST.pack(*base, *rotation)
    else:
        x, y, z = steps
        head = _WRIST.pack(x & 0xFFFF, x >> 16, y & 0xFFFF, y >> 16, z & 0xFFFF, z >> 16, *rotation)
    return steps is None, head + fingers


def encode_hands(left: Hand | None, right: Hand | None) -> bytes:
    """The hand flags byte and the hands, as a client frame and a tick entry carry them after their tag or id.

    Raises ValueError for a hand without 25 joints or with a zero quaternion, `HandTooBig` for a joint more
    than 3.2767 m from its wrist."""
    flags = 0
    parts = [b""]
    for hand, present, wide in ((left, LEFT, LEFT_WIDE), (right, RIGHT, RIGHT_WIDE)):
        if hand is None:
            continue
        is_wide, body = _encode_hand(hand)
        flags |= present | (wide if is_wide else 0)
        parts.append(body)
    parts[0] = bytes((flags,))
    return b"".join(parts)


def encode_joints(message: Joints) -> bytes:
    """A client `joints` message as a binary JOINTS frame (what SDKs send)."""
    return bytes((TAG_JOINTS,)) + encode_hands(message.left, message.right)


def joints_entry(member_id: int, joints: MemberJoints | PackedJoints) -> bytes:
    """One member's joints as an entry of a tick's joints section: member id (u32), flags, hands. Packed joints
    are copied as they came (the sender's own quantisation, relayed unchanged)."""
    if type(joints) is PackedJoints:
        return _ID.pack(member_id) + joints.frame[1:]
    return _ID.pack(member_id) + encode_hands(joints.left, joints.right)


def joints_section(entries: Sequence[bytes]) -> bytes:
    """The joints section of a tick frame: u16 count, then the entries (from `joints_entry`)."""
    return _COUNT.pack(len(entries)) + b"".join(entries)


def joints_tick_encoder(tick: Tick) -> JointsTickEncoder:
    """A tick's header and entity section encoded once; the result adds pose entries and joints entries (from
    `joints_entry`) to make a frame with the JOINTS flag. `tick.poses` and `tick.joints` are not read."""
    flags, tail = _tick_flags_and_tail(
        Tick(seq=tick.seq, t=tick.t, poses=[], entities=tick.entities, removed=tick.removed, full=tick.full)
    )
    header = _TICK_HEADER.pack(TAG_TICK, flags | JOINTS, tick.seq & 0xFFFFFFFF, tick.t)
    count = _COUNT.pack
    return lambda entries, joints: b"".join((header, count(len(entries)), *entries, count(len(joints)), *joints, tail))


# ---- decoding -------------------------------------------------------------------------------------------------------


def _decode_hand(frame: bytes, offset: int, wide: bool) -> tuple[list[Joint], int]:
    if wide:
        x, y, z = _wide_position(frame, offset)
        wrist_rot = unpack_quaternion(*_QUAT.unpack_from(frame, offset + 24))
        offset += 30
    else:
        xl, xh, yl, yh, zl, zh, q1, q2, q3 = _WRIST.unpack_from(frame, offset)
        x, y, z = (xh << 16 | xl) / JOINT_SCALE, (yh << 16 | yl) / JOINT_SCALE, (zh << 16 | zl) / JOINT_SCALE
        wrist_rot = unpack_quaternion(q1, q2, q3)
        offset += _WRIST.size
    values = _FINGERS.unpack_from(frame, offset)
    joints: list[Joint] = [(x, y, z, *wrist_rot)]
    for index in range(0, len(values), 6):
        dx, dy, dz, q1, q2, q3 = values[index : index + 6]
        joints.append(
            (x + dx / JOINT_SCALE, y + dy / JOINT_SCALE, z + dz / JOINT_SCALE, *unpack_quaternion(q1, q2, q3))
        )
    return joints, offset + _FINGERS.size


def decode_hands(frame: bytes, offset: int) -> tuple[list[Joint] | None, list[Joint] | None, int]:
    """Left, right (None: not tracked) and the offset after them, from the flags byte at `offset`.

    Raises BinaryFormatError (or struct.error / IndexError when the frame is too short)."""
    forms = _hand_forms(frame[offset])
    offset += 1
    hands: list[list[Joint] | None] = []
    for wide in forms:
        if wide is None:
            hands.append(None)
            continue
        hand, offset = _decode_hand(frame, offset, wide)
        hands.append(hand)
    return hands[0], hands[1], offset


def _hand_forms(flags: int) -> list[bool | None]:
    """Left's and right's form from a hand flags byte (see `binary.hand_forms`); raises BinaryFormatError."""
    if flags & RESERVED_HAND_FLAGS:
        raise BinaryFormatError(f"reserved hand flags set: {flags:#04x}")
    return hand_forms(flags, (LEFT, LEFT_WIDE), (RIGHT, RIGHT_WIDE))


class PackedJoints:
    """A client JOINTS frame that passed validation, kept as its bytes (like `binary.PackedPose`).

    Binary members get these bytes as they are; the 350 floats are decoded only for JSON members, once.
    """

    __slots__ = ("_hands", "frame")

    def __init__(self, frame: bytes) -> None:
        self.frame = frame
        self._hands: tuple[list[Joint] | None, list[Joint] | None] | None = None

    def unpack(self, member_id: int) -> MemberJoints:
        """The joints as numbers, stamped with their sender's id (rotations come out unit length)."""
        if self._hands is None:
            left, right, _ = decode_hands(self.frame, 1)
            self._hands = (left, right)
        return MemberJoints(id=member_id, left=self._hands[0], right=self._hands[1])  # type: ignore[arg-type]


def pack_joints(frame: bytes) -> PackedJoints:
    """A client JOINTS frame validated exactly as `decode_joints` validates it, decoding no floats: one unpack
    per hand and integer checks of its 25 rotations (compact positions are in range by construction).
    Raises BinaryFormatError."""
    if len(frame) < 2:
        raise BinaryFormatError("the joints frame is truncated")
    offset = 2
    for wide in _hand_forms(frame[1]):
        if wide is None:
            continue
        layout = _WIDE_HAND_ROTATIONS if wide else _HAND_ROTATIONS
        if len(frame) < offset + layout.size:
            raise BinaryFormatError("the joints frame is truncated")
        if wide:
            _wide_position(frame, offset)  # finite and within +-10 km
        if not all_unit_quaternions(layout.unpack_from(frame, offset)):
            raise BinaryFormatError("rotation is not a unit quaternion")
        offset += layout.size
    if offset != len(frame):
        raise BinaryFormatError(f"the joints frame has {len(frame) - offset} bytes too many")
    return PackedJoints(frame)


python_encode_hand, python_pack_joints = _encode_hand, pack_joints
"""The Python versions, whatever `_encode_hand` and `pack_joints` are bound to (tests compare the two)."""
if native is not None:  # the same in C for hands with compact wrists (shoal/speedups.py)
    # what `pack_joints` builds, and where each fast path sends what it does not take (every error among them)
    native.bind(encode_hand=python_encode_hand, packed_joints=PackedJoints, pack_joints=python_pack_joints)
    _encode_hand = native.encode_hand
    pack_joints = native.pack_joints


def decode_joints(frame: bytes) -> Joints:
    """A client JOINTS frame, validated as the JSON schema validates `joints`; raises BinaryFormatError."""
    try:
        left, right, offset = decode_hands(frame, 1)
    except (struct.error, IndexError):
        raise BinaryFormatError("the joints frame is truncated") from None
    if offset != len(frame):
        raise BinaryFormatError(f"the joints frame has {len(frame) - offset} bytes too many")
    return Joints(left=left, right=right)  # type: ignore[arg-type]  # decoded joints are in range


def decode_joints_section(frame: bytes, offset: int) -> tuple[list[MemberJoints], int]:
    """The joints section of a tick frame at `offset` and the offset after it (raises as `decode_hands`)."""
    (count,) = _COUNT.unpack_from(frame, offset)
    offset += _COUNT.size
    entries = []
    for _ in range(count):
        (member_id,) = _ID.unpack_from(frame, offset)
        left, right, offset = decode_hands(frame, offset + _ID.size)
        entries.append(MemberJoints(id=member_id, left=left, right=right))
    return entries, offset
