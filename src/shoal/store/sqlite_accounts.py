"""Accounts and room access in the SQLite store: each call is one short transaction in the store's thread.

`SqliteStore` inherits these methods; `MIGRATION` is its schema step 2. Avatars live in a rowid table (their
rows are up to 1 MiB; `WITHOUT ROWID` suits small rows only).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from shoal.store.accounts import (
    USER_COLUMNS,
    AvatarRecord,
    BanRecord,
    RoomAccessRecord,
    SessionRecord,
    UserRecord,
    user_row,
)
from shoal.store.base import StoreConflict, StoreError

T = TypeVar("T")

MIGRATION: tuple[str, ...] = (
    "CREATE TABLE users ("
    " id TEXT PRIMARY KEY, username TEXT UNIQUE, display_name TEXT NOT NULL, color TEXT NOT NULL,"
    " password_hash TEXT, provider TEXT NOT NULL, created_at REAL NOT NULL,"
    " avatar_version INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID",
    "CREATE TABLE avatars (user_id TEXT PRIMARY KEY, content_type TEXT NOT NULL, data BLOB NOT NULL,"
    " version INTEGER NOT NULL)",
    "CREATE TABLE sessions ("
    " user_id TEXT NOT NULL, id TEXT NOT NULL, secret_hash TEXT NOT NULL, expires_at REAL NOT NULL,"
    " created_at REAL NOT NULL, PRIMARY KEY (user_id, id)) WITHOUT ROWID",
    "CREATE TABLE room_settings (room TEXT PRIMARY KEY, data TEXT NOT NULL CHECK (json_valid(data))) WITHOUT ROWID",
    "CREATE TABLE room_roles ("
    " room TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (room, user_id)) WITHOUT ROWID",
    "CREATE TABLE room_bans ("
    " room TEXT NOT NULL, user_id TEXT NOT NULL, until REAL, reason TEXT NOT NULL, by TEXT NOT NULL,"
    " PRIMARY KEY (room, user_id)) WITHOUT ROWID",
)
"""Schema step 2: accounts, avatars, sessions, room settings, roles and bans."""

_INSERT_USER = f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


class SqliteAccounts:
    """The account methods of `SqliteStore` (which provides `_run`: work in the store's thread)."""

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # provided by SqliteStore

    async def _write(self, statement: str, *rows: Iterable[Any]) -> int:
        """Run `statement` once per row in one transaction; return the rows it changed."""
        return await self._run(lambda db: _transaction(db, [(statement, rows)]))

    async def create_user(self, user: UserRecord) -> None:
        def insert(db: sqlite3.Connection) -> None:
            try:
                _transaction(db, [(_INSERT_USER, [user_row(user)])])
            except sqlite3.IntegrityError as exc:
                raise StoreConflict(f"user {user.id!r} or username {user.username!r} exists") from exc

        await self._run(insert)

    async def update_user(self, user: UserRecord) -> None:
        changed = await self._write(
            "UPDATE users SET display_name = ?, color = ?, password_hash = ?, avatar_version = ? WHERE id = ?",
            (user.display_name, user.color, user.password_hash, user.avatar_version, user.id),
        )
        if not changed:
            raise StoreError(f"no user {user.id!r}")

    async def load_user(self, user_id: str) -> UserRecord | None:
        return await self._one_user("id", user_id)

    async def find_user(self, username: str) -> UserRecord | None:
        return await self._one_user("username", username)

    async def _one_user(self, column: str, value: str) -> UserRecord | None:
        query = f"SELECT {USER_COLUMNS} FROM users WHERE {column} = ?"
        row = await self._run(lambda db: db.execute(query, (value,)).fetchone())
        return None if row is None else _user(row)

    async def list_users(self) -> list[UserRecord]:
        rows = await self._run(lambda db: db.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY id").fetchall())
        return [_user(row) for row in rows]

    async def delete_user(self, user_id: str) -> bool:
        def delete(db: sqlite3.Connection) -> int:
            key = [(user_id,)]
            return _transaction(
                db,
                [
                    ("DELETE FROM avatars WHERE user_id = ?", key),
                    ("DELETE FROM sessions WHERE user_id = ?", key),
                    ("DELETE FROM users WHERE id = ?", key),
                ],
            )

        return await self._run(delete) > 0

    async def put_avatar(self, avatar: AvatarRecord) -> None:
        await self._write(
            "INSERT INTO avatars (user_id, content_type, data, version) VALUES (?, ?, ?, ?) ON CONFLICT (user_id)"
            " DO UPDATE SET content_type = excluded.content_type, data = excluded.data, version = excluded.version",
            (avatar.user, avatar.content_type, avatar.data, avatar.version),
        )

    async def load_avatar(self, user_id: str) -> AvatarRecord | None:
        query = "SELECT content_type, data, version FROM avatars WHERE user_id = ?"
        row = await self._run(lambda db: db.execute(query, (user_id,)).fetchone())
        return None if row is None else AvatarRecord(user_id, row[0], bytes(row[1]), row[2])

    async def put_session(self, session: SessionRecord) -> None:
        await self._write(
            "INSERT INTO sessions (user_id, id, secret_hash, expires_at, created_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (user_id, id) DO UPDATE SET secret_hash = excluded.secret_hash,"
            " expires_at = excluded.expires_at",
            (session.user, session.id, session.secret_hash, session.expires_at, session.created_at),
        )

    async def load_session(self, user_id: str, session_id: str) -> SessionRecord | None:
        query = "SELECT secret_hash, expires_at, created_at FROM sessions WHERE user_id = ? AND id = ?"
        row = await self._run(lambda db: db.execute(query, (user_id, session_id)).fetchone())
        return None if row is None else SessionRecord(user_id, session_id, *row)

    async def delete_session(self, user_id: str, session_id: str) -> None:
        await self._write("DELETE FROM sessions WHERE user_id = ? AND id = ?", (user_id, session_id))

    async def delete_sessions(self, user_id: str) -> int:
        return await self._write("DELETE FROM sessions WHERE user_id = ?", (user_id,))

    async def load_room_access(self, room: str) -> RoomAccessRecord:
        def read(db: sqlite3.Connection) -> RoomAccessRecord:
            settings = db.execute("SELECT data FROM room_settings WHERE room = ?", (room,)).fetchone()
            roles = db.execute("SELECT user_id, role FROM room_roles WHERE room = ? ORDER BY user_id", (room,))
            bans = db.execute(
                "SELECT user_id, until, reason, by FROM room_bans WHERE room = ? ORDER BY user_id", (room,)
            )
            return RoomAccessRecord(
                room,
                None if settings is None else settings[0].encode(),
                dict(roles.fetchall()),
                [BanRecord(room, user, until, reason, by) for user, until, reason, by in bans],
            )

        return await self._run(read)

    async def put_room_settings(self, room: str, settings: bytes) -> None:
        await self._write(
            "INSERT INTO room_settings (room, data) VALUES (?, ?)"
            " ON CONFLICT (room) DO UPDATE SET data = excluded.data",
            (room, settings.decode()),
        )

    async def put_room_role(self, room: str, user_id: str, role: str | None) -> None:
        if role is None:
            await self._write("DELETE FROM room_roles WHERE room = ? AND user_id = ?", (room, user_id))
        else:
            await self._write(
                "INSERT INTO room_roles (room, user_id, role) VALUES (?, ?, ?)"
                " ON CONFLICT (room, user_id) DO UPDATE SET role = excluded.role",
                (room, user_id, role),
            )

    async def put_room_ban(self, ban: BanRecord) -> None:
        await self._write(
            "INSERT INTO room_bans (room, user_id, until, reason, by) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (room, user_id)"
            " DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by",
            (ban.room, ban.user, ban.until, ban.reason, ban.by),
        )

    async def delete_room_ban(self, room: str, user_id: str) -> None:
        await self._write("DELETE FROM room_bans WHERE room = ? AND user_id = ?", (room, user_id))


def _transaction(db: sqlite3.Connection, steps: list[tuple[str, Iterable[Iterable[Any]]]]) -> int:
    """Run each statement over its rows in one `BEGIN IMMEDIATE` transaction; return the rows changed."""
    changed = 0
    db.execute("BEGIN IMMEDIATE")
    try:
        for statement, rows in steps:
            changed += db.executemany(statement, rows).rowcount
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return changed


def _user(row: tuple[Any, ...]) -> UserRecord:
    user_id, username, display_name, color, password_hash, provider, created_at, avatar_version = row
    return UserRecord(
        id=user_id,
        username=username,
        display_name=display_name,
        color=color,
        password_hash=password_hash,
        provider=provider,
        created_at=created_at,
        avatar_version=avatar_version,
    )
