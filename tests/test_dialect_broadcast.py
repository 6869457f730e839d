"""The ws-broadcast dialect against a real server, with raw clients (the `websockets` library, and a bare TCP
socket for frames no library will send).

Kept from Decentraland's relay: echo to the sender, rooms by raw path + query, text stays text and binary
stays binary, per-sender order, silence on connect and close. Added: caps, isolation of a bad connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct
from collections.abc import AsyncIterator

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support.servers import RunningServer, StartServer


@contextlib.asynccontextmanager
async def peers(server: RunningServer, *paths: str) -> AsyncIterator[list[ClientConnection]]:
    """One plain WebSocket client per path (as a Decentraland scene opens it), closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        clients = []
        for path in paths:
            url = f"ws://127.0.0.1:{server.port}{path}"
            clients.append(
                await stack.enter_async_context(
                    connect(
                        url,
                        compression=None,
                        max_size=None,
                        max_queue=None,
                        ping_interval=None,
                        open_timeout=5,
                        close_timeout=1,
                    )
                )
            )
        await asyncio.sleep(0.05)  # let the server register the last connection in its room
        yield clients


async def recv(ws: ClientConnection, timeout: float = 2.0) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), timeout)


async def silent(ws: ClientConnection, seconds: float = 0.2) -> bool:
    try:
        message = await asyncio.wait_for(ws.recv(), seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"expected silence, got {message!r}")


async def close_code(ws: ClientConnection, timeout: float = 3.0) -> int | None:
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    return ws.close_code


