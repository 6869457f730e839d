"""One load-generator process of the fan-out benchmark (`shoal.bench.fanout` starts several).

    python -m shoal.bench.loader     # reads its plan from stdin; not meant to be run by hand

It speaks to the orchestrator through JSON lines: it reads its plan from stdin, connects its clients
(hello, join), prints `{"ready": ...}`, waits for `{"start": ..., "end": ...}` (wall-clock seconds),
then streams poses until `end`, keeps reading for `drain` seconds more and prints one result line.
A plan with `"idle": true` only connects its clients and holds them until stdin closes. A `wss://` URL is
reached over TLS, trusting the PEM certificate of `"ca_file"` too when the plan names one (a server's
self-signed certificate).

Protocols (`plan["protocol"]`): `json` and `binary` speak Shoal protocol v1 on `/ws` (binary: the
`shoal.v1.bin` subprotocol); `broadcast` speaks the ws-broadcast dialect (`/broadcast/<room>`), where
every pose is its own message relayed to every connection of the room, the sender's included, and
carries its sender's index as `id` since that dialect has no ids of its own. `colyseus` speaks Colyseus 0.16
to the `colyseus` peer's relay room as its client (colyseus.js 0.16) does: a seat is reserved over HTTP
(`POST /matchmake/joinOrCreate/relay`, body `{"room": ROOM}`, beside `/ws`), the WebSocket opens
`/<processId>/<roomId>?sessionId=<sessionId>` from the answer, and the client confirms the server's JOIN_ROOM
with its own; a pose is a ROOM_DATA message of type "pose" whose message is the ws-broadcast pose's JSON text
as a msgpack string, and every ROOM_DATA that arrives is another member's pose (the relay excludes the sender,
so there is no echo). There too a client's id is its index; an ERROR or LEAVE_ROOM message is reported.

Each pose carries its sender's sequence number as the head's x position in millimetres (`seq / 1000`
metres: an avatar walking along x; exact in both codecs) and its send time in `t` (ms since the epoch),
so a receiver can tell which poses of which sender reached it and how late. A client stands at the
`z` its plan gives (the orchestrator spreads clients out to exercise interest management). Receivers
keep, per sender, a bit set of the sequence numbers they saw; the orchestrator compares those sets.

The process is bounded in time: it exits on EOF from stdin before the start, and `SIGALRM` ends it
if a run overruns its plan by `HARD_MARGIN_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import ssl
import struct
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import msgspec

from shoal.protocol import binary as wire
from shoal.protocol.messages import Pose, Transform

HARD_MARGIN_S = 30
"""Seconds past the planned end (or past the ready timeout) after which SIGALRM kills the loader."""

CONNECT_CONCURRENCY = 32
"""Handshakes in flight at once per loader: enough to connect hundreds of clients in a second or two
without a SYN burst beyond the server's backlog."""

JSON_POSE = (
    b'{"type":"pose",'
    b'"head":{"pos":[%.3f,1.6,%.3f],"rot":[0.0,0.0,0.0,1.0]},'
    b'"left":{"pos":[-0.3,1.1,-0.3],"rot":[0.0,0.0,0.0,1.0]},'
    b'"right":{"pos":[0.3,1.1,-0.3],"rot":[0.0,0.7071067811865476,0.0,0.7071067811865476]},'
    b'"t":%.3f}'
)
"""A head-and-two-hands pose of about 250 bytes; quaternions are unit length, as a browser sends them."""
BROADCAST_POSE = b'{"id":%d,' + JSON_POSE[1:]
IDENTITY = (0.0, 0.0, 0.0, 1.0)
HALF_SQRT2 = 0.7071067811865476

TICK_PREFIX = b'{"type":"tick"'


class _Head(msgspec.Struct):
    pos: tuple[float, float, float]


class _Pose(msgspec.Struct):
    """The part of a pose the benchmark reads; other fields are skipped by the decoder."""

    id: int
    head: _Head
    t: float | None = None


class _Tick(msgspec.Struct):
    poses: list[_Pose]


Received = Iterator[tuple[int, float, float | None]]
"""(sender id, head x in metres, send time in ms or None) of each pose in one received message."""


def json_tick_poses() -> Callable[[bytes], Received | None]:
    """The poses of a JSON tick frame, or None for any other message."""
    decode = msgspec.json.Decoder(_Tick).decode

    def read(data: bytes) -> Received | None:
        if not data.startswith(TICK_PREFIX):
            return None
        return ((pose.id, pose.head.pos[0], pose.t) for pose in decode(data).poses)

    return read


