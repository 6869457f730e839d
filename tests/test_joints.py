"""Hand joints: the binary JOINTS frame and tick section (sizes, round trips, every validation error), and the
room relaying them (own budget, own lower rate, latest wins, sender excluded, once per codec, interest, full
state, leaving), and a binary and a JSON client seeing each other's joints through a real server."""

from __future__ import annotations

import contextlib
import json
import math
import struct
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.client import ShoalClient
from shoal.core.actions import Action, Send
from shoal.core.interest import Interest
from shoal.core.joints import joints_every
from shoal.core.member import Member
from shoal.protocol import binary as wire
from shoal.protocol import joints as hands
from shoal.protocol.binary import BINARY, BinaryCodec, BinaryFormatError
from shoal.protocol.codec import JSON, DecodeFailure, JsonCodec
from shoal.protocol.messages import Joints, MemberJoints, Tick
from support.core import CoreDriver, closes, error_codes, inbox
from support.frames import accepts, with_changes
from support.servers import RunningServer

HALF_SQRT2 = math.sqrt(0.5)
T = 1_795_262_169_500.0
ROTATIONS = [(0.0, 0.0, 0.0, 1.0), (0.0, HALF_SQRT2, 0.0, HALF_SQRT2), (0.1, -0.2, 0.3, 0.9273618495495703)]


def hand(x: float = 0.25, y: float = 1.0, z: float = -0.3, spread: float = 1.0) -> list[list[float]]:
    """25 joints: a wrist at (x, y, z) and fingers reaching up to 0.2 m * `spread` from it."""
    joints = [[x, y, z, *ROTATIONS[0]]]
    for index in range(1, 25):
        finger, knuckle = divmod(index - 1, 5)
        joints.append(
            [
                x + spread * (0.02 * finger - 0.04 + 0.003 * knuckle),
                y + spread * 0.002 * knuckle,
                z - spread * 0.025 * (knuckle + 1),
                *ROTATIONS[index % len(ROTATIONS)],
            ]
        )
    return joints


def joints_message(left: Any = None, right: Any = None) -> Joints:
    return msgspec.convert({"type": "joints", "left": left, "right": right}, Joints)


def assert_hand_close(decoded: Any, original: Any) -> None:
    """Positions within the 0.1 mm steps (wrist and joint rounding), rotations within 0.01 degrees."""
    assert len(decoded) == len(original) == 25
    for got, sent in zip(decoded, original, strict=True):
        assert all(abs(a - b) <= 1e-4 + 1e-9 for a, b in zip(got[:3], sent[:3], strict=True))
        norm = math.sqrt(sum(v * v for v in sent[3:]))
        dot = min(1.0, abs(sum(a * b / norm for a, b in zip(got[3:], sent[3:], strict=True))))
        assert math.degrees(2 * math.acos(dot)) < 0.01


# ---- the binary frame ---------------------------------------------------------------------------------------------


def test_a_hand_is_303_bytes_both_hands_608_and_a_wide_wrist_adds_15() -> None:
    assert hands.HAND_BYTES == 303
    assert len(hands.encode_joints(joints_message(hand(), hand(x=-0.25)))) == 608
    assert len(hands.encode_joints(joints_message(right=hand()))) == 2 + 303
    assert hands.encode_joints(joints_message()) == b"\x03\x00"  # "no longer tracked"
    far = hands.encode_joints(joints_message(left=hand(x=900.0)))
    assert far[1] == hands.LEFT | hands.LEFT_WIDE and len(far) == 2 + 303 + 15


def test_decoded_joints_are_within_their_steps_and_re_encode_to_the_same_bytes() -> None:
    message = joints_message(left=hand(x=-0.31234, y=1.05678), right=hand(x=12.34567, z=-7.65432, spread=10.0))
    frame = hands.encode_joints(message)
    packed = BINARY.decode(frame)  # validated, kept as its bytes
    assert isinstance(packed, hands.PackedJoints) and packed.frame == frame
    decoded = hands.decode_joints(frame)
    assert packed.unpack(9) == MemberJoints(id=9, left=decoded.left, right=decoded.right)
    assert_hand_close(decoded.left, message.left)
    assert_hand_close(decoded.right, message.right)
    assert hands.encode_joints(decoded) == frame
    wide = joints_message(right=hand(x=-5000.123456789))
    assert hands.decode_joints(hands.encode_joints(wide)).right[0][:3] == tuple(wide.right[0][:3])  # type: ignore[index]


