"""The storage contract: the records a store keeps, the `Batch` one group commit writes, the `Store` protocol.

A store keeps three kinds of rows, all keyed by room:

- **rooms**: one per room with stored state, holding the room's metadata (opaque bytes);
- **entities**: the persistent entities of a room, each an `EntityRecord` whose `data` is a JSON document;
- **positions**: the last pose of each user in a room (opaque bytes), written at most once a second.

Writes only happen through `Store.commit(batch)`, one transaction per batch; reads happen when a room is
activated. Accounts and room access (users, avatars, sessions, room settings, roles, bans: records in
`shoal.store.accounts`) are written one small transaction per call instead, as people act.
Backends: `shoal.store.sqlite` (default), `shoal.store.postgres`, `shoal.store.dynamodb`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qsl

import msgspec

from shoal.store.accounts import AvatarRecord, BanRecord, RoomAccessRecord, SessionRecord, UserRecord


class StoreError(Exception):
    """A store could not be opened, or a read or a commit failed. A failed commit wrote nothing
    (except on DynamoDB for batches over 100 items: see docs/storage.md)."""


class StoreConflict(StoreError):
    """A record could not be created because its key (a user id or a username) is already taken."""


class EntityRecord(msgspec.Struct, frozen=True):
    """One persistent entity as stored: `data` is the entity as a JSON document (UTF-8 bytes)."""

    room: str
    id: str
    version: int
    """The entity's version, never negative."""
    data: bytes


class PositionRecord(msgspec.Struct, frozen=True):
    """The last pose of `user` in `room`, and when it was taken (seconds since the epoch)."""

    room: str
    user: str
    data: bytes
    updated_at: float


class RoomRecord(msgspec.Struct, frozen=True):
    """A room's stored state: its metadata (`b""` until the first `put_room`) and its entities, by id."""

    name: str
    meta: bytes
    entities: list[EntityRecord]


EntityKey = tuple[str, str]
"""(room, entity id)"""


class Batch:
    """Everything one group commit writes, in one transaction.

    Changes are kept per key, so a later change to the same entity, room or position replaces an earlier
    one (a put after a delete is a put, a delete after a put is a delete). Putting an entity also records
    its room (with empty metadata) when the room has none yet. A batch must not change once it is handed
    to `Store.commit`.
    """

    __slots__ = ("entities", "positions", "rooms")

    def __init__(self) -> None:
        self.entities: dict[EntityKey, EntityRecord | None] = {}
        """Entity changes by (room, id); None means delete."""
        self.rooms: dict[str, bytes] = {}
        """Room metadata by room name."""
        self.positions: dict[EntityKey, PositionRecord] = {}
        """Last poses by (room, user)."""

    def put_entity(self, record: EntityRecord) -> None:
        self.entities[record.room, record.id] = record

    def delete_entity(self, room: str, entity_id: str) -> None:
        self.entities[room, entity_id] = None

    def put_room(self, name: str, meta: bytes) -> None:
        self.rooms[name] = meta

    def put_position(self, record: PositionRecord) -> None:
        self.positions[record.room, record.user] = record

    def is_empty(self) -> bool:
        return not (self.entities or self.rooms or self.positions)

    def __len__(self) -> int:
        """The number of rows this batch writes or deletes (implicitly recorded rooms not counted)."""
        return len(self.entities) + len(self.rooms) + len(self.positions)

    def entity_puts(self) -> list[EntityRecord]:
        return [record for record in self.entities.values() if record is not None]

    def entity_deletes(self) -> list[EntityKey]:
        return [key for key, record in self.entities.items() if record is None]

    def implied_rooms(self) -> list[str]:
        """Rooms that receive an entity in this batch without a `put_room`: each must exist afterwards,
        with empty metadata if it had none."""
        return sorted({room for (room, _), record in self.entities.items() if record is not None} - self.rooms.keys())


