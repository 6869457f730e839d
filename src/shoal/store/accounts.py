"""The records of accounts and room access: users, their avatars and sessions, room settings, roles, bans.

They are written one at a time, when a person registers, logs in, uploads an image or a moderator acts, never
per pose: each `Store` method for them is its own small transaction, not part of the group-commit `Batch`.
Each backend implements those methods in its own module (`sqlite_accounts.py`, `postgres_accounts.py`,
`dynamodb_accounts.py`). Payloads the store does not interpret (room settings) are JSON documents.
"""

from __future__ import annotations

from typing import Any

import msgspec

MAX_AVATAR_BYTES = 1024 * 1024
"""The largest avatar image a store must accept."""


class UserRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An account. `username` is unique (the API lower-cases it), and None for accounts from an external OIDC
    provider (they log in there, never here). `password_hash` is an argon2id hash (None: no local password).
    `avatar_version` is 0 without an avatar image and grows with every upload (it busts caches)."""

    id: str
    username: str | None
    display_name: str
    color: str
    password_hash: str | None = None
    provider: str = "local"
    """`local` for accounts made here, `oidc` for accounts first seen in an external provider's token."""
    created_at: float = 0.0
    avatar_version: int = 0


USER_COLUMNS = "id, username, display_name, color, password_hash, provider, created_at, avatar_version"
"""The `users` table's columns in the SQL stores, in the order of `user_row`."""


def user_row(user: UserRecord) -> tuple[Any, ...]:
    """`user` as a row of `USER_COLUMNS`."""
    return (user.id, user.username, user.display_name, user.color, user.password_hash, user.provider,
            user.created_at, user.avatar_version)  # fmt: skip


class AvatarRecord(msgspec.Struct, frozen=True):
    """A user's avatar image: the bytes exactly as uploaded (checked before they are stored)."""

    user: str
    content_type: str
    data: bytes
    version: int


class SessionRecord(msgspec.Struct, frozen=True):
    """One login of one user (one device): the hash of its current refresh secret and when it expires.

    Access tokens name their session; deleting the session revokes them and its refresh token at once."""

    user: str
    id: str
    secret_hash: str
    expires_at: float
    created_at: float


class BanRecord(msgspec.Struct, frozen=True):
    """`user` (an account id, or `addr:ADDRESS` for a guest without an account) may not join `room` until
    `until` (seconds since the epoch; None: for good)."""

    room: str
    user: str
    until: float | None
    reason: str = ""
    by: str = ""


class RoomAccessRecord(msgspec.Struct, frozen=True):
    """Who may do what in a room: its settings (a JSON document, None when never set), roles by user, bans."""

    room: str
    settings: bytes | None
    roles: dict[str, str]
    bans: list[BanRecord]