def test_tick_sections_in_both_codecs_carry_the_same_joints() -> None:
    ada = MemberJoints(id=7, left=[tuple(j) for j in hand()])  # type: ignore[misc]
    hidden = MemberJoints(id=2**32 - 1)
    tick = Tick(seq=9, t=T, poses=[], joints=[ada, hidden], removed=["cube"])
    frame = BINARY.encode(tick)
    assert frame[1] == wire.JOINTS | wire.ENTITIES
    decoded = wire.decode_tick(frame)
    assert [entry.id for entry in decoded.joints] == [7, 2**32 - 1] and decoded.removed == ["cube"]
    assert_hand_close(decoded.joints[0].left, ada.left)
    assert decoded.joints[1].left is None and decoded.joints[1].right is None
    # a tick assembled from entries is the same as the tick encoded whole, in both codecs
    header = Tick(seq=9, t=T, poses=[], removed=["cube"])
    for codec in (BINARY, JSON):
        entries = [codec.joints_entry(ada.id, ada), codec.joints_entry(hidden.id, hidden)]
        assert codec.joints_tick_encoder(header)([], entries) == codec.encode(tick)
    as_json = json.loads(JSON.encode(tick))
    assert as_json["joints"][1] == {"id": 2**32 - 1} and len(as_json["joints"][0]["left"]) == 25


def test_a_binary_senders_bytes_are_relayed_as_they_are_and_decoded_once_for_json() -> None:
    frame = hands.encode_joints(joints_message(right=hand()))
    packed = hands.pack_joints(frame)
    assert BINARY.joints_entry(5, packed) == struct.pack("<I", 5) + frame[1:]
    decoded = hands.decode_joints(frame)
    assert JSON.joints_entry(5, packed) == msgspec.json.encode(MemberJoints(id=5, right=decoded.right))
    assert packed.unpack(5).right is packed.unpack(6).right  # decoded once, whoever asks


def test_encoders_refuse_hands_they_cannot_carry() -> None:
    too_big = hand()
    too_big[24][1] += 3.5  # a fingertip 3.5 m above the wrist
    with pytest.raises(hands.HandTooBig):
        hands.encode_joints(Joints(right=too_big))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="25 joints"):
        hands.encode_joints(Joints(left=hand()[:24]))  # type: ignore[arg-type]
    zero = hand()
    zero[3][3:] = [0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="zero"):
        hands.encode_joints(Joints(left=zero))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        hands.encode_joints(Joints(left=hand(x=math.inf)))  # type: ignore[arg-type]
    for bad in (math.inf, math.nan):
        fingertip = hand()
        fingertip[24][0] = bad
        with pytest.raises(hands.HandTooBig):
            hands.encode_joints(Joints(left=fingertip))  # type: ignore[arg-type]


BOTH = hands.encode_joints(joints_message(hand(), hand(x=-0.25)))
RIGHT_ONLY = hands.encode_joints(joints_message(right=hand()))
WIDE_LEFT = hands.encode_joints(joints_message(left=hand(x=900.0)))


def with_byte(frame: bytes, index: int, value: int) -> bytes:
    return frame[:index] + bytes((value,)) + frame[index + 1 :]


def impossible_quaternion(frame: bytes, offset: int) -> bytes:
    return frame[:offset] + struct.pack("<HHH", 0x7FFE, 0x7FFE, 0x7FFE) + frame[offset + 6 :]


