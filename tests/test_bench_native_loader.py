"""The fan-out benchmark's native loader (`src/shoal/bench/loader.c`, `--loader c`): tiny real runs.

It checks that the C loader, built on the spot, connects its clients, streams their poses and counts what
the others receive as `shoal.bench.loader` does, in each of its protocols (binary, JSON, and the ws-broadcast
dialect, against Shoal and against a peer relay, and Colyseus 0.16's against the Colyseus peer): a whole
`bench/fanout.py` run reports every pose delivered without loss (over TLS too, against Shoal started with
`--https`, where loader.c is built with OpenSSL), and one C loader and one Python loader side by side answer with
results of the same shape and see the same poses. A certificate it cannot verify fails its run, and a build without
TLS is refused any run over TLS. Scripted servers check the WebSocket
details, the JSON scanner (keys of other sections that look like a pose's, frames split across reads,
malformed messages) and Colyseus's seat request, join and framing (answers chunked or of a Content-Length,
poses split across reads, errors, every message read as the Python loader reads it). It asserts no speed;
figures come from full-size runs (docs/benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import Any

import msgspec
import psutil
import pytest

from shoal.bench import fanout
from shoal.bench.fanout import (
    LATENCY_BIN_MS,
    BenchError,
    Loader,
    LoaderProgram,
    Target,
    count_losses,
    loader_program,
    measure_idle_connections,
    native_order,
    peer_command,
    plan_clients,
    run_benchmark,
    started_server,
)
from shoal.bench.loader import (
    BROADCAST_POSE,
    COLYSEUS_POSE_PREFIX,
    ERROR,
    JOIN_ROOM,
    JSON_POSE,
    LEAVE_ROOM,
    ROOM_DATA,
    BenchClient,
    Inbox,
    Window,
    colyseus_pose_message,
    pose_template,
)
from shoal.protocol import binary as wire
from shoal.protocol.codec import JSON
from shoal.protocol.messages import IDENTITY, Entity, MemberJoints, MemberPose, Tick, Transform
from shoal.tls import self_signed_certificate, server_context
from support.bench import assert_poses_accounted, report_of

RUN_TIMEOUT_S = 90
CLIENTS, ROOM_SIZE, HZ, DURATION_S = 10, 5, 20, 2.0
PROTOCOLS = ("binary", "json", "broadcast")


@pytest.fixture
def native(require: Callable[[bool, str], None]) -> Iterator[LoaderProgram]:
    """loader.c, built; the test is skipped without a C compiler (failed under CI=true)."""
    require(shutil.which("cc") is not None or shutil.which("gcc") is not None, "no C compiler (cc or gcc)")
    with loader_program("c", PROTOCOLS) as program:
        yield program


@functools.cache
def _openssl_builds() -> bool:
    """Whether the C compiler finds OpenSSL's headers and libraries (Debian: libssl-dev), so that loader.c should
    build with TLS: asked of a program of its own, so that a build of loader.c that fails is not taken for this."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return False
    program = "#include <openssl/ssl.h>\nint main(void) { return OPENSSL_init_ssl(0, NULL) != 1; }\n"
    with tempfile.TemporaryDirectory() as scratch:
        command = [compiler, "-x", "c", "-o", os.path.join(scratch, "probe"), "-", "-lssl", "-lcrypto"]
        return subprocess.run(command, input=program, capture_output=True, text=True, check=False).returncode == 0


def _require_tls(native: LoaderProgram, require: Callable[[bool, str], None]) -> None:
    """Skip the test without OpenSSL's headers (failed under CI=true); with them, loader.c must have built with TLS."""
    require(_openssl_builds(), "cc finds no OpenSSL headers and libraries (Debian: libssl-dev): loader.c has no TLS")
    assert native.tls, "OpenSSL builds, but fanout's build of loader.c with TLS failed"


@pytest.mark.parametrize(
    ("protocol", "peer", "https"),
    [
        ("binary", None, False),
        ("json", None, False),
        ("broadcast", None, False),
        ("broadcast", "websockets-relay", False),
        ("colyseus", "colyseus", False),
        ("binary", None, True),
        ("json", None, True),
    ],
)
def test_a_tiny_run_with_the_c_loader_delivers_every_pose_without_loss(
    native: LoaderProgram, require: Callable[[bool, str], None], protocol: str, peer: str | None, https: bool
) -> None:
    """`https`: over TLS (wss://), Shoal serving its self-signed certificate, which the loaders trust."""
    args = [
        "--protocol", protocol, "--loader", "c", "--clients", str(CLIENTS), "--room-size", str(ROOM_SIZE),
        "--hz", str(HZ), "--loaders", "2", "--warmup", "1", "--duration", str(DURATION_S),
    ]  # fmt: skip
    if peer:
        try:
            peer_command(peer)
        except BenchError as missing:  # no websockets library, node or `npm ci`: skipped here, failed under CI=true
            require(False, str(missing))
        args += ["--peer", peer]
    if https:
        _require_tls(native, require)
        args.append("--https")
    report = report_of("fanout.py", *args, timeout=RUN_TIMEOUT_S)
    params = report["params"]
    assert (params["loader"], params["protocol"], params["server"]) == ("c", protocol, peer or "shoal")
    assert params["tls"] is https and params["server_url"].startswith("https://" if https else "http://")
    ticks = protocol in ("binary", "json")  # a relay sends every pose on at once: nothing coalesces
    assert_poses_accounted(report, CLIENTS, HZ, DURATION_S, relay=not ticks)
    assert report["errors"] == [] and report["closed"] == {}
    assert report["rooms_members"] == ([ROOM_SIZE] if ticks else [])  # no /api/rooms for a relay's rooms
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 1000
    assert report["loaders_cores_used"] >= 0 and report["us_per_delivered_pose"] > 0

    started = [report["server"]["pid"], *report["loader_pids"]]
    assert all(not psutil.pid_exists(pid) for pid in started), "the server or a loader is still running"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_c_loader_answers_as_the_python_loader_does(native: LoaderProgram, protocol: str) -> None:
    """A C loader and a Python loader with three clients each in one room: same answers, same poses seen."""
    orders = {"protocol": protocol, "ready_timeout": 10.0, "hz": HZ, "drain": 0.5, "latency_bin_ms": LATENCY_BIN_MS}
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
    if protocol == "broadcast":  # the dialect has no ids: a client's is its index in the plan
        assert ready["python"]["ids"] == [0, 1, 2] and ready["c"]["ids"] == [3, 4, 5]
    python, c = results["python"], results["c"]
    assert _shape(c) == _shape(python)
    assert c["errors"] == [] == python["errors"] and c["closed"] == {} == python["closed"]
    assert list(c["senders"]) == [str(member) for member in ready["c"]["ids"]]
    assert sorted(c["positions"].values()) == [1.5, 2.0, 2.5]  # places 3 to 5 of the room, 0.5 m apart
    for result in (python, c):
        assert result["deliveries"] > 0 and sum(result["latency_bins"].values()) == result["deliveries"]

    senders, receivers = {**python["senders"], **c["senders"]}, {**python["receivers"], **c["receivers"]}
    losses = count_losses(senders, receivers)
    assert losses.lost == 0 and losses.sent == losses.relayed + losses.coalesced
    assert 3 * HZ * 1.0 <= losses.sent <= 6 * HZ * 1.0 + 6  # six clients for a second: not faster than --hz
    delivered = python["deliveries"] + c["deliveries"]  # by receive time; owed by send time (see support.bench)
    assert 0.75 * losses.owed <= delivered <= 1.25 * losses.owed, (delivered, losses)
    for sender in senders:  # every receiver, whichever its loader, saw the same poses of each sender
        seen = {bits[sender] for receiver, (_room, bits) in receivers.items() if receiver != sender}
        assert len(seen) == 1, (sender, seen)
        assert sender not in receivers[sender][1]  # its own poses (a broadcast echo) are not counted


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


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_c_loader_holds_idle_clients(native: LoaderProgram, protocol: str) -> None:
    with started_server(tick_rate=20.0, max_members=64, loop="auto") as target:
        idle = measure_idle_connections(
            target, connections=6, loaders=2, protocol=protocol, room_size=3, program=native
        )
    assert idle["connections"] == 6 and idle["protocol"] == protocol and idle["rss_after_mb"] > 0


