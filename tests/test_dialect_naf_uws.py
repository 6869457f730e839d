"""NAF's `uws` adapter against a real server: golden transcripts of what NAF 0.14's client sends and reads,
the flaws of NAF's server replayed as attacks, and persistent entities across a `kill -9`."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

import aiohttp
from websockets.asyncio.client import connect

from support.naf import naf_entity, uws_peers
from support.servers import RunningServer, ServerProcess, StartServer, running_server_process


def naf_url(server: RunningServer | ServerProcess) -> str:
    return f"ws://127.0.0.1:{server.port}/naf"


# ---- golden transcripts ------------------------------------------------------------------------------------


async def test_join_transcript(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 2, room=None) as (a, b):
        await a.emit("joinRoom", {"room": "basic"})
        event, success = await a.next()
        assert event == "connectSuccess"
        assert success["socketId"].isdigit() and 0 <= int(success["socketId"]) < 2**32
        assert success["room"] == "basic" and isinstance(success["joinedTime"], int)
        assert abs(success["joinedTime"] - time.time() * 1000) < 5000
        assert await a.next() == ("occupantsChanged", {"occupants": {success["socketId"]: success["joinedTime"]}})

        await b.join("basic")
        _, changed = await a.next()
        assert set(changed["occupants"]) == {a_id := success["socketId"], b.id}
        await b.ws.close()
        assert await a.next() == ("occupantsChanged", {"occupants": {a_id: success["joinedTime"]}})


async def test_broadcast_and_send_transcript(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 3) as (a, b, c):
        avatar = naf_entity(a.id)
        update = {"d": [{**avatar, "isFirstSync": False, "components": {"0": {"x": 1, "y": 1.6, "z": 0}}}]}
        await a.emit("broadcast", {"from": a.id, "type": "u", "data": avatar})
        await a.emit("broadcast", {"from": a.id, "type": "um", "data": update})
        for peer in (b, c):
            assert (await peer.next())[1]["type"] == "u"
            event, packet = await peer.next()
            assert event == "broadcast" and packet["from"] == a.id and packet["type"] == "um"
            assert packet["data"]["d"][0]["networkId"] == "av1"
        await a.silent()  # no echo (F10): NAF's uWS server echoed, the socket.io server never did

        await a.emit("send", {"from": a.id, "to": b.id, "type": "chat", "data": {"text": "psst"}})
        assert await b.next() == ("send", {"from": a.id, "type": "chat", "data": {"text": "psst"}})  # no `to`
        await c.silent()


async def test_binary_frames_are_read_as_json_like_nafs_server(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 1, room=None) as (a,):
        await a.ws.send(json.dumps({"event": "joinRoom", "data": {"room": "bin"}}).encode())
        assert (await a.next())[0] == "connectSuccess"


async def test_the_page_host_answers_head_with_a_date(server: RunningServer) -> None:
    """NAF's clock sync: `fetch(location.href, {method: "HEAD"})`, then `Date` (protocols.md §2.2)."""
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/examples/naf/", "/examples/naf/index.html"):
            async with session.head(server.url + path) as response:
                assert response.status == 200, path
                served = time.mktime(time.strptime(response.headers["Date"], "%a, %d %b %Y %H:%M:%S GMT"))
                assert abs(served - time.mktime(time.gmtime())) < 5, path


# ---- the flaws of NAF's servers, replayed --------------------------------------------------------------------


async def test_a_spoofed_from_is_replaced_by_the_senders_id_f1(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 2) as (a, b):
        await a.emit("broadcast", {"from": b.id, "type": "chat", "data": "it was b"})
        assert (await b.next())[1]["from"] == a.id


async def test_send_to_a_client_in_another_room_reaches_nobody_f3(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 1, room="r1") as (victim,), uws_peers(naf_url(server), 1, room="r2") as (a,):
        for target in (victim.id, "r1"):
            await a.emit("send", {"from": victim.id, "to": target, "type": "chat", "data": "cross-room"})
        await victim.silent()


async def test_a_room_named_after_a_client_id_reaches_nothing_of_it_f4(server: RunningServer) -> None:
    async with (
        uws_peers(naf_url(server), 2, room="lobby") as (victim, friend),
        uws_peers(naf_url(server), 1, room=None) as (attacker,),
    ):
        await attacker.join(victim.id)
        await friend.emit("send", {"from": friend.id, "to": victim.id, "type": "chat", "data": "private"})
        assert (await victim.next())[1]["data"] == "private"
        await attacker.silent()