class Store(Protocol):
    """Where room state lasts. Every method is a coroutine; a store is used from one asyncio loop.

    `open` must be awaited before anything else and `close` last. Implementations raise `StoreError`
    (never a driver's own exception) when the database fails or refuses a record.
    """

    async def open(self) -> None:
        """Connect and bring the schema up to date (versioned migrations; running them twice is a no-op)."""
        ...

    async def close(self) -> None:
        """Release connections and threads. Committed data stays; nothing is in flight after it returns."""
        ...

    async def commit(self, batch: Batch) -> None:
        """Write the whole batch durably, or nothing of it, then return. Raises `StoreError` on failure,
        including when a record is invalid (an entity whose `data` is not JSON, a negative version)."""
        ...

    async def load_room(self, name: str) -> RoomRecord | None:
        """The room's metadata and persistent entities (sorted by id), or None if the room is unknown."""
        ...

    async def list_rooms(self) -> list[str]:
        """The names of every room with stored state, sorted."""
        ...

    async def load_positions(self, room: str) -> list[PositionRecord]:
        """The last stored pose of each user in `room`, sorted by user."""
        ...

    # ---- accounts and room access (shoal.store.accounts): one small transaction per call, never batched ----

    async def create_user(self, user: UserRecord) -> None:
        """Add an account. Raises `StoreConflict` if its id or its username is taken."""
        ...

    async def update_user(self, user: UserRecord) -> None:
        """Replace an account's display name, colour, password hash and avatar version (the username stays).
        Raises `StoreError` if the account does not exist."""
        ...

    async def load_user(self, user_id: str) -> UserRecord | None: ...

    async def find_user(self, username: str) -> UserRecord | None:
        """The account with exactly this username, or None (callers lower-case usernames before storing them)."""
        ...

    async def list_users(self) -> list[UserRecord]:
        """Every account, sorted by id."""
        ...

    async def delete_user(self, user_id: str) -> bool:
        """Remove an account with its avatar and sessions; False if there was none."""
        ...

    async def put_avatar(self, avatar: AvatarRecord) -> None:
        """Store (or replace) a user's avatar image, up to `MAX_AVATAR_BYTES`."""
        ...

    async def load_avatar(self, user_id: str) -> AvatarRecord | None: ...

    async def put_session(self, session: SessionRecord) -> None:
        """Create or replace a session (a refresh rotates its secret hash)."""
        ...

    async def load_session(self, user_id: str, session_id: str) -> SessionRecord | None: ...

    async def delete_session(self, user_id: str, session_id: str) -> None: ...

    async def delete_sessions(self, user_id: str) -> int:
        """End every session of a user (password change, account deletion); returns how many there were."""
        ...

    async def load_room_access(self, room: str) -> RoomAccessRecord:
        """The room's settings, roles and bans; a room never configured has none of them."""
        ...

    async def put_room_settings(self, room: str, settings: bytes) -> None:
        """Store the room's settings, a JSON document. Raises `StoreError` if it is not JSON."""
        ...

    async def put_room_role(self, room: str, user_id: str, role: str | None) -> None:
        """Give `user_id` a role in `room`, or take its role away (None)."""
        ...

    async def put_room_ban(self, ban: BanRecord) -> None: ...

    async def delete_room_ban(self, room: str, user_id: str) -> None: ...


def open_store(url: str, data_dir: Path) -> Store:
    """The store a URL names, not yet opened. Raises `ValueError` for a malformed URL, an unknown option or a
    backend whose driver is not installed.

    - `""` (the default): SQLite in `data_dir / "shoal.db"`;
    - `sqlite:///abs/path.db`, or `sqlite://rel/path.db` relative to `data_dir`; option `synchronous=full|normal`;
    - `postgresql://user@host:port/db?schema=name` (extra `postgres`);
    - `dynamodb://?region=eu-west-1&endpoint=http://127.0.0.1:5000&prefix=shoal_` (extra `dynamodb`).
    """
    scheme = url.partition("://")[0].lower() if url else "sqlite"
    if scheme == "sqlite":
        from shoal.store.sqlite import SqliteStore

        return SqliteStore.from_url(url, data_dir)
    if scheme in ("postgresql", "postgres"):
        try:
            from shoal.store.postgres import PostgresStore
        except ImportError as exc:
            raise ValueError(f"the PostgreSQL store needs asyncpg: pip install 'shoal[postgres]' ({exc})") from None
        return PostgresStore.from_url(url)
    if scheme == "dynamodb":
        try:
            from shoal.store.dynamodb import DynamoStore
        except ImportError as exc:
            raise ValueError(f"the DynamoDB store needs aioboto3: pip install 'shoal[dynamodb]' ({exc})") from None
        return DynamoStore.from_url(url)
    raise ValueError(f"unknown store URL {url!r}: expected sqlite://, postgresql:// or dynamodb://")


def url_options(query: str, allowed: set[str], url: str) -> dict[str, str]:
    """The `?key=value` options of a store URL; raises `ValueError` naming any option not in `allowed`."""
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    unknown = options.keys() - allowed
    if unknown:
        raise ValueError(f"unknown option {', '.join(sorted(unknown))} in store URL {url!r}")
    return options
