"""The C speedups (src/shoal/_speedups.c) do exactly what their Python twins do, and are in use when built."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import sys
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.protocol import binary as wire
from shoal.protocol import joints as hands
from shoal.protocol.binary import BinaryFormatError, PackedPose
from shoal.protocol.joints import HandTooBig, PackedJoints
from shoal.protocol.messages import Pose, Transform
from shoal.speedups import native
from support.ci import require
from support.frames import with_changes

IDENTITY = (0.0, 0.0, 0.0, 1.0)
T = 1_795_262_169_485.0
FULL = wire.encode_pose(
    Pose(
        head=Transform((0.5, 1.6, -2.0), (0.0, 0.3826834, 0.0, 0.9238795)),
        left=Transform((0.3, 1.2, -1.8), IDENTITY),
        right=Transform((0.7, 1.2, -1.8), (0.7071068, 0.0, 0.0, 0.7071068)),
        t=T,
    )
)
HEAD_ONLY = wire.encode_pose(Pose(head=Transform((0.0, 1.6, 0.0), IDENTITY)))
WIDE = wire.encode_pose(Pose(head=Transform((900.0, 1.6, 0.0), IDENTITY), left=Transform((0.0, 0.0, 0.0), IDENTITY)))
EDGE_WORDS = [base | high for base in (0, 1, 16382, 16383, 16384, 32765, 32766, 32767) for high in (0, 0x8000)]


def needs_native() -> None:
    require(native is not None, "the C speedups are not built (pip install -e . with a C compiler builds them)")


def outcome(function: Callable[..., object], *args: object) -> object:
    """What `function` returns, or the type and message of what it raises."""
    try:
        return function(*args)
    except (BinaryFormatError, ValueError, TypeError, OverflowError, IndexError, AttributeError, struct.error) as exc:
        return type(exc), str(exc)


def test_the_speedups_are_built_and_in_use_unless_turned_off() -> None:
    needs_native()
    assert wire.pack_pose is native.pack_pose and wire.python_pack_pose is not native.pack_pose
    assert wire.packed_entry is native.packed_entry
    assert wire.pack_quaternion is native.pack_quaternion and hands.pack_quaternion is native.pack_quaternion
    assert hands.pack_joints is native.pack_joints and hands.python_pack_joints is not native.pack_joints
    assert hands._encode_hand is native.encode_hand and wire.encode_body is native.encode_body
    check = (
        "from shoal.protocol import binary as b, joints as j; "
        "print(b.pack_pose is b.python_pack_pose, j.pack_joints is j.python_pack_joints, b.packed_entry)"
    )
    turned_off = subprocess.run(
        [sys.executable, "-c", check], env={**os.environ, "SHOAL_NO_SPEEDUPS": "1"}, capture_output=True, text=True
    )
    assert turned_off.stdout.startswith("True True <function packed_entry"), turned_off.stderr


# ---- pack_pose ------------------------------------------------------------------------------------------------


def assert_packs_alike(frame: bytes) -> None:
    expected, got = outcome(wire.python_pack_pose, frame), outcome(native.pack_pose, frame)
    assert got == expected
    if isinstance(expected, PackedPose):
        assert type(got) is PackedPose and got.frame is frame


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from([FULL, HEAD_ONLY, WIDE]), st.lists(st.tuples(st.integers(0, 80), st.integers(0, 255)), max_size=5)
)
def test_pack_pose_in_c_accepts_and_refuses_exactly_what_python_does(
    frame: bytes, changes: list[tuple[int, int]]
) -> None:
    needs_native()
    assert_packs_alike(with_changes(frame, changes))


@given(st.binary(max_size=60))
def test_pack_pose_in_c_refuses_random_bytes_as_python_does(data: bytes) -> None:
    needs_native()
    assert_packs_alike(bytes((wire.TAG_POSE,)) + data)


def test_pack_pose_in_c_checks_every_rotation_and_the_timestamp_on_their_edges() -> None:
    needs_native()
    for at in (19, 31, 43):  # the three rotations of the common layout
        for first in EDGE_WORDS:
            for third in EDGE_WORDS:
                words = struct.pack("<HHH", first, 32766 if first & 0x7FFF < 16383 else 16383, third)
                assert_packs_alike(FULL[:at] + words + FULL[at + 6 :])
    for t in (1e15, -1e15, 1.0000000000000002e15, float("nan"), float("inf"), -0.0):
        assert_packs_alike(FULL[:2] + struct.pack("<d", t) + FULL[10:])
    assert_packs_alike(bytearray(FULL))  # not bytes: Python's rules, whatever they are
    assert outcome(native.pack_pose, FULL) == PackedPose(FULL, T)


# ---- packed_entry --------------------------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from([FULL, HEAD_ONLY, WIDE]),
    st.integers(0, 2**32 - 1),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(
            [T, T + 21_474_836.47, T + 21_474_836.475, T - 21_474_836.48, T - 21_474_836.485, float("nan"), -math.inf]
        ),
    ),
)
def test_packed_entry_in_c_builds_the_entry_python_does(frame: bytes, member_id: int, tick_t: float) -> None:
    needs_native()
    packed = wire.python_pack_pose(frame)
    assert native.packed_entry(member_id, packed, tick_t) == wire.python_packed_entry(member_id, packed, tick_t)


def test_packed_entry_in_c_refuses_what_python_cannot_pack() -> None:
    needs_native()
    packed = wire.python_pack_pose(FULL)
    for member_id in (-1, 2**32):
        with pytest.raises((OverflowError, struct.error)):
            wire.python_packed_entry(member_id, packed, T)
        with pytest.raises(OverflowError):
            native.packed_entry(member_id, packed, T)
    with pytest.raises(TypeError):
        native.packed_entry(1, packed)


# ---- pack_quaternion ---------------------------------------------------------------------------------------------

anything = st.floats(allow_nan=True, allow_infinity=True)
component = st.one_of(
    st.floats(-1.0, 1.0),
    st.sampled_from([0.0, -0.0, 0.5, -0.5, 0.7071067811865476, -0.7071067811865476, 0.70710714, 1.0, -1.0]),
)
"""Components of rotations near unit length, with ties for the largest and the edges of the 15-bit range."""
rotation = st.tuples(component, component, component, component)


def assert_rotations_pack_alike(rot: object) -> None:
    assert outcome(native.pack_quaternion, rot) == outcome(wire.python_pack_quaternion, rot)


@settings(max_examples=1500, deadline=None)
@given(st.tuples(component, component, component, component), st.floats(0.999999, 1.000001) | anything)
def test_pack_quaternion_in_c_packs_exactly_what_python_does(rot: tuple[float, ...], scale: float) -> None:
    needs_native()
    assert_rotations_pack_alike(rot)
    assert_rotations_pack_alike([value * scale for value in rot])  # near unit length, or anything at all


def test_pack_quaternion_in_c_passes_what_it_does_not_take_to_python() -> None:
    needs_native()
    for rot in [(0, 0, 0, 1), (0.0, 0.0, 1.0), (0.0,) * 5, "abcd", None, (0.0, 0.0, 0.0, 0.0), (1e200, 0.0, 0.0, 0.0)]:
        assert_rotations_pack_alike(rot)
    assert native.pack_quaternion((0, 0, 0, 1)) == native.pack_quaternion([0.0, 0.0, 0.0, 1.0]) == (49151, 49151, 16383)


# ---- encode_body ---------------------------------------------------------------------------------------------------

head_coordinate = st.one_of(st.floats(-20.0, 20.0), st.sampled_from([838.86065, 838.86075, -838.86075, 2000.0]))
hand_offset = st.one_of(
    st.floats(-1.0, 1.0), st.sampled_from([1.638325, 1.63835, 1.638375, 1.6384, -1.638375, -1.6384, 5.0, -900.0])
)
"""Hands in reach of the head, and at the edge of the compact (int16, 0.05 mm) range and beyond it (sent wide)."""


@st.composite
def transforms(draw: st.DrawFn) -> tuple[object, object, object]:
    """A head and two hands (or None) as encode_body takes them, sometimes with ints, NaN or no transform at all."""
    head = draw(st.tuples(head_coordinate, head_coordinate, head_coordinate))
    parts: list[object] = [Transform(head, draw(rotation))]
    for _ in range(2):
        offset = draw(st.tuples(hand_offset, hand_offset, hand_offset))
        hand = Transform(tuple(h + o for h, o in zip(head, offset, strict=True)), draw(rotation))
        parts.append(draw(st.sampled_from([hand, hand, None])))
    odd = draw(st.sampled_from([None] * 6 + ["int", "nan", "list", "not a transform"]))
    if odd is not None:
        at = draw(st.integers(0, 2))
        if odd == "not a transform":
            parts[at] = (0.0, 1.6, 0.0)
        elif parts[at] is not None:
            pos, rot = parts[at].pos, parts[at].rot  # type: ignore[attr-defined]
            changed = (1, *pos[1:]) if odd == "int" else (math.nan, *pos[1:]) if odd == "nan" else list(pos)
            parts[at] = Transform(changed, rot)
    return parts[0], parts[1], parts[2]


@settings(max_examples=1500, deadline=None)
@given(transforms())
def test_encode_body_in_c_encodes_and_refuses_exactly_what_python_does(parts: tuple[object, object, object]) -> None:
    needs_native()
    assert outcome(native.encode_body, *parts) == outcome(wire.python_encode_body, *parts)


def test_encode_body_in_c_writes_a_pose_that_decodes_within_its_steps() -> None:
    needs_native()
    pose = Pose(
        head=Transform((0.5, 1.6, -2.0), (0.0, 0.3826834, 0.0, 0.9238795)),
        left=None,
        right=Transform((0.7, 1.2, -1.8), (0.7071068, 0.0, 0.0, 0.7071068)),
    )
    flags, body = native.encode_body(pose.head, pose.left, pose.right)
    assert flags == wire.RIGHT and len(body) == 15 + 12
    decoded = wire.decode_pose(bytes((wire.TAG_POSE, flags)) + body)
    assert decoded.left is None and decoded.right is not None
    assert all(abs(a - b) <= 1e-4 for a, b in zip(decoded.right.pos, (0.7, 1.2, -1.8), strict=True))


# ---- hands: encode_hand and pack_joints ---------------------------------------------------------------------------

odd_coordinate = st.sampled_from(
    [3.27665, 3.2767, 3.27675, 3.2768, -3.27675, 838.86065, 838.86075, -838.86075, 2000.0, 1e300, math.nan, -math.inf]
)
"""Beside a wrist at the origin: joints at the edge of a hand's reach and beyond, wrists at the edge of the compact
range and beyond, and numbers no hand has."""


@st.composite
def hand_like(draw: st.DrawFn) -> object:
    """25 joints of 7 floats near their wrist (lists or tuples; sometimes far out, with a wide wrist), often with
    one thing changed: a coordinate from `odd_coordinate`, or the hand's or a joint's shape."""
    wrist = draw(st.tuples(*[st.floats(-20.0, 20.0)] * 3))
    if draw(st.integers(0, 5)) == 0:  # the whole hand by the edge of the compact range, or beyond it (wide)
        wrist = (draw(st.sampled_from([838.8, 838.86065, 838.86075, -900.0, 2000.0])), *wrist[1:])
    joints: list[object] = [[*wrist, *draw(rotation)]]
    for _ in range(24):
        position = [base + draw(st.floats(-0.3, 0.3)) for base in wrist]
        joints.append(draw(st.sampled_from([list, tuple]))(position + list(draw(rotation))))
    change = draw(st.sampled_from(["none"] * 4 + ["coordinate"] * 4 + ["tuple", "short", "long", "int", "8", "6"]))
    if change == "tuple":
        return tuple(joints)
    if change in ("short", "long"):
        return joints[:24] if change == "short" else [*joints, joints[-1]]
    at = draw(st.integers(0, 24))
    joint = list(joints[at])  # type: ignore[call-overload]
    if change == "coordinate":
        joint[draw(st.integers(0, 2))] = draw(odd_coordinate)
    elif change != "none":
        joint = [*joint[:6], 1] if change == "int" else [*joint, 0.0] if change == "8" else joint[:6]
    joints[at] = joint
    return joints


@settings(max_examples=1500, deadline=None)
@given(hand_like())
def test_encode_hand_in_c_encodes_and_refuses_exactly_what_python_does(hand: object) -> None:
    needs_native()
    got, expected = outcome(native.encode_hand, hand), outcome(hands.python_encode_hand, hand)
    assert got == expected
    if isinstance(got, tuple) and got[0] is False:
        assert len(got[1]) == hands.HAND_BYTES


def test_encode_hand_in_c_refuses_a_hand_too_big_with_pythons_error() -> None:
    needs_native()
    reach = [[0.0, 1.0, 0.0, *IDENTITY]] + [[0.0, 1.0, 4.0, *IDENTITY]] * 24
    with pytest.raises(HandTooBig, match=r"^a joint is 4\.0000 m from its wrist on one axis"):
        native.encode_hand(reach)


def compact_hand(seed: int) -> list[list[float]]:
    """A hand near the origin whose joints and rotations vary with `seed`."""
    joints = []
    for index in range(25):
        angle = 0.1 * (seed + index)
        joints.append([0.01 * index, 1.0 + 0.001 * seed, -0.3, 0.0, math.sin(angle), 0.0, math.cos(angle)])
    return joints


JOINTS_FRAMES = [
    hands.encode_joints(hands.Joints(left=compact_hand(1), right=compact_hand(2))),
    hands.encode_joints(hands.Joints(right=compact_hand(3))),
    hands.encode_joints(hands.Joints()),
    hands.encode_joints(hands.Joints(left=[[900.0, 1.0, 0.0, *IDENTITY]] * 25, right=compact_hand(4))),  # a wide wrist
]


def assert_joints_pack_alike(frame: bytes) -> None:
    expected, got = outcome(hands.python_pack_joints, frame), outcome(native.pack_joints, frame)
    if isinstance(expected, PackedJoints):
        assert type(got) is PackedJoints and got.frame is frame
    else:
        assert got == expected


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(JOINTS_FRAMES), st.lists(st.tuples(st.integers(0, 620), st.integers(0, 255)), max_size=5))
def test_pack_joints_in_c_accepts_and_refuses_exactly_what_python_does(
    frame: bytes, changes: list[tuple[int, int]]
) -> None:
    needs_native()
    assert_joints_pack_alike(with_changes(frame, changes))


@given(st.sampled_from(JOINTS_FRAMES), st.integers(0, 620), st.binary(max_size=4))
def test_pack_joints_in_c_refuses_cut_and_lengthened_frames_as_python_does(frame: bytes, cut: int, tail: bytes) -> None:
    needs_native()
    assert_joints_pack_alike(frame[:cut])
    assert_joints_pack_alike(frame + tail)


def test_pack_joints_in_c_checks_every_rotation_on_its_edges() -> None:
    needs_native()
    frame = JOINTS_FRAMES[0]
    rotations = [2 + 9, *(2 + 15 + 12 * joint + 6 for joint in range(24))]
    for at in rotations + [2 + hands.HAND_BYTES + at - 2 for at in rotations]:
        for first in EDGE_WORDS[::3]:
            for third in EDGE_WORDS[::2]:
                words = struct.pack("<HHH", first, 32766 if first & 0x7FFF < 16383 else 16383, third)
                assert_joints_pack_alike(frame[:at] + words + frame[at + 6 :])