_ENTRY = struct.Struct("<IB")
_AGE = struct.Struct("<i")
_HEAD_X = struct.Struct("<Hb")
_WIDE_X = struct.Struct("<d")
_TICK = struct.Struct("<BBIdH")
_T = struct.Struct("<d")


def binary_tick_poses(data: bytes) -> Received | None:
    """The poses of a binary tick frame, reading only id, head x and t and skipping the rest by length
    (a full `wire.decode_tick` costs the loader more CPU than the server spends on the pose)."""
    if data[0] != wire.TAG_TICK:
        return None
    _tag, _flags, _seq, tick_t, count = _TICK.unpack_from(data)
    offset = _TICK.size
    poses = []
    for _ in range(count):
        member_id, flags = _ENTRY.unpack_from(data, offset)
        offset += 5
        t = None
        if flags & wire.HAS_T:
            t = tick_t - _AGE.unpack_from(data, offset)[0] / wire.AGE_SCALE
            offset += 4
        if flags & wire.HEAD_WIDE:
            x = _WIDE_X.unpack_from(data, offset)[0]
            offset += 24 + 6
        else:
            low, high = _HEAD_X.unpack_from(data, offset)
            x = (high << 16 | low) / wire.HEAD_SCALE
            offset += 9 + 6
        for present, wide in ((wire.LEFT, wire.LEFT_WIDE), (wire.RIGHT, wire.RIGHT_WIDE)):
            if flags & present:
                offset += (24 if flags & wide else 6) + 6
        poses.append((member_id, x, t))
    return iter(poses)


def broadcast_poses() -> Callable[[bytes], Received | None]:
    """The one pose of a ws-broadcast message (every message is one pose, with its sender's index as id)."""
    decode = msgspec.json.Decoder(_Pose).decode

    def read(data: bytes | str) -> Received | None:
        pose = decode(data)
        return iter(((pose.id, pose.head.pos[0], pose.t),))

    return read


COLYSEUS_MATCHMAKE_PATH = "/matchmake/joinOrCreate/relay"
"""Where a Colyseus 0.16 client reserves a seat in a room of type "relay" (`client.joinOrCreate("relay", ...)`)."""
JOIN_ROOM, ERROR, LEAVE_ROOM, ROOM_DATA = 10, 11, 12, 13
"""Colyseus 0.16's message codes (`Protocol` of @colyseus/core) that the loaders act on: a message's first byte."""
COLYSEUS_SILENT = frozenset({JOIN_ROOM, 14, 15, 17})
"""Codes of messages that are neither poses nor errors: JOIN_ROOM, ROOM_STATE, ROOM_STATE_PATCH, ROOM_DATA_BYTES."""
COLYSEUS_POSE_TYPE = "pose"
COLYSEUS_POSE_PREFIX = bytes((ROOM_DATA, 0xA0 | len(COLYSEUS_POSE_TYPE))) + COLYSEUS_POSE_TYPE.encode()
"""How a client's pose message starts: ROOM_DATA, then its type as a fixstr; the message (msgpack) follows."""
_encode_msgpack = msgspec.msgpack.Encoder().encode
_SCHEMA_LENGTHS = {0xD9: struct.Struct("<B"), 0xDA: struct.Struct("<H"), 0xDB: struct.Struct("<I")}
_SCHEMA_INTEGERS = {0xCC: struct.Struct("<B"), 0xCD: struct.Struct("<H"), 0xCE: struct.Struct("<I")}


def colyseus_field(data: bytes, offset: int) -> tuple[str | int, int]:
    """The string or integer at `offset` of a Colyseus message's header (its type, an error's code and text), and
    the offset after it. Colyseus writes them with @colyseus/schema's `encode.string` and `encode.number`: msgpack's
    type bytes (of those, loader.c reads and so this reads fixstr, str 8/16/32, positive fixint and uint 8/16/32)
    with little-endian lengths and values. ValueError for anything else, or a field that overruns the message."""
    prefix = data[offset]
    offset += 1
    if prefix < 0x80:
        return prefix, offset
    if prefix in _SCHEMA_INTEGERS:
        layout = _SCHEMA_INTEGERS[prefix]
        return layout.unpack_from(data, offset)[0], offset + layout.size
    if 0xA0 <= prefix <= 0xBF:
        length = prefix & 0x1F
    elif prefix in _SCHEMA_LENGTHS:
        layout = _SCHEMA_LENGTHS[prefix]
        length = layout.unpack_from(data, offset)[0]
        offset += layout.size
    else:
        raise ValueError(f"no string or integer at byte {offset - 1} (0x{prefix:02x})")
    if offset + length > len(data):
        raise ValueError(f"a string of {length} bytes at byte {offset} overruns the message")
    return data[offset : offset + length].decode(), offset + length