def test_the_plan_tells_the_c_loader_its_protocol_and_where_to_connect() -> None:
    """The text plan (`native_order`): the protocol, the path the Python loader connects to (for broadcast,
    `/broadcast/` beside `/ws`, the room appended by loader.c), and a pose frame only for binary."""
    clients = [[0, "room-a", 0.0], [1, "room-b", 0.5]]
    plan = {"url": "ws://127.0.0.1:8123/ws", "clients": clients, "hz": 20.0, "ready_timeout": 5.0}
    lines = {protocol: native_order({**plan, "protocol": protocol}).decode().splitlines() for protocol in PROTOCOLS}
    for protocol, path in (("binary", "/ws"), ("json", "/ws"), ("broadcast", "/broadcast/")):
        settings = dict(item.split("=") for item in lines[protocol][0].split())
        assert (settings["protocol"], settings["path"], settings["port"], settings["clients"]) == (
            protocol, path, "8123", "2",
        )  # fmt: skip
    assert lines["binary"][2] == f"1 room-b 0.5 {pose_template(0.5).hex()}"
    assert lines["json"][1:] == lines["broadcast"][1:] == ["0 room-a 0.0", "1 room-b 0.5"]
    assert native_order({"start": 1.5, "end": 2.5}) == b"start 1.5 2.5\n"
    colyseus = native_order({**plan, "protocol": "colyseus"}).decode().splitlines()
    assert "protocol=colyseus path=/matchmake/joinOrCreate/relay " in colyseus[0] and colyseus[1:] == lines["json"][1:]
    assert "tls" not in lines["binary"][0] and "ca_file" not in lines["binary"][0]
    secure = {**plan, "protocol": "json", "url": "wss://shoal.example/ws", "ca_file": "/tmp/a dir%/cert.pem"}
    settings = dict(item.split("=") for item in native_order(secure).decode().splitlines()[0].split())
    assert (settings["host"], settings["port"], settings["tls"]) == ("shoal.example", "443", "1")
    assert settings["ca_file"] == "/tmp/a%20dir%25/cert.pem"  # a plan line splits at spaces: loader.c unescapes it

    with pytest.raises(BenchError, match="speaks json, binary, broadcast, colyseus, not 'msgpack'"):
        native_order({**plan, "protocol": "msgpack"})
    with pytest.raises(BenchError, match="room names that need no URL quoting"):
        native_order({**plan, "protocol": "broadcast", "clients": [[0, "a/b?c", 0.0]]})
    with pytest.raises(BenchError, match="no loader speaks msgpack"), loader_program("c", ["json", "msgpack"]):
        pass


# ---- the WebSocket details and the JSON scanner, against a scripted server --------------------------------------

WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
RFC_KEY, RFC_ACCEPT = b"dGhlIHNhbXBsZSBub25jZQ==", b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
"""RFC 6455 section 1.3's example: a Sec-WebSocket-Key and the Sec-WebSocket-Accept that answers it."""
OWN_ID = 1
"""The id the scripted server gives its one client in Shoal's protocols (in broadcast it is its index, 0)."""
SUBPROTOCOLS = {"binary": b"shoal.v1.bin", "json": b"shoal.v1.json", "broadcast": None, "colyseus": None}
PAUSE_S = 0.05
"""A pause in a script: the loader reads what came before it on its own (a message split across two reads)."""