async def test_a_second_join_leaves_no_ghost_f5(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 2, room="first") as (a, b):
        await b.emit("joinRoom", {"room": "first"})  # the same room: nothing happens
        await b.silent()
        await b.emit("joinRoom", {"room": "second"})
        assert (await b.next())[0] == "connectSuccess"
        assert (await a.next())[1]["occupants"].keys() == {a.id}
    status, body = await server.get("/api/naf/rooms")
    assert status == 200 and body["rooms"] == []


async def test_null_or_missing_payloads_are_an_error_for_that_client_only_f6(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 2) as (a, b):
        await a.emit("joinRoom")
        await a.emit("send", None)
        await a.ws.send("{not json")
        for _ in range(3):
            assert (await a.next())[0] == "error"
        await b.silent()
        await b.emit("broadcast", {"type": "chat", "data": "the server is fine"})
        assert (await a.next())[1]["data"] == "the server is fine"


async def test_a_client_that_keeps_sending_garbage_is_closed_1000_so_naf_does_not_reconnect(
    server: RunningServer,
) -> None:
    async with uws_peers(naf_url(server), 2) as (a, b):
        for _ in range(10):
            await a.ws.send("garbage")
        code, reason = await a.close_code()
        assert code == 1000 and "invalid" in reason
        assert (await b.next())[1]["occupants"].keys() == {b.id}


async def test_a_message_over_64_kib_closes_1009(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 2) as (a, b):
        await a.emit("broadcast", {"type": "chat", "data": "x" * 70_000})
        assert (await a.close_code())[0] == 1009
        assert (await b.next())[0] == "occupantsChanged"


async def test_a_full_room_overflows_to_a_told_instance_f8(start_server: StartServer) -> None:
    server = await start_server(naf_room_capacity=2)
    async with uws_peers(naf_url(server), 2) as _, uws_peers(naf_url(server), 1, room=None) as (third,):
        success = await third.join("basic")
        assert success["room"] == "basic--2"


# ---- shadow state ------------------------------------------------------------------------------------------


async def test_a_late_joiner_gets_the_room_state_from_the_server(server: RunningServer) -> None:
    async with uws_peers(naf_url(server), 1) as (a,):
        avatar = naf_entity(a.id)
        await a.emit("broadcast", {"type": "u", "data": avatar})
        moved = {**avatar, "isFirstSync": False, "components": {"0": {"x": 4, "y": 1.6, "z": -2}}}
        await a.emit("broadcast", {"type": "um", "data": {"d": [moved]}})
        await asyncio.sleep(0.1)
        async with uws_peers(naf_url(server), 1, room=None) as (late,):
            await late.join("basic")
            event, packet = await late.next()  # before A could have answered: A is not reading at all
            assert event == "send" and packet["type"] == "u" and packet["from"] == a.id
            assert packet["data"]["isFirstSync"] is True
            assert packet["data"]["components"]["0"] == {"x": 4, "y": 1.6, "z": -2}


async def test_persistent_entities_survive_kill_9(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    box = naf_entity("", "box", persistent=True, isFirstSync=False, components={"0": {"x": 1, "y": 2, "z": 3}})
    with running_server_process("--data", data) as first:
        async with uws_peers(naf_url(first), 1, room="world") as (a,):
            box["owner"] = a.id
            await a.emit("broadcast", {"type": "u", "data": box})
            await asyncio.sleep(0.1)
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 5
            while True:  # once the room is empty the API reads the store, after pending writes commit
                async with session.get(f"{first.url}/api/naf/rooms/world") as response:
                    state = await response.json()
                if response.status == 200 and not state["live"]:
                    break
                assert time.monotonic() < deadline, state
                await asyncio.sleep(0.05)
        assert [entity["networkId"] for entity in state["entities"]] == ["box"]
        first.process.send_signal(signal.SIGKILL)
        first.wait_exit(5)
    with running_server_process("--data", data) as second:
        async with connect(naf_url(second), compression=None) as ws:
            await ws.send(json.dumps({"event": "joinRoom", "data": {"room": "world"}}))
            events = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
        assert [e["event"] for e in events] == ["connectSuccess", "occupantsChanged", "send"]
        restored = events[2]["data"]["data"]
        assert restored["networkId"] == "box" and restored["persistent"] is True
        assert restored["components"] == {"0": {"x": 1, "y": 2, "z": 3}}