def colyseus_pose_message(pose: bytes) -> bytes:
    """The ROOM_DATA message a Colyseus client sends a pose's JSON text in: type "pose", the text as a msgpack
    string (`room.send("pose", text)` of colyseus.js)."""
    return COLYSEUS_POSE_PREFIX + _encode_msgpack(pose.decode())


def colyseus_poses() -> Callable[[bytes], Received | None]:
    """The one pose of a Colyseus ROOM_DATA message (type "pose", its message the ws-broadcast pose's JSON text as
    a msgpack string), read as `broadcast_poses` reads that text; None for any other message."""
    read_text = broadcast_poses()
    decode_message = msgspec.msgpack.Decoder(str).decode

    def read(data: bytes) -> Received | None:
        if not data or data[0] != ROOM_DATA:
            return None
        kind, offset = colyseus_field(data, 1)
        if kind != COLYSEUS_POSE_TYPE:
            raise ValueError(f"a ROOM_DATA message of type {kind!r}, not {COLYSEUS_POSE_TYPE!r}")
        return read_text(decode_message(data[offset:]))

    return read


def colyseus_error(data: bytes) -> str | None:
    """What a Colyseus message that is no pose reports: an ERROR's "CODE: MESSAGE", a note for LEAVE_ROOM, None for
    the others of `COLYSEUS_SILENT`; ValueError for an empty message or an unknown code."""
    if not data:
        raise ValueError("an empty message")
    if data[0] == ERROR:
        code, offset = colyseus_field(data, 1)
        message = colyseus_field(data, offset)[0] if offset < len(data) else ""
        return f"{code}: {message}"
    if data[0] == LEAVE_ROOM:
        return "LEAVE_ROOM: the server asked the client to leave the room"
    if data[0] in COLYSEUS_SILENT:
        return None
    raise ValueError(f"an unknown Colyseus message code {data[0]}")


def pose_template(z: float) -> bytes:
    """The binary pose frame a client standing at `z` sends, with t = 0 and head x = 0: senders patch the
    bytes of `t` (offset 2, float64) and of the head's x (offset 10, int24) into it (see `pose_frame`)."""
    return wire.encode_pose(_avatar(0.0, z))


def _avatar(x: float, z: float) -> Pose:
    """The benchmark's avatar: head at (x, 1.6, z), hands in front at hip height, a timestamp."""
    return Pose(
        head=Transform((x, 1.6, z), IDENTITY),
        left=Transform((x - 0.3, 1.1, z - 0.3), IDENTITY),
        right=Transform((x + 0.3, 1.1, z - 0.3), (0.0, HALF_SQRT2, 0.0, HALF_SQRT2)),
        t=0.0,
    )


class Window:
    """The measurement window and what the receivers of one loader counted inside it."""

    def __init__(self, start: float, end: float, latency_bin_ms: float) -> None:
        self.start = start
        self.end = end
        self.latency_bin_ms = latency_bin_ms
        self.deliveries = 0
        self.duplicates = 0
        self.latency_bins: Counter[int] = Counter()


RECORD_DELAY_S = 0.005
"""How long a received message waits, stamped, before it is parsed and counted. A tick reaches all of a loader's
clients at once; parsing each as it is read would add the parsing of the frames read before it (about 10 ms for
100 clients) to its latency: the loader's cost, not the server's."""