def wide_wrist(x: float) -> bytes:
    return WIDE_LEFT[:2] + struct.pack("<d", x) + WIDE_LEFT[10:]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (b"\x03", "invalid_message"),  # no flags byte
        (b"\x03\x01", "invalid_message"),  # a hand announced, none follows
        (BOTH[:-1], "invalid_message"),
        (RIGHT_ONLY[:200], "invalid_message"),
        (BOTH + b"\x00", "invalid_message"),
        (b"\x03\x00\x00", "invalid_message"),
        (with_byte(RIGHT_ONLY, 1, hands.RIGHT | 0x10), "invalid_message"),  # reserved hand flags
        (with_byte(RIGHT_ONLY, 1, hands.RIGHT | 0x80), "invalid_message"),
        (with_byte(RIGHT_ONLY, 1, hands.RIGHT | hands.LEFT_WIDE), "invalid_message"),  # wide flag, absent hand
        (with_byte(RIGHT_ONLY, 1, hands.RIGHT | hands.RIGHT_WIDE), "invalid_message"),  # now too short
        (impossible_quaternion(RIGHT_ONLY, 2 + 9), "invalid_message"),  # the wrist's rotation
        (impossible_quaternion(RIGHT_ONLY, 2 + 15 + 12 * 23 + 6), "invalid_message"),  # the last joint's
        (RIGHT_ONLY[:-1] + b"\xff", "invalid_message"),  # a third word beyond 15 bits
        (wide_wrist(math.nan), "invalid_message"),
        (wide_wrist(-math.inf), "invalid_message"),
        (wide_wrist(10_000.5), "invalid_message"),
        (b'\x00{"type":"joints","left":[]}', "invalid_message"),  # tagged JSON: the JSON verdict
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_kind_of_bad_joints_frame_is_invalid_message(frame: bytes, code: str) -> None:
    with pytest.raises(DecodeFailure) as failure:
        BINARY.decode(frame)
    assert failure.value.code == code and failure.value.message


def json_joints(**fields: Any) -> bytes:
    return json.dumps({"type": "joints", **fields}).encode()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (json_joints(left=hand()[:24]), "invalid_message"),
        (json_joints(left=[*hand(), hand()[0]]), "invalid_message"),
        (json_joints(right=[joint[:6] for joint in hand()]), "invalid_message"),
        (json_joints(right=[[*joint, 0.0] for joint in hand()]), "invalid_message"),
        (json_joints(right=[*hand()[:24], [0.0, 1e5, 0.0, 0.0, 0.0, 0.0, 1.0]]), "invalid_message"),
        (json_joints(right=[*hand()[:24], ["a", 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]]), "invalid_message"),
        (json_joints(right={"wrist": [0, 0, 0]}), "invalid_message"),
        (json_joints(head=hand()), "invalid_message"),  # unknown field
        (json_joints(right=hand()).replace(b"1.0]", b"NaN]", 1), "bad_json"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_kind_of_bad_json_joints_is_refused_by_the_schema(frame: bytes, code: str) -> None:
    with pytest.raises(DecodeFailure) as failure:
        JSON.decode(frame)
    assert failure.value.code == code


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=700))
def test_random_joints_bytes_get_an_error_code_never_an_exception(data: bytes) -> None:
    with contextlib.suppress(DecodeFailure):
        BINARY.decode(b"\x03" + data)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_random_tick_bytes_with_a_joints_section_decode_or_raise_a_format_error(data: bytes) -> None:
    frame = struct.pack("<BBIdH", wire.TAG_TICK, wire.JOINTS, 1, T, 0) + data
    with contextlib.suppress(BinaryFormatError):
        wire.decode_tick(frame)


near = st.floats(-3.0, 3.0, allow_nan=False)
components = st.floats(-1.0, 1.0, allow_nan=False)
rotations = st.tuples(components, components, components, components).filter(lambda q: sum(v * v for v in q) > 1e-6)


@st.composite
def random_hands(draw: st.DrawFn) -> list[list[float]]:
    wrist = draw(st.tuples(*[st.floats(-9_990.0, 9_990.0, allow_nan=False)] * 3))
    joints = [[*wrist, *draw(rotations)]]
    for _ in range(24):
        offset = draw(st.tuples(near, near, near))
        joints.append([w + o for w, o in zip(wrist, offset, strict=True)] + list(draw(rotations)))
    return joints


