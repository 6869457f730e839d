"""One load-generator process of the fan-out benchmark (`bench/fanout.py` starts several).

It speaks to the orchestrator through JSON lines: it reads its plan from stdin, connects its clients
(hello, join), prints `{"ready": ...}`, waits for `{"start": ..., "end": ...}` (wall-clock seconds),
then streams poses until `end`, keeps reading for `drain` seconds more and prints one result line.

Each pose carries its sender's sequence number as the head's x position in millimetres (`seq / 1000`
metres: an avatar walking along x) and its send time in `t` (ms since the epoch), so a receiver can
tell which poses of which sender reached it and how late. Receivers keep, per sender, a bit set of the
sequence numbers they saw; the orchestrator compares those sets across the room to count losses.

The process is bounded in time: it exits on EOF from stdin before the start, and `SIGALRM` ends it
if a run overruns its plan by `HARD_MARGIN_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from typing import Any

import aiohttp
import msgspec

HARD_MARGIN_S = 30
"""Seconds past the planned end (or past the ready timeout) after which SIGALRM kills the loader."""

CONNECT_CONCURRENCY = 32
"""Handshakes in flight at once per loader: enough to connect hundreds of clients in a second or two
without a SYN burst beyond the server's backlog."""

POSE_TEMPLATE = (
    b'{"type":"pose",'
    b'"head":{"pos":[%.3f,1.6,0.0],"rot":[0.0,0.0,0.0,1.0]},'
    b'"left":{"pos":[-0.3,1.1,-0.3],"rot":[0.0,0.0,0.0,1.0]},'
    b'"right":{"pos":[0.3,1.1,-0.3],"rot":[0.0,0.7071067811865476,0.0,0.7071067811865476]},'
    b'"t":%.3f}'
)
"""A head-and-two-hands pose of about 250 bytes; quaternions are unit length, as a browser sends them."""

TICK_PREFIX = b'{"type":"tick"'


class _Head(msgspec.Struct):
    pos: tuple[float, float, float]


class _TickPose(msgspec.Struct):
    id: int
    head: _Head
    t: float | None = None


class _Tick(msgspec.Struct):
    """The part of a `tick` frame the benchmark reads; other fields are skipped by the decoder."""

    poses: list[_TickPose]


class Window:
    """The measurement window and what the receivers of one loader counted inside it."""

    def __init__(self, start: float, end: float, latency_bin_ms: float) -> None:
        self.start = start
        self.end = end
        self.latency_bin_ms = latency_bin_ms
        self.deliveries = 0
        self.duplicates = 0
        self.latency_bins: Counter[int] = Counter()


