"""The fan-out benchmark's native loader (`src/shoal/bench/loader.c`, `--loader c`): tiny real runs.

It checks that the C loader, built on the spot, connects its clients, streams their poses and counts what
the others receive as `shoal.bench.loader` does: a whole `bench/fanout.py` run reports every pose delivered
without loss, and one C loader and one Python loader side by side answer with results of the same shape
and about the same counts. It asserts no speed; figures come from full-size runs (docs/benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from shoal.bench.fanout import (
    LATENCY_BIN_MS,
    Loader,
    LoaderProgram,
    count_losses,
    loader_program,
    measure_idle_connections,
    native_order,
    plan_clients,
    started_server,
)
from shoal.bench.loader import pose_template
from shoal.protocol import binary as wire
from support.bench import report_of

FANOUT = Path(__file__).parents[1] / "bench" / "fanout.py"
RUN_TIMEOUT_S = 90
CLIENTS, ROOM_SIZE, HZ, DURATION_S = 10, 5, 20, 2.0


@pytest.fixture
def native(require: Callable[[bool, str], None]) -> Iterator[LoaderProgram]:
    """loader.c, built; the test is skipped without a C compiler (failed under CI=true)."""
    require(shutil.which("cc") is not None or shutil.which("gcc") is not None, "no C compiler (cc or gcc)")
    with loader_program("c", ["binary"]) as program:
        yield program


def test_a_tiny_run_with_the_c_loader_delivers_every_pose_without_loss(native: LoaderProgram) -> None:
    args = [
        "--protocol", "binary", "--loader", "c", "--clients", str(CLIENTS), "--room-size", str(ROOM_SIZE),
        "--hz", str(HZ), "--loaders", "2", "--warmup", "1", "--duration", str(DURATION_S),
    ]  # fmt: skip
    report = report_of("fanout.py", *args, timeout=RUN_TIMEOUT_S)
    assert report["params"]["loader"] == "c" and report["params"]["protocol"] == "binary"
    expected = CLIENTS * HZ * (ROOM_SIZE - 1) * DURATION_S  # every pose to the other members of its room
    assert 0.85 <= report["deliveries"] / expected <= 1.05, report  # a few per cent coalesce (send jitter)
    assert report["loss"]["lost"] == 0 and report["loss_pct"] == 0.0
    assert abs(report["loss"]["poses_sent"] - CLIENTS * HZ * DURATION_S) <= CLIENTS  # one more or less at an edge
    assert report["loss"]["poses_sent"] == report["loss"]["poses_relayed"] + report["loss"]["coalesced"]
    assert report["errors"] == [] and report["closed"] == {}
    assert report["rooms_members"] == [ROOM_SIZE]
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 1000
    assert report["loaders_cores_used"] >= 0 and report["us_per_delivered_pose"] > 0

    started = [report["server"]["pid"], *report["loader_pids"]]
    assert all(not psutil.pid_exists(pid) for pid in started), "the server or a loader is still running"


def test_the_c_loader_answers_as_the_python_loader_does(native: LoaderProgram) -> None:
    """A C loader and a Python loader with three clients each in one room: same answers, same poses seen."""
    orders = {"protocol": "binary", "ready_timeout": 10.0, "hz": HZ, "drain": 0.5, "latency_bin_ms": LATENCY_BIN_MS}
    python_plan, c_plan = plan_clients(6, 6, 2, f"native-{time.time_ns()}", spread=0.5)
    with started_server(tick_rate=20.0, max_members=64, loop="auto") as target:
        loaders: dict[str, Loader] = {}
        try:
            for kind, program, plan in (("python", LoaderProgram(), python_plan), ("c", native, c_plan)):
                loaders[kind] = program.start({**orders, "url": target.ws_url, "clients": plan})
            deadline = time.monotonic() + 20.0
            ready = {kind: loader.receive(deadline) for kind, loader in loaders.items()}
            start = time.time() + 0.5
            for loader in loaders.values():
                loader.send({"start": start, "end": start + 1.0})
            results = {kind: loader.receive(deadline)["result"] for kind, loader in loaders.items()}
        finally:
            for loader in loaders.values():
                loader.stop()

    assert ready["c"].keys() == ready["python"].keys() == {"ready", "ids"}
    assert ready["c"]["ready"] is True and len(set(ready["c"]["ids"])) == 3
    python, c = results["python"], results["c"]
    assert _shape(c) == _shape(python)
    assert c["errors"] == [] and c["closed"] == {}
    assert list(c["senders"]) == [str(member) for member in ready["c"]["ids"]]
    assert sorted(c["positions"].values()) == [1.5, 2.0, 2.5]  # places 3 to 5 of the room, 0.5 m apart
    expected = 3 * HZ * 5 * 1.0  # three senders' poses for a second, each to the five others
    for result in (python, c):
        assert 0.8 <= result["deliveries"] / expected <= 1.1, result["deliveries"]
        assert sum(result["latency_bins"].values()) == result["deliveries"]

    senders, receivers = {**python["senders"], **c["senders"]}, {**python["receivers"], **c["receivers"]}
    assert count_losses(senders, receivers).lost == 0
    for sender in senders:  # every receiver, whichever its loader, saw the same poses of each sender
        seen = {bits[sender] for receiver, (_room, bits) in receivers.items() if receiver != sender}
        assert len(seen) == 1, (sender, seen)


def _shape(value: Any) -> Any:
    """The structure of a loader result: dict keys (but for member ids, bin indexes: shown as `*`) and the
    types of the values."""
    if isinstance(value, dict):
        if value and all(key.lstrip("-").isdigit() for key in value):
            return {"*": _shape(next(iter(value.values())))}
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def test_the_c_loader_holds_idle_clients(native: LoaderProgram) -> None:
    with started_server(tick_rate=20.0, max_members=64, loop="auto") as target:
        idle = measure_idle_connections(target, connections=6, loaders=2, room_size=3, program=native)
    assert idle["connections"] == 6 and idle["rss_after_mb"] > 0


def test_the_c_loader_speaks_only_the_binary_protocol() -> None:
    run = subprocess.run(
        [sys.executable, str(FANOUT), "--protocol", "json", "--loader", "c"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode != 0 and "binary protocol only" in run.stderr


# ---- the WebSocket details, against a scripted server ----------------------------------------------------------

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OWN_ID = 1


def _server_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """An unmasked server frame, with the shortest length encoding (7, 16 or 64 bits)."""
    if len(payload) < 126:
        header = struct.pack("!BB", 0x80 | opcode, len(payload))
    elif len(payload) < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 126, len(payload))
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, len(payload))
    return header + payload


def _control(message: dict[str, Any], size: int | None = None) -> bytes:
    """A TAG_JSON frame of `message`, padded with spaces to a payload of `size` bytes."""
    payload = bytes((wire.TAG_JSON,)) + json.dumps(message).encode()
    return _server_frame(payload.ljust(size or len(payload), b" "))


def _tick(entries: list[tuple[int, int]]) -> bytes:
    """A tick frame with a full avatar (t, head, both hands) per (member id, sequence number) entry."""
    template = pose_template(0.0)
    flags, body = template[1], template[10:]
    tick_t = time.time() * 1000.0
    parts = [struct.pack("<BBIdH", wire.TAG_TICK, 0, 1, tick_t, len(entries))]
    for member, seq in entries:
        steps = seq * 10  # the head's x is seq / 1000 m, in 0.1 mm steps
        parts.append(struct.pack("<IBiHb", member, flags, 0, steps & 0xFFFF, steps >> 16) + body[3:])
    return _server_frame(b"".join(parts))


async def _client_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One client frame (opcode, unmasked payload); it must be masked."""
    first, second = await reader.readexactly(2)
    assert second & 0x80, "a client frame must be masked"
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4)
    payload = await reader.readexactly(length)
    return first & 0x0F, bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


