"""The binary codec (`shoal.v1.bin`): byte sizes, round trips, the shared vectors, every validation error,
random inputs, and a real server choosing it, mixing it with JSON in one room and encoding once per codec."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import struct
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.client import ShoalClient
from shoal.core.actions import Send
from shoal.protocol import binary as wire
from shoal.protocol.binary import BINARY, BinaryFormatError
from shoal.protocol.codec import DecodeFailure, PoseSource
from shoal.protocol.joints import PackedJoints, decode_joints
from shoal.protocol.messages import Entity, Error, Join, Joints, MemberPose, Pose, Tick, Transform
from support.core import CoreDriver
from support.frames import accepts, with_changes
from support.servers import RunningServer, StartServer

VECTORS = json.loads((Path(__file__).parent / "vectors" / "binary.json").read_text())["cases"]
HALF_SQRT2 = math.sqrt(0.5)
IDENTITY = (0.0, 0.0, 0.0, 1.0)
T = 1_795_262_169_485.0


def avatar(x: float = 0.0, t: float | None = T) -> Pose:
    return Pose(
        head=Transform((x, 1.6, 0.0), IDENTITY),
        left=Transform((x - 0.3, 1.1, -0.3), IDENTITY),
        right=Transform((x + 0.3, 1.1, -0.3), (0.0, HALF_SQRT2, 0.0, HALF_SQRT2)),
        t=t,
    )


def member_pose(member_id: int, pose: Pose) -> MemberPose:
    return MemberPose(id=member_id, head=pose.head, left=pose.left, right=pose.right, t=pose.t)


def as_json(value: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(value))


def angle_between(q1: tuple[float, ...], q2: tuple[float, ...]) -> float:
    """Degrees between two unit quaternions (q and -q are the same rotation)."""
    dot = min(1.0, abs(sum(a * b for a, b in zip(q1, q2, strict=True))))
    return math.degrees(2 * math.acos(dot))


def assert_close(decoded: Transform, original: Transform, position_error: float) -> None:
    assert all(abs(a - b) <= position_error for a, b in zip(decoded.pos, original.pos, strict=True))
    norm = math.sqrt(sum(v * v for v in original.rot))
    assert angle_between(decoded.rot, tuple(v / norm for v in original.rot)) < 0.01


# ---- sizes and round trips --------------------------------------------------------------------------------------


def test_a_full_avatar_is_48_bytes_in_a_tick_including_its_member_id() -> None:
    entry = wire.pose_entry(member_pose(2**32 - 1, avatar()), T + 15.0)
    assert len(entry) == 48  # the budget is 50
    assert len(wire.encode_pose(avatar())) == 49  # client -> server: tag, flags, float64 t, body
    assert len(wire.encode_pose(Pose(head=Transform((0.0, 1.6, 0.0), IDENTITY)))) == 17
    frame = wire.tick_frame(Tick(seq=1, t=T, poses=[]), [entry] * 24)
    assert len(frame) == 16 + 24 * 48  # a room of 25: one 1,168-byte frame per member per tick


def test_a_decoded_pose_is_within_the_documented_steps_and_re_encodes_to_the_same_bytes() -> None:
    pose = Pose(
        head=Transform((12.34567, 1.61234, -7.65432), (0.1, 0.2, 0.3, 0.927)),
        left=Transform((12.0, 1.2, -7.0), (0.6, -0.2, 0.1, 0.77)),
        right=Transform((13.1, 0.9, -8.2), (-0.7, 0.1, 0.7, 0.1)),
        t=T + 0.123,
    )
    frame = wire.encode_pose(pose)
    decoded = wire.decode_pose(frame)
    assert_close(decoded.head, pose.head, 0.5 / wire.HEAD_SCALE + 1e-12)
    # a hand's error is its own step, measured from the decoded head
    for hand, original in ((decoded.left, pose.left), (decoded.right, pose.right)):
        assert hand is not None and original is not None
        assert_close(hand, original, 0.5 / wire.HAND_SCALE + 1e-9)
    assert decoded.t == pose.t
    assert wire.encode_pose(decoded) == frame


def test_positions_beyond_the_compact_range_travel_exactly_as_float64() -> None:
    pose = Pose(head=Transform((9999.123456789, -1.5, 0.25), IDENTITY), left=Transform((9990.0, 1.0, 0.0), IDENTITY))
    frame = wire.encode_pose(pose)
    assert frame[1] == wire.HEAD_WIDE | wire.LEFT | wire.LEFT_WIDE
    decoded = wire.decode_pose(frame)
    assert decoded.head.pos == pose.head.pos and decoded.left is not None and decoded.left.pos == pose.left.pos


def test_tick_entries_carry_t_as_an_age_in_10_microsecond_steps() -> None:
    tick = Tick(seq=7, t=T + 20.0, poses=[member_pose(5, avatar()), member_pose(6, avatar(t=None))])
    decoded = wire.decode_tick(BINARY.encode(tick))
    assert (decoded.seq, decoded.t, [p.id for p in decoded.poses]) == (7, T + 20.0, [5, 6])
    assert decoded.poses[0].t == pytest.approx(T, abs=0.005) and decoded.poses[1].t is None
    ancient = member_pose(5, avatar(t=T - 1e9))  # beyond int32 x 10 us: relayed without t
    assert wire.decode_tick(BINARY.encode(Tick(seq=1, t=T, poses=[ancient]))).poses[0].t is None


def test_entity_changes_ride_in_the_json_section_and_other_messages_behind_the_json_tag() -> None:
    entity = Entity(
        id="cube-1", kind="cube", persistent=False, locked=False, pos=(0.0, 1.0, 0.0), rot=IDENTITY,
        scale=(1.0, 1.0, 1.0), props={"color": "#ff0000"}, v=2,
    )  # fmt: skip
    tick = Tick(seq=3, t=T, poses=[], entities=[entity], removed=["old"], full=True)
    assert wire.decode_tick(BINARY.encode(tick)) == tick
    frame = BINARY.encode(Tick(seq=1, t=T, poses=[]))
    assert frame[0] == wire.TAG_TICK and len(frame) == 16
    welcome_like = wire.decode_server(bytes((wire.TAG_JSON,)) + b'{"type":"left","room":"lobby"}')
    assert msgspec.to_builtins(welcome_like) == {"type": "left", "room": "lobby"}
    assert BINARY.decode(bytes((wire.TAG_JSON,)) + b'{"type":"join","room":"lobby"}') == Join(room="lobby")
    encoded = wire.encode_client(Join(room="lobby"))
    assert encoded[0] == wire.TAG_JSON and BINARY.decode(encoded) == Join(room="lobby")


# ---- the vectors shared with the JavaScript SDK -------------------------------------------------------------------


@pytest.mark.parametrize("case", VECTORS, ids=[case["name"] for case in VECTORS])
def test_python_produces_and_accepts_the_shared_vectors(case: dict[str, Any]) -> None:
    frame = bytes.fromhex(case["hex"])
    if case["kind"] == "pose":
        pose = msgspec.convert(case["message"], Pose)
        assert wire.encode_pose(pose) == frame
        decoded = wire.decode_pose(frame)
        assert as_json(decoded) == case["decoded"]
    elif case["kind"] == "tick":
        tick = msgspec.convert(case["message"], Tick)
        assert BINARY.encode(tick) == frame
        decoded = wire.decode_tick(frame)
        assert as_json(decoded) == case["decoded"]
    elif case["kind"] == "joints":
        message = msgspec.convert(case["message"], Joints)
        assert wire.encode_client(message) == frame
        assert isinstance(BINARY.decode(frame), PackedJoints)  # the server keeps them packed
        assert as_json(decode_joints(frame)) == case["decoded"]
    else:
        assert BINARY.decode(frame) == msgspec.convert(case["message"], Join)


def test_the_hex_examples_of_the_protocol_document_are_the_shared_vectors() -> None:
    document = (Path(__file__).parents[1] / "docs" / "protocol.md").read_text()
    section = document[document.index("## Binary frames") :]
    dumps = re.findall(r"```text\n([0-9a-f \n]+?)\n```", section)
    by_name = {case["name"]: case["hex"] for case in VECTORS}
    assert ["".join(dump.split()) for dump in dumps] == [
        by_name["head and hands near the head, with t"],
        by_name["a tick with two members"],
        by_name["joints: one hand, the example of docs/protocol.md"],
    ]
    (joints_example,) = re.findall(r'```json\n(\{"type": "joints".*?)```', document, re.S)
    assert (
        json.loads(joints_example)
        == next(case for case in VECTORS if case["name"].startswith("joints: one"))["message"]
    )


# ---- validation: the same error codes as JSON ----------------------------------------------------------------------

FULL = wire.encode_pose(avatar())
HEAD_ONLY = wire.encode_pose(Pose(head=Transform((0.0, 1.6, 0.0), IDENTITY)))


def with_byte(frame: bytes, index: int, value: int) -> bytes:
    return frame[:index] + bytes((value,)) + frame[index + 1 :]


def impossible_quaternion(frame: bytes, offset: int) -> bytes:
    """Three stored components of +1/sqrt(2) each: their squares sum to 1.5, so no rotation has them."""
    return frame[:offset] + struct.pack("<HHH", 0x7FFE, 0x7FFE, 0x7FFE) + frame[offset + 6 :]


def wide_head(x: float, t: bytes = b"") -> bytes:
    flags = wire.HEAD_WIDE | (wire.HAS_T if t else 0)
    return bytes((wire.TAG_POSE, flags)) + t + struct.pack("<ddd", x, 1.6, 0.0) + HEAD_ONLY[11:]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"", "unknown_type"),
        (b"\x7f", "unknown_type"),
        (b"\x02" + FULL[1:], "unknown_type"),  # a tick is not something a client sends
        (b"\x01", "invalid_message"),
        (FULL[:-1], "invalid_message"),
        (FULL + b"\x00", "invalid_message"),
        (HEAD_ONLY + b"\x00", "invalid_message"),
        (with_byte(HEAD_ONLY, 1, 0x40), "invalid_message"),  # reserved flag (joints)
        (with_byte(HEAD_ONLY, 1, 0x80), "invalid_message"),
        (with_byte(HEAD_ONLY, 1, wire.LEFT_WIDE), "invalid_message"),  # wide flag for an absent hand
        (impossible_quaternion(HEAD_ONLY, 11), "invalid_message"),
        (impossible_quaternion(FULL, 19), "invalid_message"),  # the fast path validates too
        (HEAD_ONLY[:-1] + b"\xff", "invalid_message"),  # third word's top bit set: beyond the 15-bit range
        (wide_head(math.nan), "invalid_message"),
        (wide_head(math.inf), "invalid_message"),
        (wide_head(10_000.5), "invalid_message"),
        (wide_head(0.0, struct.pack("<d", math.nan)), "invalid_message"),
        (wide_head(0.0, struct.pack("<d", 1e16)), "invalid_message"),
        (FULL[:2] + struct.pack("<d", math.inf) + FULL[10:], "invalid_message"),
        (b"\x00{", "bad_json"),
        (b"\x00\xff", "bad_json"),
        (b'\x00{"type":"ping","t":NaN}', "bad_json"),
        (b'\x00{"type":"teleport"}', "unknown_type"),
        (b'\x00{"type":"join"}', "invalid_message"),
        (b'\x00{"type":"pose","head":{"pos":[0,1e5,0],"rot":[0,0,0,1]}}', "invalid_message"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_kind_of_bad_frame_gets_the_error_code_json_would_give(frame: bytes, code: str) -> None:
    with pytest.raises(DecodeFailure) as failure:
        BINARY.decode(frame)
    assert failure.value.code == code
    assert failure.value.message


def test_a_zero_quaternion_cannot_be_encoded_and_a_json_one_inside_a_binary_frame_is_refused_by_the_server() -> None:
    with pytest.raises(ValueError):
        wire.encode_pose(Pose(head=Transform((0.0, 1.6, 0.0), (0.0, 0.0, 0.0, 0.0))))
    core = CoreDriver()
    ada = core.engine.connect(BINARY, core.now)
    core.engine.receive(ada, b'\x00{"type":"hello"}', core.now, binary=True)
    core.engine.receive(ada, b'\x00{"type":"join","room":"lobby"}', core.now, binary=True)
    zero = b'\x00{"type":"pose","head":{"pos":[0,1,0],"rot":[0,0,0,0]}}'
    (error,) = core.engine.receive(ada, zero, core.now, binary=True)
    assert isinstance(error, Send) and error.binary
    assert json.loads(error.frame[1:])["code"] == "invalid_message"


def test_a_text_frame_on_a_binary_connection_is_unsupported_frame() -> None:
    core = CoreDriver()
    ada = core.engine.connect(BINARY, core.now)
    (error,) = core.engine.receive(ada, b'{"type":"hello"}', core.now, binary=False)
    assert json.loads(error.frame[1:])["code"] == "unsupported_frame"  # type: ignore[union-attr]
    assert "shoal.v1.bin" in json.loads(error.frame[1:])["message"]  # type: ignore[union-attr]


# ---- random inputs ------------------------------------------------------------------------------------------------

coordinates = st.floats(-10_000.0, 10_000.0, allow_nan=False)
near = st.floats(-2.0, 2.0, allow_nan=False)
components = st.floats(-1.0, 1.0, allow_nan=False)
rotations = st.tuples(components, components, components, components).filter(lambda q: sum(v * v for v in q) > 1e-6)


@st.composite
def poses(draw: st.DrawFn) -> Pose:
    head = draw(st.tuples(coordinates, coordinates, coordinates))
    hands = []
    for _ in range(2):
        if draw(st.booleans()):
            offset = draw(st.tuples(near, near, near))
            position = tuple(min(max(h + o, -10_000.0), 10_000.0) for h, o in zip(head, offset, strict=True))
            hands.append(Transform(position, draw(rotations)))
        else:
            hands.append(None)
    t = draw(st.none() | st.floats(-1e15, 1e15, allow_nan=False))
    return Pose(head=Transform(head, draw(rotations)), left=hands[0], right=hands[1], t=t)


@settings(max_examples=300, deadline=None)
@given(poses())
def test_random_poses_round_trip_within_their_steps_and_re_encode_to_the_same_pose(pose: Pose) -> None:
    packed = BINARY.decode(wire.encode_pose(pose))
    assert isinstance(packed, wire.PackedPose) and packed.t == pose.t
    frame = wire.decode_pose(packed.frame)
    assert packed.unpack(7) == MemberPose(id=7, head=frame.head, left=frame.left, right=frame.right, t=frame.t)
    assert packed.head_position() == frame.head.pos  # what the interest grid reads, decoded alone
    assert_close(frame.head, pose.head, 0.5 / wire.HEAD_SCALE + 1e-9)
    for decoded, original in ((frame.left, pose.left), (frame.right, pose.right)):
        assert (decoded is None) == (original is None)
        if decoded is not None and original is not None:
            assert_close(decoded, original, 0.5 / wire.HEAD_SCALE + 1e-9)
    assert frame.t == pose.t
    again = wire.decode_pose(wire.encode_pose(frame))
    assert again.head.pos == frame.head.pos and angle_between(again.head.rot, frame.head.rot) < 0.01
    if not has_near_tie(pose.head.rot) and all(not has_near_tie(h.rot) for h in (pose.left, pose.right) if h):
        assert wire.encode_pose(frame) == wire.encode_pose(pose)


def has_near_tie(rot: tuple[float, ...]) -> bool:
    """Two largest magnitudes within 1e-3 (relative to the norm): then quantisation may change which
    component is dropped on re-encoding, for the same rotation."""
    norm = math.sqrt(sum(v * v for v in rot))
    first, second = sorted((abs(v) / norm for v in rot), reverse=True)[:2]
    return first - second < 1e-3


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.sampled_from([0x00, 0x01, 0x02, 0x7F]))
def test_random_bytes_get_an_error_code_never_an_exception(data: bytes, tag: int) -> None:
    try:
        BINARY.decode(bytes((tag,)) + data)
    except DecodeFailure as failure:
        assert failure.code in {"bad_json", "unknown_type", "invalid_message"}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=120))
def test_random_tick_bytes_decode_or_raise_a_format_error(data: bytes) -> None:
    with contextlib.suppress(BinaryFormatError, msgspec.DecodeError, msgspec.ValidationError):
        wire.decode_tick(b"\x02" + data)


# ---- one room, two codecs -----------------------------------------------------------------------------------------


class CountingCodec(type(BINARY)):  # type: ignore[misc]
    """The binary codec, counting how often a pose entry is encoded."""

    def __init__(self) -> None:
        self.entries_encoded = 0

    def pose_entry(self, sender: PoseSource, tick_t: float) -> bytes:
        self.entries_encoded += 1
        return super().pose_entry(sender, tick_t)


def test_a_mixed_room_encodes_each_tick_once_per_codec_and_every_pose_once_per_codec() -> None:
    core = CoreDriver()
    counting = CountingCodec()
    json_members = core.in_room("lobby", *(f"J{i}" for i in range(5)))
    binary_members = []
    for index in range(5):
        member = core.engine.connect(counting, core.now)
        core.engine.receive(member, b'\x00{"type":"hello","name":"B%d"}' % index, core.now, binary=True)
        core.engine.receive(member, b'\x00{"type":"join","room":"lobby"}', core.now, binary=True)
        binary_members.append(member)
    for index, member in enumerate(json_members):
        core.pose(member, x=float(index))
    for index, member in enumerate(binary_members):
        core.engine.receive(member, wire.encode_pose(avatar(x=10.0 + index)), core.now, binary=True)

    sends = core.tick()
    assert len(sends) == 2  # one frame per codec, whatever the number of members
    by_kind = {send.binary: send for send in sends if isinstance(send, Send)}
    assert set(by_kind[True].recipients) == set(binary_members)
    assert set(by_kind[False].recipients) == set(json_members)
    assert counting.entries_encoded == 10
    binary_tick = wire.decode_tick(by_kind[True].frame)
    json_tick = json.loads(by_kind[False].frame)
    assert sorted(p.id for p in binary_tick.poses) == sorted(p["id"] for p in json_tick["poses"])
    # a binary sender's pose reaches the JSON members as floats, and a JSON sender's the binary ones
    by_id = {p["id"]: p for p in json_tick["poses"]}
    assert by_id[binary_members[2].id]["head"]["pos"] == [12.0, 1.6, 0.0]
    assert next(p for p in binary_tick.poses if p.id == json_members[3].id).head.pos == (3.0, 1.6, 0.0)


def test_a_binary_member_that_fell_behind_gets_the_full_state_in_binary() -> None:
    core = CoreDriver()
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    slow = core.engine.connect(BINARY, core.now)
    core.engine.receive(slow, b'\x00{"type":"hello","name":"Slow"}', core.now, binary=True)
    core.engine.receive(slow, b'\x00{"type":"join","room":"lobby"}', core.now, binary=True)
    core.pose(ada, x=1.0)
    core.pose(bob, x=2.0)
    core.tick()
    slow.needs_full_state = True  # what the transport sets when it skips a tick for a backed-up socket
    core.pose(ada, x=3.0)

    sends = core.tick()
    (full,) = [s for s in sends if isinstance(s, Send) and slow in s.recipients]
    tick = wire.decode_tick(full.frame)
    assert tick.full and sorted((p.id, p.head.pos[0]) for p in tick.poses) == [(ada.id, 3.0), (bob.id, 2.0)]
    assert not slow.needs_full_state


# ---- a real server ------------------------------------------------------------------------------------------------


async def handshake(server: RunningServer, offered: list[str]) -> str | None:
    """The subprotocol the server answers to an offer (None: no Sec-WebSocket-Protocol header)."""
    async with aiohttp.ClientSession() as session, session.ws_connect(server.ws_url, protocols=offered) as ws:
        return ws.protocol


async def test_the_server_prefers_binary_when_offered_and_json_otherwise(server: RunningServer) -> None:
    assert await handshake(server, ["shoal.v1.json", "shoal.v1.bin"]) == "shoal.v1.bin"
    assert await handshake(server, ["shoal.v1.bin"]) == "shoal.v1.bin"
    assert await handshake(server, ["shoal.v1.json"]) == "shoal.v1.json"
    assert await handshake(server, []) is None  # served JSON, as before


async def test_binary_and_json_clients_share_a_room_end_to_end(server: RunningServer) -> None:
    async with (
        await ShoalClient.connect(server.ws_url, name="Bin", binary=True) as bin_client,
        await ShoalClient.connect(server.ws_url, name="Json") as json_client,
    ):
        assert bin_client.binary and not json_client.binary
        await bin_client.join("mixed")
        await json_client.join("mixed")
        await bin_client.send_pose(head=((1.0, 1.6, -2.0), IDENTITY), left=((0.7, 1.1, -2.2), IDENTITY), t=T)
        await json_client.send_pose(head=((-1.0, 1.5, 0.5), (0.0, HALF_SQRT2, 0.0, HALF_SQRT2)))

        async def pose_from(client: ShoalClient, sender: int) -> MemberPose:
            while True:
                event = await client.recv(timeout=5.0)
                if isinstance(event, Tick):
                    for pose in event.poses:
                        if pose.id == sender:
                            return pose

        seen_by_json = await pose_from(json_client, bin_client.id)
        assert seen_by_json.head.pos == (1.0, 1.6, -2.0) and seen_by_json.left is not None
        assert seen_by_json.left.pos == pytest.approx((0.7, 1.1, -2.2), abs=1e-4)
        assert seen_by_json.t == T
        seen_by_binary = await pose_from(bin_client, json_client.id)
        assert seen_by_binary.head.pos == (-1.0, 1.5, 0.5)
        assert angle_between(seen_by_binary.head.rot, (0.0, HALF_SQRT2, 0.0, HALF_SQRT2)) < 0.01

        rtt, _offset = await bin_client.ping()  # tagged JSON both ways
        assert rtt >= 0
        await bin_client._ws.send_str('{"type":"ping","t":1}')  # a text frame on a binary connection
        error = await bin_client.expect(Error, match=lambda e: e.code == "unsupported_frame")
        assert "shoal.v1.bin" in error.message


async def test_a_binary_member_that_backs_up_skips_ticks_and_gets_the_full_state_when_it_drains(
    start_server: StartServer,
) -> None:
    server = await start_server(
        tick_rate=50.0, max_congested_seconds=30.0, max_buffer_bytes=256 << 20, message_rate=1e4, message_burst=10_000
    )
    async with (
        await ShoalClient.connect(server.ws_url, name="Ada", binary=True) as ada,
        await ShoalClient.connect(server.ws_url, name="Slow", binary=True) as slow,
    ):
        await ada.join("lobby")
        await slow.join("lobby")  # from here on Slow reads nothing until the end
        link = server.engine.members[slow.id].link
        started = time.monotonic()
        while link.buffered() <= server.engine.limits.tick_skip_bytes:  # the kernel's buffers fill first
            assert time.monotonic() - started < 10.0, "could not back up the slow member's socket"
            await ada.send("fill", "x" * 60_000, to=slow.id)
            await asyncio.sleep(0.002)
        skipped_before = server.engine.stats.ticks_skipped
        for step in range(20):
            await ada.send_pose(head=((step / 100, 1.6, 0.0), IDENTITY))
            await asyncio.sleep(0.02)
        assert server.engine.stats.ticks_skipped > skipped_before

        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # drain: every fill message, then a full-state tick
            event = await slow.recv(timeout=5.0)
            if isinstance(event, Tick) and event.full:
                break
        else:
            raise AssertionError("no full-state tick after draining")
        assert [(pose.id, pose.head.pos) for pose in event.poses] == [(ada.id, (0.19, 1.6, 0.0))]
        assert slow.id in server.engine.members  # drained in time: not closed


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([FULL, HEAD_ONLY]), st.lists(st.tuples(st.integers(0, 60), st.integers(0, 255)), max_size=4))
def test_packing_accepts_exactly_the_pose_frames_that_decode(frame: bytes, changes: list[tuple[int, int]]) -> None:
    frame = with_changes(frame, changes)
    assert accepts(wire.pack_pose, frame) == accepts(wire.decode_pose, frame)


def _unit_by_arithmetic(first: int, second: int, third: int) -> bool:
    """The rule of docs/protocol.md for three stored words, computed directly (the codec looks squares up)."""
    a, b, c = (first & 0x7FFF) - wire.QUAT_STEPS, (second & 0x7FFF) - wire.QUAT_STEPS, third - wire.QUAT_STEPS
    return max(a, b, c) <= wire.QUAT_STEPS and a * a + b * b + c * c <= 2 * wire.QUAT_STEPS**2


EDGE_WORDS = sorted(
    {base | high for base in (0, 1, 5000, 16382, 16383, 16384, 27000, 32765, 32766, 32767) for high in (0, 0x8000)}
)


def test_rotations_at_the_edge_of_unit_length_pack_within_the_stored_range() -> None:
    # Two equal largest components make the kept ones as large as they get; at the 1e-6 tolerance of unit
    # length they are not normalised, and still round to at most QUAT_STEPS steps (no clamp is needed).
    for scale in (1.0 - 4.9e-7, 1.0, 1.0 + 4.9e-7):
        half = math.sqrt(scale / 2)
        for rot in ((half, half, 0.0, 0.0), (0.0, -half, 0.0, half), (0.0, 0.0, -half, -half)):
            words = wire.pack_quaternion(rot)
            assert wire.is_unit_quaternion(*words), (rot, words)
            assert {words[0] & 0x7FFF, words[1] & 0x7FFF, words[2]} <= set(range(2 * wire.QUAT_STEPS + 1))
            same_rotation = abs(sum(u * v for u, v in zip(wire.unpack_quaternion(*words), rot, strict=True)))
            assert same_rotation == pytest.approx(math.sqrt(scale), abs=1e-4)  # q and -q are the same rotation


def test_the_quaternion_check_by_lookup_is_the_protocols_rule_on_every_edge() -> None:
    triples = [(a, b, c) for a in EDGE_WORDS for b in EDGE_WORDS for c in EDGE_WORDS]
    assert all(wire.is_unit_quaternion(*triple) == _unit_by_arithmetic(*triple) for triple in triples)
    assert sum(map(_unit_by_arithmetic, *zip(*triples, strict=True))) > 100  # both outcomes are covered
    assert wire.is_unit_quaternion(32766, 32766, 16383)  # two components of 1/sqrt(2): on the limit
    assert not wire.is_unit_quaternion(32766, 32766, 16384)  # and a step beyond it


@given(st.lists(st.tuples(*[st.integers(0, 0xFFFF)] * 3), max_size=30))
@settings(max_examples=300)
def test_a_hands_rotations_checked_at_once_agree_with_each_checked_alone(triples: list[tuple[int, int, int]]) -> None:
    # random words are rarely a rotation: half of the lists are made of rotations, with one random triple among them
    rotations = [(16383 + a % 11585, 16383 - b % 11585, 16383 + c % 100) for a, b, c in triples]
    for words in (triples, rotations, rotations[:-1] + triples[-1:]):
        expected = all(_unit_by_arithmetic(*triple) for triple in words)
        assert wire.all_unit_quaternions([word for triple in words for word in triple]) == expected
