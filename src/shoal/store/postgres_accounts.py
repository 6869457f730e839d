"""Accounts and room access in the PostgreSQL store: each call is one statement (one implicit transaction).

`PostgresStore` inherits these methods; `MIGRATION` is its schema step 2. Room settings are a `json` column,
so PostgreSQL itself refuses settings that are not JSON.
"""

from __future__ import annotations

from typing import Any

import asyncpg

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

MIGRATION: tuple[str, ...] = (
    "CREATE TABLE users ("
    " id text PRIMARY KEY, username text UNIQUE, display_name text NOT NULL, color text NOT NULL,"
    " password_hash text, provider text NOT NULL, created_at double precision NOT NULL,"
    " avatar_version bigint NOT NULL DEFAULT 0)",
    "CREATE TABLE avatars ("
    " user_id text PRIMARY KEY, content_type text NOT NULL, data bytea NOT NULL, version bigint NOT NULL)",
    "CREATE TABLE sessions ("
    " user_id text NOT NULL, id text NOT NULL, secret_hash text NOT NULL, expires_at double precision NOT NULL,"
    " created_at double precision NOT NULL, PRIMARY KEY (user_id, id))",
    "CREATE TABLE room_settings (room text PRIMARY KEY, data json NOT NULL)",
    "CREATE TABLE room_roles ("
    " room text NOT NULL, user_id text NOT NULL, role text NOT NULL, PRIMARY KEY (room, user_id))",
    "CREATE TABLE room_bans ("
    " room text NOT NULL, user_id text NOT NULL, until double precision, reason text NOT NULL, by text NOT NULL,"
    " PRIMARY KEY (room, user_id))",
)
"""Schema step 2: accounts, avatars, sessions, room settings, roles and bans."""

_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


