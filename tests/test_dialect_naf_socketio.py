"""NAF's `socketio` adapter against a real server with python-socketio's `AsyncClient` (Socket.IO 5, as the
socket.io 4 JS client NAF 0.14 uses), over long-polling and over WebSocket. The real JS client runs in
tests/browser/test_naf_pages.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import socketio

from support.naf import naf_entity, uws_peers
from support.servers import RunningServer, StartServer


class SioPeer:
    """One socket.io connection: every NAF event it receives is queued in order."""

    def __init__(self, client: socketio.AsyncClient) -> None:
        self.client = client
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        client.on("*", self._on_any)

    async def _on_any(self, event: str, data: Any = None) -> None:
        await self.events.put((event, data))

    @property
    def id(self) -> str:
        sid = self.client.get_sid("/")  # the Socket.IO socket id, not the Engine.IO session id
        assert sid is not None
        return sid

    async def next(self, timeout: float = 2.0) -> tuple[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def silent(self, seconds: float = 0.2) -> None:
        with contextlib.suppress(TimeoutError):
            event = await self.next(seconds)
            raise AssertionError(f"expected silence, got {event}")

    async def join(self, room: str = "basic") -> dict[str, Any]:
        await self.client.emit("joinRoom", {"room": room})
        event, success = await self.next()
        assert event == "connectSuccess", (event, success)
        event, occupants = await self.next()
        assert event == "occupantsChanged" and self.id in occupants["occupants"]
        return success


@contextlib.asynccontextmanager
async def sio_peers(
    server: RunningServer,
    count: int,
    room: str | None = "basic",
    transports: tuple[str, ...] = ("polling", "websocket"),
) -> AsyncIterator[list[SioPeer]]:
    peers = [SioPeer(socketio.AsyncClient(reconnection=False)) for _ in range(count)]
    try:
        for peer in peers:
            await peer.client.connect(server.url, transports=list(transports), wait_timeout=5)
        if room is not None:
            for index, peer in enumerate(peers):
                await peer.join(room)
                for earlier in peers[:index]:
                    assert (await earlier.next())[0] == "occupantsChanged"
        yield peers
    finally:
        for peer in peers:
            await peer.client.disconnect()


@pytest.mark.parametrize("transports", [("polling",), ("websocket",), ("polling", "websocket")])
async def test_join_transcript_over_each_transport(start_server: StartServer, transports: tuple[str, ...]) -> None:
    server = await start_server(ping_interval=1.0)  # a long-poll is answered at the latest after a ping interval
    async with sio_peers(server, 2, room=None, transports=transports) as (a, b):
        success = await a.join("basic")
        assert isinstance(success["joinedTime"], int) and success["room"] == "basic"
        assert success["socketId"] == a.id  # the NAF client id is the Socket.IO socket id
        await b.join("basic")
        event, changed = await a.next()
        assert event == "occupantsChanged" and set(changed["occupants"]) == {a.id, b.id}
        await b.client.disconnect()
        assert await a.next() == ("occupantsChanged", {"occupants": {a.id: success["joinedTime"]}})


async def test_broadcast_reaches_others_not_the_sender_and_send_keeps_to(server: RunningServer) -> None:
    async with sio_peers(server, 3) as (a, b, c):
        await a.client.emit("broadcast", {"from": a.id, "type": "chat", "data": {"text": "hi"}})
        for peer in (b, c):
            assert await peer.next() == ("broadcast", {"from": a.id, "type": "chat", "data": {"text": "hi"}})
        await a.silent()
        await a.client.emit("send", {"from": a.id, "to": c.id, "type": "chat", "data": 1})
        assert await c.next() == ("send", {"from": a.id, "to": c.id, "type": "chat", "data": 1})
        await b.silent()


async def test_spoofed_from_and_cross_room_sends_are_fixed(server: RunningServer) -> None:
    async with sio_peers(server, 1, room="r1") as (victim,), sio_peers(server, 2, room="r2") as (a, b):
        await a.client.emit("broadcast", {"from": victim.id, "type": "chat", "data": "forged"})
        assert (await b.next())[1]["from"] == a.id  # F1
        for target in (victim.id, "r1"):  # F3, and F4: "r1" names a room, never a socket
            await a.client.emit("send", {"from": victim.id, "to": target, "type": "chat", "data": "x"})
        await victim.silent()


@pytest.mark.parametrize("payload", [None, "text", {"room": None}])
async def test_bad_payloads_are_an_error_for_the_sender_and_the_server_lives_f6(
    server: RunningServer, payload: Any
) -> None:
    """NAF's socket.io server died on `joinRoom` without a payload, or `send` with `null`."""
    async with sio_peers(server, 2) as (a, b):
        if payload is None:
            await a.client.emit("joinRoom")
            await a.client.emit("send", None)
            assert (await a.next())[0] == "error"
        else:
            await a.client.emit("send", payload)
        assert (await a.next())[0] == "error"
        await b.silent()
        await b.client.emit("broadcast", {"type": "chat", "data": "still up"})
        assert (await a.next())[1]["data"] == "still up"


async def test_nan_never_reaches_a_peer(server: RunningServer) -> None:
    """Python's json reads NaN and writes it back; a JS client cannot parse that. The server reads strict JSON."""
    async with sio_peers(server, 2) as (a, b):
        await a.client.eio.send('42["broadcast",{"type":"chat","data":NaN}]')
        await b.silent()
        await a.client.emit("broadcast", {"type": "chat", "data": 1.5})
        assert (await b.next())[1]["data"] == 1.5


async def test_forged_entity_updates_reach_nobody_f2(server: RunningServer) -> None:
    async with sio_peers(server, 2) as (a, b):
        avatar = naf_entity(a.id)
        await a.client.emit("broadcast", {"type": "u", "data": avatar})
        assert (await b.next())[1]["data"]["networkId"] == "av1"
        forged = {**avatar, "isFirstSync": False, "components": {"0": {"x": 50, "y": 0, "z": 0}}}
        await b.client.emit("broadcast", {"type": "um", "data": {"d": [forged]}})
        await b.client.emit("broadcast", {"type": "r", "data": {"networkId": "av1"}})
        await a.silent()
        status, body = await server.get("/api/naf/rooms/basic")
        assert status == 200 and body["entities"][0]["components"]["0"] == {"x": 0, "y": 1.6, "z": 0}


async def test_socketio_and_uws_clients_share_a_room(server: RunningServer) -> None:
    async with (
        sio_peers(server, 1) as (sio,),
        uws_peers(f"ws://127.0.0.1:{server.port}/naf", 1, room=None) as (uws,),
    ):
        await uws.join("basic")
        event, changed = await sio.next()
        assert event == "occupantsChanged" and set(changed["occupants"]) == {sio.id, uws.id}
        await uws.emit("broadcast", {"type": "chat", "data": "from uws"})
        assert await sio.next() == ("broadcast", {"from": uws.id, "type": "chat", "data": "from uws"})
        await sio.client.emit("send", {"to": uws.id, "type": "chat", "data": "from socket.io"})
        assert await uws.expect("send") == {"from": sio.id, "type": "chat", "data": "from socket.io"}


async def test_a_late_joiner_gets_entities_from_the_server(server: RunningServer) -> None:
    async with sio_peers(server, 1) as (a,):
        await a.client.emit("broadcast", {"type": "u", "data": naf_entity(a.id)})
        await asyncio.sleep(0.1)
        async with sio_peers(server, 1, room=None) as (late,):
            await late.join("basic")
            event, packet = await late.next()
            assert event == "send" and packet["to"] == late.id and packet["data"]["networkId"] == "av1"
