"""The default store: one SQLite file, driven by stdlib `sqlite3` in one dedicated thread.

Every statement runs in that thread; the event loop hops to it once per call (one commit = one hop), so
a slow disk never stalls the loop. The file is in WAL mode with `synchronous=FULL` unless the URL says
`?synchronous=normal`: FULL survives power loss, NORMAL survives process crashes only (docs/storage.md).
Entity data is stored as TEXT with a `json_valid` check, so the file can be read with the `sqlite3` shell.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from shoal.store import sqlite_accounts
from shoal.store.base import Batch, EntityRecord, PositionRecord, RoomRecord, StoreError, url_options
from shoal.store.sqlite_accounts import SqliteAccounts

T = TypeVar("T")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: rooms, entities, last positions
    (
        "CREATE TABLE rooms (name TEXT PRIMARY KEY, meta BLOB NOT NULL) WITHOUT ROWID",
        "CREATE TABLE entities ("
        " room TEXT NOT NULL, id TEXT NOT NULL,"
        " version INTEGER NOT NULL CHECK (version >= 0),"
        " data TEXT NOT NULL CHECK (json_valid(data)),"
        " PRIMARY KEY (room, id)) WITHOUT ROWID",
        "CREATE TABLE positions ("
        " room TEXT NOT NULL, user_id TEXT NOT NULL, data BLOB NOT NULL, updated_at REAL NOT NULL,"
        " PRIMARY KEY (room, user_id)) WITHOUT ROWID",
    ),
    # 2: accounts, avatars, sessions, room settings, roles, bans
    sqlite_accounts.MIGRATION,
)
"""Schema steps; step i brings `PRAGMA user_version` from i to i + 1. Append, never edit."""

SYNCHRONOUS_MODES = ("full", "normal")

_PUT_ROOM = "INSERT INTO rooms (name, meta) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET meta = excluded.meta"
_ENSURE_ROOM = "INSERT INTO rooms (name, meta) VALUES (?, x'') ON CONFLICT (name) DO NOTHING"
_PUT_ENTITY = (
    "INSERT INTO entities (room, id, version, data) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room, id) DO UPDATE SET version = excluded.version, data = excluded.data"
)
_DELETE_ENTITY = "DELETE FROM entities WHERE room = ? AND id = ?"
_PUT_POSITION = (
    "INSERT INTO positions (room, user_id, data, updated_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (room, user_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
)


class SqliteStore(SqliteAccounts):
    """A `Store` in one SQLite file. Only one server process should use a file at a time."""

    def __init__(self, path: Path, synchronous: str = "full") -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS_MODES)}, not {synchronous!r}")
        self.path = path
        self.synchronous = synchronous
        self._connection: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None

    @classmethod
    def from_url(cls, url: str, data_dir: Path) -> SqliteStore:
        """`""` or `sqlite://` -> `data_dir/shoal.db`; `sqlite:///abs.db` -> `/abs.db`; `sqlite://rel.db` ->
        `data_dir/rel.db`. Option: `?synchronous=full|normal`."""
        location, _, query = url.removeprefix("sqlite://").partition("?")
        options = url_options(query, {"synchronous"}, url)
        path = Path(location) if location else Path("shoal.db")
        return cls(path if path.is_absolute() else data_dir / path, options.get("synchronous", "full").lower())

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r}, synchronous={self.synchronous!r})"

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` in the store's thread and return its result; sqlite3 errors become StoreError."""
        if self._thread is None:
            raise StoreError(f"{self!r} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._call, work)

    def _call(self, work: Callable[[sqlite3.Connection], T]) -> T:
        assert self._connection is not None
        try:
            return work(self._connection)
        except (sqlite3.Error, UnicodeError) as exc:
            raise StoreError(f"SQLite {self.path}: {exc}") from exc

    async def open(self) -> None:
        if self._thread is not None:
            return
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shoal-sqlite")
        try:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._connect)
            await self._run(self._migrate)
        except BaseException:
            await self.close()
            raise

    def _connect(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: no implicit transactions; every write is an explicit BEGIN .. COMMIT.
            self._connection = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            mode = _switch_to_wal(self._connection)
            self._connection.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open SQLite database {self.path}: {exc}") from exc
        if mode.lower() != "wal":
            raise StoreError(f"SQLite {self.path}: WAL mode refused (journal_mode is {mode}); use a local disk")

    @staticmethod
    def _migrate(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")  # takes the write lock before reading the version
        try:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            if version > len(MIGRATIONS):
                raise StoreError(f"the database schema is version {version}, newer than this Shoal knows")
            for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in steps:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")  # part of the transaction: same header page
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        if self._connection is not None:
            await asyncio.get_running_loop().run_in_executor(thread, self._connection.close)
            self._connection = None
        thread.shutdown(wait=True)

    async def commit(self, batch: Batch) -> None:
        if not batch.is_empty():
            await self._run(lambda db: _write(db, batch))

    async def load_room(self, name: str) -> RoomRecord | None:
        return await self._run(lambda db: _read_room(db, name))

    async def list_rooms(self) -> list[str]:
        return await self._run(lambda db: [name for (name,) in db.execute("SELECT name FROM rooms ORDER BY name")])

    async def load_positions(self, room: str) -> list[PositionRecord]:
        def read(db: sqlite3.Connection) -> list[PositionRecord]:
            rows = db.execute(
                "SELECT user_id, data, updated_at FROM positions WHERE room = ? ORDER BY user_id", (room,)
            )
            return [PositionRecord(room, user, data, updated_at) for user, data, updated_at in rows]

        return await self._run(read)


def _write(db: sqlite3.Connection, batch: Batch) -> None:
    """One transaction for the whole batch (runs in the store's thread)."""
    entity_rows = [(r.room, r.id, r.version, r.data.decode()) for r in batch.entity_puts()]
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(_PUT_ROOM, batch.rooms.items())
        db.executemany(_ENSURE_ROOM, ((room,) for room in batch.implied_rooms()))
        db.executemany(_PUT_ENTITY, entity_rows)
        db.executemany(_DELETE_ENTITY, batch.entity_deletes())
        db.executemany(_PUT_POSITION, ((p.room, p.user, p.data, p.updated_at) for p in batch.positions.values()))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _read_room(db: sqlite3.Connection, name: str) -> RoomRecord | None:
    row = db.execute("SELECT meta FROM rooms WHERE name = ?", (name,)).fetchone()
    if row is None:
        return None
    rows = db.execute("SELECT id, version, data FROM entities WHERE room = ? ORDER BY id", (name,))
    return RoomRecord(name, row[0], [EntityRecord(name, id_, version, data.encode()) for id_, version, data in rows])


WAL_SWITCH_TIMEOUT = 5.0
"""Seconds `_switch_to_wal` keeps retrying, the same as the connection's busy timeout."""


def _switch_to_wal(connection: sqlite3.Connection) -> str:
    """`PRAGMA journal_mode = WAL`, returning the mode in force. SQLite answers "database is locked" at once,
    without waiting out the busy timeout, when another connection is switching a new database to WAL at the
    same moment (two processes starting on a fresh data directory), so this retries for a while."""
    deadline = time.monotonic() + WAL_SWITCH_TIMEOUT
    while True:
        try:
            (mode,) = connection.execute("PRAGMA journal_mode = WAL").fetchone()
            return str(mode)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
