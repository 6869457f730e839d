"""End to end against a real server on 127.0.0.1: presence, pose fan-out, liveness, bad input and HTTP.

Clients are `JsonPeer`s built on the independent `websockets` library; every frame they receive is
parsed with a strict JSON parser.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import time

import aiohttp
import pytest

from support.clients import greeted_peers, json_peer, raw_socket_peer
from support.servers import RunningServer, StartServer
from support.waiting import wait_until

# ---- presence and poses --------------------------------------------------------------------------


async def test_presence_and_a_late_joiner_snapshot_with_last_poses(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        await ada.expect("member_joined", member=bob.presence())
        await ada.pose(x=1.0, left={"pos": [-0.3, 1.1, -0.3], "rot": [0, 0, 0, 1]}, t=5.0)
        await bob.pose(x=2.0)
        await bob.expect("tick")

        async with greeted_peers(server.ws_url, "Cyd") as (cyd,):
            joined = await cyd.join("lobby")
            members = {member["name"]: member for member in joined["members"]}
            assert list(members) == ["Ada", "Bob", "Cyd"]
            assert members["Ada"]["pose"] == {
                "id": ada.id,
                "head": {"pos": [1.0, 1.6, 0.0], "rot": [0.0, 0.0, 0.0, 1.0]},
                "left": {"pos": [-0.3, 1.1, -0.3], "rot": [0.0, 0.0, 0.0, 1.0]},
                "t": 5.0,
            }
            assert members["Bob"]["pose"]["head"]["pos"] == [2.0, 1.6, 0.0]
            assert "pose" not in members["Cyd"]
            for peer in (ada, bob):
                await peer.expect("member_joined", member=cyd.presence())

        for peer in (ada, bob):
            await peer.expect("member_left", room="lobby", id=cyd.id)


async def test_three_in_a_room_see_each_others_poses_and_another_room_sees_none(server: RunningServer) -> None:
    async with (
        greeted_peers(server.ws_url, "Ada", "Bob", "Cyd", room="lobby") as lobby,
        greeted_peers(server.ws_url, "Dan", room="garden") as (dan,),
    ):
        for index, peer in enumerate(lobby):
            await peer.pose(x=float(index + 1))

        for peer in lobby:
            others = {other.id: [float(i + 1), 1.6, 0.0] for i, other in enumerate(lobby) if other is not peer}
            await peer.receive_until(lambda peer=peer, others=others: others.items() <= peer.latest_poses().items())
            assert set(peer.latest_poses()) <= {member.id for member in lobby}
        await dan.expect_silence(0.3)
        assert [message["type"] for message in dan.received] == ["welcome", "joined"]


async def test_one_frame_per_receiver_per_tick_whatever_the_number_of_poses(start_server: StartServer) -> None:
    server = await start_server(tick_rate=20.0)
    async with greeted_peers(server.ws_url, "Ada", "Bob", "Cyd", room="lobby") as (ada, bob, cyd):
        sent = 0
        started = time.monotonic()
        while time.monotonic() - started < 0.5:
            for peer in (ada, bob):
                for _ in range(2):
                    await peer.pose(x=sent * 0.001)
                    sent += 1
            await asyncio.sleep(0.005)
        await cyd.receive_for(0.2)

    ticks = [message for message in cyd.received if message["type"] == "tick"]
    per_seq = collections.Counter(tick["seq"] for tick in ticks)
    assert per_seq and max(per_seq.values()) == 1, per_seq
    assert [tick["seq"] for tick in ticks] == sorted(per_seq)
    for tick in ticks:
        ids = [pose["id"] for pose in tick["poses"]]
        assert len(ids) == len(set(ids)) and set(ids) <= {ada.id, bob.id}
    assert len(ticks) <= 0.7 * 20 + 2  # at most one per tick of the ~0.7 s the poses were flowing
    assert sent >= 5 * len(ticks)
    assert server.engine.stats.poses_in == sent


GHOST = """
import sys
from websockets.sync.client import connect

ws = connect(sys.argv[1], subprotocols=["shoal.v1.json"], compression=None, proxy=None)
ws.send('{"type": "hello", "name": "Ghost"}')
ws.send('{"type": "join", "room": "lobby"}')
while '"joined"' not in ws.recv(timeout=5):
    pass
