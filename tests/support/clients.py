"""Protocol peers for end-to-end tests, built on the independent `websockets` library.

`JsonPeer` speaks raw JSON (not Shoal's own client SDK) and parses every frame the server sends with
a strict parser, so a server that ever emits NaN, Infinity or malformed JSON fails the test that saw
it. `RawSocketPeer` runs the `websockets` sans-I/O protocol over a socket the test controls, for peers
that misbehave at the transport level (never read, never answer pings, tiny receive buffer).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import socket
import struct
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

SUBPROTOCOL = Subprotocol("shoal.v1.json")
Message = dict[str, Any]


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name} in a server frame")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} overflows a double")
    return value


def strict_json(frame: str | bytes) -> Any:
    """Parse RFC 8259 JSON, refusing the NaN / Infinity / -Infinity that Python's json accepts and
    numbers such as 1e400 that it would silently turn into infinity."""
    return json.loads(frame, parse_constant=_refuse_constant, parse_float=_finite_float)


def encode(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"))


class JsonPeer:
    """One WebSocket connection that sends JSON objects and reads strictly parsed ones.

    Every message received is appended to `received`, so a test can check afterwards what a
    bystander saw (or did not see). Messages that `expect` skips stay queued, in order, for the next
    `recv` or `expect`.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.received: list[Message] = []
        self.id: int | None = None
        self._queued: collections.deque[Message] = collections.deque()

    async def send(self, message: Message | str | bytes, *, text: bool | None = None) -> None:
        """Send a dict as a JSON text frame; `str` and `bytes` go as they are (`text=True` sends bytes,
        even invalid UTF-8, in a text frame)."""
        await self.ws.send(encode(message) if isinstance(message, dict) else message, text=text)

    async def recv(self, timeout: float = 2.0) -> Message:
        """The next message; raises `TimeoutError` if none arrives in `timeout` s, `ConnectionClosed`
        if the connection ends."""
        if self._queued:
            return self._queued.popleft()
        return await self._read(timeout)

    async def _read(self, timeout: float) -> Message:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str), f"the server sent a binary frame: {frame!r}"
        message = strict_json(frame)
        assert isinstance(message, dict) and isinstance(message.get("type"), str), frame
        self.received.append(message)
        return message

    async def expect(self, kind: str, timeout: float = 2.0, **fields: Any) -> Message:
        """The first message of type `kind` (with these field values), queued or arriving within
        `timeout` s; the messages before it stay queued."""

        def wanted(message: Message) -> bool:
            return message["type"] == kind and all(message.get(k) == v for k, v in fields.items())

        for message in self._queued:
            if wanted(message):
                self._queued.remove(message)
                return message
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                message = await self._read(remaining)
                if wanted(message):
                    return message
                self._queued.append(message)
        raise AssertionError(f"no {kind!r} {fields or ''} within {timeout} s; got {self.received[-5:]}")

    async def expect_silence(self, seconds: float, *, ignoring: tuple[str, ...] = ()) -> None:
        """Assert that nothing but `ignoring` types is queued or arrives for `seconds`."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await self.recv(remaining)
            except TimeoutError:
                return
            assert message["type"] in ignoring, f"expected silence, got {message}"

    async def receive_for(self, seconds: float) -> None:
        """Receive (into `received`) whatever arrives for `seconds`."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await self.recv(remaining)

    async def receive_until(self, condition: Callable[[], bool], timeout: float = 2.0) -> None:
        """Receive until `condition()` holds; fail after `timeout` s."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"condition not met within {timeout} s; last received: {self.received[-3:]}"
            with contextlib.suppress(TimeoutError):
                await self.recv(min(remaining, 0.05))

    def latest_poses(self) -> dict[int, list[float]]:
        """Member id -> head position of the latest pose received in `tick` frames."""
        positions: dict[int, list[float]] = {}
        for message in self.received:
            if message["type"] == "tick":
                positions.update({pose["id"]: pose["head"]["pos"] for pose in message["poses"]})
        return positions

    def presence(self) -> Message:
        """This peer's own entry (`id`, `name`, `color`) in the latest `joined` snapshot it received."""
        joined = next(message for message in reversed(self.received) if message["type"] == "joined")
        return next(member for member in joined["members"] if member["id"] == self.id)

    async def expect_close(self, timeout: float = 3.0) -> int | None:
        """Read (and keep) messages until the server closes; return the close code it sent."""
        deadline = time.monotonic() + timeout
        with contextlib.suppress(ConnectionClosed):
            while (remaining := deadline - time.monotonic()) > 0:
                with contextlib.suppress(TimeoutError):
                    self._queued.append(await self._read(remaining))
            raise AssertionError(f"the server did not close within {timeout} s")
        return self.close_code

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code

    async def hello(self, name: str = "", **fields: Any) -> Message:
        await self.send({"type": "hello", "v": 1, "name": name, **fields})
        welcome = await self.expect("welcome")
        self.id = welcome["id"]
        return welcome

    async def join(self, room: str) -> Message:
        await self.send({"type": "join", "room": room})
        return await self.expect("joined", room=room)

    async def pose(self, x: float = 0.0, y: float = 1.6, z: float = 0.0, **parts: Any) -> None:
        """Send a pose whose head is at (x, y, z) with the identity rotation; `parts` adds `left`, `t`, ..."""
        head = {"pos": [x, y, z], "rot": [0.0, 0.0, 0.0, 1.0]}
        await self.send({"type": "pose", "head": head, **parts})


