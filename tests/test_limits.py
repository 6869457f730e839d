"""Every limit of docs/protocol.md "Limits", end to end against a real server with short limits."""

from __future__ import annotations

import asyncio
import time

from websockets.exceptions import ConnectionClosed

from shoal.core.limits import Limits
from shoal.protocol.errors import CloseCode
from support.clients import JsonPeer, greeted_peers, json_peer, raw_socket_peer
from support.servers import RunningServer, StartServer
from support.waiting import wait_until


async def test_a_message_over_the_size_limit_closes_1009_and_one_at_the_limit_is_fine(server: RunningServer) -> None:
    limit = Limits().max_message_bytes
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        envelope = '{"type": "msg", "topic": "big", "data": ""}'
        await ada.send(envelope.replace('""', '"' + "x" * (limit - len(envelope)) + '"'))
        assert len((await bob.expect("msg"))["data"]) == limit - len(envelope)

        await ada.send("x" * (limit + 1))
        assert await ada.expect_close() == CloseCode.MESSAGE_TOO_BIG
        await bob.expect("member_left", id=ada.id)
    assert (await server.stats())["closes"] == {"1009": 1}


async def test_a_full_room_refuses_the_join_and_others_still_get_in_elsewhere(start_server: StartServer) -> None:
    server = await start_server(max_members_per_room=2)
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby"), greeted_peers(server.ws_url, "Cyd") as (cyd,):
        await cyd.send({"type": "join", "room": "lobby"})
        assert await cyd.expect("error") == {
            "type": "error",
            "code": "room_full",
            "message": "room 'lobby' is full",
            "ref": "join",
        }
        assert (await cyd.join("garden"))["room"] == "garden"


async def test_poses_over_the_rate_are_dropped_and_counted_in_api_stats(start_server: StartServer) -> None:
    server = await start_server(pose_rate=10.0, pose_burst=5)
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        started = time.monotonic()
        for step in range(20):
            await ada.pose(x=step * 0.01)
        await ada.send({"type": "ping", "t": 1.0})
        await ada.expect("pong")  # the poses were processed, and none got an answer
        refill = int((time.monotonic() - started) * 10.0) + 1  # tokens the bucket may have regained meanwhile
        assert [m["type"] for m in ada.received] == ["welcome", "joined", "member_joined", "pong"]
        await bob.expect("tick")

    dropped = (await server.stats())["dropped"]
    assert 15 - refill <= dropped["pose_rate"] <= 15  # 20 sent: all but a burst of 5 and what refilled


async def test_staying_over_a_rate_limit_closes_4008(start_server: StartServer) -> None:
    server = await start_server(pose_rate=20.0, pose_burst=5, abuse_close_seconds=0.5)
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        started = time.monotonic()
        while ada.ws.close_code is None and time.monotonic() - started < 3.0:
            try:
                for _ in range(5):
                    await ada.pose()
            except ConnectionClosed:  # the server closed it between two poses: its close code is checked below
                break
            await asyncio.sleep(0.01)
        assert await ada.expect_close() == CloseCode.RATE_LIMITED
        assert 0.5 <= time.monotonic() - started < 2.0
        await bob.expect("member_left", id=ada.id)
    assert (await server.stats())["closes"]["4008"] == 1


