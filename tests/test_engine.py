"""The engine without a socket: greeting, presence, relaying, validation and the per-connection limits.

Every test drives `Engine` through `CoreDriver`, passing the time in, and reads the actions it returns.
"""

from __future__ import annotations

import math

import pytest

from shoal import __version__
from shoal.core.engine import PALETTE
from shoal.core.limits import Limits
from shoal.protocol.errors import CloseCode
from support.core import START, CoreDriver, closes, error_codes, inbox, pose_message, types_for


@pytest.fixture
def core() -> CoreDriver:
    return CoreDriver()


# ---- hello / welcome -----------------------------------------------------------------------------


def test_welcome_gives_id_secret_token_server_time_tick_rate_and_limits(core: CoreDriver) -> None:
    member = core.connect()
    (welcome,) = inbox(core.send(member, {"type": "hello", "v": 1, "name": "Ada", "color": "#3CB44B"}), member)

    assert welcome["id"] == member.id
    assert len(welcome["resume_token"]) >= 32
    assert welcome["server_time"] == START * 1000.0
    assert welcome["tick_rate"] == 20.0
    assert welcome["v"] == 1
    assert welcome["server"] == {"name": "shoal", "version": __version__}
    defaults = Limits()
    assert welcome["limits"] == {name: getattr(defaults, name) for name in welcome["limits"]}
    assert set(welcome["limits"]) >= {"max_message_bytes", "max_members_per_room", "pose_rate", "ping_interval"}
    assert (member.name, member.color) == ("Ada", "#3cb44b")


def test_hello_collapses_white_space_and_names_the_nameless(core: CoreDriver) -> None:
    spaced = core.greet("  Ada \t  Lovelace ")
    nameless = core.greet("")

    assert spaced.name == "Ada Lovelace"
    assert nameless.name == f"Guest {nameless.id % 10000:04d}"
    assert nameless.color == PALETTE[nameless.id % len(PALETTE)]


@pytest.mark.parametrize("name", ["x" * 33, "bell\x07"], ids=["too-long", "unprintable"])
def test_hello_with_a_bad_name_is_invalid_and_not_greeted(core: CoreDriver, name: str) -> None:
    member = core.connect()
    actions = core.send(member, {"type": "hello", "name": name})

    assert error_codes(actions, member) == ["invalid_message"]
    assert not member.greeted


def test_second_hello_is_already_greeted(core: CoreDriver) -> None:
    member = core.greet("Ada")
    assert error_codes(core.send(member, {"type": "hello"}), member) == ["already_greeted"]


def test_unsupported_version_gets_an_error_then_close_4002(core: CoreDriver) -> None:
    member = core.connect()
    actions = core.send(member, {"type": "hello", "v": 2})

    (error,) = inbox(actions, member)
    assert (error["code"], error["ref"]) == ("unsupported_version", "hello")
    assert closes(actions) == {member.id: CloseCode.UNSUPPORTED_VERSION}


@pytest.mark.parametrize(
    "message", [{"type": "join", "room": "lobby"}, {"type": "ping", "t": 1.0}, pose_message()], ids=lambda m: m["type"]
)
def test_anything_before_hello_is_hello_required(core: CoreDriver, message: dict) -> None:
    member = core.connect()
    assert error_codes(core.send(member, message), member) == ["hello_required"]
    assert not core.engine.rooms


def test_no_hello_within_the_timeout_closes_4000(core: CoreDriver) -> None:
    silent = core.connect()
    core.advance(5.0)
    late = core.connect()

    core.advance(Limits().hello_timeout - 5.0 - 0.001)
    assert closes(core.engine.tick(core.now)[0]) == {}
    core.advance(0.002)
    assert closes(core.engine.tick(core.now)[0]) == {silent.id: CloseCode.HELLO_TIMEOUT}

    core.send(late, {"type": "hello"})
    core.advance(10.0)
    assert closes(core.engine.tick(core.now)[0]) == {}


def test_ping_is_answered_with_pong_and_server_time(core: CoreDriver) -> None:
    member = core.greet("Ada")
    (pong,) = inbox(core.send(member, {"type": "ping", "t": 123.5}), member)
    assert pong == {"type": "pong", "t": 123.5, "server_time": START * 1000.0}


# ---- presence ------------------------------------------------------------------------------------


