"""The durability check: `kill -9` a real server while a client makes reliable changes, restart, compare.

Each iteration starts `shoal serve` on the same data directory (or store URL), lets a client create
persistent entities and bump a shared counter with `seq` set (several changes in flight, so group commit is
exercised), kills the server with SIGKILL at a random moment, restarts it and reads the room back. Every
change the server acknowledged must be there: each acknowledged entity exists, and the counter is at least
the highest acknowledged value. Changes that were not yet acknowledged may or may not be there.

`tests/test_persistence.py` runs a few iterations in CI; `bench/crash.py` runs many and prints a JSON report.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shoal.bench.fanout import started_server
from shoal.client import ConnectionClosed, ShoalClient
from shoal.protocol.messages import Ack

ROOM = "crash"
IN_FLIGHT = 8
"""Reliable changes a client keeps unacknowledged at once."""


@dataclass
class CrashReport:
    iterations: int = 0
    acknowledged: int = 0
    """Reliable changes acknowledged before a kill, over all iterations."""
    lost: list[str] = field(default_factory=list)
    """Descriptions of acknowledged changes missing after a restart: must stay empty."""
    restart_seconds: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        worst = max(self.restart_seconds, default=0.0)
        return {"iterations": self.iterations, "acknowledged": self.acknowledged, "lost": self.lost,
                "max_restart_s": round(worst, 3)}  # fmt: skip


async def _create(client: ShoalClient, entity_id: str, seq: int, **fields: Any) -> None:
    await client.send_raw({"type": "entity_create", "id": entity_id, "kind": "crate", "seq": seq, **fields})


async def write_until_killed(ws_url: str, stop: asyncio.Event, acked: dict[str, int]) -> int:
    """Create persistent entities and bump the counter until `stop` is set or the server dies.

    `acked` maps entity id -> the highest value acknowledged for it (1 for a created entity, the count for
    the counter). Returns how many changes were acknowledged.
    """
    client = await ShoalClient.connect(ws_url, name="Writer")
    acknowledged = 0
    try:
        joined = await client.join(ROOM)
        counter = next(e.props["count"] for e in joined.entities if e.id == "counter")
        prefix = f"r{len(joined.entities)}-"  # unique across restarts
        in_flight: dict[int, tuple[str, int]] = {}
        seq = 0
        while not stop.is_set():
            seq += 1
            if seq % 2:
                entity_id = f"{prefix}{seq}"
                await _create(client, entity_id, seq, persistent=True, props={"seq": seq})
                in_flight[seq] = (entity_id, 1)
            else:
                counter += 1
                await client.send_raw(
                    {"type": "entity_update", "id": "counter", "props": {"count": counter}, "seq": seq}
                )
                in_flight[seq] = ("counter", counter)
            while len(in_flight) >= IN_FLIGHT or (in_flight and stop.is_set()):
                message = await client.recv(timeout=5)
                if isinstance(message, Ack) and message.seq in in_flight:
                    entity_id, value = in_flight.pop(message.seq)
                    acked[entity_id] = max(acked.get(entity_id, 0), value)
                    acknowledged += 1
    except (TimeoutError, ConnectionClosed, ConnectionError):
        pass  # the server was killed under us: what was acknowledged is what counts
    finally:
        await client.close()
    return acknowledged


async def _read_room(ws_url: str) -> dict[str, Any]:
    async with await ShoalClient.connect(ws_url, name="Reader") as reader:
        joined = await reader.join(ROOM)
    return {entity.id: entity for entity in joined.entities}


async def run_crash_test(
    iterations: int, data_dir: Path, store_url: str = "", seed: int = 1, kill_after: tuple[float, float] = (0.2, 1.0)
) -> CrashReport:
    """Kill and restart a server `iterations` times; report what was acknowledged and what was lost."""
    rng = random.Random(seed)
    report = CrashReport()
    acked: dict[str, int] = {}

    def server() -> Any:
        return started_server(20.0, 64, "auto", data_dir=data_dir, store_url=store_url)

    with server() as target:  # the shared counter every iteration bumps
        async with await ShoalClient.connect(target.ws_url) as setup:
            joined = await setup.join(ROOM)
            if not any(entity.id == "counter" for entity in joined.entities):
                await _create(setup, "counter", 0, persistent=True, owned=False, props={"count": 0})
                await setup.expect(Ack, timeout=10)

    for _ in range(iterations):
        with server() as target:
            stop = asyncio.Event()
            writer = asyncio.create_task(write_until_killed(target.ws_url, stop, acked))
            await asyncio.sleep(rng.uniform(*kill_after))
            assert target.pid is not None
            os.kill(target.pid, signal.SIGKILL)  # no chance to flush anything
            stop.set()
            report.acknowledged += await asyncio.wait_for(writer, 30)
        started = time.monotonic()
        with server() as target:
            report.restart_seconds.append(time.monotonic() - started)
            scene = await _read_room(target.ws_url)
        report.iterations += 1
        report.lost += [f"iteration {report.iterations}: entity {i}" for i in acked if i not in scene]
        if scene["counter"].props["count"] < acked.get("counter", 0):
            report.lost.append(
                f"iteration {report.iterations}: counter {scene['counter'].props['count']} < acked {acked['counter']}"
            )
    return report