@settings(max_examples=100, deadline=None)
@given(random_hands(), st.booleans())
def test_random_hands_round_trip_within_their_steps(left: list[list[float]], with_right: bool) -> None:
    message = joints_message(left=left, right=hand() if with_right else None)
    decoded = hands.decode_joints(hands.encode_joints(message))
    assert_hand_close(decoded.left, left)
    assert (decoded.right is None) == (not with_right)


# ---- the room ------------------------------------------------------------------------------------------------------


def joints_in(actions: list[Action], member: Member) -> list[dict[str, Any]]:
    """The joints entries `member` receives in the ticks of `actions` (a JSON member)."""
    return [
        entry for message in inbox(actions, member) if message["type"] == "tick" for entry in message.get("joints", [])
    ]


def send_joints(core: CoreDriver, member: Member, **fields: Any) -> list[Action]:
    return core.send(member, {"type": "joints", **fields})


def test_joints_go_out_every_nth_tick_only_latest_wins_and_never_to_their_sender() -> None:
    core = CoreDriver()  # 20 Hz ticks, joints relayed at 10 Hz: every 2nd tick
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    assert core.engine.rooms["lobby"].joints.every == 2
    carried = []
    for step in range(6):
        assert send_joints(core, ada, right=hand(x=0.001 * step)) == []  # no answer, like a pose
        core.pose(ada, x=float(step))
        actions = core.tick()
        entries = joints_in(actions, bob)
        carried.append(len(entries))
        if entries:  # the latest of the two messages since the previous joints tick
            assert entries == [
                {"id": ada.id, "right": [list(j) for j in joints_message(right=hand(x=0.001 * step)).right]}
            ]  # type: ignore[union-attr]
        assert joints_in(actions, ada) == []
    assert carried in ([0, 1, 0, 1, 0, 1], [1, 0, 1, 0, 1, 0])
    assert core.engine.stats.joints_in == 6


@pytest.mark.parametrize(
    ("tick_rate", "joints_rate", "every"),
    [(20.0, 10.0, 2), (20.0, 20.0, 1), (20.0, 7.0, 3), (10.0, 30.0, 1), (90.0, 10.0, 9)],
)
def test_the_joints_tick_is_every_round_tick_rate_over_joints_rate(
    tick_rate: float, joints_rate: float, every: int
) -> None:
    assert joints_every(tick_rate, joints_rate) == every
    core = CoreDriver(tick_rate=tick_rate, joints_relay_rate=joints_rate)
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    ticks_with_joints = []
    for number in range(1, 2 * every + 1):
        send_joints(core, ada, left=hand())
        if joints_in(core.tick(), bob):
            ticks_with_joints.append(number)
    assert len(ticks_with_joints) == 2 and ticks_with_joints[1] - ticks_with_joints[0] == every


def test_hands_no_longer_tracked_are_relayed_as_an_empty_entry() -> None:
    core = CoreDriver(joints_relay_rate=20.0)
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    send_joints(core, ada, left=hand())
    assert len(joints_in(core.tick(), bob)) == 1
    send_joints(core, ada, left=None, right=None)
    assert joints_in(core.tick(), bob) == [{"id": ada.id}]
    assert joints_in(core.tick(), bob) == []  # nothing changed since


def binary_member(core: CoreDriver, name: str, room: str = "lobby", codec: BinaryCodec = BINARY) -> Member:
    member = core.engine.connect(codec, core.now)
    core.engine.receive(member, b'\x00{"type":"hello","name":"%s"}' % name.encode(), core.now, binary=True)
    core.engine.receive(member, b'\x00{"type":"join","room":"%s"}' % room.encode(), core.now, binary=True)
    return member


class CountingBinary(BinaryCodec):
    def __init__(self) -> None:
        self.encoded: list[int] = []

    def joints_entry(self, member_id: int, joints: MemberJoints | hands.PackedJoints) -> bytes:  # type: ignore[override]
        self.encoded.append(member_id)
        return super().joints_entry(member_id, joints)