@contextlib.asynccontextmanager
async def json_peer(url: str, *, subprotocol: bool = True) -> AsyncIterator[JsonPeer]:
    """A connected `JsonPeer` (offering `shoal.v1.json` unless `subprotocol=False`), closed on exit."""
    async with connect(
        url,
        subprotocols=[SUBPROTOCOL] if subprotocol else None,
        compression=None,
        max_size=None,
        ping_interval=None,
        open_timeout=5,
        close_timeout=1,
        proxy=None,
    ) as ws:
        yield JsonPeer(ws)


@contextlib.asynccontextmanager
async def greeted_peers(url: str, *names: str, room: str | None = None) -> AsyncIterator[list[JsonPeer]]:
    """One greeted `JsonPeer` per name, all joined to `room` if given (in order), closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        peers = [await stack.enter_async_context(json_peer(url)) for _ in names]
        for peer, name in zip(peers, names, strict=True):
            await peer.hello(name)
            if room is not None:
                await peer.join(room)
        yield peers


class RawSocketPeer:
    """A WebSocket client whose socket the test drives by hand.

    The `websockets` sans-I/O `ClientProtocol` builds the handshake and frames; bytes move only when
    the test calls `send_*` or `read_available`. A peer that never reads never answers pings and
    lets the server's frames pile up, which is what silent-peer and slow-consumer tests need.
    """

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self.sock = sock
        self.protocol = protocol

    @classmethod
    async def connect(cls, ws_url: str, *, receive_buffer: int | None = None) -> RawSocketPeer:
        """Open a TCP connection (with `SO_RCVBUF` set before connecting, so the TCP window stays
        small) and complete the WebSocket handshake."""
        loop = asyncio.get_running_loop()
        parts = urlsplit(ws_url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        peer = cls(sock, ClientProtocol(parse_uri(ws_url), subprotocols=[SUBPROTOCOL], max_size=None))
        try:
            await asyncio.wait_for(loop.sock_connect(sock, (parts.hostname, parts.port)), 5)
            peer.protocol.send_request(peer.protocol.connect())
            await peer._flush()
            async with asyncio.timeout(5):
                while peer.protocol.state is State.CONNECTING:
                    data = await loop.sock_recv(sock, 65536)
                    if not data:
                        raise ConnectionError("the server closed during the handshake")
                    peer.protocol.receive_data(data)
            if peer.protocol.handshake_exc is not None:
                raise peer.protocol.handshake_exc
        except BaseException:
            sock.close()
            raise
        return peer

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                await asyncio.get_running_loop().sock_sendall(self.sock, data)

    async def send_json(self, message: Message) -> None:
        self.protocol.send_text(encode(message).encode())
        await self._flush()

    async def read_available(self, timeout: float = 0.5) -> list[Frame]:
        """Read what arrives within `timeout` s and return the frames it completes (pings are answered)."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError, ConnectionError):
            data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
        await self._flush()
        return [event for event in self.protocol.events_received() if isinstance(event, Frame)]

    async def greet_and_join(self, name: str, room: str) -> int:
        """Send hello and join; return the member id. Reads only until `joined` arrives."""
        await self.send_json({"type": "hello", "v": 1, "name": name})
        await self.send_json({"type": "join", "room": room})
        member_id = None
        async with asyncio.timeout(5):
            while True:
                for frame in await self.read_available():
                    if frame.opcode is Opcode.TEXT:
                        message = strict_json(frame.data)
                        if message["type"] == "welcome":
                            member_id = message["id"]
                        elif message["type"] == "joined":
                            assert member_id is not None
                            return member_id

    def abort(self) -> None:
        """Drop the TCP connection at once, without a close frame."""
        with contextlib.suppress(OSError):
            # linger on with a zero timeout: close() sends RST instead of FIN
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


@contextlib.asynccontextmanager
async def raw_socket_peer(ws_url: str, *, receive_buffer: int | None = None) -> AsyncIterator[RawSocketPeer]:
    """A connected `RawSocketPeer`, aborted (RST, no close frame) on exit."""
    peer = await RawSocketPeer.connect(ws_url, receive_buffer=receive_buffer)
    try:
        yield peer
    finally:
        peer.abort()