class Inbox:
    """Received messages, stamped when read, parsed and counted in batches `RECORD_DELAY_S` later."""

    def __init__(self, window: Window) -> None:
        self.window = window
        self._pending: list[tuple[BenchClient, float, bytes]] = []
        self._scheduled = False

    def put(self, client: BenchClient, received_at: float, data: bytes) -> None:
        self._pending.append((client, received_at, data))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_later(RECORD_DELAY_S, self.flush)

    def flush(self) -> None:
        """Parse and count everything received so far."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        window = self.window
        for client, received_at, data in pending:
            try:
                client.record(data, received_at, window)
            except Exception as exc:  # a frame the loader cannot read: the run reports it
                client.errors.append(f"unreadable message: {exc!r}")


class BenchClient:
    """One simulated avatar: sends poses at a fixed rate and records the poses of the others."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, member_id: int, room: str, protocol: str, z: float) -> None:
        self.ws = ws
        self.id = member_id
        self.room = room
        self.protocol = protocol
        self.z = z
        self.seq = 0
        self.first_seq_in_window: int | None = None
        self.last_seq_in_window: int | None = None
        self.seen: dict[int, int] = {}
        """Sender id -> bit set of the sequence numbers received from it."""
        self.close_code: int | None = None
        self.errors: list[str] = []
        self._binary_template = bytearray(pose_template(z))
        self._read_poses: Callable[[bytes], Received | None]
        if protocol == "binary":
            self._read_poses = binary_tick_poses
        elif protocol == "broadcast":
            self._read_poses = broadcast_poses()
        elif protocol == "colyseus":
            self._read_poses = colyseus_poses()
        else:
            self._read_poses = json_tick_poses()

    def pose_frame(self, now: float) -> tuple[bytes, aiohttp.WSMsgType]:
        """This client's next pose in its protocol, and the frame type it travels in."""
        x, t = self.seq / 1000.0, now * 1000.0
        if self.protocol == "binary":
            # Only t and the head's x change, and the hands are relative to the head: patch those bytes of a
            # frame encoded once (the loader's CPU is the benchmark's noise) rather than encode every pose.
            frame = self._binary_template
            _T.pack_into(frame, 2, t)
            steps = math.floor(x * wire.HEAD_SCALE + 0.5)
            _HEAD_X.pack_into(frame, 10, steps & 0xFFFF, steps >> 16)
            return bytes(frame), aiohttp.WSMsgType.BINARY
        if self.protocol == "broadcast":
            return BROADCAST_POSE % (self.id, x, self.z, t), aiohttp.WSMsgType.TEXT
        if self.protocol == "colyseus":
            return colyseus_pose_message(BROADCAST_POSE % (self.id, x, self.z, t)), aiohttp.WSMsgType.BINARY
        return JSON_POSE % (x, self.z, t), aiohttp.WSMsgType.TEXT

    async def send_poses(self, hz: float, window: Window, go: float) -> None:
        """Send one pose every 1/hz s from `go` (plus a random phase) until the window ends.

        A loader that falls behind does not burst to catch up: the achieved rate is reported instead.
        """
        period = 1.0 / hz
        next_at = go + random.random() * period
        send_frame = self.ws.send_frame
        while next_at < window.end and not self.ws.closed:
            delay = next_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = time.time()
            if now >= window.end:
                break
            self.seq += 1
            if now >= window.start:
                if self.first_seq_in_window is None:
                    self.first_seq_in_window = self.seq
                self.last_seq_in_window = self.seq
            await send_frame(*self.pose_frame(now))
            next_at += period
            if next_at < now - period:
                next_at = now + period

    async def receive(self, inbox: Inbox) -> None:
        """Read messages until cancelled (the caller bounds it in time), each stamped as it is read and passed
        to `inbox`, which has `record` parse and count it a moment later."""
        ws = self.ws
        data_types = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)
        while True:
            message = await ws.receive()
            received_at = time.time()
            if message.type in data_types:
                inbox.put(self, received_at, message.data)
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                self.close_code = ws.close_code
                return
            elif message.type is aiohttp.WSMsgType.ERROR:
                self.errors.append(f"websocket error: {message.data!r}")
                return

    def record(self, data: bytes, received_at: float, window: Window) -> None:
        """Count the poses of one message received at `received_at` from other members (once per sender and
        sequence number), and their latency when inside the window; any other message is checked for errors."""
        poses = self._read_poses(data)
        if poses is None:
            self._on_control(data)
            return
        seen, own_id = self.seen, self.id
        in_window = window.start <= received_at < window.end
        received_ms = received_at * 1000.0
        bin_ms = window.latency_bin_ms
        for sender, x, t in poses:
            if sender == own_id:
                continue
            bit = 1 << round(x * 1000.0)
            bits = seen.get(sender, 0)
            if bits & bit:
                window.duplicates += 1  # full state resent after a skipped tick, or a far-tier refresh
                continue
            seen[sender] = bits | bit
            if in_window:
                window.deliveries += 1
                if t is not None:
                    window.latency_bins[int((received_ms - t) / bin_ms)] += 1

    def _on_control(self, data: bytes) -> None:
        if self.protocol == "colyseus":
            error = colyseus_error(data)
            if error is not None:
                self.errors.append(error)
            return
        message = msgspec.json.decode(data[1:] if self.protocol == "binary" else data)
        if message.get("type") == "error":
            self.errors.append(f"{message.get('code')}: {message.get('message')}")


