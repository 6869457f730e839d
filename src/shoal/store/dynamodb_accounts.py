"""Accounts and room access in the DynamoDB store: two more tables, each holding several kinds of item.

| table                  | partition key `pk` / `room` | sort key `sk`   | item                                        |
|------------------------|-----------------------------|-----------------|---------------------------------------------|
| `{prefix}accounts`     | `user#ID`                   | `profile`       | the account                                 |
|                        | `user#ID`                   | `session#SID`   | one session                                 |
|                        | `user#ID`                   | `avatar#NN`     | part NN of the avatar image                 |
|                        | `username#NAME`             | `-`             | the username's owner (keeps names unique)   |
| `{prefix}room_access`  | room name                   | `settings`      | the room's settings (JSON)                  |
|                        | room name                   | `role#USER`     | a role                                      |
|                        | room name                   | `ban#USER`      | a ban                                       |

An item holds at most 400 KB, so an avatar image (up to 1 MiB) is stored in parts of `AVATAR_PART_BYTES`, all
written (and stale parts deleted) in one transaction; a reader checks the parts agree on their version.
A user and its username are created in one transaction with conditions, so a taken id or name writes nothing.
"""

from __future__ import annotations

from typing import Any

import msgspec
from botocore.exceptions import BotoCoreError, ClientError

from shoal.store.accounts import AvatarRecord, BanRecord, RoomAccessRecord, SessionRecord, UserRecord
from shoal.store.base import StoreConflict, StoreError

AVATAR_PART_BYTES = 350_000
TRANSACTION_ITEMS = 100

_DRIVER_ERRORS = (BotoCoreError, ClientError)
_PROFILE = "profile"

Item = dict[str, dict[str, Any]]


class ConditionFailed(Exception):
    """A conditional write found its condition false (the key exists, or does not)."""


