"""Interest management: near poses every tick, far ones every `far_every`-th tick, entities for everyone,
each pose encoded once per codec however many frames carry it; the grid against brute force; a real server."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from shoal.client import ShoalClient
from shoal.core.actions import Send
from shoal.core.interest import Interest, SpatialGrid
from shoal.core.member import Member
from shoal.protocol.codec import JsonCodec, PoseSource
from shoal.protocol.messages import MemberPose, Tick, Transform
from support.core import CoreDriver, inbox
from support.servers import StartServer

IDENTITY = (0.0, 0.0, 0.0, 1.0)


@pytest.fixture
def core() -> CoreDriver:
    driver = CoreDriver()
    driver.engine.interest = Interest(radius=5.0, far_every=4)
    return driver


def poses_seen(actions: list, member: Member) -> dict[int, float]:
    """Sender id -> head x of the poses `member` receives in `actions` (its own skipped)."""
    seen = {}
    for message in inbox(actions, member):
        if message["type"] == "tick":
            for pose in message["poses"]:
                if pose["id"] != member.id:
                    seen[pose["id"]] = pose["head"]["pos"][0]
    return seen


def tick_until_far(core: CoreDriver, moving: dict[Member, float]) -> list[list]:
    """Tick with every member in `moving` posing each tick (x = its value + 0.001 * step) until a far tick
    (`room._ticks % far_every == 0`) has happened; return each tick's actions."""
    room = core.engine.rooms["lobby"]
    rounds = []
    for step in range(1, 9):
        for member, x in moving.items():
            core.pose(member, x=x + 0.001 * step)
        rounds.append(core.tick())
        core.advance(0.001)
        if room._ticks % room.interest.far_every == 0:  # type: ignore[union-attr]
            return rounds
    raise AssertionError("no far tick in 8 ticks")


def test_near_poses_every_tick_and_far_ones_only_on_far_ticks(core: CoreDriver) -> None:
    ada, bob, cyd = core.in_room("lobby", "Ada", "Bob", "Cyd")
    rounds = tick_until_far(core, {ada: 0.0, bob: 3.0, cyd: 50.0})

    *near_ticks, far_tick = rounds
    for actions in near_ticks:
        assert set(poses_seen(actions, ada)) == {bob.id}
        assert set(poses_seen(actions, bob)) == {ada.id}
        assert inbox(actions, cyd) == []  # nobody within 5 m of Cyd
    assert set(poses_seen(far_tick, ada)) == {bob.id, cyd.id}
    assert set(poses_seen(far_tick, cyd)) == {ada.id, bob.id}
    far_sends = [a for a in far_tick if isinstance(a, Send)]
    assert len(far_sends) == 1 and set(far_sends[0].recipients) == {ada, bob, cyd}  # one frame for all


def test_a_far_tick_carries_the_latest_pose_since_the_previous_far_tick(core: CoreDriver) -> None:
    ada, cyd = core.in_room("lobby", "Ada", "Cyd")
    tick_until_far(core, {ada: 0.0, cyd: 50.0})  # align on a far tick
    core.pose(cyd, x=51.0)
    core.tick()
    core.pose(cyd, x=52.0)  # and then Cyd stands still
    rounds = [core.tick() for _ in range(3)]
    ada_sees = [poses_seen(actions, ada) for actions in rounds]
    assert ada_sees[:2] == [{}, {}]
    assert ada_sees[2] == {cyd.id: 52.0}


def test_a_member_without_a_pose_gets_the_far_tier_only(core: CoreDriver) -> None:
    ada, bob, newcomer = core.in_room("lobby", "Ada", "Bob", "New")
    *near_ticks, far_tick = tick_until_far(core, {ada: 0.0, bob: 1.0})
    assert all(inbox(actions, newcomer) == [] for actions in near_ticks)
    assert set(poses_seen(far_tick, newcomer)) == {ada.id, bob.id}


def test_entity_changes_reach_everyone_every_tick_whatever_the_distance(core: CoreDriver) -> None:
    ada, cyd = core.in_room("lobby", "Ada", "Cyd")
    tick_until_far(core, {ada: 0.0, cyd: 50.0})
    core.pose(ada, x=0.5)
    core.pose(cyd, x=50.5)
    core.send(ada, {"type": "entity_create", "id": "ball", "kind": "ball"})
    actions = core.tick()
    (tick,) = inbox(actions, cyd)
    assert [entity["id"] for entity in tick["entities"]] == ["ball"] and tick["poses"] == []


class CountingJson(JsonCodec):
    def __init__(self) -> None:
        super().__init__()
        self.entries_encoded = 0

    def pose_entry(self, sender: PoseSource, tick_t: float) -> bytes:
        self.entries_encoded += 1
        return super().pose_entry(sender, tick_t)


