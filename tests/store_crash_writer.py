"""The process `test_store_crash.py` kills: writes through a `StoreWriter` and reports what is committed.

Usage: `python store_crash_writer.py SQLITE_URL PREFIX`. Fifty concurrent writers each alternate between
creating a new entity and bumping their own counter entity, and after each change's `committed()` future
resolves they print `<entity id> <version>` on stdout. The parent kills this process with SIGKILL at a
random moment; every line printed before that must be in the database. It stops by itself after 60 s.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from shoal.store import EntityRecord, StoreWriter, open_store

WRITERS = 50
ROOM = "crash"
LIFETIME = 60.0


async def write_forever(writer: StoreWriter, prefix: str, number: int) -> None:
    counter_id = f"{prefix}-counter-{number}"
    for step in range(1, 1_000_000):
        if step % 2:
            record = EntityRecord(ROOM, f"{prefix}-{number}-{step}", 1, b'{"kind":"cube","props":{"created":true}}')
        else:
            record = EntityRecord(ROOM, counter_id, step, b'{"kind":"counter","props":{"count":%d}}' % step)
        writer.put_entity(record)
        await writer.committed()
        sys.stdout.write(f"{record.id} {record.version}\n")
        sys.stdout.flush()


async def main(url: str, prefix: str) -> None:
    store = open_store(url, Path.cwd())
    await store.open()
    writer = StoreWriter(store)
    await writer.start()
    writers = [asyncio.create_task(write_forever(writer, prefix, n)) for n in range(WRITERS)]
    await asyncio.wait(writers, timeout=LIFETIME)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