async def connect(session: aiohttp.ClientSession, plan: dict[str, Any], index: int, room: str, z: float) -> BenchClient:
    """Open one WebSocket and, for Shoal's own protocol, `hello` and `join` until `joined` arrives."""
    protocol, timeout = plan["protocol"], plan["ready_timeout"]
    if protocol == "broadcast":
        url = plan["url"].rsplit("/ws", 1)[0] + "/broadcast/" + room
        ws = await session.ws_connect(url, heartbeat=None, max_msg_size=16 * 1024 * 1024, autoping=True)
        return BenchClient(ws, index, room, protocol, z)
    if protocol == "colyseus":
        ws = await join_colyseus_room(session, plan["url"], room, timeout)
        return BenchClient(ws, index, room, protocol, z)
    subprotocol = wire.SUBPROTOCOL if protocol == "binary" else "shoal.v1.json"
    ws = await session.ws_connect(
        plan["url"],
        protocols=(subprotocol,),
        heartbeat=None,
        max_msg_size=16 * 1024 * 1024,
        decode_text=False,
        timeout=aiohttp.ClientWSTimeout(ws_close=2),
    )
    try:
        if ws.protocol != subprotocol:
            raise RuntimeError(f"the server answered subprotocol {ws.protocol!r} to {subprotocol!r}")
        hello = await _request(ws, protocol, {"type": "hello", "name": f"bench {index}"}, "welcome", timeout)
        await _request(ws, protocol, {"type": "join", "room": room}, "joined", timeout)
    except BaseException:
        await ws.close()
        raise
    return BenchClient(ws, hello["id"], room, protocol, z)


async def join_colyseus_room(
    session: aiohttp.ClientSession, url: str, room: str, timeout: float
) -> aiohttp.ClientWebSocketResponse:
    """Join the Colyseus room `room` of the server whose `/ws` is `url`, as colyseus.js 0.16's `joinOrCreate`
    does: reserve a seat over HTTP, open the room's WebSocket with it, wait for the server's JOIN_ROOM and confirm
    it with a JOIN_ROOM of one byte. RuntimeError if the server refuses the seat or the join."""
    base = urlsplit(url)
    http_scheme = "https" if base.scheme == "wss" else "http"
    matchmake = urlunsplit((http_scheme, base.netloc, COLYSEUS_MATCHMAKE_PATH, "", ""))
    async with session.post(matchmake, json={"room": room}, headers={"Accept": "application/json"}) as response:
        seat = await response.json(content_type=None)
    if "error" in seat:
        raise RuntimeError(f"the seat was refused: {seat.get('code')}: {seat['error']}")
    path = f"/{seat['room']['processId']}/{seat['room']['roomId']}"
    room_url = urlunsplit((base.scheme, base.netloc, path, f"sessionId={seat['sessionId']}", ""))
    ws = await session.ws_connect(room_url, heartbeat=None, max_msg_size=16 * 1024 * 1024, autoping=True)
    try:
        deadline = time.monotonic() + timeout
        while True:
            received = await ws.receive(timeout=max(deadline - time.monotonic(), 0.001))
            if received.type is not aiohttp.WSMsgType.BINARY:
                raise RuntimeError(f"no JOIN_ROOM: the server sent {received.type.name} (close code {ws.close_code})")
            data = received.data
            if data[:1] == bytes((ERROR,)):
                raise RuntimeError(f"the join was refused: {colyseus_error(data)}")
            if data[:1] == bytes((JOIN_ROOM,)):
                break
        await ws.send_frame(bytes((JOIN_ROOM,)), aiohttp.WSMsgType.BINARY)
    except BaseException:
        await ws.close()
        raise
    return ws