def _accept(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept that answers `key` (RFC 6455 section 4.2.2): base64 of SHA-1(key + GUID)."""
    return base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest())


def _accept_header(key: bytes) -> bytes:
    """The Sec-WebSocket-Accept header line that answers `key`."""
    return b"Sec-WebSocket-Accept: " + _accept(key) + b"\r\n"


SEAT = {
    "room": {
        "clients": 1, "locked": False, "private": False, "maxClients": None, "unlisted": False,
        "createdAt": "2026-11-21T22:28:39.488Z", "name": "relay", "processId": "v9CzZhgom", "room": "room",
        "roomId": "32xuYYt2q",
    },
    "sessionId": "RNlhmwH2G",
}  # fmt: skip
"""A seat as a Colyseus 0.16 server answers `joinOrCreate`: the room's listing, then the session."""
SEAT_PATH = b"/v9CzZhgom/32xuYYt2q?sessionId=RNlhmwH2G"
"""Where a client of `SEAT` upgrades: /PROCESS_ID/ROOM_ID?sessionId=SESSION_ID."""
JOIN_ROOM_MESSAGE = bytes((JOIN_ROOM, 9)) + b"rDb7K3MZ4" + bytes((4,)) + b"none"
"""The JOIN_ROOM of a Colyseus 0.16 room without state: a reconnection token and the serializer "none", each
behind its length in one byte (as a 0.16 server sent it)."""


def _seat_answer(body: dict[str, Any], framing: str = "chunked") -> list[bytes | float]:
    """An HTTP answer to a seat request, to `_play`: as Node writes Colyseus's (`chunked`: keep-alive, the JSON in
    one chunk), with a `content-length` (keep-alive too: only the length ends it), or (`pieces`) in three chunks,
    one with an extension, written in pieces apart in time."""
    data = json.dumps(body).encode()
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: keep-alive\r\n"
    if framing == "content-length":
        return [head + b"Content-Length: %d\r\n\r\n" % len(data) + data]
    if framing == "chunked":
        return [head + b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)]
    thirds = (data[:20], data[20:30], data[30:])
    chunks = b"".join(b"%x%s\r\n%s\r\n" % (len(part), b";x=y" * (i == 1), part) for i, part in enumerate(thirds))
    answer = head + b"transfer-encoding: Chunked\r\n\r\n" + chunks + b"0\r\n\r\n"
    return [answer[:90], PAUSE_S, answer[90:130], PAUSE_S, answer[130:]]


async def _play(writer: asyncio.StreamWriter, script: list[bytes | float]) -> None:
    """Write `script`: bytes as they are, a float as a pause of that many seconds."""
    for step in script:
        if isinstance(step, float):
            await asyncio.sleep(step)
            continue
        writer.write(step)
        await writer.drain()


async def _client_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seat_answer: list[bytes | float], seats: list[bytes]
) -> tuple[bytes, bytes] | None:
    """A client's upgrade request and its Sec-WebSocket-Key (16 bytes in base64); or, for a Colyseus seat request
    (appended to `seats`, its body included), None once it is answered with `seat_answer` (`_play`ed) and the
    loader closed the connection, which the server holds open."""
    request = await reader.readuntil(b"\r\n\r\n")
    if request.startswith(b"POST "):
        length = re.search(rb"Content-Length: (\d+)\r\n", request)
        assert length
        seats.append(request + await reader.readexactly(int(length.group(1))))
        await _play(writer, seat_answer)
        with suppress(ConnectionError):
            await reader.read()  # until the loader closes it: it must read the answer by its length, not to its end
        writer.close()
        return None
    key = re.search(rb"Sec-WebSocket-Key: (\S+)\r\n", request)
    assert key and len(base64.b64decode(key.group(1))) == 16
    return request, key.group(1)


def _switching(headers: bytes) -> bytes:
    """A 101 answer to an upgrade: Upgrade and Connection, then `headers` (lines that end in CRLF)."""
    return b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" + headers + b"\r\n"


async def _start_native(
    native: LoaderProgram,
    port: int,
    protocol: str,
    clients: int = 1,
    stderr: int | None = None,
    url: str | None = None,
    ca_file: Path | None = None,
) -> asyncio.subprocess.Process:
    """The C loader, given its plan: `clients` clients in one room of the scripted server on `port` (or at `url`,
    trusting `ca_file` too over TLS)."""
    plan = {
        "url": url or f"ws://127.0.0.1:{port}/ws", "protocol": protocol,
        "clients": [[i, "room", 0.0] for i in range(clients)],
        "ready_timeout": 5.0, "hz": 20.0, "drain": 0.5, "latency_bin_ms": LATENCY_BIN_MS,
    }  # fmt: skip
    if ca_file:
        plan["ca_file"] = str(ca_file)
    assert native.executable is not None
    loader = await asyncio.create_subprocess_exec(
        str(native.executable), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr
    )
    assert loader.stdin is not None and loader.stdout is not None
    loader.stdin.write(native_order(plan))
    return loader


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


def _text(payload: bytes | dict[str, Any]) -> bytes:
    """A text frame: `payload`, or a message as JSON."""
    return _server_frame(payload if isinstance(payload, bytes) else json.dumps(payload).encode(), 0x1)


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


def _avatar(member: int, seq: int, t: float | None) -> MemberPose:
    """A pose as Shoal relays it: head at x = seq / 1000 m, both hands, `t` (ms) unless None."""
    hand = Transform((-0.3, 1.1, -0.3), IDENTITY)
    return MemberPose(id=member, head=Transform((seq / 1000, 1.6, 0.0), IDENTITY), left=hand, right=hand, t=t)


def _json_tick(entries: list[tuple[int, int]], **sections: Any) -> bytes:
    """A JSON tick as Shoal's codec writes it (no whitespace, `poses` before the other sections)."""
    now = time.time() * 1000.0
    poses = [_avatar(member, seq, now) for member, seq in entries]
    return JSON.encode(Tick(seq=1, t=now, poses=poses, **sections))


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


@dataclass
class Scripted:
    """What a loader did against a scripted server, and what it answered."""

    request: bytes
    """Its upgrade request."""
    seats: list[bytes]
    """Its Colyseus seat requests, with their bodies."""
    pose: tuple[int, bytes]
    """Its first pose frame: (opcode, payload)."""
    pongs: list[bytes]
    ready: dict[str, Any]
    result: dict[str, Any]


