"""`kill -9` of a process writing through the SQLite `StoreWriter`: nothing it reported as committed is lost.

The child (`store_crash_writer.py`) prints each change only after its `committed()` future resolved. It is
killed with SIGKILL at a random moment, several times on the same file; after each kill the file must pass
`PRAGMA integrity_check` and hold every printed entity at (at least) the printed version. The end-to-end
version through a real server is in test_persistence.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shoal.store import open_store
from shoal.store.base import RoomRecord

WRITER_SCRIPT = Path(__file__).with_name("store_crash_writer.py")
ITERATIONS = 4


def run_and_kill(url: str, prefix: str, rng: random.Random) -> list[str]:
    """Run the writer, SIGKILL it a random 50-600 ms after its first commit; return the lines it printed."""
    process = subprocess.Popen(
        [sys.executable, str(WRITER_SCRIPT), url, prefix],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    first_line = threading.Event()

    def collect() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            first_line.set()

    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    try:
        if not first_line.wait(20):
            process.kill()
            raise AssertionError(f"the writer committed nothing within 20 s:\n{process.communicate()[1]}")
        time.sleep(rng.uniform(0.05, 0.6))
    finally:
        process.kill()  # SIGKILL: no flush, no close, no atexit
        process.wait(10)
        reader.join(10)
    assert process.returncode == -9
    return [line for line in lines if line.endswith("\n")]  # a line cut by the kill was never fully reported


async def load_room(url: str, data_dir: Path, room: str) -> RoomRecord | None:
    store = open_store(url, data_dir)
    await store.open()
    try:
        return await store.load_room(room)
    finally:
        await store.close()


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_no_committed_change_is_lost_to_kill_9(tmp_path: Path, synchronous: str) -> None:
    path = tmp_path / "crash.db"
    url = f"sqlite:///{path}?synchronous={synchronous}"
    rng = random.Random()
    reported: dict[str, int] = {}
    for iteration in range(ITERATIONS):
        printed = run_and_kill(url, f"i{iteration}", rng)
        for line in printed:
            entity_id, version = line.split()
            reported[entity_id] = max(reported.get(entity_id, 0), int(version))

        with contextlib.closing(sqlite3.connect(path)) as db:  # recovers the WAL left by the kill
            assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        room = asyncio.run(load_room(url, tmp_path, "crash"))
        stored = {record.id: record.version for record in room.entities} if room else {}
        lost = sorted(entity_id for entity_id in reported if entity_id not in stored)
        assert not lost, f"iteration {iteration}: {len(lost)} committed entities lost, e.g. {lost[:5]}"
        behind = sorted(entity_id for entity_id, version in reported.items() if stored[entity_id] < version)
        assert not behind, f"iteration {iteration}: committed versions lost for {behind[:5]}"
    assert len(reported) > 100, "too few changes were committed for the test to mean much"