class PostgresAccounts:
    """The account methods of `PostgresStore` (which provides `_connected()`, its pool, and `_fetch`)."""

    def _connected(self) -> asyncpg.Pool:
        raise NotImplementedError  # provided by PostgresStore

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        raise NotImplementedError  # provided by PostgresStore

    async def _execute(self, query: str, *args: Any) -> int:
        """Run one statement; return the rows it changed (from the command tag, e.g. `DELETE 3`)."""
        try:
            status = await self._connected().execute(query, *args)
        except asyncpg.UniqueViolationError as exc:
            raise StoreConflict(f"PostgreSQL: {exc.detail or exc}") from exc
        except (*_DRIVER_ERRORS, UnicodeError) as exc:
            raise StoreError(f"PostgreSQL write failed: {exc}") from exc
        count = status.rpartition(" ")[2]
        return int(count) if count.isdigit() else 0

    async def create_user(self, user: UserRecord) -> None:
        await self._execute(
            f"INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", *user_row(user)
        )

    async def update_user(self, user: UserRecord) -> None:
        changed = await self._execute(
            "UPDATE users SET display_name = $2, color = $3, password_hash = $4, avatar_version = $5 WHERE id = $1",
            user.id,
            user.display_name,
            user.color,
            user.password_hash,
            user.avatar_version,
        )
        if not changed:
            raise StoreError(f"no user {user.id!r}")

    async def load_user(self, user_id: str) -> UserRecord | None:
        rows = await self._fetch(f"SELECT {USER_COLUMNS} FROM users WHERE id = $1", user_id)
        return _user(rows[0]) if rows else None

    async def find_user(self, username: str) -> UserRecord | None:
        rows = await self._fetch(f"SELECT {USER_COLUMNS} FROM users WHERE username = $1", username)
        return _user(rows[0]) if rows else None

    async def list_users(self) -> list[UserRecord]:
        return [_user(row) for row in await self._fetch(f'SELECT {USER_COLUMNS} FROM users ORDER BY id COLLATE "C"')]

    async def delete_user(self, user_id: str) -> bool:
        # one statement: the data-modifying CTEs and the final DELETE commit together
        return bool(
            await self._execute(
                "WITH a AS (DELETE FROM avatars WHERE user_id = $1), s AS (DELETE FROM sessions WHERE user_id = $1)"
                " DELETE FROM users WHERE id = $1",
                user_id,
            )
        )

    async def put_avatar(self, avatar: AvatarRecord) -> None:
        await self._execute(
            "INSERT INTO avatars (user_id, content_type, data, version) VALUES ($1, $2, $3, $4) ON CONFLICT (user_id)"
            " DO UPDATE SET content_type = excluded.content_type, data = excluded.data, version = excluded.version",
            avatar.user,
            avatar.content_type,
            avatar.data,
            avatar.version,
        )

    async def load_avatar(self, user_id: str) -> AvatarRecord | None:
        rows = await self._fetch("SELECT content_type, data, version FROM avatars WHERE user_id = $1", user_id)
        return AvatarRecord(user_id, rows[0]["content_type"], rows[0]["data"], rows[0]["version"]) if rows else None

    async def put_session(self, session: SessionRecord) -> None:
        await self._execute(
            "INSERT INTO sessions (user_id, id, secret_hash, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (user_id, id) DO UPDATE SET secret_hash = excluded.secret_hash,"
            " expires_at = excluded.expires_at",
            session.user,
            session.id,
            session.secret_hash,
            session.expires_at,
            session.created_at,
        )

    async def load_session(self, user_id: str, session_id: str) -> SessionRecord | None:
        rows = await self._fetch(
            "SELECT secret_hash, expires_at, created_at FROM sessions WHERE user_id = $1 AND id = $2",
            user_id,
            session_id,
        )
        if not rows:
            return None
        row = rows[0]
        return SessionRecord(user_id, session_id, row["secret_hash"], row["expires_at"], row["created_at"])

    async def delete_session(self, user_id: str, session_id: str) -> None:
        await self._execute("DELETE FROM sessions WHERE user_id = $1 AND id = $2", user_id, session_id)

    async def delete_sessions(self, user_id: str) -> int:
        return await self._execute("DELETE FROM sessions WHERE user_id = $1", user_id)

    async def load_room_access(self, room: str) -> RoomAccessRecord:
        # one statement, so settings, roles and bans come from the same snapshot
        rows = await self._fetch(
            "SELECT 's' AS kind, NULL AS user_id, data::text AS data, NULL AS role,"
            " NULL::double precision AS until, NULL AS reason, NULL AS by FROM room_settings WHERE room = $1"
            " UNION ALL SELECT 'r', user_id, NULL, role, NULL, NULL, NULL FROM room_roles WHERE room = $1"
            " UNION ALL SELECT 'b', user_id, NULL, NULL, until, reason, by FROM room_bans WHERE room = $1",
            room,
        )
        settings = next((row["data"].encode() for row in rows if row["kind"] == "s"), None)
        roles = {row["user_id"]: row["role"] for row in rows if row["kind"] == "r"}
        bans = [BanRecord(room, r["user_id"], r["until"], r["reason"], r["by"]) for r in rows if r["kind"] == "b"]
        return RoomAccessRecord(room, settings, dict(sorted(roles.items())), sorted(bans, key=lambda ban: ban.user))

    async def put_room_settings(self, room: str, settings: bytes) -> None:
        await self._execute(
            "INSERT INTO room_settings (room, data) VALUES ($1, $2::json)"
            " ON CONFLICT (room) DO UPDATE SET data = excluded.data",
            room,
            settings.decode(),
        )

    async def put_room_role(self, room: str, user_id: str, role: str | None) -> None:
        if role is None:
            await self._execute("DELETE FROM room_roles WHERE room = $1 AND user_id = $2", room, user_id)
            return
        await self._execute(
            "INSERT INTO room_roles (room, user_id, role) VALUES ($1, $2, $3)"
            " ON CONFLICT (room, user_id) DO UPDATE SET role = excluded.role",
            room,
            user_id,
            role,
        )

    async def put_room_ban(self, ban: BanRecord) -> None:
        await self._execute(
            "INSERT INTO room_bans (room, user_id, until, reason, by) VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (room, user_id)"
            " DO UPDATE SET until = excluded.until, reason = excluded.reason, by = excluded.by",
            ban.room,
            ban.user,
            ban.until,
            ban.reason,
            ban.by,
        )

    async def delete_room_ban(self, room: str, user_id: str) -> None:
        await self._execute("DELETE FROM room_bans WHERE room = $1 AND user_id = $2", room, user_id)


def _user(row: asyncpg.Record) -> UserRecord:
    return UserRecord(**dict(row.items()))