def test_join_answers_the_snapshot_and_tells_the_others(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    (joined,) = inbox(core.join(ada), ada)
    assert joined == {
        "type": "joined",
        "room": "lobby",
        "id": ada.id,
        "tick_rate": 20.0,
        "seq": 0,
        "members": [{"id": ada.id, "name": "Ada", "color": ada.color}],
    }

    bob = core.greet("Bob")
    actions = core.join(bob)
    assert inbox(actions, ada) == [
        {"type": "member_joined", "room": "lobby", "member": {"id": bob.id, "name": "Bob", "color": bob.color}}
    ]
    (joined,) = inbox(actions, bob)
    assert [m["name"] for m in joined["members"]] == ["Ada", "Bob"]


def test_late_joiner_receives_everyones_last_pose(core: CoreDriver) -> None:
    ada, _ = core.in_room("lobby", "Ada", "Bob")
    core.pose(ada, x=1.0)
    core.pose(ada, x=2.0)
    core.tick()

    cyd = core.greet("Cyd")
    (joined,) = inbox(core.join(cyd), cyd)

    poses = {m["name"]: m.get("pose") for m in joined["members"]}
    assert poses["Ada"]["head"]["pos"] == [2.0, 1.6, 0.0]
    assert poses["Ada"]["id"] == ada.id
    assert poses["Bob"] is None and poses["Cyd"] is None
    assert joined["seq"] == core.engine.rooms["lobby"].seq > 0


def test_leave_answers_left_and_tells_the_others(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    actions = core.send(bob, {"type": "leave"})

    assert inbox(actions, bob) == [{"type": "left", "room": "lobby"}]
    assert inbox(actions, ada) == [{"type": "member_left", "room": "lobby", "id": bob.id}]
    assert bob.room is None


def test_leave_outside_a_room_is_not_in_room(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    assert error_codes(core.send(ada, {"type": "leave"}), ada) == ["not_in_room"]


def test_joining_another_room_leaves_the_first(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    actions = core.join(bob, "garden")

    assert inbox(actions, ada) == [{"type": "member_left", "room": "lobby", "id": bob.id}]
    assert types_for(actions, bob) == ["joined"]
    assert list(core.engine.rooms["lobby"].members) == [ada.id]
    assert list(core.engine.rooms["garden"].members) == [bob.id]


def test_rejoining_the_same_room_resends_the_snapshot_and_tells_no_one(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    actions = core.join(bob, "lobby")

    assert types_for(actions, bob) == ["joined"]
    assert inbox(actions, ada) == []
    assert len(core.engine.rooms["lobby"]) == 2


def test_disconnect_tells_the_room_and_the_last_one_out_removes_it(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")

    assert inbox(core.engine.disconnect(bob, core.now), ada) == [{"type": "member_left", "room": "lobby", "id": bob.id}]
    assert core.engine.disconnect(bob, core.now) == []  # a second disconnect is a no-op
    core.engine.disconnect(ada, core.now)
    assert core.engine.rooms == {}
    assert core.engine.members == {}


def test_room_is_removed_when_its_last_member_leaves(core: CoreDriver) -> None:
    (ada,) = core.in_room("lobby", "Ada")
    core.send(ada, {"type": "leave"})
    assert "lobby" not in core.engine.rooms


@pytest.mark.parametrize("room", ["", "-lobby", "a b", "lobby/1", "é", "x" * 65])
def test_bad_room_names_are_invalid_room(core: CoreDriver, room: str) -> None:
    ada = core.greet("Ada")
    assert error_codes(core.join(ada, room), ada) == ["invalid_room"]


def test_good_room_names_are_accepted(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    for room in ["a", "Lobby_2.b~c:d-e", "9" * 64]:
        assert types_for(core.join(ada, room), ada) == ["joined"]


def test_a_full_room_refuses_the_next_join() -> None:
    core = CoreDriver(max_members_per_room=2)
    core.in_room("lobby", "Ada", "Bob")
    cyd = core.greet("Cyd")

    (error,) = inbox(core.join(cyd), cyd)
    assert error == {"type": "error", "code": "room_full", "message": "room 'lobby' is full", "ref": "join"}
    assert cyd.room is None


def test_the_room_limit_refuses_a_new_room_but_not_an_existing_one() -> None:
    core = CoreDriver(max_rooms=1)
    core.in_room("lobby", "Ada")
    bob = core.greet("Bob")

    assert error_codes(core.join(bob, "garden"), bob) == ["too_many_rooms"]
    assert types_for(core.join(bob, "lobby"), bob) == ["joined"]


# ---- poses ---------------------------------------------------------------------------------------


def test_pose_outside_a_room_is_ignored_and_counted(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    assert core.pose(ada) == []
    assert core.engine.stats.poses_ignored == 1


@pytest.mark.parametrize(
    "frame",
    [
        b'{"type":"pose","head":{"pos":[NaN,0,0],"rot":[0,0,0,1]}}',
        b'{"type":"pose","head":{"pos":[0,Infinity,0],"rot":[0,0,0,1]}}',
        b'{"type":"pose","head":{"pos":[0,0,-Infinity],"rot":[0,0,0,1]}}',
        b'{"type":"pose","head":{"pos":[1e400,0,0],"rot":[0,0,0,1]}}',
        b'{"type":"pose","head":{"pos":[0,0,0],"rot":[0,0,0,1e400]}}',
        b'{"type":"pose","head":{"pos":[0,0,0],"rot":[0,0,0,1]},"t":1e400}',
    ],
    ids=["nan", "infinity", "minus-infinity", "overflowing-position", "overflowing-rotation", "overflowing-t"],
)
def test_non_finite_numbers_in_a_pose_are_refused(core: CoreDriver, frame: bytes) -> None:
    (ada,) = core.in_room("lobby", "Ada")
    codes = error_codes(core.send(ada, frame), ada)
    assert codes in (["bad_json"], ["invalid_message"])
    assert ada.pose is None


@pytest.mark.parametrize("coordinate", [10_000.001, -10_001.0, 1e9])
def test_positions_beyond_10_km_are_invalid(core: CoreDriver, coordinate: float) -> None:
    (ada,) = core.in_room("lobby", "Ada")
    assert error_codes(core.pose(ada, x=coordinate), ada) == ["invalid_message"]
    assert error_codes(core.pose(ada, x=10_000.0), ada) == []


@pytest.mark.parametrize("part", ["head", "left", "right"])
def test_a_zero_quaternion_is_invalid(core: CoreDriver, part: str) -> None:
    (ada,) = core.in_room("lobby", "Ada")
    message = pose_message()
    message[part] = {"pos": [0.0, 1.0, 0.0], "rot": [0.0, 0.0, 0.0, 0.0]}
    (error,) = inbox(core.send(ada, message), ada)
    assert (error["code"], error["ref"]) == ("invalid_message", "pose")


def test_a_non_unit_quaternion_is_normalised(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    core.send(ada, {"type": "pose", "head": {"pos": [0, 1.6, 0], "rot": [0, 3, 0, 4]}, "t": 7.0})

    (tick,) = inbox(core.tick(), bob)
    (pose,) = tick["poses"]
    x, y, z, w = pose["head"]["rot"]
    assert (x, y, z, w) == pytest.approx((0.0, 0.6, 0.0, 0.8))
    assert math.hypot(x, y, z, w) == pytest.approx(1.0)
    assert pose["t"] == 7.0


# ---- application messages ------------------------------------------------------------------------


def test_msg_reaches_every_other_member_stamped_with_its_real_sender(core: CoreDriver) -> None:
    ada, bob, cyd = core.in_room("lobby", "Ada", "Bob", "Cyd")
    actions = core.send(ada, {"type": "msg", "topic": "chat", "data": {"text": "hi", "n": [1, 2.5, None]}})

    expected = {"type": "msg", "topic": "chat", "from": ada.id, "data": {"text": "hi", "n": [1, 2.5, None]}}
    assert inbox(actions, bob) == inbox(actions, cyd) == [expected]
    assert inbox(actions, ada) == []


def test_msg_to_one_member_reaches_only_that_member(core: CoreDriver) -> None:
    ada, bob, cyd = core.in_room("lobby", "Ada", "Bob", "Cyd")
    actions = core.send(ada, {"type": "msg", "topic": "wave", "to": bob.id})

    assert inbox(actions, bob) == [{"type": "msg", "topic": "wave", "from": ada.id, "to": bob.id}]
    assert inbox(actions, cyd) == []


def test_a_client_cannot_speak_as_another(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    actions = core.send(ada, {"type": "msg", "topic": "chat", "from": bob.id})

    assert error_codes(actions, ada) == ["invalid_message"]
    assert inbox(actions, bob) == []


def test_msg_to_someone_outside_the_room_is_no_such_member(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    (outsider,) = core.in_room("garden", "Out")

    actions = core.send(ada, {"type": "msg", "topic": "wave", "to": outsider.id})
    assert error_codes(actions, ada) == ["no_such_member"]
    assert inbox(actions, outsider) == [] and inbox(actions, bob) == []


def test_msg_outside_a_room_is_not_in_room(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    assert error_codes(core.send(ada, {"type": "msg", "topic": "chat"}), ada) == ["not_in_room"]


# ---- rate limits and abuse -----------------------------------------------------------------------


def test_poses_over_the_rate_are_dropped_silently_and_counted() -> None:
    core = CoreDriver(pose_rate=10.0, pose_burst=5)
    ada, bob = core.in_room("lobby", "Ada", "Bob")

    replies = [core.pose(ada, x=float(i)) for i in range(8)]

    assert all(reply == [] for reply in replies)
    assert core.engine.stats.dropped["pose_rate"] == 3
    (tick,) = inbox(core.tick(), bob)
    assert tick["poses"][0]["head"]["pos"][0] == 4.0  # the last pose within the budget


def test_other_messages_over_the_rate_get_rate_limited_at_most_once_a_second() -> None:
    core = CoreDriver(message_rate=1.0, message_burst=2)
    ada = core.greet("Ada")  # hello spent one token
    ping = {"type": "ping", "t": 1.0}

    assert types_for(core.send(ada, ping), ada) == ["pong"]
    assert error_codes(core.send(ada, ping), ada) == ["rate_limited"]
    core.advance(0.5)
    assert inbox(core.send(ada, ping), ada) == []  # dropped, not reported again within the second
    core.advance(0.6)
    assert types_for(core.send(ada, ping), ada) == ["pong"]  # a token came back
    assert error_codes(core.send(ada, ping), ada) == ["rate_limited"]
    assert core.engine.stats.dropped["message_rate"] == 3


def test_staying_over_a_rate_limit_for_5_seconds_closes_4008() -> None:
    core = CoreDriver(pose_rate=10.0, pose_burst=10)
    (ada,) = core.in_room("lobby", "Ada")
    first_drop_at = closed_at = None
    while closed_at is None and core.now - START < 10.0:
        actions = [action for _ in range(5) for action in core.pose(ada)]  # 50 poses/s against a limit of 10
        if first_drop_at is None and core.engine.stats.dropped["pose_rate"]:
            first_drop_at = core.now
        if closes(actions):
            assert closes(actions) == {ada.id: CloseCode.RATE_LIMITED}
            closed_at = core.now
        core.advance(0.1)

    assert first_drop_at is not None and closed_at is not None
    assert 5.0 <= closed_at - first_drop_at <= 5.15


def test_a_pause_in_the_abuse_restarts_the_5_seconds() -> None:
    core = CoreDriver(message_rate=1.0, message_burst=1)
    ada = core.greet("Ada")
    ping = {"type": "ping", "t": 1.0}
    for _ in range(4):  # over the limit for 3 s ...
        core.send(ada, ping)
        core.advance(1.0)
    core.advance(2.0)  # ... then quiet for longer than a second
    for _ in range(4):
        assert closes(core.send(ada, ping) + core.send(ada, ping)) == {}
        core.advance(1.0)


def test_the_sixth_invalid_message_within_60_seconds_closes_1008(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    for _ in range(5):
        actions = core.send(ada, b"not json")
        assert error_codes(actions, ada) == ["bad_json"] and closes(actions) == {}

    actions = core.send(ada, b"not json")
    assert error_codes(actions, ada) == ["bad_json"]
    assert closes(actions) == {ada.id: CloseCode.POLICY_VIOLATION}


def test_invalid_messages_spread_over_time_are_tolerated(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    for _ in range(30):
        assert closes(core.send(ada, b"{}")) == {}
        core.advance(12.0)  # the budget regains one message every 60 s / 5


def test_a_binary_frame_on_a_json_connection_is_unsupported_frame(core: CoreDriver) -> None:
    ada = core.greet("Ada")
    actions = core.engine.receive(ada, b'{"type":"ping","t":1}', core.now, binary=True)
    assert error_codes(actions, ada) == ["unsupported_frame"]
