"""The PostgreSQL store (extra `postgres`): asyncpg, one transaction per batch, set-based upserts.

A batch is written with one statement per kind of row, each taking arrays (`unnest`), so a commit costs
a handful of round trips whatever its size. Entity data is a `json` column: PostgreSQL checks it is JSON
and keeps the text as written (`jsonb` would re-encode it on every write, and Shoal never queries inside).
URL: `postgresql://user:password@host:port/database?schema=name`; every other query option is handed to
asyncpg (as connection options or server settings).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from shoal.store import postgres_accounts
from shoal.store.base import Batch, EntityRecord, PositionRecord, RoomRecord, StoreError
from shoal.store.postgres_accounts import PostgresAccounts

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1: rooms, entities, last positions
    (
        "CREATE TABLE rooms (name text PRIMARY KEY, meta bytea NOT NULL)",
        "CREATE TABLE entities ("
        " room text NOT NULL, id text NOT NULL,"
        " version bigint NOT NULL CHECK (version >= 0),"
        " data json NOT NULL,"
        " PRIMARY KEY (room, id))",
        "CREATE TABLE positions ("
        " room text NOT NULL, user_id text NOT NULL, data bytea NOT NULL, updated_at double precision NOT NULL,"
        " PRIMARY KEY (room, user_id))",
    ),
    # 2: accounts, avatars, sessions, room settings, roles, bans
    postgres_accounts.MIGRATION,
)
"""Schema steps; step i is recorded as version i + 1 in `shoal_migrations`. Append, never edit."""

_MIGRATION_LOCK = 0x5_3C0A1  # any constant: serialises concurrent `open`s of servers sharing a database

_PUT_ROOMS = (
    "INSERT INTO rooms (name, meta) SELECT * FROM unnest($1::text[], $2::bytea[])"
    " ON CONFLICT (name) DO UPDATE SET meta = excluded.meta"
)
_ENSURE_ROOMS = "INSERT INTO rooms (name, meta) SELECT unnest($1::text[]), ''::bytea ON CONFLICT (name) DO NOTHING"
_PUT_ENTITIES = (
    "INSERT INTO entities (room, id, version, data)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::json[])"
    " ON CONFLICT (room, id) DO UPDATE SET version = excluded.version, data = excluded.data"
)
_DELETE_ENTITIES = (
    "DELETE FROM entities e USING unnest($1::text[], $2::text[]) AS d(room, id) WHERE e.room = d.room AND e.id = d.id"
)
_PUT_POSITIONS = (
    "INSERT INTO positions (room, user_id, data, updated_at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::float8[])"
    " ON CONFLICT (room, user_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"
)

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PostgresStore(PostgresAccounts):
    """A `Store` in a PostgreSQL database, in `schema` (created if missing) or the server's default one."""

    def __init__(self, dsn: str, schema: str | None = None, max_connections: int = 4) -> None:
        if schema is not None and not _SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"schema must be a lower-case SQL identifier (a-z, 0-9, _), not {schema!r}")
        self.dsn = dsn
        self.schema = schema
        self.max_connections = max_connections
        self._pool: asyncpg.Pool | None = None

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        """Take the `schema` option out of the URL; leave the rest to asyncpg."""
        parts = urlsplit(url)
        options = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((value for key, value in options if key == "schema"), None)
        query = urlencode([(key, value) for key, value in options if key != "schema"])
        return cls(urlunsplit(parts._replace(query=query)), schema)

    def __repr__(self) -> str:
        parts = urlsplit(self.dsn)
        host = parts.hostname or "localhost"
        return f"PostgresStore({host}:{parts.port or 5432}{parts.path}, schema={self.schema!r})"

    def _connected(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError(f"{self!r} is not open")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        settings = {"search_path": self.schema} if self.schema else {}
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.max_connections, server_settings=settings, timeout=10
            )
            async with self._pool.acquire() as connection:
                await self._migrate(connection)
        except (*_DRIVER_ERRORS, TimeoutError) as exc:
            await self.close()
            raise StoreError(f"cannot open {self!r}: {exc}") from exc

    async def _migrate(self, connection: asyncpg.Connection) -> None:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            if self.schema:
                await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            await connection.execute(
                "CREATE TABLE IF NOT EXISTS shoal_migrations"
                " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            version = await connection.fetchval("SELECT coalesce(max(version), 0) FROM shoal_migrations")
            if version > len(MIGRATIONS):
                raise StoreError(f"the database schema is version {version}, newer than this Shoal knows")
            for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in steps:
                    await connection.execute(statement)
                await connection.execute("INSERT INTO shoal_migrations (version) VALUES ($1)", number)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def commit(self, batch: Batch) -> None:
        if batch.is_empty():
            return
        try:
            steps = _statements(batch)
            async with self._connected().acquire() as connection, connection.transaction():
                for statement, columns in steps:
                    await connection.execute(statement, *columns)
        except (*_DRIVER_ERRORS, UnicodeError) as exc:
            raise StoreError(f"PostgreSQL commit of {len(batch)} rows failed: {exc}") from exc

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        try:
            return await self._connected().fetch(query, *args)
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"PostgreSQL read failed: {exc}") from exc

    async def load_room(self, name: str) -> RoomRecord | None:
        # one statement, so the metadata and the entities come from the same snapshot
        rows = await self._fetch(
            "SELECT r.meta, e.id, e.version, e.data::text AS data FROM rooms r"
            ' LEFT JOIN entities e ON e.room = r.name WHERE r.name = $1 ORDER BY e.id COLLATE "C"',
            name,
        )
        if not rows:
            return None
        entities = [EntityRecord(name, r["id"], r["version"], r["data"].encode()) for r in rows if r["id"] is not None]
        return RoomRecord(name, rows[0]["meta"], entities)

    async def list_rooms(self) -> list[str]:
        return [row["name"] for row in await self._fetch('SELECT name FROM rooms ORDER BY name COLLATE "C"')]

    async def load_positions(self, room: str) -> list[PositionRecord]:
        rows = await self._fetch(
            'SELECT user_id, data, updated_at FROM positions WHERE room = $1 ORDER BY user_id COLLATE "C"', room
        )
        return [PositionRecord(room, row["user_id"], row["data"], row["updated_at"]) for row in rows]


def _statements(batch: Batch) -> list[tuple[str, tuple[list[Any], ...]]]:
    """The statements that write `batch`, each with its array parameters; kinds with no rows are left out."""
    steps: list[tuple[str, tuple[list[Any], ...]]] = []
    if batch.rooms:
        steps.append((_PUT_ROOMS, (list(batch.rooms), list(batch.rooms.values()))))
    if implied := batch.implied_rooms():
        steps.append((_ENSURE_ROOMS, (implied,)))
    if puts := batch.entity_puts():
        columns = (
            [r.room for r in puts],
            [r.id for r in puts],
            [r.version for r in puts],
            [r.data.decode() for r in puts],
        )
        steps.append((_PUT_ENTITIES, columns))
    if deletes := batch.entity_deletes():
        steps.append((_DELETE_ENTITIES, ([room for room, _ in deletes], [id_ for _, id_ in deletes])))
    if positions := list(batch.positions.values()):
        columns = (
            [p.room for p in positions],
            [p.user for p in positions],
            [p.data for p in positions],
            [p.updated_at for p in positions],
        )
        steps.append((_PUT_POSITIONS, columns))
    return steps
