"""Group-commit throughput: acknowledged changes per second through `StoreWriter`, per store backend.

    python bench/store_commit.py                    # all: SQLite FULL and NORMAL, PostgreSQL, DynamoDB (moto)
    python bench/store_commit.py --backend sqlite-full --clients 2000 --duration 10
    python bench/store_commit.py --mode per-change  # the baseline: one transaction per change

`--clients` simulated clients each own `--entities` persistent entities (spread over 10 rooms) and, in a
loop, change one of them (a ≈300-byte JSON document with a new version) and wait until it is durably
committed: the `committed()` future in group mode (what an `ack` waits for), or their own one-row
`Store.commit` in per-change mode. After `--warmup` seconds, it counts for `--duration` seconds and
prints ONE JSON line per backend:

- `acked_per_s`: changes whose commit finished in the window, per second: the figure of merit;
- `commits_per_s`, `rows_per_commit`: how well changes were grouped;
- `ack_ms` p50/p99: from queuing a change to its acknowledgement (includes the group window);
- `commit_ms` p50/p99: wall time of one `Store.commit`.

Everything runs in this process except PostgreSQL (the server at `--postgres-url`, in a fresh schema that
is dropped afterwards) and moto (started as a `python -m moto.server` process on 127.0.0.1, stopped by PID).
A backend that cannot run (no PostgreSQL, no moto) prints a line with `skipped` and the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import click

from shoal.store import Batch, EntityRecord, PositionRecord, RoomRecord, Store, StoreError, StoreWriter, open_store

BACKENDS = ("sqlite-full", "sqlite-normal", "postgresql", "dynamodb")
ROOMS = 10


class TimedStore:
    """A `Store` that records the wall time of each commit (a pass-through for everything else)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commit_seconds: list[tuple[float, float]] = []  # (finished at, took)

    async def open(self) -> None:
        await self.store.open()

    async def close(self) -> None:
        await self.store.close()

    async def commit(self, batch: Batch) -> None:
        started = time.perf_counter()
        await self.store.commit(batch)
        finished = time.perf_counter()
        self.commit_seconds.append((finished, finished - started))

    async def load_room(self, name: str) -> RoomRecord | None:
        return await self.store.load_room(name)

    async def list_rooms(self) -> list[str]:
        return await self.store.list_rooms()

    async def load_positions(self, room: str) -> list[PositionRecord]:
        return await self.store.load_positions(room)


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50 and p99 in milliseconds (None when nothing was measured)."""
    if not values:
        return {"p50": None, "p99": None}
    ordered = sorted(values)

    def at(quantile: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(quantile * len(ordered)))] * 1000, 2)

    return {"p50": at(0.50), "p99": at(0.99)}


def entity_data(client: int, version: int) -> bytes:
    return (
        b'{"kind":"cube","owner":%d,"persistent":true,"pos":[%d.25,1.5,-2.75],"rot":[0,0,0,1],"scale":[1,1,1],'
        b'"props":{"color":"#3388ff","label":"bench entity %d","material":"oak","on":true,"v":%d}}'
        % (client, version % 100, client, version)
    )


async def run_clients(
    clients: int, entities: int, warmup: float, duration: float, acknowledge: Callable[[EntityRecord], Awaitable[None]]
) -> tuple[float, float, list[float]]:
    """Drive the clients; return the measuring window (start, end) and the ack latencies inside it."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter() + warmup
    end = start + duration
    ack_seconds: list[float] = []

    async def client(number: int) -> None:
        version = 0
        while (queued := time.perf_counter()) < end:
            version += 1
            entity_id = f"c{number}-e{version % entities}"
            await acknowledge(EntityRecord(f"room-{number % ROOMS}", entity_id, version, entity_data(number, version)))
            acked = time.perf_counter()
            if start <= acked < end:
                ack_seconds.append(acked - queued)

    tasks = [loop.create_task(client(n)) for n in range(clients)]
    await asyncio.gather(*tasks)
    return start, end, ack_seconds