class CountingJson(JsonCodec):
    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[int] = []

    def joints_entry(self, member_id: int, joints: MemberJoints | hands.PackedJoints) -> bytes:
        self.encoded.append(member_id)
        return super().joints_entry(member_id, joints)


def test_json_and_binary_members_get_the_same_joints_each_encoded_once_per_codec() -> None:
    core = CoreDriver(joints_relay_rate=20.0)
    binary, text = CountingBinary(), CountingJson()
    json_members = []
    for name in ("J1", "J2", "J3"):
        member = core.engine.connect(text, core.now)
        core.send(member, {"type": "hello", "name": name})
        core.join(member)
        json_members.append(member)
    binary_members = [binary_member(core, name, codec=binary) for name in ("B1", "B2", "B3")]
    sent = {json_members[0].id: hand(x=1.0), json_members[1].id: hand(x=2.0)}
    for member in json_members[:2]:
        send_joints(core, member, left=sent[member.id])
    frames = {}
    for index, member in enumerate(binary_members[:2]):
        sent[member.id] = hand(x=3.0 + index, spread=2.0)
        frames[member.id] = hands.encode_joints(joints_message(right=sent[member.id]))
        assert core.engine.receive(member, frames[member.id], core.now, binary=True) == []

    core.pose(json_members[0], x=1.0)  # a pose in the same tick: its entry and the joints share frames
    actions = core.tick()
    assert sorted(binary.encoded) == sorted(sent) and sorted(text.encoded) == sorted(sent)  # once per codec
    sends = [action for action in actions if isinstance(action, Send)]
    assert len(sends) == 6  # per codec: one frame for the non-senders, one for each sender (without its own)
    for member in json_members + binary_members:
        (send,) = [s for s in sends if member in s.recipients]
        if member.codec is binary:
            tick = wire.decode_tick(send.frame)
            seen = {entry.id: entry for entry in tick.joints}
            poses = [pose.id for pose in tick.poses]
        else:
            message = json.loads(send.frame)
            seen = {entry["id"]: MemberJoints(**entry) for entry in message["joints"]}
            poses = [pose["id"] for pose in message["poses"]]
        assert poses == ([] if member is json_members[0] else [json_members[0].id])
        assert sorted(seen) == sorted(key for key in sent if key != member.id)
        for sender, entry in seen.items():
            assert_hand_close(entry.left or entry.right, sent[sender])
        if member.codec is binary:  # a binary sender's bytes reach binary members unchanged
            for sender, frame in frames.items():
                if sender != member.id:
                    assert struct.pack("<I", sender) + frame[1:] in send.frame


def test_with_interest_joints_go_only_to_near_members_never_in_the_far_tier() -> None:
    core = CoreDriver(joints_relay_rate=20.0)
    core.engine.interest = Interest(radius=5.0, far_every=2)
    ada, bob, cyd = core.in_room("lobby", "Ada", "Bob", "Cyd")
    seen: dict[Member, set[int]] = {ada: set(), bob: set(), cyd: set()}
    for step in range(4):  # two far ticks among them
        for member, x in ((ada, 0.0), (bob, 3.0), (cyd, 50.0)):
            core.pose(member, x=x + 0.001 * step)
            send_joints(core, member, left=hand(x=x))
        actions = core.tick()
        for member in seen:
            seen[member] |= {entry["id"] for entry in joints_in(actions, member)}
        core.advance(0.001)
    assert seen == {ada: {bob.id}, bob: {ada.id}, cyd: set()}


def test_a_full_state_tick_carries_every_other_members_latest_joints() -> None:
    core = CoreDriver()
    ada, bob, slow = core.in_room("lobby", "Ada", "Bob", "Slow")
    send_joints(core, ada, left=hand())
    send_joints(core, bob, right=hand(x=1.0))
    send_joints(core, slow, right=hand(x=2.0))
    while not joints_in(core.tick(), slow):
        pass
    slow.needs_full_state = True
    core.pose(ada, x=1.0)
    room = core.engine.rooms["lobby"]
    if room._ticks % room.joints.every == room.joints.every - 1:
        core.tick()  # make the next tick no joints tick: the full state carries them anyway
    (full,) = [m for m in inbox(core.tick(), slow) if m["type"] == "tick"]
    assert full["full"] and sorted(entry["id"] for entry in full["joints"]) == [ada.id, bob.id]