async def test_the_c_loader_reads_every_frame_layout_in_any_split(native: LoaderProgram) -> None:
    """A scripted server: upgrade, welcome and joined, then (once poses arrive) frames with 7-, 16- and
    64-bit lengths (126 and 127 bytes among them) written in pieces of random sizes, a duplicate, an own
    entry, an error, a ping (answered) and a close (recorded)."""
    script = b"".join([
        _control({"type": "member_joined", "note": "padded"}, size=126),
        _control({"type": "member_joined", "note": "padded"}, size=127),
        _tick([(1000, 1), (OWN_ID, 1)]),
        _tick([(2000 + i, 5) for i in range(1400)]),  # 67,216 bytes: a 64-bit length
        _server_frame(b"hi", opcode=0x9),
        _tick([(1000, 1)]),  # a duplicate
        _control({"type": "error", "code": "bad_thing", "message": "nope"}),
        _server_frame(struct.pack("!H", 4001), opcode=0x8),
    ])  # fmt: skip
    pong: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        assert b"Sec-WebSocket-Protocol: shoal.v1.bin\r\n" in request
        key = re.search(rb"Sec-WebSocket-Key: (\S+)\r\n", request)
        assert key and len(base64.b64decode(key.group(1))) == 16
        accept = base64.b64encode(hashlib.sha1(key.group(1) + WEBSOCKET_GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Protocol: shoal.v1.bin\r\n\r\n"
        )
        for expected, answer in (("hello", {"type": "welcome", "id": OWN_ID}), ("join", {"type": "joined"})):
            opcode, payload = await _client_frame(reader)
            assert opcode == 0x2 and payload[0] == wire.TAG_JSON and json.loads(payload[1:])["type"] == expected
            writer.write(_control(answer))
        while (await _client_frame(reader))[1][0] != wire.TAG_POSE:
            pass  # until the first pose: the window has started
        offset = 0
        while offset < len(script):
            size = random.randint(1, 3000)
            writer.write(script[offset : offset + size])
            offset += size
            await writer.drain()
            await asyncio.sleep(0.0005)
        while True:
            opcode, payload = await _client_frame(reader)
            if opcode == 0xA:
                pong.append(payload)
            if opcode == 0x8:
                break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    plan = {"url": f"ws://127.0.0.1:{port}/ws", "clients": [[0, "room", 0.0]], "ready_timeout": 5.0, "hz": 20.0}
    assert native.executable is not None
    loader = await asyncio.create_subprocess_exec(
        str(native.executable), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert loader.stdin is not None and loader.stdout is not None
    try:
        loader.stdin.write(native_order({**plan, "drain": 0.5, "latency_bin_ms": LATENCY_BIN_MS}))
        ready = json.loads(await asyncio.wait_for(loader.stdout.readline(), 10))
        assert ready == {"ready": True, "ids": [OWN_ID]}
        start = time.time()
        loader.stdin.write(native_order({"start": start, "end": start + 5.0}))
        result = json.loads(await asyncio.wait_for(loader.stdout.readline(), 15))["result"]
    finally:
        if loader.returncode is None:
            loader.kill()
        await loader.wait()
        server.close()

    seen = result["receivers"][str(OWN_ID)][1]
    assert seen == {"1000": hex(1 << 1), **{str(2000 + i): hex(1 << 5) for i in range(1400)}}
    assert result["deliveries"] == 1401 and result["duplicates"] == 1
    assert sum(result["latency_bins"].values()) == 1401
    assert result["closed"] == {str(OWN_ID): 4001}
    assert result["errors"] == ["bad_thing: nope"]
    assert pong == [b"hi"]
    room, first, last = result["senders"][str(OWN_ID)]
    assert room == "room" and 1 <= first <= last
