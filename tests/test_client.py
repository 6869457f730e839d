"""The Python client SDK (`shoal.client.ShoalClient`) against a real server."""

from __future__ import annotations

import gc

import aiohttp
import pytest

from shoal.client import ConnectionClosed, ShoalClient, ShoalError
from shoal.protocol.errors import CloseCode
from shoal.protocol.messages import Joined, Left, MemberJoined, MemberLeft, Relay, Tick, Transform
from support.servers import RunningServer, StartServer
from support.waiting import wait_until

HEAD = ((0.0, 1.6, 0.0), (0.0, 0.0, 0.0, 1.0))


async def test_connect_greets_and_keeps_the_welcome(server: RunningServer) -> None:
    async with await ShoalClient.connect(server.ws_url, name="Ada", color="#3cb44b") as ada:
        assert ada.welcome is not None and ada.id == ada.welcome.id
        assert ada.welcome.server["name"] == "shoal"
        member = server.engine.members[ada.id]
        assert (member.name, member.color) == ("Ada", "#3cb44b")
    await wait_until(lambda: not server.engine.members, what="the member to be gone after close")
    assert ada.closed


async def test_join_returns_the_snapshot_and_leave_returns_left(server: RunningServer) -> None:
    async with (
        await ShoalClient.connect(server.ws_url, name="Ada") as ada,
        await ShoalClient.connect(server.ws_url, name="Bob") as bob,
    ):
        await ada.join("lobby")
        joined = await bob.join("lobby")
        assert isinstance(joined, Joined) and bob.room == "lobby"
        assert [m.name for m in joined.members] == ["Ada", "Bob"]
        assert (await ada.expect(MemberJoined)).member.id == bob.id

        assert await bob.leave() == Left(room="lobby")
        assert bob.room is None
        assert (await ada.expect(MemberLeft)).id == bob.id


async def test_send_pose_reaches_the_others_in_a_tick(server: RunningServer) -> None:
    async with (
        await ShoalClient.connect(server.ws_url, name="Ada") as ada,
        await ShoalClient.connect(server.ws_url, name="Bob") as bob,
    ):
        await ada.join("lobby")
        await bob.join("lobby")
        right = Transform((0.3, 1.1, -0.3), (0.0, 0.0, 0.0, 2.0))
        await ada.send_pose(head=HEAD, left=((-0.3, 1.1, -0.3), (0, 0, 0, 1)), right=right, t=12.5)

        tick = await bob.expect(Tick, match=lambda tick: any(p.id == ada.id for p in tick.poses))
        (pose,) = tick.poses
        assert pose.head == Transform(*HEAD)
        assert pose.left == Transform((-0.3, 1.1, -0.3), (0.0, 0.0, 0.0, 1.0))
        assert pose.right == Transform((0.3, 1.1, -0.3), (0.0, 0.0, 0.0, 1.0))  # normalised by the server
        assert pose.t == 12.5


async def test_send_reaches_the_room_or_one_member(server: RunningServer) -> None:
    async with (
        await ShoalClient.connect(server.ws_url, name="Ada") as ada,
        await ShoalClient.connect(server.ws_url, name="Bob") as bob,
        await ShoalClient.connect(server.ws_url, name="Cyd") as cyd,
    ):
        for client in (ada, bob, cyd):
            await client.join("lobby")
        await ada.send("chat", {"text": "hi"})
        for client in (bob, cyd):
            assert await client.expect(Relay) == Relay(topic="chat", sender=ada.id, data={"text": "hi"})

        await ada.send("wave", to=cyd.id)
        assert await cyd.expect(Relay) == Relay(topic="wave", sender=ada.id, to=cyd.id)
        with pytest.raises(TimeoutError):
            await bob.expect(Relay, timeout=0.2)


async def test_ping_measures_round_trip_and_clock_offset(server: RunningServer) -> None:
    async with await ShoalClient.connect(server.ws_url, name="Ada") as ada:
        rtt, offset = await ada.ping()
    assert 0 <= rtt < 1000
    assert abs(offset) <= rtt / 2 + 5  # same machine, same clock


async def test_a_refused_request_raises_shoal_error(start_server: StartServer) -> None:
    server = await start_server(max_members_per_room=1)
    async with (
        await ShoalClient.connect(server.ws_url, name="Ada") as ada,
        await ShoalClient.connect(server.ws_url, name="Bob") as bob,
    ):
        await ada.join("lobby")
        with pytest.raises(ShoalError) as refused:
            await bob.join("lobby")
        assert refused.value.code == "room_full"
        assert bob.room is None


async def test_expect_keeps_what_it_skips_for_recv_in_order(server: RunningServer) -> None:
    async with (
        await ShoalClient.connect(server.ws_url, name="Ada") as ada,
        await ShoalClient.connect(server.ws_url, name="Bob") as bob,
    ):
        await ada.join("lobby")
        await bob.join("lobby")
        await bob.send("first")
        await bob.send("second")
        await ada.ping()  # waits for the pong, keeping what came before it

        assert isinstance(await ada.recv(timeout=1), MemberJoined)
        assert [(await ada.recv(timeout=1)).topic for _ in range(2)] == ["first", "second"]


async def test_iteration_yields_events_and_ends_when_the_server_closes(server: RunningServer) -> None:
    async with await ShoalClient.connect(server.ws_url, name="Ada") as ada:
        for _ in range(6):
            await ada.send_raw({"type": "teleport"})
        codes = [event.code async for event in ada]
        assert codes == ["unknown_type"] * 6
        assert ada.close_code == CloseCode.POLICY_VIOLATION
        with pytest.raises(ConnectionClosed):
            await ada.recv(timeout=1)


async def test_connecting_to_a_wrong_path_fails_without_leaking_a_session(server: RunningServer) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
        await ShoalClient.connect(server.url + "/nowhere", name="Ada")
    assert failure.value.status == 404
    gc.collect()
    assert [obj for obj in gc.get_objects() if isinstance(obj, aiohttp.ClientSession) and not obj.closed] == []