def test_a_member_that_leaves_has_its_joints_forgotten() -> None:
    core = CoreDriver(joints_relay_rate=20.0)
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    send_joints(core, ada, left=hand())
    core.send(ada, {"type": "leave"})
    assert joints_in(core.tick(), bob) == []
    assert core.engine.rooms["lobby"].joints.latest == {}
    send_joints(core, bob, left=hand())
    core.join(ada)
    actions = core.tick()
    assert [entry["id"] for entry in joints_in(actions, ada)] == [bob.id]
    core.engine.disconnect(bob, core.now)
    assert core.engine.rooms["lobby"].joints.latest == {}
    ada.needs_full_state = True
    (full,) = [m for m in inbox(core.tick(), ada) if m["type"] == "tick"]
    assert full["full"] and "joints" not in full


def test_joints_have_their_own_budget_dropped_silently_and_counted() -> None:
    core = CoreDriver(joints_rate=30.0, joints_burst=60, abuse_close_seconds=5.0)
    (ada,) = core.in_room("lobby", "Ada")
    for _ in range(60):
        assert send_joints(core, ada, left=hand()) == []
    assert send_joints(core, ada, left=hand()) == []  # over the burst: dropped without an error
    assert core.engine.stats.dropped["joints_rate"] == 1
    assert core.pose(ada) == []  # poses keep their own budget
    for _ in range(60):  # keep exceeding it for 5 s: closed like a pose flood
        core.advance(0.1)
        for _ in range(4):
            actions = send_joints(core, ada, left=hand())
        if closes(actions):
            break
    assert closes(actions) == {ada.id: 4008}


def test_joints_need_hello_and_are_ignored_outside_a_room() -> None:
    core = CoreDriver()
    stranger = core.connect()
    assert error_codes(send_joints(core, stranger, left=hand()), stranger) == ["hello_required"]
    lonely = core.greet("Lonely")
    assert send_joints(core, lonely, left=hand()) == []
    assert core.engine.stats.joints_ignored == 1


def test_a_zero_quaternion_or_a_giant_hand_is_invalid_and_unit_ones_are_normalised() -> None:
    core = CoreDriver(joints_relay_rate=20.0)
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    zero = hand()
    zero[5][3:] = [0.0, 0.0, 0.0, 0.0]
    assert error_codes(send_joints(core, ada, left=zero), ada) == ["invalid_message"]
    giant = hand()
    giant[24][2] -= 3.3
    assert error_codes(send_joints(core, ada, right=giant), ada) == ["invalid_message"]
    doubled = hand()
    doubled[0][3:] = [0.0, 0.0, 0.0, 2.0]
    send_joints(core, ada, left=doubled)
    (entry,) = joints_in(core.tick(), bob)
    assert entry["left"][0][3:] == [0.0, 0.0, 0.0, 1.0]


def test_welcome_advertises_the_joints_rate() -> None:
    core = CoreDriver()
    member = core.connect()
    (welcome,) = inbox(core.send(member, {"type": "hello", "name": "Ada"}), member)
    assert welcome["limits"]["joints_rate"] == 30.0


# ---- a real server ------------------------------------------------------------------------------------------------


