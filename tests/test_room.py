"""The room's tick without a socket: batching, coalescing, sequence numbers, full state and time."""

from __future__ import annotations

import pytest

from shoal.core.actions import Send
from support.core import CoreDriver, inbox, types_for


@pytest.fixture
def core() -> CoreDriver:
    return CoreDriver()


def test_latest_pose_within_a_tick_wins(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    for x in (1.0, 2.0, 3.0):
        core.pose(ada, x=x)

    (tick,) = inbox(core.tick(), bob)
    assert [(p["id"], p["head"]["pos"][0]) for p in tick["poses"]] == [(ada.id, 3.0)]
    assert core.engine.rooms["lobby"].coalesced == 2


def test_a_tick_holds_every_member_that_moved_once(core: CoreDriver) -> None:
    ada, bob, cyd = core.in_room("lobby", "Ada", "Bob", "Cyd")
    core.pose(ada, x=1.0)
    core.pose(bob, x=2.0)
    core.pose(ada, x=3.0)

    actions = core.tick()
    (tick,) = inbox(actions, cyd)
    assert sorted((p["id"], p["head"]["pos"][0]) for p in tick["poses"]) == [(ada.id, 3.0), (bob.id, 2.0)]
    assert inbox(actions, ada) == inbox(actions, bob) == [tick]  # each sees its own pose too, and skips it


def test_tick_seq_strictly_increases(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    seqs = []
    for step in range(5):
        core.pose(ada, x=float(step))
        (tick,) = inbox(core.tick(), bob)
        seqs.append(tick["seq"])
    assert seqs == sorted(set(seqs)) and len(seqs) == 5
    times = []
    for step in range(3):
        core.pose(ada, x=float(step))
        times.append(inbox(core.tick(), bob)[0]["t"])
    assert times == sorted(set(times))


def test_a_room_with_nothing_new_sends_nothing(core: CoreDriver) -> None:
    ada, _ = core.in_room("lobby", "Ada", "Bob")
    core.pose(ada)
    assert core.tick() != []
    room = core.engine.rooms["lobby"]
    seq = room.seq

    for _ in range(5):
        assert core.tick() == []
    assert room.seq == seq


def test_a_member_whose_own_pose_is_the_only_change_gets_nothing(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    core.pose(ada)

    actions = core.tick()
    assert types_for(actions, bob) == ["tick"]
    assert inbox(actions, ada) == []


def test_one_send_per_codec_per_tick_with_the_same_bytes_for_all(core: CoreDriver) -> None:
    members = core.in_room("lobby", *(f"M{i}" for i in range(10)))
    for index, member in enumerate(members):
        core.pose(member, x=float(index))

    actions = core.tick()
    (send,) = actions
    assert isinstance(send, Send)
    assert set(send.recipients) == set(members)
    assert send.droppable and not send.binary
    assert len(inbox(actions, members[0])[0]["poses"]) == 10


def test_needs_full_state_gives_the_full_pose_set(core: CoreDriver) -> None:
    ada, bob, cyd = core.in_room("lobby", "Ada", "Bob", "Cyd")
    core.pose(ada, x=1.0)
    core.pose(bob, x=2.0)
    core.tick()

    cyd.needs_full_state = True  # what the transport sets when it skipped a tick for cyd
    core.pose(ada, x=5.0)
    actions = core.tick()

    (delta,) = inbox(actions, bob)
    (full,) = inbox(actions, cyd)
    assert [p["id"] for p in delta["poses"]] == [ada.id]
    assert sorted((p["id"], p["head"]["pos"][0]) for p in full["poses"]) == [(ada.id, 5.0), (bob.id, 2.0)]
    assert delta["seq"] == full["seq"]
    assert not cyd.needs_full_state


def test_full_state_is_sent_even_when_nothing_moved(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    core.pose(ada, x=1.0)
    core.tick()
    bob.needs_full_state = True

    actions = core.tick()
    assert inbox(actions, ada) == []
    (full,) = inbox(actions, bob)
    assert [p["id"] for p in full["poses"]] == [ada.id]


def test_a_pending_pose_of_a_member_who_left_is_forgotten(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    core.pose(ada)
    core.engine.disconnect(ada, core.now)

    assert inbox(core.tick(), bob) == []
    cyd = core.greet("Cyd")
    (joined,) = inbox(core.join(cyd), cyd)
    assert [m["name"] for m in joined["members"]] == ["Bob", "Cyd"]


def test_ticks_fall_on_multiples_of_the_interval() -> None:
    core = CoreDriver(tick_rate=10.0)
    core.advance(0.037)
    ada, _ = core.in_room("lobby", "Ada", "Bob")

    core.pose(ada)
    _, deadline = core.engine.tick(core.now)
    assert round(deadline * 10) == pytest.approx(deadline * 10, abs=1e-3)
    assert 0 < deadline - core.now <= 0.1 + 1e-6


def test_a_room_that_fell_behind_skips_missed_ticks_instead_of_bursting(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    core.pose(ada)
    core.advance(1.0)  # twenty ticks late

    actions, deadline = core.engine.tick(core.now)
    assert len(inbox(actions, bob)) == 1
    assert core.engine.tick(core.now)[0] == []
    assert 0 < deadline - core.now <= 0.05 + 1e-6


def test_wall_clock_going_backwards_does_not_stall_ticks(core: CoreDriver) -> None:
    ada, bob = core.in_room("lobby", "Ada", "Bob")
    core.pose(ada, x=1.0)
    core.tick()

    core.advance(-3600.0)  # the wall clock was set back an hour
    core.pose(ada, x=2.0)
    actions, deadline = core.engine.tick(core.now)
    if not actions:  # realigned: the next tick is due within one interval, not in an hour
        assert deadline - core.now <= 0.05 + 1e-6
        core.advance(deadline - core.now)
        actions, _ = core.engine.tick(core.now)
    (tick,) = inbox(actions, bob)
    assert tick["poses"][0]["head"]["pos"][0] == 2.0

    core.pose(ada, x=3.0)
    (tick,) = inbox(core.tick(), bob)
    assert tick["poses"][0]["head"]["pos"][0] == 3.0


def test_an_idle_engine_asks_to_be_woken_within_one_tick(core: CoreDriver) -> None:
    """A room created while the transport sleeps must get its first tick on time."""
    _, deadline = core.engine.tick(core.now + 0.013)
    assert 0 < deadline - (core.now + 0.013) <= 0.05 + 1e-6