class DynamoAccounts:
    """The account methods of `DynamoStore` (which provides `prefix`, `_connected()` and `_pages`)."""

    prefix: str

    def _connected(self) -> Any:
        raise NotImplementedError  # provided by DynamoStore

    def _pages(self, operation: str, result_key: str, **request: Any) -> Any:
        raise NotImplementedError  # provided by DynamoStore

    @property
    def accounts_table(self) -> str:
        return f"{self.prefix}accounts"

    @property
    def room_access_table(self) -> str:
        return f"{self.prefix}room_access"

    async def _call(self, operation: str, **request: Any) -> Any:
        """Call the client; a failed condition raises `ConditionFailed`, any other failure `StoreError`."""
        try:
            return await getattr(self._connected(), operation)(**request)
        except _DRIVER_ERRORS as exc:
            if _condition_failed(exc):
                raise ConditionFailed(str(exc)) from exc
            raise StoreError(f"DynamoDB {operation} failed: {exc}") from exc

    async def _transact(self, items: list[dict[str, Any]]) -> None:
        """Write `items` in transactions of at most 100 (account items rarely need more than one)."""
        for start in range(0, len(items), TRANSACTION_ITEMS):
            await self._call("transact_write_items", TransactItems=items[start : start + TRANSACTION_ITEMS])

    async def _user_items(self, user_id: str, prefix: str | None = None) -> list[Item]:
        """The user's items (profile, sessions, avatar parts), or those whose sort key starts with `prefix`."""
        query: dict[str, Any] = {
            "TableName": self.accounts_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": _user_key(user_id)}},
        }
        if prefix is not None:  # DynamoDB refuses an empty string in a key condition
            query["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
            query["ExpressionAttributeValues"][":prefix"] = {"S": prefix}
        return [item async for item in self._pages("query", "Items", **query)]

    async def _get(self, table: str, key: Item) -> Item | None:
        response = await self._call("get_item", TableName=table, Key=key, ConsistentRead=True)
        return response.get("Item")

    # ---- users ---------------------------------------------------------------------------------------

    async def create_user(self, user: UserRecord) -> None:
        table = self.accounts_table
        items: list[dict[str, Any]] = [
            {"Put": {"TableName": table, "Item": _user_item(user), "ConditionExpression": "attribute_not_exists(pk)"}}
        ]
        if user.username is not None:
            name_item = {"pk": {"S": _username_key(user.username)}, "sk": {"S": "-"}, "user": {"S": user.id}}
            items.append(
                {"Put": {"TableName": table, "Item": name_item, "ConditionExpression": "attribute_not_exists(pk)"}}
            )
        try:
            await self._transact(items)
        except ConditionFailed as exc:
            raise StoreConflict(f"user {user.id!r} or username {user.username!r} exists") from exc

    async def update_user(self, user: UserRecord) -> None:
        values: Item = {
            ":name": {"S": user.display_name},
            ":color": {"S": user.color},
            ":avatar": {"N": str(user.avatar_version)},
        }
        expression = "SET display_name = :name, color = :color, avatar_version = :avatar"
        if user.password_hash is None:
            expression += " REMOVE password_hash"
        else:
            expression += ", password_hash = :hash"
            values[":hash"] = {"S": user.password_hash}
        try:
            await self._call(
                "update_item",
                TableName=self.accounts_table,
                Key=_profile_key(user.id),
                UpdateExpression=expression,
                ExpressionAttributeValues=values,
                ConditionExpression="attribute_exists(pk)",
            )
        except ConditionFailed as exc:
            raise StoreError(f"no user {user.id!r}") from exc

    async def load_user(self, user_id: str) -> UserRecord | None:
        item = await self._get(self.accounts_table, _profile_key(user_id))
        return None if item is None else _user(item)

    async def find_user(self, username: str) -> UserRecord | None:
        owner = await self._get(self.accounts_table, {"pk": {"S": _username_key(username)}, "sk": {"S": "-"}})
        return None if owner is None else await self.load_user(owner["user"]["S"])

    async def list_users(self) -> list[UserRecord]:
        scan = {
            "TableName": self.accounts_table,
            "FilterExpression": "sk = :profile",
            "ExpressionAttributeValues": {":profile": {"S": _PROFILE}},
        }
        users = [_user(item) async for item in self._pages("scan", "Items", **scan)]
        return sorted(users, key=lambda user: user.id)

    async def delete_user(self, user_id: str) -> bool:
        items = await self._user_items(user_id)
        profile = next((item for item in items if item["sk"]["S"] == _PROFILE), None)
        if profile is None:
            return False
        keys = [{"pk": item["pk"], "sk": item["sk"]} for item in items]
        if "username" in profile:
            keys.append({"pk": {"S": _username_key(profile["username"]["S"])}, "sk": {"S": "-"}})
        await self._transact([{"Delete": {"TableName": self.accounts_table, "Key": key}} for key in keys])
        return True

    # ---- avatars -------------------------------------------------------------------------------------

    async def put_avatar(self, avatar: AvatarRecord) -> None:
        parts = [avatar.data[i : i + AVATAR_PART_BYTES] for i in range(0, len(avatar.data), AVATAR_PART_BYTES)]
        parts = parts or [b""]
        stale = {item["sk"]["S"] for item in await self._user_items(avatar.user, "avatar#")}
        items: list[dict[str, Any]] = []
        for number, part in enumerate(parts):
            item = {
                "pk": {"S": _user_key(avatar.user)},
                "sk": {"S": f"avatar#{number:02d}"},
                "content_type": {"S": avatar.content_type},
                "data": {"B": part},
                "version": {"N": str(avatar.version)},
                "parts": {"N": str(len(parts))},
            }
            stale.discard(item["sk"]["S"])
            items.append({"Put": {"TableName": self.accounts_table, "Item": item}})
        for sort_key in sorted(stale):
            key = {"pk": {"S": _user_key(avatar.user)}, "sk": {"S": sort_key}}
            items.append({"Delete": {"TableName": self.accounts_table, "Key": key}})
        await self._transact(items)

    async def load_avatar(self, user_id: str) -> AvatarRecord | None:
        parts = sorted(await self._user_items(user_id, "avatar#"), key=lambda item: item["sk"]["S"])
        if not parts:
            return None
        first = parts[0]
        if len(parts) != int(first["parts"]["N"]) or len({part["version"]["N"] for part in parts}) != 1:
            raise StoreError(f"the avatar of user {user_id!r} is incomplete ({len(parts)} parts)")
        data = b"".join(part["data"]["B"] for part in parts)
        return AvatarRecord(user_id, first["content_type"]["S"], data, int(first["version"]["N"]))

    # ---- sessions ------------------------------------------------------------------------------------

    async def put_session(self, session: SessionRecord) -> None:
        item = {
            **_session_key(session.user, session.id),
            "secret_hash": {"S": session.secret_hash},
            "expires_at": {"N": repr(session.expires_at)},
            "created_at": {"N": repr(session.created_at)},
        }
        await self._call("put_item", TableName=self.accounts_table, Item=item)

    async def load_session(self, user_id: str, session_id: str) -> SessionRecord | None:
        item = await self._get(self.accounts_table, _session_key(user_id, session_id))
        if item is None:
            return None
        expires_at, created_at = float(item["expires_at"]["N"]), float(item["created_at"]["N"])
        return SessionRecord(user_id, session_id, item["secret_hash"]["S"], expires_at, created_at)

    async def delete_session(self, user_id: str, session_id: str) -> None:
        await self._call("delete_item", TableName=self.accounts_table, Key=_session_key(user_id, session_id))

    async def delete_sessions(self, user_id: str) -> int:
        sessions = await self._user_items(user_id, "session#")
        deletes = [
            {"Delete": {"TableName": self.accounts_table, "Key": {"pk": item["pk"], "sk": item["sk"]}}}
            for item in sessions
        ]
        await self._transact(deletes)
        return len(deletes)

    # ---- room access ---------------------------------------------------------------------------------

    async def load_room_access(self, room: str) -> RoomAccessRecord:
        query = {
            "TableName": self.room_access_table,
            "KeyConditionExpression": "#room = :room",
            "ExpressionAttributeNames": {"#room": "room"},
            "ExpressionAttributeValues": {":room": {"S": room}},
        }
        settings: bytes | None = None
        roles: dict[str, str] = {}
        bans: list[BanRecord] = []
        async for item in self._pages("query", "Items", **query):
            kind, _, user = item["sk"]["S"].partition("#")
            if kind == "settings":
                settings = item["data"]["S"].encode()
            elif kind == "role":
                roles[user] = item["role"]["S"]
            elif kind == "ban":
                until = float(item["until"]["N"]) if "until" in item else None
                bans.append(BanRecord(room, user, until, item["reason"]["S"], item["by"]["S"]))
        return RoomAccessRecord(room, settings, dict(sorted(roles.items())), sorted(bans, key=lambda ban: ban.user))

    async def put_room_settings(self, room: str, settings: bytes) -> None:
        try:
            msgspec.json.decode(settings)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise StoreError(f"settings of room {room!r} are not JSON ({exc})") from None
        item = {"room": {"S": room}, "sk": {"S": "settings"}, "data": {"S": settings.decode()}}
        await self._call("put_item", TableName=self.room_access_table, Item=item)

    async def put_room_role(self, room: str, user_id: str, role: str | None) -> None:
        key = {"room": {"S": room}, "sk": {"S": f"role#{user_id}"}}
        if role is None:
            await self._call("delete_item", TableName=self.room_access_table, Key=key)
        else:
            await self._call("put_item", TableName=self.room_access_table, Item={**key, "role": {"S": role}})

    async def put_room_ban(self, ban: BanRecord) -> None:
        item: Item = {
            "room": {"S": ban.room},
            "sk": {"S": f"ban#{ban.user}"},
            "reason": {"S": ban.reason},
            "by": {"S": ban.by},
        }
        if ban.until is not None:
            item["until"] = {"N": repr(ban.until)}
        await self._call("put_item", TableName=self.room_access_table, Item=item)

    async def delete_room_ban(self, room: str, user_id: str) -> None:
        key = {"room": {"S": room}, "sk": {"S": f"ban#{user_id}"}}
        await self._call("delete_item", TableName=self.room_access_table, Key=key)


def _condition_failed(exc: Exception) -> bool:
    """A single write's condition failed, or a transaction was cancelled because one of its conditions did."""
    if not isinstance(exc, ClientError):
        return False
    if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
        return True
    return any(reason.get("Code") == "ConditionalCheckFailed" for reason in exc.response.get("CancellationReasons", []))


def _user_key(user_id: str) -> str:
    return f"user#{user_id}"


def _username_key(username: str) -> str:
    return f"username#{username}"


def _profile_key(user_id: str) -> Item:
    return {"pk": {"S": _user_key(user_id)}, "sk": {"S": _PROFILE}}


def _session_key(user_id: str, session_id: str) -> Item:
    return {"pk": {"S": _user_key(user_id)}, "sk": {"S": f"session#{session_id}"}}


def _user_item(user: UserRecord) -> Item:
    item: Item = {
        **_profile_key(user.id),
        "id": {"S": user.id},
        "display_name": {"S": user.display_name},
        "color": {"S": user.color},
        "provider": {"S": user.provider},
        "created_at": {"N": repr(user.created_at)},
        "avatar_version": {"N": str(user.avatar_version)},
    }
    if user.username is not None:
        item["username"] = {"S": user.username}
    if user.password_hash is not None:
        item["password_hash"] = {"S": user.password_hash}
    return item


def _user(item: Item) -> UserRecord:
    return UserRecord(
        id=item["id"]["S"],
        username=item["username"]["S"] if "username" in item else None,
        display_name=item["display_name"]["S"],
        color=item["color"]["S"],
        password_hash=item["password_hash"]["S"] if "password_hash" in item else None,
        provider=item["provider"]["S"],
        created_at=float(item["created_at"]["N"]),
        avatar_version=int(item["avatar_version"]["N"]),
    )
