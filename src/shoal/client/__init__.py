"""The Python client SDK (asyncio): connect, hello, join, send poses and messages, iterate events.

    async with await ShoalClient.connect("ws://127.0.0.1:8080/ws", name="Ada", binary=True) as client:
        joined = await client.join("lobby")
        await client.send_pose(head=((0, 1.6, 0), (0, 0, 0, 1)))
        async for event in client:
            print(event)

Events are the protocol's server messages as msgspec Structs (`Tick`, `MemberJoined`, `Relay`, ...). Hand
joints (`send_joints`) arrive in `Tick.joints`; `client.joints` keeps the latest tracked joints of each member.
With `binary=True` it offers the compact binary protocol (`shoal.v1.bin`) and falls back to JSON when the
server does not pick it. Tests, bots and the benchmark use this client.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec

from shoal.protocol import binary as wire
from shoal.protocol.codec import JSON
from shoal.protocol.joints import encode_joints
from shoal.protocol.messages import (
    Error,
    Joined,
    Joints,
    Left,
    MemberJoints,
    MemberLeft,
    MemberPose,
    Pong,
    Pose,
    ServerMessage,
    ServerMessages,
    Tick,
    Transform,
    Welcome,
)

TransformLike = Transform | tuple[Sequence[float], Sequence[float]]
HandLike = Sequence[Sequence[float]]
"""25 joints, each `(x, y, z, qx, qy, qz, qw)`, in the WebXR hand joint order."""
M = TypeVar("M", bound=ServerMessage)


class ShoalError(Exception):
    """The server answered a request with an `error` message."""

    def __init__(self, error: Error) -> None:
        super().__init__(f"{error.code}: {error.message}")
        self.error = error
        self.code = error.code


class ConnectionClosed(Exception):
    """The WebSocket closed. `code` is the close code (None if the connection was lost)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection closed ({code}) {reason}".strip())
        self.code = code
        self.reason = reason


def _transform(value: TransformLike) -> Transform:
    if isinstance(value, Transform):
        return value
    pos, rot = value
    return Transform(tuple(float(v) for v in pos), tuple(float(v) for v in rot))  # type: ignore[arg-type]