print("joined", flush=True)
sys.stdin.read()
"""


async def test_an_abrupt_disconnect_removes_the_ghost_within_a_second(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", room="lobby") as (ada,):
        ghost = await asyncio.create_subprocess_exec(
            sys.executable, "-c", GHOST, server.ws_url, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert await asyncio.wait_for(ghost.stdout.readline(), 10) == b"joined\n"
            joined = await ada.expect("member_joined")
            ghost.kill()  # SIGKILL: the kernel drops the TCP connection, no close frame is ever sent
            killed_at = time.monotonic()
            await ada.expect("member_left", timeout=1.0, id=joined["member"]["id"])
            assert time.monotonic() - killed_at < 1.0
        finally:
            if ghost.returncode is None:
                ghost.kill()
            await ghost.wait()
    assert server.engine.rooms == {}


async def test_a_silent_peer_that_never_answers_pings_is_removed(start_server: StartServer) -> None:
    server = await start_server(ping_interval=0.3)
    async with (
        greeted_peers(server.ws_url, "Ada", room="lobby") as (ada,),
        raw_socket_peer(server.ws_url) as silent,
    ):
        silent_id = await silent.greet_and_join("Silent", "lobby")
        joined_at = time.monotonic()  # from here on it reads nothing, so it answers no ping
        await ada.expect("member_left", timeout=3.0, id=silent_id)
        assert time.monotonic() - joined_at < 0.3 * 1.5 + 0.5
        assert silent_id not in server.engine.members


# ---- application messages and clock sync ------------------------------------------------------------


async def test_msg_is_relayed_at_once_with_the_server_stamped_sender(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", "Bob", "Cyd", room="lobby") as (ada, bob, cyd):
        await ada.send({"type": "msg", "topic": "chat", "data": {"text": "hello there"}})
        for peer in (bob, cyd):
            assert await peer.expect("msg") == {
                "type": "msg",
                "topic": "chat",
                "from": ada.id,
                "data": {"text": "hello there"},
            }
        await ada.send({"type": "msg", "topic": "wave", "to": cyd.id})
        assert await cyd.expect("msg", topic="wave") == {"type": "msg", "topic": "wave", "from": ada.id, "to": cyd.id}
        await ada.send({"type": "ping", "t": 1.0})
        await ada.expect("pong")
        assert [m for m in ada.received if m["type"] == "msg"] == []
        await bob.expect_silence(0.1, ignoring=("member_joined",))


async def test_ping_echoes_the_client_time_with_the_server_clock(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada") as (ada,):
        sent = time.time() * 1000.0
        await ada.send({"type": "ping", "t": sent})
        pong = await ada.expect("pong")
        received = time.time() * 1000.0
        assert pong["t"] == sent
        assert sent <= pong["server_time"] <= received


# ---- bad input -----------------------------------------------------------------------------------

BAD_INPUTS = {
    "invalid JSON": ('{"type": "msg", "topic": "x"', "bad_json"),
    "invalid UTF-8": (b'{"type": "msg", "topic": "x", "data": "\xff\xfe"}', "bad_json"),
    "unknown type": ({"type": "teleport", "to": [0, 0, 0]}, "unknown_type"),
    "no type": ({"topic": "chat"}, "unknown_type"),
    "wrong field type": ({"type": "join", "room": 5}, "invalid_message"),
    "missing field": ({"type": "msg", "data": "no topic"}, "invalid_message"),
    "unknown field": ({"type": "msg", "topic": "chat", "from": 1}, "invalid_message"),
    "binary frame": (b'{"type": "ping", "t": 1}', "unsupported_frame"),
    "deeply nested JSON": ('{"type": "msg", "topic": "x", "data": ' + "[" * 5000 + "]" * 5000 + "}", "invalid_message"),
    "NaN": ('{"type": "pose", "head": {"pos": [NaN, 0, 0], "rot": [0, 0, 0, 1]}}', "bad_json"),
    "Infinity": ('{"type": "ping", "t": Infinity}', "bad_json"),
    "overflowing number": ('{"type": "pose", "head": {"pos": [1e400, 0, 0], "rot": [0, 0, 0, 1]}}', "invalid_message"),
    "out of range": ({"type": "pose", "head": {"pos": [0, 1e5, 0], "rot": [0, 0, 0, 1]}}, "invalid_message"),
    "zero quaternion": ({"type": "pose", "head": {"pos": [0, 1, 0], "rot": [0, 0, 0, 0]}}, "invalid_message"),
    "not an object": ("[1, 2, 3]", "invalid_message"),
}


@pytest.mark.parametrize(("payload", "code"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
async def test_bad_input_gets_its_error_and_never_reaches_another_member(
    server: RunningServer, payload: object, code: str
) -> None:
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        await bob.pose(x=1.0)
        invalid_utf8 = isinstance(payload, bytes) and code == "bad_json"
        await ada.send(payload, text=True if invalid_utf8 else None)

        error = await ada.expect("error")
        assert error["code"] == code, error
        assert error["message"]

        # Ada's next message overtakes nothing: Bob's next relayed frame from Ada is this one.
        await ada.send({"type": "msg", "topic": "after"})
        relayed = await bob.expect("msg")
        assert relayed == {"type": "msg", "topic": "after", "from": ada.id}
        assert [m["type"] for m in bob.received if m["type"] != "tick"] == ["welcome", "joined", "msg"]
        assert ada.id not in bob.latest_poses()

        await ada.send({"type": "ping", "t": 2.0})  # the sender itself is still served
        assert (await ada.expect("pong"))["t"] == 2.0
    assert server.engine.stats.invalid_messages == 1


async def test_every_frame_is_strict_json_even_at_the_numeric_limits(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        await ada.send(
            {
                "type": "pose",
                "head": {"pos": [10_000.0, -10_000.0, 5e-324], "rot": [1e6, 1e6, 1e6, 1e6]},
                "right": {"pos": [-0.0, 0.0, 1e-300], "rot": [0.0, 0.0, 1e-3, 0.0]},
                "t": 999_999_999_999_999.0,
            }
        )
        extremes = [1.7976931348623157e308, -1.7976931348623157e308, 5e-324, -0.0, 2**53 + 1, -(2**63)]
        await ada.send({"type": "msg", "topic": "numbers", "data": extremes})

        (pose,) = (await bob.expect("tick"))["poses"]
        assert pose["head"]["rot"] == pytest.approx([0.5, 0.5, 0.5, 0.5])
        assert pose["right"]["rot"] == pytest.approx([0.0, 0.0, 1.0, 0.0])
        assert pose["t"] == 999_999_999_999_999.0
        assert (await bob.expect("msg"))["data"] == extremes  # every one parsed by the strict parser


# ---- HTTP ----------------------------------------------------------------------------------------


async def test_the_root_serves_an_html_page(server: RunningServer) -> None:
    status, page = await server.get("/")
    assert status == 200
    assert page.lstrip().lower().startswith("<!doctype html>")


async def test_healthz_reports_ok_version_uptime_and_counts(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby"):
        status, health = await server.get("/healthz")
    assert status == 200
    assert health["status"] == "ok" and health["version"] == "0.1.0"
    assert health["uptime_s"] >= 0
    assert (health["members"], health["rooms"]) == (2, 1)


async def test_api_rooms_lists_live_rooms_largest_first(server: RunningServer) -> None:
    assert await server.get("/api/rooms") == (200, {"rooms": []})
    async with (
        greeted_peers(server.ws_url, "Ada", room="small"),
        greeted_peers(server.ws_url, "Bob", "Cyd", room="big"),
    ):
        status, body = await server.get("/api/rooms")
    assert status == 200
    assert body == {
        "rooms": [
            {"name": "big", "members": 2, "tick_rate": 20.0},
            {"name": "small", "members": 1, "tick_rate": 20.0},
        ]
    }
    await wait_until(lambda: not server.engine.rooms, what="rooms emptied")
    assert await server.get("/api/rooms") == (200, {"rooms": []})


async def test_api_stats_counts_frames_poses_and_closes(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", "Bob", room="lobby") as (ada, bob):
        await ada.pose()
        await bob.expect("tick")
        await ada.send("nope")
        await ada.expect("error")
    stats = await server.stats()
    assert stats["connections"] == 2
    assert stats["frames_in"] == 6  # 2 hellos, 2 joins, 1 pose, 1 bad frame
    assert stats["poses_in"] == 1 and stats["invalid_messages"] == 1
    assert stats["ticks_sent"] == 1 and stats["frames_out"] >= 6
    assert {"dropped", "closes", "ticks_skipped", "bytes_out"} <= stats.keys()


async def test_a_plain_get_on_the_websocket_endpoint_is_426_with_a_json_body(server: RunningServer) -> None:
    status, body = await server.get("/ws")
    assert status == 426
    assert body["error"]["status"] == 426 and body["error"]["message"]


async def test_an_unknown_path_is_404_with_a_json_body(server: RunningServer) -> None:
    assert await server.get("/no/such/page") == (404, {"error": {"status": 404, "message": "Not Found"}})


async def test_a_client_offering_no_subprotocol_is_served_json(server: RunningServer) -> None:
    async with json_peer(server.ws_url, subprotocol=False) as peer:
        assert peer.ws.subprotocol is None
        welcome = await peer.hello("Ada")
        assert welcome["v"] == 1


async def test_a_body_over_the_size_limit_is_413_saying_the_limit(server: RunningServer) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(server.url + "/api/auth/register", data=b"x" * (2 * 1024 * 1024))
        body = await response.json()
    assert response.status == 413
    assert body["error"]["status"] == 413 and "Maximum request body size" in body["error"]["message"]