async def test_a_binary_and_a_json_client_see_each_others_joints(server: RunningServer) -> None:
    async with (
        await ShoalClient.connect(server.ws_url, name="Bin", binary=True) as bin_client,
        await ShoalClient.connect(server.ws_url, name="Json") as json_client,
    ):
        assert bin_client.binary and not json_client.binary
        assert bin_client.welcome is not None and bin_client.welcome.limits["joints_rate"] == 30.0
        await bin_client.join("hands")
        await json_client.join("hands")
        bin_hand, json_hand = hand(x=1.0, spread=3.0), hand(x=-1.0)
        await bin_client.send_joints(left=bin_hand, right=hand(x=1.5))
        await json_client.send_joints(right=json_hand)

        async def joints_from(client: ShoalClient, sender: int) -> MemberJoints:
            while True:
                tick = await client.expect(Tick, timeout=5.0)
                assert all(entry.id != client.id for entry in tick.joints)
                for entry in tick.joints:
                    if entry.id == sender:
                        return entry

        seen_by_json = await joints_from(json_client, bin_client.id)
        assert_hand_close(seen_by_json.left, bin_hand)
        assert_hand_close(seen_by_json.right, hand(x=1.5))
        assert json_client.joints[bin_client.id] == seen_by_json
        seen_by_binary = await joints_from(bin_client, json_client.id)
        assert seen_by_binary.left is None
        assert_hand_close(seen_by_binary.right, json_hand)
        assert set(bin_client.joints) == {json_client.id}

        await bin_client.send_joints()  # hands no longer tracked
        hidden = await joints_from(json_client, bin_client.id)
        assert hidden == MemberJoints(id=bin_client.id) and bin_client.id not in json_client.joints
        stats = await server.stats()
        assert stats["joints_in"] == 3 and stats["dropped"].get("joints_rate", 0) == 0

        with pytest.raises(msgspec.ValidationError):
            await json_client.send_joints(left=hand()[:20])


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([BOTH, RIGHT_ONLY, WIDE_LEFT]),
    st.lists(st.tuples(st.integers(0, 700), st.integers(0, 255)), max_size=4),
)
def test_packing_accepts_exactly_the_frames_that_decode(frame: bytes, changes: list[tuple[int, int]]) -> None:
    frame = with_changes(frame, changes)
    assert accepts(hands.pack_joints, frame) == accepts(hands.decode_joints, frame)


@given(
    st.integers(0, 23),
    st.integers(0, 2),
    st.floats(-3.2768, 3.2768, allow_nan=False),
    st.sampled_from([0.25, -400.0, 900.0]),
)
@settings(max_examples=300)
def test_the_servers_hand_check_refuses_exactly_the_hands_the_encoder_refuses(
    joint: int, axis: int, reach: float, x: float
) -> None:
    """`check_hand` looks at each axis's extremes only: it must agree with encoding every joint, near the limit too."""
    sent = hand(x=x)
    sent[joint + 1][axis] = sent[0][axis] + reach
    try:
        hands.encode_joints(Joints(left=sent))  # type: ignore[arg-type]
    except hands.HandTooBig:
        with pytest.raises(hands.HandTooBig):
            hands.check_hand(sent)
    else:
        hands.check_hand(sent)
    for bad in (math.nan, math.inf):
        sent[joint + 1][axis] = bad
        with pytest.raises(hands.HandTooBig):
            hands.check_hand(sent)


def test_a_hand_of_unit_rotations_is_kept_as_it_came_and_one_of_float32_rotations_is_normalised() -> None:
    from shoal.core.joints import member_joints

    exact = [tuple(joint) for joint in hand()]
    kept = member_joints(1, Joints(left=exact)).left  # type: ignore[arg-type]
    assert kept is exact  # nothing to normalise: the same list
    float32 = [(*joint[:3], *struct.unpack("<4f", struct.pack("<4f", *joint[3:]))) for joint in exact]
    float32[5] = (*float32[5][:3], 0.0, 0.0, 0.0, 2.0)  # and one far from unit length
    normalised = member_joints(1, Joints(left=float32)).left  # type: ignore[arg-type]
    assert normalised is not float32
    for got, came in zip(normalised, float32, strict=True):
        length = math.sqrt(sum(value * value for value in came[3:]))
        assert abs(sum(value * value for value in got[3:]) - 1.0) < 2e-9
        assert got[:3] == came[:3]
        assert all(abs(a - b / length) < 1e-12 for a, b in zip(got[3:], came[3:], strict=True))
    assert normalised[5][3:] == (0.0, 0.0, 0.0, 1.0)
