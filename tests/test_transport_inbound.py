"""The WebSocket transport's receive path: data messages straight from the parser, and its own heartbeat.

`transport/inbound.py` swaps aiohttp's message queue for one that hands data messages to the engine
inside the socket's read callback, and the socket's protocol for one that feeds the frame parser
directly; `transport/heartbeat.py` pings on a schedule instead of re-arming a timer per message. These
tests pin that the fast path is in use with the installed aiohttp (so an aiohttp upgrade that silently
disables it fails here) and that nothing is lost or broken by it: frames split or batched by TCP, frames
that arrive before the switch, resets, half-closes and malformed frames, pings both ways.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
import time

from websockets.frames import Opcode

from shoal.transport.inbound import DirectQueue, ParsingProtocol
from support.clients import JsonPeer, RawSocketPeer, greeted_peers, json_peer, strict_json
from support.servers import RunningServer, StartServer


def _masked_text_frame(payload: bytes) -> bytes:
    """A client text frame (RFC 6455 section 5.2) with an all-zero mask, so the payload is sent as is."""
    assert len(payload) < 126
    return bytes((0x81, 0x80 | len(payload))) + b"\0\0\0\0" + payload


POSE = b'{"type":"pose","head":{"pos":[0,1.6,0],"rot":[0,0,0,1]}}'


async def test_data_messages_go_straight_to_the_engine_with_this_aiohttp(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada") as (ada,):
        connection = server.engine.members[ada.id].link
        assert isinstance(connection.ws._reader, DirectQueue)
        assert type(connection.transport.get_protocol()) is ParsingProtocol


async def _assert_left(server: RunningServer, watcher: JsonPeer, *member_ids: int) -> None:
    """The members are gone from the engine and `watcher`, in their room, was told each left."""
    async with asyncio.timeout(3):
        while any(member_id in server.engine.members for member_id in member_ids):
            await asyncio.sleep(0.01)
    left = {(await watcher.expect("member_left"))["id"] for _ in member_ids}
    assert left == set(member_ids)


async def test_a_dropped_or_half_closed_socket_still_ends_its_member(server: RunningServer) -> None:
    """Past the parsing protocol, a reset and an end of stream still reach aiohttp, which ends the handler."""
    async with greeted_peers(server.ws_url, "Ada", room="lobby") as (ada,):
        dropped = await RawSocketPeer.connect(server.ws_url)
        dropped_id = await dropped.greet_and_join("Dropped", "lobby")
        half_closed = await RawSocketPeer.connect(server.ws_url)
        half_closed_id = await half_closed.greet_and_join("HalfClosed", "lobby")
        try:
            dropped.abort()  # RST: connection_lost
            half_closed.sock.shutdown(socket.SHUT_WR)  # FIN without a close frame: eof_received
            await _assert_left(server, ada, dropped_id, half_closed_id)
        finally:
            half_closed.abort()


async def test_a_malformed_frame_still_closes_with_the_parsers_code(server: RunningServer) -> None:
    """The parser's errors reach the handler through the queue: a frame with a reserved opcode closes with 1002."""
    async with greeted_peers(server.ws_url, "Ada", room="lobby") as (ada,):
        peer = await RawSocketPeer.connect(server.ws_url)
        try:
            member_id = await peer.greet_and_join("Reserved", "lobby")
            await asyncio.get_running_loop().sock_sendall(peer.sock, b"\x83\x80\0\0\0\0")  # opcode 3, reserved
            close_codes: list[int] = []
            async with asyncio.timeout(3):
                while not close_codes:
                    frames = await peer.read_available(timeout=0.1)
                    close_codes += [struct.unpack("!H", f.data[:2])[0] for f in frames if f.opcode is Opcode.CLOSE]
            assert close_codes == [1002]
            await _assert_left(server, ada, member_id)
            assert server.engine.stats.closes[1002] == 1
        finally:
            peer.abort()


async def test_frames_batched_in_one_read_or_split_across_reads_all_arrive(server: RunningServer) -> None:
    async with greeted_peers(server.ws_url, "Ada", room="lobby") as (ada,):
        peer = await RawSocketPeer.connect(server.ws_url)
        try:
            await peer.greet_and_join("Raw", "lobby")
            before = server.engine.stats.poses_in
            loop = asyncio.get_running_loop()
            await loop.sock_sendall(peer.sock, _masked_text_frame(POSE) * 3)  # three frames, one write
            frame = _masked_text_frame(POSE)
            for byte in range(len(frame)):  # one frame, one byte per write
                await loop.sock_sendall(peer.sock, frame[byte : byte + 1])
                await asyncio.sleep(0)
            deadline = time.monotonic() + 2.0
            while server.engine.stats.poses_in < before + 4 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            assert server.engine.stats.poses_in == before + 4
            tick = await ada.expect("tick")
            assert [pose["head"]["pos"] for pose in tick["poses"]] == [[0.0, 1.6, 0.0]]
        finally:
            peer.abort()


async def test_a_message_sent_with_the_upgrade_request_is_not_lost(server: RunningServer) -> None:
    """A client that does not wait for the 101 (RFC 6455 says it should) still gets its `welcome`."""
    loop = asyncio.get_running_loop()
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    with socket.socket() as sock:
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", server.port))
        await loop.sock_sendall(sock, request + _masked_text_frame(b'{"type":"hello","name":"Eager"}'))
        received = b""
        async with asyncio.timeout(3):
            while b'"welcome"' not in received:
                chunk = await loop.sock_recv(sock, 65536)
                assert chunk, f"the server closed the connection: {received!r}"
                received += chunk
    assert received.startswith(b"HTTP/1.1 101")
    welcome = strict_json(received[received.index(b'{"type":"welcome"') :].split(b"}}", 1)[0] + b"}}")
    assert welcome["type"] == "welcome" and welcome["id"] > 0


async def test_a_peer_that_answers_pings_stays_connected_across_many_intervals(start_server: StartServer) -> None:
    server = await start_server(ping_interval=0.2)
    peer = await RawSocketPeer.connect(server.ws_url)
    try:
        member_id = await peer.greet_and_join("Awake", "lobby")
        pings = 0
        deadline = time.monotonic() + 1.3
        while time.monotonic() < deadline:  # read_available answers every ping it reads
            pings += sum(frame.opcode is Opcode.PING for frame in await peer.read_available(timeout=0.05))
        assert pings >= 4
        assert member_id in server.engine.members
    finally:
        peer.abort()


async def test_a_client_ping_is_answered_with_its_payload(server: RunningServer) -> None:
    async with json_peer(server.ws_url) as peer:
        await peer.hello("Ada")
        pong = await peer.ws.ping(b"are you there")
        latency = await asyncio.wait_for(pong, 2.0)
        assert latency >= 0