async def _request(
    ws: aiohttp.ClientWebSocketResponse, protocol: str, message: dict[str, Any], answer: str, timeout: float
) -> dict[str, Any]:
    """Send `message` and read until a message of type `answer` arrives; an `error` or a close raises."""
    encoded = json.dumps(message).encode()
    if protocol == "binary":
        await ws.send_frame(bytes((wire.TAG_JSON,)) + encoded, aiohttp.WSMsgType.BINARY)
    else:
        await ws.send_frame(encoded, aiohttp.WSMsgType.TEXT)
    deadline = time.monotonic() + timeout
    while True:
        received = await ws.receive(timeout=max(deadline - time.monotonic(), 0.001))
        if received.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise RuntimeError(f"connection ended before {answer}: {received.type.name} {ws.close_code}")
        data = received.data
        if protocol == "binary":
            if data[0] != wire.TAG_JSON:
                continue  # a tick
            data = data[1:]
        decoded = msgspec.json.decode(data)
        if decoded.get("type") == answer:
            return decoded
        if decoded.get("type") == "error":
            raise RuntimeError(f"{answer} refused: {decoded.get('code')}: {decoded.get('message')}")


async def run() -> dict[str, Any]:
    """Read the plan, connect its clients, report ready, run the window, and return what was counted."""
    loop = asyncio.get_running_loop()
    orders = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(orders), sys.stdin.buffer)
    plan = json.loads(await orders.readline())
    signal.alarm(int(plan["ready_timeout"]) + HARD_MARGIN_S)
    tls = ssl.create_default_context(cafile=plan.get("ca_file"))  # used for wss:// only
    connector = aiohttp.TCPConnector(limit=0, force_close=True, ssl=tls)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect_one(index: int, room: str, z: float) -> BenchClient:
            async with gate:
                return await connect(session, plan, index, room, z)

        clients = await asyncio.wait_for(
            asyncio.gather(*(connect_one(*client) for client in plan["clients"])), plan["ready_timeout"]
        )
        _emit({"ready": True, "ids": [client.id for client in clients]})

        if plan.get("idle"):
            signal.alarm(0)  # held until the orchestrator closes stdin (it measures the server meanwhile)
            await orders.read()
            return {"idle": len(clients)}

        line = await orders.readline()
        if not line:
            raise SystemExit("loader: the orchestrator closed stdin before the start")
        times = json.loads(line)
        window = Window(times["start"], times["end"], plan["latency_bin_ms"])
        stop_at = window.end + plan["drain"]
        signal.alarm(int(stop_at - time.time()) + HARD_MARGIN_S)

        go = time.time()
        cpu_at_start: float | None = None

        async def sample_cpu_at_start() -> None:
            nonlocal cpu_at_start
            await asyncio.sleep(max(window.start - time.time(), 0.0))
            cpu_at_start = _cpu_seconds()

        sampler = loop.create_task(sample_cpu_at_start())
        senders = [loop.create_task(client.send_poses(plan["hz"], window, go)) for client in clients]
        inbox = Inbox(window)
        receivers = [loop.create_task(client.receive(inbox)) for client in clients]
        await asyncio.gather(*senders, sampler)
        cpu_in_window = _cpu_seconds() - (cpu_at_start or 0.0)
        await asyncio.wait(receivers, timeout=max(stop_at - time.time(), 0.0))
        for receiver in receivers:
            receiver.cancel()
        inbox.flush()
        failures = [
            repr(task.exception()) for task in receivers if task.done() and not task.cancelled() and task.exception()
        ]
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*(client.ws.close() for client in clients)), 2.0)

    return {
        "cpu_s": cpu_in_window,
        "deliveries": window.deliveries,
        "duplicates": window.duplicates,
        "latency_bins": dict(window.latency_bins),
        "senders": {
            client.id: [client.room, client.first_seq_in_window, client.last_seq_in_window] for client in clients
        },
        "receivers": {
            client.id: [client.room, {sender: hex(bits) for sender, bits in client.seen.items()}] for client in clients
        },
        "positions": {client.id: client.z for client in clients},
        "closed": {client.id: client.close_code for client in clients if client.close_code is not None},
        "errors": [error for client in clients for error in client.errors] + failures,
    }


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _emit(message: dict[str, Any]) -> None:
    """One JSON line on stdout, written in full: results run to megabytes, and a pipe that the event loop
    left non-blocking would otherwise take only what fits in its buffer, silently."""
    data = memoryview((json.dumps(message) + "\n").encode())
    os.set_blocking(1, True)
    while data:
        data = data[os.write(1, data) :]


def main() -> None:
    try:
        import uvloop  # optional: 25-40 % less CPU on the client read path
    except ImportError:
        result = asyncio.run(run())
    else:
        result = uvloop.run(run())
    _emit({"result": result})


if __name__ == "__main__":
    main()