class BenchClient:
    """One simulated avatar: sends poses at a fixed rate and records the poses of the others."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, member_id: int, room: str) -> None:
        self.ws = ws
        self.id = member_id
        self.room = room
        self.seq = 0
        self.first_seq_in_window: int | None = None
        self.last_seq_in_window: int | None = None
        self.seen: dict[int, int] = {}
        """Sender id -> bit set of the sequence numbers received from it."""
        self.close_code: int | None = None
        self.errors: list[str] = []

    async def send_poses(self, hz: float, window: Window, go: float) -> None:
        """Send one pose every 1/hz s from `go` (plus a random phase) until the window ends.

        A loader that falls behind does not burst to catch up: the achieved rate is reported instead.
        """
        period = 1.0 / hz
        next_at = go + random.random() * period
        send_frame, text = self.ws.send_frame, aiohttp.WSMsgType.TEXT
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
            await send_frame(POSE_TEMPLATE % (self.seq / 1000.0, now * 1000.0), text)
            next_at += period
            if next_at < now - period:
                next_at = now + period

    async def receive(self, window: Window) -> None:
        """Read frames until cancelled (the caller bounds it in time), recording every pose from another member."""
        decode_tick = msgspec.json.Decoder(_Tick).decode
        seen, own_id, ws = self.seen, self.id, self.ws
        bin_ms = window.latency_bin_ms
        while True:
            message = await ws.receive()
            if message.type is not aiohttp.WSMsgType.TEXT:
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    self.close_code = ws.close_code
                    return
                if message.type is aiohttp.WSMsgType.ERROR:
                    self.errors.append(f"websocket error: {message.data!r}")
                    return
                continue
            data = message.data
            if not data.startswith(TICK_PREFIX):
                self._on_control(msgspec.json.decode(data))
                continue
            now = time.time()
            in_window = window.start <= now < window.end
            now_ms = now * 1000.0
            for pose in decode_tick(data).poses:
                sender = pose.id
                if sender == own_id:
                    continue
                bit = 1 << round(pose.head.pos[0] * 1000.0)
                bits = seen.get(sender, 0)
                if bits & bit:
                    window.duplicates += 1  # full state resent after a skipped tick
                    continue
                seen[sender] = bits | bit
                if in_window:
                    window.deliveries += 1
                    if pose.t is not None:
                        window.latency_bins[int((now_ms - pose.t) / bin_ms)] += 1

    def _on_control(self, message: dict[str, Any]) -> None:
        if message.get("type") == "error":
            self.errors.append(f"{message.get('code')}: {message.get('message')}")


async def connect(session: aiohttp.ClientSession, url: str, room: str, name: str, timeout: float) -> BenchClient:
    """Open one WebSocket, `hello`, `join` and return once the server has answered `joined`."""
    ws = await session.ws_connect(
        url,
        protocols=("shoal.v1.json",),
        heartbeat=None,
        max_msg_size=16 * 1024 * 1024,
        decode_text=False,
        timeout=aiohttp.ClientWSTimeout(ws_close=2),
    )
    try:
        await ws.send_frame(json.dumps({"type": "hello", "name": name}).encode(), aiohttp.WSMsgType.TEXT)
        welcome = await _expect(ws, "welcome", timeout)
        await ws.send_frame(json.dumps({"type": "join", "room": room}).encode(), aiohttp.WSMsgType.TEXT)
        await _expect(ws, "joined", timeout)
    except BaseException:
        await ws.close()
        raise
    return BenchClient(ws, welcome["id"], room)


async def _expect(ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float) -> dict[str, Any]:
    """Read until a message of type `kind` arrives; an `error` or a close raises RuntimeError."""
    deadline = time.monotonic() + timeout
    while True:
        message = await ws.receive(timeout=max(deadline - time.monotonic(), 0.001))
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"connection ended before {kind}: {message.type.name} {ws.close_code}")
        decoded = msgspec.json.decode(message.data)
        if decoded.get("type") == kind:
            return decoded
        if decoded.get("type") == "error":
            raise RuntimeError(f"{kind} refused: {decoded.get('code')}: {decoded.get('message')}")


async def run() -> dict[str, Any]:
    """Read the plan, connect its clients, report ready, run the window, and return what was counted."""
    loop = asyncio.get_running_loop()
    orders = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(orders), sys.stdin.buffer)
    plan = json.loads(await orders.readline())
    signal.alarm(int(plan["ready_timeout"]) + HARD_MARGIN_S)
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def connect_one(index: int, room: str) -> BenchClient:
            async with gate:
                return await connect(session, plan["url"], room, f"bench {index}", plan["ready_timeout"])

        clients = await asyncio.wait_for(
            asyncio.gather(*(connect_one(index, room) for index, room in plan["clients"])), plan["ready_timeout"]
        )
        _emit({"ready": True, "ids": [client.id for client in clients]})

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
        receivers = [loop.create_task(client.receive(window)) for client in clients]
        await asyncio.gather(*senders, sampler)
        cpu_in_window = _cpu_seconds() - (cpu_at_start or 0.0)
        await asyncio.wait(receivers, timeout=max(stop_at - time.time(), 0.0))
        for receiver in receivers:
            receiver.cancel()
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
        "closed": {client.id: client.close_code for client in clients if client.close_code is not None},
        "errors": [error for client in clients for error in client.errors] + failures,
    }


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


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
