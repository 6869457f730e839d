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
from shoal.protocol.binary import BinaryFormatError, PackedPose
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
    except (BinaryFormatError, ValueError, TypeError, OverflowError, struct.error) as exc:
        return type(exc), str(exc)


def test_the_speedups_are_built_and_in_use_unless_turned_off() -> None:
    needs_native()
    assert wire.pack_pose is native.pack_pose and wire.python_pack_pose is not native.pack_pose
    assert wire.packed_entry is native.packed_entry
    check = "from shoal.protocol import binary as b; print(b.pack_pose is b.python_pack_pose, b.packed_entry)"
    turned_off = subprocess.run(
        [sys.executable, "-c", check], env={**os.environ, "SHOAL_NO_SPEEDUPS": "1"}, capture_output=True, text=True
    )
    assert turned_off.stdout.startswith("True <function packed_entry"), turned_off.stderr


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
