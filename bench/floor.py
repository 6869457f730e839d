"""The floor under `bench/fanout.py`: what a room fan-out costs with nothing but its reads and writes.

    python bench/floor.py                      # both floor servers, 200 clients, rooms of 25, 20 Hz
    python bench/floor.py --server python --read-pacing 4

It runs a server that does only what any fan-out must (read each client's pose, and each tick write the
room's newest poses to every member, one frame per member, the same bytes to all) against raw-TCP
loaders shaped like the fan-out benchmark's, and prints one JSON line per server with the server
process's CPU per delivered pose, read from /proc like `fanout.py` reads Shoal's:

- `python`: an asyncio (uvloop when installed) server with Shoal's own `ReadPacer`, one Python call per
  read and one `transport.write` per member per tick: the floor for any server written in Python;
- `c`: the same in C with epoll (`bench/floor_server.c`, built with the machine's `cc`): what the kernel
  and the syscalls cost alone.

There is no WebSocket framing, no validation and no engine, so Shoal cannot cost less than the `python`
figure, and no server on this machine and this loopback can cost less than the `c` one. On loopback
the server also pays the receiving side of its own writes, about half of each write's kernel time. A
frame carries the recipient's own pose too, as Shoal's ticks do; like Shoal's figure, deliveries count
only the poses for the other members of the room.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import click  # after the path is set, like the imports below

from shoal.bench.fanout import ProcessSample
from shoal.transport.pacing import ReadPacer

POSE = bytes(48)
"""A pose the size of a binary avatar (head and both hands with a timestamp)."""

C_SOURCE = Path(__file__).with_name("floor_server.c")


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


# ---- the Python floor server -----------------------------------------------------------------------------


async def serve_python(port: int, room_size: int, hz: float, pacing_ms: float) -> None:
    """Serve until killed: keep each client's newest pose, send each room's poses every tick."""
    rooms: list[list[Member]] = []
    interval = 1.0 / hz
    next_tick = time.time() + interval
    pacer = ReadPacer(pacing_ms / 1000, lambda: next_tick)
    message_arrived = pacer.message_arrived

    class Member(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: asyncio.Transport = transport  # type: ignore[assignment]
            self.pose = b""
            if not rooms or len(rooms[-1]) == room_size:
                rooms.append([])
            rooms[-1].append(self)
            self.room = rooms[-1]

        def data_received(self, data: bytes) -> None:
            self.pose = data[-48:]
            message_arrived()

        def connection_lost(self, exc: Exception | None) -> None:
            self.room.remove(self)

    loop = asyncio.get_running_loop()
    await loop.create_server(Member, "127.0.0.1", port)
    while True:
        for members in rooms:
            frame = b"".join([member.pose for member in members])
            if frame:
                for member in members:
                    member.transport.write(frame)
        next_tick += interval
        await asyncio.sleep(max(next_tick - time.time(), 0.0))
        await asyncio.sleep(0)  # timers run before the loop polls its sockets: let it read them first


# ---- the loader -------------------------------------------------------------------------------------------


async def run_loader(port: int, clients: int, hz: float, warmup: float, duration: float) -> None:
    """Connect `clients`, send a pose from each at `hz`, print START, then the poses received per second."""
    received = 0

    class Client(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            nonlocal received
            received += len(data)

    loop = asyncio.get_running_loop()
    transports = [(await loop.create_connection(Client, "127.0.0.1", port))[0] for _ in range(clients)]

    async def send(transport: asyncio.BaseTransport) -> None:
        await asyncio.sleep(random.random() / hz)  # spread the clients over the tick, like real ones
        due = time.monotonic()
        while True:
            transport.write(POSE)  # type: ignore[attr-defined]
            due += 1.0 / hz
            await asyncio.sleep(max(due - time.monotonic(), 0.0))

    senders = [loop.create_task(send(transport)) for transport in transports]
    await asyncio.sleep(warmup)
    received, started = 0, time.monotonic()
    print("START", flush=True)
    await asyncio.sleep(duration)
    print(json.dumps({"entries_per_s": received / len(POSE) / (time.monotonic() - started)}), flush=True)
    for task in senders:
        task.cancel()


# ---- one measurement ----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise click.ClickException(f"the floor server did not listen on port {port}")


def server_command(kind: str, port: int, room_size: int, hz: float, pacing_ms: float, workdir: Path) -> list[str]:
    if kind == "python":
        args = ["--serve", str(port), "--room-size", str(room_size), "--hz", str(hz), "--read-pacing", str(pacing_ms)]
        return [sys.executable, __file__, *args]
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise click.ClickException("--server c needs a C compiler (cc or gcc) on PATH")
    binary = workdir / "floor_server"
    subprocess.run([compiler, "-O2", "-o", str(binary), str(C_SOURCE)], check=True)
    return [str(binary), str(port), str(room_size), str(hz), str(pacing_ms)]


def measure(
    kind: str, clients: int, room_size: int, hz: float, pacing_ms: float, loaders: int, warmup: float, duration: float
) -> dict[str, object]:
    """Start one floor server and the loaders; return the figures of the measured window."""
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        server = subprocess.Popen(server_command(kind, port, room_size, hz, pacing_ms, Path(workdir)))
        try:
            wait_for_port(port)
            shares = [clients // loaders + (i < clients % loaders) for i in range(loaders)]
            loader_args = ["--warmup", str(warmup), "--duration", str(duration), "--hz", str(hz)]
            procs = [
                subprocess.Popen(
                    [sys.executable, __file__, "--load", str(port), "--clients", str(share), *loader_args],
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for share in shares
            ]
            for proc in procs:
                if proc.stdout is None or proc.stdout.readline().strip() != "START":
                    raise click.ClickException("a loader failed before measuring")
            before, started = ProcessSample.read(server.pid), time.monotonic()  # read as fanout.py reads Shoal's
            lines = [proc.communicate()[0] for proc in procs]
            after, elapsed = ProcessSample.read(server.pid), time.monotonic() - started
        finally:
            server.kill()
            server.wait()
    entries = sum(json.loads(line)["entries_per_s"] for line in lines)
    deliveries = entries * (room_size - 1) / room_size  # each frame also carries the recipient's own pose
    user, system = after.user_s - before.user_s, after.system_s - before.system_s
    cpu = user + system
    return {
        "bench": "floor",
        "server": kind,
        "us_per_delivered_pose": round(cpu / elapsed / deliveries * 1e6, 3),
        "deliveries_per_s": round(deliveries),
        "expected_per_s": round(clients * hz * (room_size - 1)),
        "server_cores_used": round(cpu / elapsed, 3),
        "server_cpu_s": {"user": round(user, 2), "system": round(system, 2)},
        "params": {
            "clients": clients,
            "room_size": room_size,
            "hz": hz,
            "read_pacing_ms": pacing_ms,
            "loaders": loaders,
            "warmup_s": warmup,
            "duration_s": duration,
        },
        "host": {"cpus": os.cpu_count(), "loadavg": os.getloadavg(), "python": sys.version.split()[0]},
    }


@click.command()
@click.option("--server", "servers", type=click.Choice(["python", "c", "both"]), default="both", show_default=True)
@click.option("--clients", type=click.IntRange(2, 10000), default=200, show_default=True)
@click.option("--room-size", type=click.IntRange(2, 1000), default=25, show_default=True)
@click.option(
    "--hz",
    type=click.FloatRange(1, 120),
    default=20.0,
    show_default=True,
    help="Poses/s per client; also the tick rate.",
)
@click.option(
    "--read-pacing",
    "pacing_ms",
    type=click.FloatRange(0, 100),
    default=20.0,
    show_default=True,
    help="Milliseconds, as Shoal's --read-pacing (0: off).",
)
@click.option("--loaders", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--warmup", type=click.FloatRange(0, 600), default=5.0, show_default=True)
@click.option("--duration", type=click.FloatRange(1, 3600), default=20.0, show_default=True)
@click.option("--serve", type=int, hidden=True)
@click.option("--load", type=int, hidden=True)
def main(
    servers: str,
    clients: int,
    room_size: int,
    hz: float,
    pacing_ms: float,
    loaders: int,
    warmup: float,
    duration: float,
    serve: int | None,
    load: int | None,
) -> None:
    """Measure the floor of a room fan-out: server CPU µs per delivered pose; print one JSON line per server."""
    if serve is not None:
        return run_loop(serve_python(serve, room_size, hz, pacing_ms))
    if load is not None:
        return run_loop(run_loader(load, clients, hz, warmup, duration))
    if clients % room_size:
        raise click.BadParameter("must be a multiple of --room-size", param_hint="--clients")
    for kind in ("python", "c") if servers == "both" else (servers,):
        print(json.dumps(measure(kind, clients, room_size, hz, pacing_ms, loaders, warmup, duration)), flush=True)


if __name__ == "__main__":
    main()