class RawClient:
    """A WebSocket client over a bare TCP stream: a real handshake, then whatever bytes the test writes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    def send_frame(self, payload: bytes, opcode: int = 0x1, *, masked: bool = True, rsv: int = 0) -> None:
        assert len(payload) < 126
        mask = os.urandom(4) if masked else b""
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if masked else payload
        self.writer.write(bytes([0x80 | rsv << 4 | opcode, (0x80 if masked else 0) | len(payload)]) + mask + body)

    async def close_code(self, timeout: float = 3.0) -> int | None:
        """Read frames until the server's close frame (its code) or EOF (None)."""
        async with asyncio.timeout(timeout):
            while True:
                header = await self.reader.readexactly(2)
                length = header[1] & 0x7F
                if length == 126:
                    length = struct.unpack("!H", await self.reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
                payload = await self.reader.readexactly(length)
                if header[0] & 0x0F == 0x8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None


async def room_keys(server: RunningServer) -> dict[str, int]:
    status, body = await server.get("/api/dialects")
    assert status == 200
    return body["broadcast"]["rooms"]


# ---- what scenes depend on ------------------------------------------------------------------------------


async def test_every_message_reaches_the_whole_room_including_the_sender(server: RunningServer) -> None:
    async with peers(server, "/broadcast/Hades-frisbee", "/broadcast/Hades-frisbee", "/broadcast/other") as clients:
        a, b, elsewhere = clients
        throw = '{"type":2,"data":{"user":"alice4821","pos":{"x":8,"y":1.6,"z":8}}}'
        await a.send(throw)
        assert await recv(a) == throw  # the echo: ws-example waits for it to change the cube's colour
        assert await recv(b) == throw
        assert await silent(elsewhere)


async def test_the_room_is_the_raw_path_and_query(server: RunningServer) -> None:
    async with peers(server, "/broadcast/r1", "/broadcast/r1?x=1", "/broadcast/My%20Realm", "/broadcast") as clients:
        plain, with_query, encoded, bare = clients
        await plain.send("one")
        assert await recv(plain) == "one"
        assert await silent(with_query) and await silent(encoded) and await silent(bare)
        assert await room_keys(server) == {
            "/broadcast/r1": 1,
            "/broadcast/r1?x=1": 1,
            "/broadcast/My%20Realm": 1,
            "/broadcast": 1,
        }


async def test_text_stays_text_and_binary_stays_binary_byte_for_byte(server: RunningServer) -> None:
    async with peers(server, "/broadcast/r", "/broadcast/r") as (a, b):
        blob = bytes(range(256)) * 4
        await a.send(blob)
        await a.send("héllo ✓")
        assert await recv(b) == blob and isinstance(blob, bytes)
        assert await recv(b) == "héllo ✓"


async def test_each_senders_order_is_kept(server: RunningServer) -> None:
    async with peers(server, "/broadcast/r", "/broadcast/r", "/broadcast/r") as (a, b, c):
        for n in range(100):
            await a.send(f"a{n}")
            await b.send(f"b{n}")
        received = [await recv(c) for _ in range(200)]
        assert [m for m in received if m.startswith("a")] == [f"a{n}" for n in range(100)]
        assert [m for m in received if m.startswith("b")] == [f"b{n}" for n in range(100)]


async def test_nothing_is_sent_on_connect_or_close(server: RunningServer) -> None:
    async with peers(server, "/broadcast/quiet") as (a,):
        async with peers(server, "/broadcast/quiet") as (b,):
            assert await silent(a) and await silent(b)
        assert await silent(a)


async def test_other_prefixes_can_be_configured(start_server: StartServer) -> None:
    server = await start_server(broadcast_prefixes=("/broadcast", "/dcl/"))
    async with peers(server, "/dcl/realm", "/dcl/realm") as (a, b):
        await a.send("hi")
        assert await recv(b) == "hi"
    status, body = await server.get("/dcl/realm")
    assert status == 426 and "WebSocket" in body["error"]["message"]  # a plain GET is told to upgrade


# ---- what Shoal adds --------------------------------------------------------------------------------------


async def test_a_malformed_frame_closes_only_its_own_connection(server: RunningServer) -> None:
    async with peers(server, "/broadcast/r", "/broadcast/r") as (a, b):
        bad = await RawClient.open(server.port, "/broadcast/r")
        bad.send_frame(b"x", opcode=0x3)  # a reserved opcode
        assert await bad.close_code() == 1002
        bad_rsv = await RawClient.open(server.port, "/broadcast/r")
        bad_rsv.send_frame(b"x", rsv=0b100)  # RSV1 without a negotiated extension
        assert await bad_rsv.close_code() == 1002
        await a.send("still here")
        assert await recv(a) == "still here" and await recv(b) == "still here"


async def test_an_unmasked_client_frame_costs_nothing_to_the_others(server: RunningServer) -> None:
    """ws 7 crashed the whole process on this frame. aiohttp reads it (it does not enforce the mask bit),
    so the sender is not closed, but nothing breaks: the room keeps relaying and the process lives."""
    async with peers(server, "/broadcast/r", "/broadcast/r") as (a, b):
        raw = await RawClient.open(server.port, "/broadcast/r")
        raw.send_frame(b"unmasked", masked=False)
        await a.send("after")
        received = {await recv(b), await recv(b)}
        assert "after" in received
        assert (await server.get("/healthz"))[0] == 200
        raw.writer.close()


async def test_a_message_over_the_cap_is_closed_1009_and_not_relayed(server: RunningServer) -> None:
    async with peers(server, "/broadcast/r", "/broadcast/r") as (a, b):
        await a.send("x" * (64 * 1024 + 1))
        assert await close_code(a) == 1009
        assert await silent(b)
        await b.send("fine")
        assert await recv(b) == "fine"


async def test_invalid_utf8_in_a_text_frame_closes_1007(server: RunningServer) -> None:
    async with peers(server, "/broadcast/r", "/broadcast/r") as (a, b):
        await a.send(b"\xff\xfe not utf-8", text=True)
        assert await close_code(a) == 1007
        assert await silent(b)


async def test_a_full_room_refuses_with_4010(start_server: StartServer) -> None:
    server = await start_server(max_members_per_room=2)
    async with peers(server, "/broadcast/small", "/broadcast/small", "/broadcast/small") as (a, b, c):
        assert await close_code(c) == 4010
        await a.send("two of us")
        assert await recv(b) == "two of us"


async def test_a_flood_is_dropped_then_closed_4008(start_server: StartServer) -> None:
    server = await start_server(pose_rate=20.0, pose_burst=20, abuse_close_seconds=0.3)
    async with peers(server, "/broadcast/r", "/broadcast/r") as (flooder, bystander):
        with contextlib.suppress(ConnectionClosed):
            for n in range(2000):
                await flooder.send(str(n))
                await asyncio.sleep(0.0005)
        assert await close_code(flooder) == 4008
        relayed = 0
        with contextlib.suppress(TimeoutError):
            while True:
                await recv(bystander, 0.2)
                relayed += 1
        assert 20 <= relayed < 200
        stats = (await server.get("/api/dialects"))[1]["broadcast"]
        assert stats["dropped"]["rate"] > 0 and stats["closes"]["4008"] == 1


async def test_a_reader_that_never_reads_is_closed_4009_not_buffered(start_server: StartServer) -> None:
    server = await start_server(max_buffer_bytes=256 * 1024)
    async with peers(server, "/broadcast/r") as (talker,):
        stalled = await RawClient.open(server.port, "/broadcast/r")  # never reads: its buffers fill up
        await asyncio.sleep(0.05)
        chunk = "y" * 60_000
        for _ in range(200):
            await talker.send(chunk)
            with contextlib.suppress(TimeoutError):
                await recv(talker, 0.5)
            stats = (await server.get("/api/dialects"))[1]["broadcast"]
            if stats["closes"].get("4009"):
                break
        assert stats["closes"].get("4009") == 1
        await talker.send("alive")
        assert await recv(talker) == "alive"
        stalled.writer.close()


async def test_the_server_pings_and_drops_a_peer_that_never_answers_while_answering_peers_stay(
    start_server: StartServer,
) -> None:
    server = await start_server(ping_interval=0.3)
    async with peers(server, "/broadcast/r") as (answering,):  # the websockets client answers every ping
        silent = await RawClient.open(server.port, "/broadcast/r")  # reads, but never answers
        opened_at = asyncio.get_running_loop().time()
        received = await asyncio.wait_for(silent.reader.read(), 3.0)  # until the server aborts the socket
        assert bytes((0x89, 0x00)) in received  # an empty ping (FIN + opcode 9)
        assert asyncio.get_running_loop().time() - opened_at < 0.3 * 1.5 + 0.5
        await asyncio.sleep(0.6)  # two more intervals
        await answering.send("still here")
        assert await recv(answering) == "still here"
        assert await room_keys(server) == {"/broadcast/r": 1}