async def test_too_many_invalid_messages_close_1008_and_spare_the_others(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        for _ in range(Limits().invalid_burst + 1):
            await ada.send("not json")
        assert await ada.expect_close() == CloseCode.POLICY_VIOLATION
        errors = [m["code"] for m in ada.received if m["type"] == "error"]
        assert errors == ["bad_json"] * (Limits().invalid_burst + 1)

        await bob.expect("member_left", id=ada.id)
        await bob.send({"type": "ping", "t": 3.0})
        assert (await bob.expect("pong"))["t"] == 3.0


async def test_no_hello_within_the_timeout_closes_4000(start_server: StartServer) -> None:
    server = await start_server(hello_timeout=0.2)
    async with json_peer(server.ws_url) as lurker, json_peer(server.ws_url) as greeter:
        await greeter.hello("Ada")
        started = time.monotonic()
        assert await lurker.expect_close(timeout=3.0) == CloseCode.HELLO_TIMEOUT
        assert time.monotonic() - started < 1.0
        await greeter.send({"type": "ping", "t": 1.0})
        await greeter.expect("pong")  # greeted in time: still connected
    assert server.engine.members == {}


async def test_an_unsupported_version_gets_an_error_then_close_4002(server: RunningServer) -> None:
    async with json_peer(server.ws_url) as peer:
        await peer.send({"type": "hello", "v": 2, "name": "Future"})
        assert (await peer.expect("error"))["code"] == "unsupported_version"
        assert await peer.expect_close() == CloseCode.UNSUPPORTED_VERSION


async def fill_socket(server: RunningServer, filler: JsonPeer, target_id: int, above: int) -> None:
    """Have `filler` send 60 KB messages to `target_id` until the server holds more than `above` bytes
    unsent for it (the kernel's socket buffers take the first few MB)."""
    link = server.engine.members[target_id].link
    started = time.monotonic()
    while link.buffered() <= above:
        assert time.monotonic() - started < 5.0, "could not back up the slow consumer's socket"
        await filler.send({"type": "msg", "topic": "fill", "data": "x" * 60_000, "to": target_id})
        await asyncio.sleep(0.002)


async def test_a_slow_consumer_skips_ticks_then_is_closed_4009_while_others_keep_receiving(
    start_server: StartServer,
) -> None:
    server = await start_server(
        tick_rate=50.0, max_congested_seconds=0.5, max_buffer_bytes=256 << 20, message_rate=1e4, message_burst=10_000
    )
    async with (
        greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob),
        raw_socket_peer(server.ws_url, receive_buffer=4096) as slow,
    ):
        slow_id = await slow.greet_and_join("Slow", "lobby")  # from here on it reads nothing
        await fill_socket(server, bob, slow_id, above=server.engine.limits.tick_skip_bytes)

        started = time.monotonic()
        step = 0
        while slow_id in server.engine.members and time.monotonic() - started < 5.0:
            await ada.pose(x=step * 0.001)
            step += 1
            await asyncio.sleep(0.01)
        closed_after = time.monotonic() - started

        await bob.expect("member_left", id=slow_id)
        stats = await server.stats()
        assert stats["closes"] == {"4009": 1}
        assert stats["ticks_skipped"] >= 10
        assert 0.5 <= closed_after < 1.5

        # Bob kept receiving Ada's poses all along, and still does. (Not as many ticks as Slow skipped:
        # Slow is owed a full-state tick on every tick, Bob gets one only when Ada's pose has changed.)
        ticks_for_bob = [m for m in bob.received if m["type"] == "tick"]
        assert len(ticks_for_bob) >= 10
        await ada.pose(x=42.0)
        await bob.receive_until(lambda: bob.latest_poses().get(ada.id) == [42.0, 1.6, 0.0])


async def test_a_slow_consumer_whose_reliable_backlog_overflows_is_closed_4009(start_server: StartServer) -> None:
    server = await start_server(max_buffer_bytes=128 * 1024, message_rate=1e4, message_burst=10_000)
    async with (
        greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob),
        raw_socket_peer(server.ws_url, receive_buffer=4096) as slow,
    ):
        slow_id = await slow.greet_and_join("Slow", "lobby")
        socket_of_slow = server.engine.members[slow_id].link.transport
        started = time.monotonic()
        while slow_id in server.engine.members:
            assert time.monotonic() - started < 5.0, "the slow consumer was never closed"
            await bob.send({"type": "msg", "topic": "fill", "data": "x" * 60_000, "to": slow_id})
            await asyncio.sleep(0.002)

        await ada.expect("member_left", id=slow_id)
        assert (await server.stats())["closes"] == {"4009": 1}
        # it will never answer the close frame: the server aborts the socket after its close timeout
        await wait_until(socket_of_slow.is_closing, timeout=3.0, what="the slow consumer's socket closed")