def test_each_pose_is_encoded_once_per_tick_and_neighbours_alike_share_a_frame(core: CoreDriver) -> None:
    counting = CountingJson()
    members = []
    for index in range(40):  # four clusters of ten, 100 m apart
        member = core.engine.connect(counting, core.now)
        core.engine.receive(member, b'{"type":"hello","name":"M%d"}' % index, core.now)
        core.engine.receive(member, b'{"type":"join","room":"lobby"}', core.now)
        members.append(member)
    room = core.engine.rooms["lobby"]
    while (room._ticks + 1) % 4 == 0:  # the next tick is a near tick
        core.tick()
        core.advance(0.001)
    for index, member in enumerate(members):
        cluster = index // 10
        core.pose(member, x=100.0 * cluster)  # the ten of a cluster stand on the same spot

    sends = [a for a in core.tick() if isinstance(a, Send)]
    assert counting.entries_encoded == 40  # not 40 x 9
    assert len(sends) == 40  # each member's frame leaves out its own pose: one per member
    for send in sends:
        (receiver,) = send.recipients
        tick = inbox([send], receiver)[0]
        cluster = members.index(receiver) // 10
        expected = {m.id for m in members[cluster * 10 : cluster * 10 + 10]} - {receiver.id}
        assert {pose["id"] for pose in tick["poses"]} == expected


def test_without_a_pose_change_members_who_share_neighbours_share_one_frame(core: CoreDriver) -> None:
    ada, bob, cyd, dan = core.in_room("lobby", "Ada", "Bob", "Cyd", "Dan")
    room = core.engine.rooms["lobby"]
    while (room._ticks + 1) % 4 == 0:
        core.tick()
        core.advance(0.001)
    core.pose(ada, x=0.0)
    core.pose(bob, x=50.0)
    core.pose(cyd, x=51.0)
    core.pose(dan, x=51.5)
    core.tick()  # everyone has a position now
    core.advance(0.001)
    while (room._ticks + 1) % 4 == 0:
        core.tick()
        core.advance(0.001)
    core.pose(ada, x=0.5)  # only Ada moves: Bob, Cyd and Dan are 50 m away
    core.pose(bob, x=50.2)  # Bob moves: Cyd and Dan share the frame with Bob's pose
    sends = [a for a in core.tick() if isinstance(a, Send)]
    shared = [s for s in sends if len(s.recipients) > 1]
    assert len(shared) == 1 and set(shared[0].recipients) == {cyd, dan}


def member_at(member_id: int, x: float, y: float, z: float) -> Member:
    member = Member.__new__(Member)
    member.id = member_id
    member.set_pose(MemberPose(id=member_id, head=Transform((x, y, z), IDENTITY)))
    return member


@pytest.mark.parametrize("radius", [0.5, 3.0, 40.0])
def test_the_grid_finds_exactly_the_members_within_the_radius(radius: float) -> None:
    rng = random.Random(radius)
    members = [member_at(i, rng.uniform(-60, 60), rng.uniform(-3, 3), rng.uniform(-60, 60)) for i in range(400)]
    grid = SpatialGrid(radius, members)
    for receiver in members[:80]:
        rx, ry, rz = receiver.pose.head.pos  # type: ignore[union-attr]
        brute = {
            m.id
            for m in members
            if m is not receiver and math.dist(m.pose.head.pos, (rx, ry, rz)) <= radius  # type: ignore[union-attr]
        }
        assert {m.id for m in grid.near(receiver)} == brute


def test_interest_settings_are_checked() -> None:
    for bad in ({"radius": 0.0}, {"radius": -1.0}, {"radius": float("nan")}, {"radius": 5.0, "far_every": 0}):
        with pytest.raises(ValueError):
            Interest(**bad)


async def test_a_server_with_an_interest_radius_sends_far_poses_at_the_slower_rate(start_server: StartServer) -> None:
    server = await start_server(tick_rate=40.0, interest=Interest(radius=10.0, far_every=4))
    async with (
        await ShoalClient.connect(server.ws_url, name="Near", binary=True) as near,
        await ShoalClient.connect(server.ws_url, name="Also near") as also_near,
        await ShoalClient.connect(server.ws_url, name="Far", binary=True) as far,
    ):
        for client in (near, also_near, far):
            await client.join("plaza")
        await also_near.send_pose(head=((1.0, 1.6, 0.0), IDENTITY))  # it stands still, within 10 m of Near
        counts = {near.id: 0, far.id: 0}

        async def count_poses() -> None:
            async for event in also_near:
                if isinstance(event, Tick):
                    for pose in event.poses:
                        if pose.id in counts:
                            counts[pose.id] += 1

        reader = asyncio.get_running_loop().create_task(count_poses())
        for step in range(60):  # 1.5 s at 40 Hz
            await near.send_pose(head=((0.001 * step, 1.6, 0.0), IDENTITY))
            await far.send_pose(head=((100.0 + 0.001 * step, 1.6, 0.0), IDENTITY))
            await asyncio.sleep(1 / 40)
        await asyncio.sleep(0.2)
        reader.cancel()
        # Near moved in (nearly) every tick and reached Also near each time; Far only every 4th tick
        assert counts[near.id] >= 20, counts
        assert 0 < counts[far.id] <= counts[near.id] / 2.5, counts