async def measure(
    url: str, mode: str, clients: int, entities: int, warmup: float, duration: float, interval: float
) -> dict[str, Any]:
    store = TimedStore(open_store(url, Path(tempfile.gettempdir())))
    await store.open()
    writer = StoreWriter(store, interval=interval)
    await writer.start()
    try:
        if mode == "group":

            async def acknowledge(record: EntityRecord) -> None:
                writer.put_entity(record)
                await writer.committed()

        else:

            async def acknowledge(record: EntityRecord) -> None:
                batch = Batch()
                batch.put_entity(record)
                await store.commit(batch)

        start, end, ack_seconds = await run_clients(clients, entities, warmup, duration, acknowledge)
    finally:
        await writer.stop()
        await store.close()
    commits = [took for finished, took in store.commit_seconds if start <= finished < end]
    return {
        "acked_per_s": round(len(ack_seconds) / duration),
        "commits_per_s": round(len(commits) / duration, 1),
        "rows_per_commit": round(len(ack_seconds) / len(commits), 1) if commits else None,
        "ack_ms": percentiles(ack_seconds),
        "commit_ms": percentiles(commits),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A `python -m moto.server` process on 127.0.0.1, stopped by its PID; yields its endpoint."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                raise StoreError("moto server did not start (pip install 'moto[server]')")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextlib.asynccontextmanager
async def postgres_schema(base_url: str) -> AsyncIterator[str]:
    """A fresh schema on the PostgreSQL server, dropped afterwards; yields the store URL."""
    import asyncpg

    schema = f"shoal_bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{base_url}?schema={schema}"
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            connection = await asyncpg.connect(base_url, timeout=5)
            try:
                await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            finally:
                await connection.close()


@contextlib.asynccontextmanager
async def backend_url(backend: str, workdir: Path, postgres_url: str) -> AsyncIterator[str]:
    if backend == "sqlite-full":
        yield f"sqlite:///{workdir / 'full.db'}"
    elif backend == "sqlite-normal":
        yield f"sqlite:///{workdir / 'normal.db'}?synchronous=normal"
    elif backend == "postgresql":
        async with postgres_schema(postgres_url) as url:
            yield url
    else:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")  # moto accepts any credentials
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        with moto_server() as endpoint:
            yield f"dynamodb://?region=us-east-1&endpoint={endpoint}&prefix=bench_"


async def bench(backend: str, options: dict[str, Any], postgres_url: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "backend": backend,
        **options,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as workdir:
        try:
            async with backend_url(backend, Path(workdir), postgres_url) as url:
                result.update(await measure(url, **options))
        except StoreError as exc:
            result["skipped"] = str(exc)
    return result


@click.command()
@click.option("--backend", "backends", multiple=True, type=click.Choice(BACKENDS), help="Repeatable; default: all.")
@click.option("--mode", default="group", type=click.Choice(["group", "per-change"]), show_default=True)
@click.option("--clients", default=1000, type=click.IntRange(1, 100_000), show_default=True)
@click.option("--entities", default=4, type=click.IntRange(1, 1000), show_default=True, help="Entities per client.")
@click.option("--warmup", default=1.0, type=click.FloatRange(0, 60), show_default=True)
@click.option("--duration", default=5.0, type=click.FloatRange(0.5, 600), show_default=True)
@click.option(
    "--interval", default=0.02, type=click.FloatRange(0.001, 0.05), show_default=True, help="Group window, s."
)
@click.option(
    "--postgres-url",
    envvar="SHOAL_TEST_POSTGRES_URL",
    default="postgresql://postgres@127.0.0.1:5432/test",
    show_default=True,
)
def main(
    backends: tuple[str, ...],
    mode: str,
    clients: int,
    entities: int,
    warmup: float,
    duration: float,
    interval: float,
    postgres_url: str,
) -> None:
    """Measure acknowledged changes per second through the group-commit writer, one JSON line per backend."""
    options = {
        "mode": mode,
        "clients": clients,
        "entities": entities,
        "warmup": warmup,
        "duration": duration,
        "interval": interval,
    }
    for backend in backends or BACKENDS:
        print(json.dumps(asyncio.run(bench(backend, options, postgres_url))), flush=True)


if __name__ == "__main__":
    main()