async def _scripted_run(native: LoaderProgram, protocol: str, script: list[bytes | float]) -> Scripted:
    """Run one client of the C loader in `protocol` against a server that upgrades it (with that protocol's
    subprotocol), answers `hello` and `join` with `welcome` (id OWN_ID) and `joined` (in binary and json; in
    colyseus it answers the seat request with `SEAT` and sends JOIN_ROOM, which the client confirms), waits for
    the first pose, then writes `script` (`_play`). It then reads until the client's close, answering nothing,
    and closes."""
    seen: dict[str, Any] = {"pongs": [], "seats": []}
    client_closed = asyncio.Event()
    """Set once `serve` has read the client's close: everything the client sent before it has been seen."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upgrade = await _client_request(reader, writer, _seat_answer(SEAT), seen["seats"])
        if upgrade is None:
            return
        seen["request"], key = upgrade
        subprotocol = SUBPROTOCOLS[protocol]
        protocol_header = b"Sec-WebSocket-Protocol: " + subprotocol + b"\r\n" if subprotocol else b""
        writer.write(_switching(_accept_header(key) + protocol_header))
        if protocol == "colyseus":
            writer.write(_server_frame(JOIN_ROOM_MESSAGE))
            assert await _client_frame(reader) == (0x2, bytes((JOIN_ROOM,)))  # the client's confirmation
        elif protocol != "broadcast":
            for expected, answer in (("hello", {"type": "welcome", "id": OWN_ID}), ("join", {"type": "joined"})):
                opcode, payload = await _client_frame(reader)
                if protocol == "binary":
                    assert opcode == 0x2 and payload[0] == wire.TAG_JSON
                    payload = payload[1:]
                else:
                    assert opcode == 0x1
                assert json.loads(payload)["type"] == expected
                writer.write(_control(answer) if protocol == "binary" else _text(answer))
        seen["pose"] = await _client_frame(reader)  # the first pose: the window has started
        await _play(writer, script)
        while True:
            opcode, payload = await _client_frame(reader)
            if opcode == 0xA:
                seen["pongs"].append(payload)
            if opcode == 0x8:
                break
        writer.close()
        client_closed.set()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    loader = await _start_native(native, server.sockets[0].getsockname()[1], protocol)
    assert loader.stdin is not None and loader.stdout is not None
    try:
        ready = json.loads(await asyncio.wait_for(loader.stdout.readline(), 10))
        start = time.time()
        loader.stdin.write(native_order({"start": start, "end": start + 5.0}))
        result = json.loads(await asyncio.wait_for(loader.stdout.readline(), 15))["result"]
        # the loader may report before this server has read its last frames (a pong, its close)
        await asyncio.wait_for(client_closed.wait(), 10)
    finally:
        if loader.returncode is None:
            loader.kill()
        await loader.wait()
        server.close()
    return Scripted(seen["request"], seen["seats"], seen["pose"], seen["pongs"], ready, result)


def _in_random_pieces(data: bytes) -> list[bytes | float]:
    """`data` cut in pieces of 1 to 3,000 bytes, each written after a short pause."""
    pieces: list[bytes | float] = []
    offset = 0
    while offset < len(data):
        size = random.randint(1, 3000)
        pieces += [data[offset : offset + size], 0.0005]
        offset += size
    return pieces


def _split(frame: bytes, at: int) -> list[bytes | float]:
    """`frame` in two writes far enough apart in time that the loader reads them in two reads."""
    return [frame[:at], PAUSE_S, frame[at:]]


async def test_the_c_loader_reads_every_frame_layout_in_any_split(native: LoaderProgram) -> None:
    """Binary: frames with 7-, 16- and 64-bit lengths (126 and 127 bytes among them) written in pieces of
    random sizes, a duplicate, an own entry, an error, a ping (answered) and a close (recorded)."""
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
    run = await _scripted_run(native, "binary", _in_random_pieces(script))

    assert b"Sec-WebSocket-Protocol: shoal.v1.bin\r\n" in run.request
    assert run.ready == {"ready": True, "ids": [OWN_ID]}
    assert run.pose[0] == 0x2 and run.pose[1][0] == wire.TAG_POSE
    result = run.result
    seen = result["receivers"][str(OWN_ID)][1]
    assert seen == {"1000": hex(1 << 1), **{str(2000 + i): hex(1 << 5) for i in range(1400)}}
    assert result["deliveries"] == 1401 and result["duplicates"] == 1
    assert sum(result["latency_bins"].values()) == 1401
    assert result["closed"] == {str(OWN_ID): 4001}
    assert result["errors"] == ["bad_thing: nope"]
    assert run.pongs == [b"hi"]
    room, first, last = result["senders"][str(OWN_ID)]
    assert room == "room" and 1 <= first <= last


DECOY = {"id": 3000, "head": {"pos": [0.009, 1.6, 0.0]}, "t": 1.0, "poses": [{"id": 3001, "head": {"pos": [0.009]}}]}
"""Keys of a pose (and a `poses` list) where a tick's other sections may hold them: an entity's props are free-form."""


async def test_the_c_loader_reads_json_ticks_as_the_python_loader_does(native: LoaderProgram) -> None:
    """JSON: the tick scanner counts the `poses` of a tick and nothing else. Entities and joints sections
    whose keys look like a pose's, on either side of `poses`; a key spelled with an escape (msgspec decodes
    it); a pose without `t` (counted, no latency); ticks split across two reads (one in the `poses` key, one
    in a number, one of 64 KiB and more); a duplicate and an own pose; malformed ticks (reported, and none of
    their poses counted, as msgspec rejects the whole tick); a non-tick message, an error, a ping and a close."""
    now = time.time() * 1000.0
    entity = Entity(
        id="poses", kind="id", persistent=False, locked=False, pos=(0.009, 1.6, 0.0), rot=IDENTITY,
        scale=(1.0, 1.0, 1.0), props=DECOY, v=1,
    )  # fmt: skip
    joints = [MemberJoints(id=3002, left=[(0.009, 1.6, 0.0, 0.0, 0.0, 0.0, 1.0)] * 25)]
    by_hand = b"".join([  # `poses` last, keys in another order, `id` escaped, decoys in a string and in a hand
        b'{"type":"tick","seq":2,"entities":[{"props":{"note":"\\"poses\\":[{\\"id\\":4000}]","x":',
        json.dumps(DECOY).encode(),  # with spaces after `:` and `,`, as JSON may have
        b'}}],"t":1.0,"joints":[{"id":4001}],"poses":[{"t":%.3f,' % now,
        b'"right":{"id":4002,"head":{"pos":[0.009,0,0]}},"head":{"rot":[0,0,0,1],"pos":[0.002,1.6,0]},"i\\u0064":1000}]}',
    ])  # fmt: skip
    without_t = JSON.encode(Tick(seq=3, t=now, poses=[_avatar(1000, 4, None)]))
    split_in_key = _text(_json_tick([(1000, 3)]))
    split_in_number = _text(_json_tick([(1001, 1), (1001, 1)]))  # the same pose twice: one duplicate
    large = _text(_json_tick([(2000 + i, 5) for i in range(300)]))  # a 64-bit length
    malformed = [
        b'{"type":"tick","seq":9,"t":1.0,"poses":[{"id":1000,"head":{"pos":[0.006,1.6]}}]}',  # pos of two numbers
        b'{"type":"tick","seq":9,"t":1.0,"poses":[{"id":1000,"head":{"pos":[0.007,1.6,0.0]}}',  # truncated
        b'{"type":"tick","seq":9,"poses":[{"id":1000,"head":{"pos":[0.008,1.6,0.0]},"t":1.0}],"x":[1,]}',  # [1,]
        b'{"type":"tick","seq":9,"poses":[{"id":1.5,"head":{"pos":[0.008,1.6,0.0]}}]}',  # an id that is no integer
    ]
    script: list[bytes | float] = [
        _text({"type": "member_joined", "room": "room", "member": {"id": 7, "name": "poses", "color": "#fff"}}),
        _text(_json_tick([(1000, 1), (OWN_ID, 1)], entities=[entity], joints=joints)),
        _text(by_hand),
        *_split(split_in_key, split_in_key.index(b'"poses"') + 4),
        *_split(split_in_number, split_in_number.index(b'"pos":[') + 9),
        _text(without_t),
        *_split(large, len(large) // 2),
        _text(_json_tick([(1000, 1)])),  # a duplicate
        *(_text(tick) for tick in malformed),
        _text({"type": "error", "code": "bad_thing", "message": "nope"}),
        _server_frame(b"hi", opcode=0x9),
        _server_frame(struct.pack("!H", 4001), opcode=0x8),
    ]
    run = await _scripted_run(native, "json", script)

    assert b"Sec-WebSocket-Protocol: shoal.v1.json\r\n" in run.request and run.request.startswith(b"GET /ws ")
    assert run.ready == {"ready": True, "ids": [OWN_ID]}
    opcode, pose = run.pose
    sent = json.loads(pose)
    assert opcode == 0x1 and pose == JSON_POSE % (sent["head"]["pos"][0], 0.0, sent["t"])  # byte for byte
    result = run.result
    seen = result["receivers"][str(OWN_ID)][1]
    assert seen == {
        "1000": hex(0b11110),
        "1001": hex(1 << 1),
        **{str(2000 + i): hex(1 << 5) for i in range(300)},
    }  # no decoy (3000-3002, 4000-4002), no own pose, nothing of the malformed ticks (seq 6 to 8)
    assert result["deliveries"] == 5 + 300 and result["duplicates"] == 2
    assert sum(result["latency_bins"].values()) == 5 + 300 - 1  # the pose without `t` has no latency
    assert result["closed"] == {str(OWN_ID): 4001}
    errors = result["errors"]
    assert len(errors) == 5 and errors[-1] == "bad_thing: nope", errors
    assert errors[0].startswith("unreadable message: a pos that is not three numbers at byte ")
    assert errors[3].startswith("unreadable message: an id that is not a u32")
    assert all(error.startswith("unreadable message: ") for error in errors[:4])
    assert run.pongs == [b"hi"]


async def test_the_c_loader_reads_broadcast_messages_as_the_python_loader_does(native: LoaderProgram) -> None:
    """ws-broadcast: no subprotocol, the room in the path, no hello; every message is one pose with its sender's
    index as id, the loader's own echo included (skipped); keys in any order with decoys in a hand; a pose
    split across two reads; a duplicate; malformed messages and one that is no pose (reported)."""
    own = 0  # the client's index in the plan
    now = time.time() * 1000.0
    echo = BROADCAST_POSE % (own, 0.001, 0.0, now)
    reordered = (
        b'{"left":{"id":7,"head":{"pos":[0.009,0,0]},"t":1},"t":%.3f,'
        b'"head":{"pos":[0.002,1.6,0.0],"rot":[0,0,0,1]},"type":"pose","id":1000}' % now
    )
    split = _text(BROADCAST_POSE % (1000, 0.003, 0.0, now))
    script: list[bytes | float] = [
        _text(echo),
        _text(BROADCAST_POSE % (1000, 0.001, 0.0, now)),
        _text(BROADCAST_POSE % (1001, 0.001, 0.5, now)),
        _text(reordered),
        *_split(split, split.index(b'"t":') + 6),
        _text(BROADCAST_POSE % (1000, 0.001, 0.0, now)),  # a duplicate
        _text(BROADCAST_POSE[:-1] % (1000, 0.004, 0.0, now)),  # truncated
        _text(b'{"id":"1000","head":{"pos":[0.005,1.6,0.0]},"t":1.0}'),  # an id that is a string
        _text({"type": "hello", "name": "bench 0"}),
        _server_frame(b"hi", opcode=0x9),
        _server_frame(struct.pack("!H", 1001), opcode=0x8),
    ]
    run = await _scripted_run(native, "broadcast", script)

    assert run.request.startswith(b"GET /broadcast/room HTTP/1.1\r\n") and b"Sec-WebSocket-Protocol" not in run.request
    assert run.ready == {"ready": True, "ids": [own]}
    opcode, pose = run.pose
    sent = json.loads(pose)
    assert opcode == 0x1 and sent["id"] == own
    assert pose == BROADCAST_POSE % (own, sent["head"]["pos"][0], 0.0, sent["t"])  # byte for byte
    result = run.result
    assert result["receivers"][str(own)][1] == {"1000": hex(0b1110), "1001": hex(1 << 1)}  # not its own echo
    assert result["deliveries"] == 4 and result["duplicates"] == 1
    assert sum(result["latency_bins"].values()) == 4
    assert result["closed"] == {str(own): 1001}
    errors = result["errors"]
    assert len(errors) == 3 and all(error.startswith("unreadable message: ") for error in errors), errors
    assert "a pose without id" in errors[2]
    assert run.pongs == [b"hi"]


async def test_the_c_loader_reads_colyseus_messages_as_the_python_loader_does(native: LoaderProgram) -> None:
    """Colyseus: a seat request, then the upgrade on the seat's room and the JOIN_ROOM handshake; a pose goes out
    as the Python loader sends it, byte for byte. Every ROOM_DATA of type "pose" is one pose of another member,
    its text a msgpack string of any length header (str 8, 16 or 32) and its type a fixstr or a str 8; an own
    pose is skipped; a pose split across two reads; a duplicate. ROOM_DATA messages of another type, of a type
    that is a number, or with a message that is not one well-formed string or pose are unreadable; an ERROR and
    a LEAVE_ROOM are reported, a ROOM_STATE passes, an unknown code is unreadable. The Python loader, given the
    same messages, counts the same poses and reports the same errors (in its own words where unreadable)."""
    own, now = 0, time.time() * 1000.0  # the client's index in the plan is its id

    def pose_text(member: int, seq: int, padding: int = 0) -> bytes:
        text = BROADCAST_POSE % (member, seq / 1000, 0.0, now)
        return text[:-1] + b" " * padding + b"}"  # whitespace in JSON, to reach a longer string header

    def string_32(text: bytes) -> bytes:
        return b"\xdb" + struct.pack("!I", len(text)) + text

    split = colyseus_pose_message(pose_text(1000, 3))
    messages = [
        colyseus_pose_message(pose_text(own, 1)),
        colyseus_pose_message(pose_text(1000, 1)),
        colyseus_pose_message(pose_text(1001, 1, padding=40)),  # a str 16 header
        COLYSEUS_POSE_PREFIX + string_32(pose_text(1002, 1)),
        bytes((ROOM_DATA, 0xD9, 4)) + b"pose" + msgspec.msgpack.encode(pose_text(1000, 2).decode()),  # str 8 type
        split,
        colyseus_pose_message(pose_text(1000, 1)),  # a duplicate
        bytes((ROOM_DATA,)) + b"\xa4chat" + msgspec.msgpack.encode("hello"),
        bytes((ROOM_DATA, 7)),  # a type that is a number, and no message
        COLYSEUS_POSE_PREFIX + msgspec.msgpack.encode(5),  # a message that is no string
        colyseus_pose_message(b'{"id":1000,"t":1.0}'),  # a pose without head
        COLYSEUS_POSE_PREFIX + b"\xd9\xffabc",  # a string that overruns the message
        bytes((ERROR, 0xCD)) + struct.pack("<H", 4216) + b"\xa4nope",  # as @colyseus/schema writes code and text
        bytes((LEAVE_ROOM,)),
        bytes((14, 1, 2, 3)),  # ROOM_STATE
        bytes((99,)),
    ]
    framed = [_server_frame(message) for message in messages]
    at = messages.index(split)
    script: list[bytes | float] = [*framed[:at], *_split(framed[at], len(framed[at]) // 2), *framed[at + 1 :]]
    script += [_server_frame(b"hi", opcode=0x9), _server_frame(struct.pack("!H", 4000), opcode=0x8)]
    run = await _scripted_run(native, "colyseus", script)

    (seat,) = run.seats
    assert seat.startswith(b"POST /matchmake/joinOrCreate/relay HTTP/1.1\r\n") and seat.endswith(
        b'\r\n{"room": "room"}'
    )
    assert b"\r\nContent-Type: application/json\r\n" in seat
    assert (
        run.request.startswith(b"GET " + SEAT_PATH + b" HTTP/1.1\r\n") and b"Sec-WebSocket-Protocol" not in run.request
    )
    assert run.ready == {"ready": True, "ids": [own]}
    opcode, pose = run.pose
    sent = json.loads(msgspec.msgpack.decode(pose[len(COLYSEUS_POSE_PREFIX) :]))
    assert opcode == 0x2 and sent["id"] == own
    assert pose == colyseus_pose_message(BROADCAST_POSE % (own, sent["head"]["pos"][0], 0.0, sent["t"]))
    result = run.result
    assert result["receivers"][str(own)][1] == {"1000": hex(0b1110), "1001": hex(1 << 1), "1002": hex(1 << 1)}
    assert result["deliveries"] == 5 and result["duplicates"] == 1
    assert sum(result["latency_bins"].values()) == 5
    assert result["closed"] == {str(own): 4000}
    assert run.pongs == [b"hi"]
    errors = result["errors"]
    leave = "LEAVE_ROOM: the server asked the client to leave the room"
    unreadable = "unreadable message: "
    assert [error if not error.startswith(unreadable) else "?" for error in errors] == ["?"] * 5 + [
        "4216: nope", leave, "?"
    ], errors  # fmt: skip

    python = BenchClient(None, own, "room", "colyseus", 0.0)  # type: ignore[arg-type]  # it only reads here
    window = Window(time.time() - 60.0, time.time() + 60.0, LATENCY_BIN_MS)
    inbox = Inbox(window)
    for message in messages:
        inbox.put(python, time.time(), message)
    inbox.flush()
    assert {str(sender): hex(bits) for sender, bits in python.seen.items()} == result["receivers"][str(own)][1]
    assert (window.deliveries, window.duplicates) == (5, 1)
    assert [error if not error.startswith(unreadable) else "?" for error in python.errors] == [
        error if not error.startswith(unreadable) else "?" for error in errors
    ]


# ---- the Sec-WebSocket-Accept of the upgrade ----------------------------------------------------------------------


@dataclass
class Upgrades:
    """How the C loader took the upgrades of a scripted server."""

    keys: list[bytes]
    """The Sec-WebSocket-Key of each client, in the order the server read them."""
    requests: list[bytes]
    """The upgrade requests, in the same order."""
    seats: list[bytes]
    """The Colyseus seat requests, with their bodies."""
    ready: dict[str, Any] | None
    """Its `ready` answer; None if it ended first."""
    exit_code: int | None
    """None if it was still running after `ready` (and was killed)."""
    stderr: str


async def _upgrades(
    native: LoaderProgram,
    clients: int,
    accept: Callable[[bytes], bytes],
    protocol: str = "broadcast",
    seat_answer: list[bytes | float] | None = None,
    greeting: bytes = b"",
) -> Upgrades:
    """Start `clients` clients of the C loader in `protocol` against a server that answers each upgrade with 101,
    `accept(key)` for Sec-WebSocket-Accept header lines, then `greeting`, and holds the connection until the loader
    goes. In broadcast a client is ready once upgraded (that dialect has no hello); in colyseus the server answers
    its seat request with `seat_answer` (`_play`ed) first, and it is ready once `greeting` is a JOIN_ROOM."""
    keys: list[bytes] = []
    requests: list[bytes] = []
    seats: list[bytes] = []
    handlers: list[asyncio.Task[Any]] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        handlers.append(handler)
        upgrade = await _client_request(reader, writer, seat_answer or [], seats)
        if upgrade is None:
            return
        request, key = upgrade
        requests.append(request)
        keys.append(key)
        writer.write(_switching(accept(key)) + greeting)
        with suppress(ConnectionError):
            await reader.read()  # until the loader closes or ends
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loader = await _start_native(native, port, protocol, clients, stderr=asyncio.subprocess.PIPE)
    assert loader.stdout is not None and loader.stderr is not None
    try:
        line = await asyncio.wait_for(loader.stdout.readline(), 10)
        exit_code = await asyncio.wait_for(loader.wait(), 10) if not line else None
    finally:
        if loader.returncode is None:
            loader.kill()
        await loader.wait()
        server.close()
    await asyncio.wait_for(asyncio.gather(*handlers), 5)
    stderr = (await loader.stderr.read()).decode()
    return Upgrades(keys, requests, seats, json.loads(line) if line else None, exit_code, stderr)


async def test_the_c_loader_takes_the_accept_of_each_key_in_any_spelling_of_the_header(native: LoaderProgram) -> None:
    """Eight clients, eight random keys: the loader's SHA-1 and base64 give for each the accept that hashlib
    does (checked against RFC 6455's example), in a header of any case with spaces and tabs around its value."""
    assert _accept(RFC_KEY) == RFC_ACCEPT
    spellings = cycle(
        [b"Sec-WebSocket-Accept: %s\r\n", b"sec-websocket-accept:%s\r\n", b"SEC-WEBSOCKET-ACCEPT: \t%s \t\r\n"]
    )
    run = await _upgrades(native, 8, lambda key: next(spellings) % _accept(key))
    assert run.ready == {"ready": True, "ids": list(range(8))}, run.stderr
    assert len(set(run.keys)) == 8 and run.exit_code is None and run.stderr == ""


@pytest.mark.parametrize(
    "wrong",
    [lambda key: RFC_ACCEPT, lambda key: _accept(key).lower(), lambda key: _accept(key)[:-1], lambda key: key],
    ids=["another key's", "in lower case", "truncated", "the key itself"],
)
async def test_the_c_loader_fails_on_a_wrong_sec_websocket_accept(
    native: LoaderProgram, wrong: Callable[[bytes], bytes]
) -> None:
    """As on a refused upgrade: exit code 1 before `ready`, the answer and the right one on stderr."""
    run = await _upgrades(native, 1, lambda key: b"Sec-WebSocket-Accept: " + wrong(key) + b"\r\n")
    assert run.ready is None and run.exit_code == 1
    answered, right = wrong(run.keys[0]).decode(), _accept(run.keys[0]).decode()
    assert run.stderr == f"loader.c: client 0: the server answered Sec-WebSocket-Accept '{answered}', not '{right}'\n"


@pytest.mark.parametrize("count", [0, 2])
async def test_the_c_loader_fails_on_a_missing_or_repeated_sec_websocket_accept(
    native: LoaderProgram, count: int
) -> None:
    """No Sec-WebSocket-Accept, or the right one twice: exit code 1 before `ready`, the count on stderr."""
    run = await _upgrades(native, 1, lambda key: _accept_header(key) * count)
    assert run.ready is None and run.exit_code == 1
    assert run.stderr == f"loader.c: client 0: the upgrade response has {count} Sec-WebSocket-Accept headers, not one\n"


# ---- Colyseus's seat request and join ------------------------------------------------------------------------------


@pytest.mark.parametrize("framing", ["chunked", "content-length", "pieces"])
async def test_the_c_loader_takes_a_colyseus_seat_answer_in_any_framing(native: LoaderProgram, framing: str) -> None:
    """Three clients reserve their seats (the answer chunked in one chunk as Node sends it, of a Content-Length on
    a connection kept alive, or in chunks split across reads) and join the seat's room: ready after JOIN_ROOM."""
    run = await _upgrades(
        native, 3, _accept_header, "colyseus", _seat_answer(SEAT, framing), _server_frame(JOIN_ROOM_MESSAGE)
    )
    assert run.ready == {"ready": True, "ids": [0, 1, 2]}, run.stderr
    assert run.exit_code is None and run.stderr == ""
    assert len(run.seats) == 3 and all(seat.endswith(b'\r\n\r\n{"room": "room"}') for seat in run.seats)
    assert len(run.requests) == 3 and all(request.startswith(b"GET " + SEAT_PATH + b" ") for request in run.requests)


@pytest.mark.parametrize(
    ("seat_answer", "greeting", "refusal"),
    [
        (
            _seat_answer({"code": 4210, "error": 'provided room name "relay" not defined'}),
            b"",
            'the seat was refused: {"code": 4210, "error": "provided room name \\"relay\\" not defined"}',
        ),
        (
            [b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"],
            b"",
            "the server refused the seat request: HTTP/1.1 404 Not Found",
        ),
        (
            _seat_answer(SEAT),
            _server_frame(bytes((ERROR, 0xCD)) + struct.pack("<H", 4212) + b"\xb9seat reservation expired."),
            "the join was refused: 4212: seat reservation expired.",
        ),
    ],
    ids=["seat refused", "seat request not found", "join refused"],
)
async def test_the_c_loader_fails_when_colyseus_refuses_the_seat_or_the_join(
    native: LoaderProgram, seat_answer: list[bytes | float], greeting: bytes, refusal: str
) -> None:
    """As on a refused upgrade: exit code 1 before `ready`, the server's answer on stderr."""
    run = await _upgrades(native, 1, _accept_header, "colyseus", seat_answer, greeting)
    assert run.ready is None and run.exit_code == 1
    assert run.stderr == f"loader.c: client 0: {refusal}\n"


# ---- TLS (wss://): certificates it cannot verify, builds without OpenSSL -------------------------------------------


@pytest.mark.parametrize(
    ("names", "host", "trusted", "verdict"),
    [
        (["127.0.0.1"], "127.0.0.1", False, "self-?signed certificate"),
        (["localhost"], "127.0.0.1", True, "IP address mismatch"),
        (["other.example"], "localhost", True, "hostname mismatch"),
    ],
    ids=["untrusted", "another address", "another name"],
)
async def test_the_c_loader_fails_on_a_certificate_it_cannot_verify(
    native: LoaderProgram,
    require: Callable[[bool, str], None],
    tmp_path: Path,
    names: list[str],
    host: str,
    trusted: bool,
    verdict: str,
) -> None:
    """As on a refused upgrade: exit code 1 before `ready`, and on stderr the verification's verdict and OpenSSL's
    reason, for a self-signed certificate it was not told to trust (no ca_file), and for one it trusts (its ca_file
    loaded: a path with a space and a %) that names another IP address, or another host name than the one it
    connects to (`localhost`, by name and SNI)."""
    _require_tls(native, require)
    cert_file, key_file = self_signed_certificate(tmp_path / "a dir %", names)  # its path escaped in the plan
    server = await asyncio.start_server(
        lambda _reader, writer: writer.close(), "127.0.0.1", 0, ssl=server_context(cert_file, key_file)
    )
    port = server.sockets[0].getsockname()[1]
    url = f"wss://{host}:{port}/ws"
    loader = await _start_native(
        native, port, "binary", stderr=asyncio.subprocess.PIPE, url=url, ca_file=cert_file if trusted else None
    )
    try:
        stdout, stderr = await asyncio.wait_for(loader.communicate(), 10)
    finally:
        if loader.returncode is None:
            loader.kill()
        await loader.wait()
        server.close()
    assert loader.returncode == 1 and stdout == b""
    assert re.fullmatch(
        rf"loader\.c: client 0: the TLS handshake with {host}:{port}: certificate verification failed: {verdict} "
        r"\(error:[0-9A-F]+:SSL routines:[^)]*certificate verify failed\)\n",
        stderr.decode(),
    ), stderr


def test_fanouts_build_of_the_c_loader_speaks_tls_where_openssl_builds(native: LoaderProgram) -> None:
    """fanout builds loader.c with OpenSSL where the compiler finds it (else without), and records which it built."""
    assert native.kind == "c" and native.tls is _openssl_builds() and native.speaks_tls is native.tls
    assert LoaderProgram().speaks_tls  # the Python loader's aiohttp always does


def test_a_c_loader_built_without_tls_is_refused_any_run_over_tls(
    require: Callable[[bool, str], None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where OpenSSL does not build (here a library of the TLS build's that does not exist), loader.c is built
    without TLS, and a run over TLS is refused with how to get it: by `loader_program` (which `bench/fanout.py`
    and `shoal bench` ask before they start a server), by `run_benchmark` before any loader starts, and by the
    program itself."""
    require(shutil.which("cc") is not None or shutil.which("gcc") is not None, "no C compiler (cc or gcc)")
    monkeypatch.setattr(fanout, "NATIVE_LOADER_TLS_BUILD", (["-DSHOAL_LOADER_TLS"], ["-lshoal-no-such-library"]))
    install = r"install OpenSSL's headers \(Debian: libssl-dev\), or use --loader python"
    with pytest.raises(BenchError, match=install), loader_program("c", ["binary"], tls=True):
        pass
    from shoal.bench.sweep import SweepSettings, run_sweep

    with pytest.raises(BenchError, match=install):
        run_sweep(SweepSettings(clients=(2,), loader="c", https=True), tmp_path / "sweep", show_progress=False)
    assert not (tmp_path / "sweep" / "bench.json").exists()

    with loader_program("c", ["binary"]) as program:
        assert (program.kind, program.tls, program.speaks_tls) == ("c", False, False)
        target = Target("https://127.0.0.1:9", "wss://127.0.0.1:9/ws", None, ca_file=str(tmp_path / "cert.pem"))
        with pytest.raises(BenchError, match=install):
            run_benchmark(
                target, clients=2, room_size=2, hz=HZ, loaders=1, warmup=0.0, duration=1.0, drain=0.2, tick_rate=None,
                protocol="binary", on_phase=lambda _name, _seconds: None, program=program,
            )  # fmt: skip
        plan = {"url": target.ws_url, "protocol": "binary", "clients": [[0, "room", 0.0]], "ca_file": target.ca_file}
        assert program.executable is not None
        run = subprocess.run([program.executable], input=native_order(plan), capture_output=True, timeout=10)
    assert run.returncode == 1 and run.stdout == b""
    assert run.stderr.decode() == (
        "loader.c: this build speaks no TLS (built without -DSHOAL_LOADER_TLS): it cannot connect to "
        "wss://127.0.0.1:9; build it with OpenSSL's headers installed (Debian: libssl-dev), or use --loader python\n"
    )


def test_shoal_bench_measures_over_tls_with_the_c_loader(
    native: LoaderProgram, require: Callable[[bool, str], None], tmp_path: Path
) -> None:
    """`shoal bench --https --loader c`: a one-point sweep over wss://, without loss."""
    _require_tls(native, require)
    command = [
        sys.executable, "-m", "shoal", "bench", "--https", "--loader", "c", "--clients", "6", "--room-size", "3",
        "--protocol", "binary", "--loaders", "1", "--warmup", "0.5", "--duration", "1.5", "--drain", "0.5",
        "--output-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    source = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [source, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    (point,) = json.loads((tmp_path / "bench.json").read_text())["points"]
    assert point["params"]["tls"] is True and point["params"]["loader"] == "c", point
    assert point["deliveries"] > 0 and point["loss"]["lost"] == 0 and point["errors"] == [], point