class ShoalClient:
    """One connection to a Shoal server speaking protocol v1, in JSON or binary frames (`binary`).

    Requests that expect an answer (`join`, `leave`, `ping`) read until it arrives; messages that
    arrive meanwhile are kept, in order, for iteration. Use `connect()` to create one.
    """

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, owns_session: bool):
        self._session = session
        self._ws = ws
        self._owns_session = owns_session
        self._pending: collections.deque[ServerMessage] = collections.deque()
        self._decoder = msgspec.json.Decoder(ServerMessages)
        self._encoder = msgspec.json.Encoder()
        self.binary = ws.protocol == wire.SUBPROTOCOL
        """True when the server accepted the binary protocol (`shoal.v1.bin`)."""
        self.welcome: Welcome | None = None
        self.room: str | None = None
        self.joints: dict[int, MemberJoints] = {}
        """The latest hand joints of each member of the room that has a tracked hand, by member id, as read so
        far: updated by every `Tick` read, a member's dropped when it hides them or leaves, all on `left`."""

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str = "",
        color: str | None = None,
        resume: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        binary: bool = False,
    ) -> ShoalClient:
        """Open the WebSocket, send `hello` and wait for `welcome`.

        With `binary`, offer `shoal.v1.bin` before `shoal.v1.json`: poses and ticks then travel compact
        (see `binary` on the client for what the server chose).

        `resume` is the `resume_token` of an earlier session that dropped: if it is still resumable the
        server restores its id and room (`welcome.resumed`, then a `joined` to read with `expect`).
        """
        owns_session = session is None
        session = session or aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(
                url,
                protocols=(wire.SUBPROTOCOL, JSON.subprotocol) if binary else (JSON.subprotocol,),
                compress=0,
                heartbeat=None,
                max_msg_size=16 * 1024 * 1024,
                timeout=aiohttp.ClientWSTimeout(ws_close=2),
            )
        except BaseException:
            if owns_session:
                await session.close()
            raise
        client = cls(session, ws, owns_session)
        try:
            hello: dict[str, Any] = {"type": "hello", "v": 1, "name": name}
            if color:
                hello["color"] = color
            if resume:
                hello["resume"] = resume
            await client.send_raw(hello)
            client.welcome = await client.expect(Welcome, timeout)
        except BaseException:
            await client.close()
            raise
        return client

    @property
    def id(self) -> int:
        """This client's member id, assigned by the server."""
        assert self.welcome is not None
        return self.welcome.id

    # ---- requests ----------------------------------------------------------------------------------

    async def join(self, room: str, timeout: float = 10.0) -> Joined:
        """Join `room` (leaving any other) and return its snapshot."""
        await self.send_raw({"type": "join", "room": room})
        joined = await self.expect(Joined, timeout)
        self.room = joined.room
        return joined

    async def leave(self, timeout: float = 10.0) -> Left:
        await self.send_raw({"type": "leave"})
        left = await self.expect(Left, timeout)
        self.room = None
        return left

    async def ping(self, timeout: float = 10.0) -> tuple[float, float]:
        """Round-trip time in ms and the estimated offset of the server clock from ours, in ms."""
        sent = time.time() * 1000.0
        await self.send_raw({"type": "ping", "t": sent})
        pong = await self.expect(Pong, timeout, match=lambda p: p.t == sent)
        received = time.time() * 1000.0
        rtt = received - sent
        return rtt, pong.server_time - (sent + rtt / 2)

    async def send_pose(
        self,
        head: TransformLike,
        left: TransformLike | None = None,
        right: TransformLike | None = None,
        t: float | None = None,
    ) -> None:
        """Send this avatar's pose: each part is a `Transform` or `((x, y, z), (qx, qy, qz, qw))`."""
        pose = Pose(
            head=_transform(head),
            left=None if left is None else _transform(left),
            right=None if right is None else _transform(right),
            t=t,
        )
        if self.binary:
            await self._ws.send_bytes(wire.encode_pose(pose))
            return
        message = msgspec.structs.asdict(pose)  # as JSON, without the absent parts
        await self.send_raw({"type": "pose", **{key: value for key, value in message.items() if value is not None}})

    async def send_joints(self, left: HandLike | None = None, right: HandLike | None = None) -> None:
        """Send this member's tracked hand joints: 25 `(x, y, z, qx, qy, qz, qw)` per tracked hand, None for a hand
        that is not tracked (neither: "my hands are no longer tracked"). Send them no faster than
        `welcome.limits["joints_relay_rate"]`, the rate rooms relay the latest at. Raises
        `msgspec.ValidationError` (a ValueError) for a hand without 25 joints of 7 finite numbers, and ValueError
        for a zero quaternion or, on a binary connection, a joint more than 3.2767 m from its wrist."""
        message = msgspec.convert({"type": "joints", "left": left, "right": right}, Joints)
        if self.binary:
            await self._ws.send_bytes(encode_joints(message))
            return
        hands = {"left": message.left, "right": message.right}
        await self.send_raw({"type": "joints", **{key: value for key, value in hands.items() if value is not None}})

    async def send(self, topic: str, data: Any = None, to: int | None = None) -> None:
        """Send an application message to the room, or to the member `to`."""
        message: dict[str, Any] = {"type": "msg", "topic": topic, "data": data}
        if to is not None:
            message["to"] = to
        await self.send_raw(message)

    async def send_raw(self, message: Any) -> None:
        """Send any JSON-encodable object as one message: a text frame, or on a binary connection a binary
        frame with the JSON tag (for tests of the protocol itself)."""
        encoded = self._encoder.encode(message)
        if self.binary:
            await self._ws.send_bytes(bytes((wire.TAG_JSON,)) + encoded)
        else:
            await self._ws.send_str(encoded.decode())

    # ---- receiving ---------------------------------------------------------------------------------

    async def recv(self, timeout: float | None = None) -> ServerMessage:
        """The next server message. Raises `ConnectionClosed` when the connection ends."""
        if self._pending:
            return self._pending.popleft()
        return await self._read(timeout)

    async def expect(self, kind: type[M], timeout: float | None = 10.0, match: Any = None) -> M:
        """Read until a message of type `kind` arrives (others are kept for `recv`).

        An `error` that arrives first is raised as `ShoalError`.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        skipped: list[ServerMessage] = []
        try:
            while True:
                for index, message in enumerate(self._pending):
                    if isinstance(message, kind) and (match is None or match(message)):
                        del self._pending[index]
                        return message
                remaining = None if deadline is None else max(deadline - time.monotonic(), 0.001)
                message = await self._read(remaining)
                if isinstance(message, kind) and (match is None or match(message)):
                    return message
                if isinstance(message, Error):
                    raise ShoalError(message)
                skipped.append(message)
        finally:
            self._pending.extend(skipped)

    async def _read(self, timeout: float | None) -> ServerMessage:
        message = await self._read_frame(timeout)
        if type(message) is Tick:
            if message.joints or message.full:
                self._track_joints(message)
        elif type(message) is MemberLeft:
            self.joints.pop(message.id, None)
        elif type(message) is Left:
            self.joints.clear()
        return message

    def _track_joints(self, tick: Tick) -> None:
        """Keep `joints` up to date: a full tick lists everyone's (the others had none)."""
        if tick.full:
            self.joints.clear()
        for entry in tick.joints:
            if entry.left is None and entry.right is None:
                self.joints.pop(entry.id, None)
            else:
                self.joints[entry.id] = entry

    async def _read_frame(self, timeout: float | None) -> ServerMessage:
        frame = await self._ws.receive(timeout=timeout)
        if frame.type is aiohttp.WSMsgType.TEXT:
            return self._decoder.decode(frame.data)
        if frame.type is aiohttp.WSMsgType.BINARY:
            return wire.decode_server(frame.data)
        if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            raise ConnectionClosed(self._ws.close_code, str(frame.extra or ""))
        if frame.type is aiohttp.WSMsgType.ERROR:
            raise ConnectionClosed(self._ws.close_code, str(frame.data))
        raise ConnectionClosed(self._ws.close_code, f"unexpected frame {frame.type!r}")

    def __aiter__(self) -> ShoalClient:
        return self

    async def __anext__(self) -> ServerMessage:
        try:
            return await self.recv()
        except ConnectionClosed:
            raise StopAsyncIteration from None

    # ---- lifecycle ---------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._ws.closed

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    async def close(self, code: int = 1000) -> None:
        await self._ws.close(code=code)
        if self._owns_session:
            await self._session.close()

    async def __aenter__(self) -> ShoalClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


__all__ = ["ConnectionClosed", "MemberJoints", "MemberPose", "ShoalClient", "ShoalError"]
