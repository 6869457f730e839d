"""The DynamoDB store (extra `dynamodb`): aioboto3, three tables, a batch as `TransactWriteItems` calls.

Tables (names start with `prefix`, default `shoal_`; on-demand capacity; created by `open` when missing):

| table            | partition key | sort key  | other attributes                    |
|------------------|---------------|-----------|-------------------------------------|
| `{prefix}rooms`    | `room` (S)    | —         | `meta` (B)                          |
| `{prefix}entities` | `room` (S)    | `id` (S)  | `version` (N), `data` (S, JSON)     |
| `{prefix}positions`| `room` (S)    | `user` (S)| `data` (B), `updated_at` (N)        |

A room loads with one `GetItem` and one `Query`; `list_rooms` scans only the small rooms table. A batch
is written as `TransactWriteItems` calls of at most 100 items, in order: a batch of up to 100 rows is
atomic; a larger one is not (a failure leaves the earlier chunks written). docs/storage.md explains
what that means for acknowledged changes. URL: `dynamodb://?region=…&endpoint=…&prefix=…`; credentials
come from the usual AWS chain (environment, profile, instance role).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aioboto3
import msgspec
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shoal.store.base import Batch, EntityRecord, PositionRecord, RoomRecord, StoreError, url_options
from shoal.store.dynamodb_accounts import DynamoAccounts

TRANSACTION_ITEMS = 100
"""DynamoDB's limit on the items of one `TransactWriteItems` call."""

_PREFIX = re.compile(r"[A-Za-z0-9_.-]{0,200}")
_DRIVER_ERRORS = (BotoCoreError, ClientError)

Item = dict[str, dict[str, Any]]


class DynamoStore(DynamoAccounts):
    """A `Store` in three DynamoDB tables named `{prefix}rooms`, `{prefix}entities`, `{prefix}positions`."""

    def __init__(self, region: str | None = None, endpoint: str | None = None, prefix: str = "shoal_") -> None:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"prefix may hold only letters, digits, '_', '-' and '.', not {prefix!r}")
        self.region = region
        self.endpoint = endpoint
        self.prefix = prefix
        self.rooms_table = f"{prefix}rooms"
        self.entities_table = f"{prefix}entities"
        self.positions_table = f"{prefix}positions"
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    @classmethod
    def from_url(cls, url: str) -> DynamoStore:
        parts = urlsplit(url)
        if parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"a DynamoDB store URL has only options (dynamodb://?region=…&prefix=…), not {url!r}")
        options = url_options(parts.query, {"region", "endpoint", "prefix"}, url)
        return cls(options.get("region") or None, options.get("endpoint") or None, options.get("prefix", "shoal_"))

    def __repr__(self) -> str:
        return f"DynamoStore(region={self.region!r}, endpoint={self.endpoint!r}, prefix={self.prefix!r})"

    def _connected(self) -> Any:
        if self._client is None:
            raise StoreError(f"{self!r} is not open")
        return self._client

    async def open(self) -> None:
        if self._client is not None:
            return
        stack = contextlib.AsyncExitStack()
        try:
            session = aioboto3.Session(region_name=self.region)
            config = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=10)
            self._client = await stack.enter_async_context(
                session.client("dynamodb", endpoint_url=self.endpoint, config=config)
            )
            self._exit_stack = stack
            await self._create_missing_tables()
        except _DRIVER_ERRORS as exc:
            await self.close()  # closes the stack once it holds the client
            await stack.aclose()  # a no-op then; otherwise releases whatever was entered
            raise StoreError(f"cannot open {self!r}: {exc}") from exc

    async def _create_missing_tables(self) -> None:
        """DynamoDB has no schema beyond keys: this is the whole migration, and a no-op the second time."""
        keys = {
            self.rooms_table: ("room", None),
            self.entities_table: ("room", "id"),
            self.positions_table: ("room", "user"),
            self.accounts_table: ("pk", "sk"),
            self.room_access_table: ("room", "sk"),
        }
        client = self._connected()
        created = []
        for table, (partition, sort) in keys.items():
            with contextlib.suppress(client.exceptions.ResourceNotFoundException):
                await client.describe_table(TableName=table)
                continue
            schema = [{"AttributeName": partition, "KeyType": "HASH"}]
            if sort is not None:
                schema.append({"AttributeName": sort, "KeyType": "RANGE"})
            with contextlib.suppress(client.exceptions.ResourceInUseException):  # another server just created it
                await client.create_table(
                    TableName=table,
                    KeySchema=schema,
                    AttributeDefinitions=[
                        {"AttributeName": key["AttributeName"], "AttributeType": "S"} for key in schema
                    ],
                    BillingMode="PAY_PER_REQUEST",
                )
            created.append(table)
        for table in created:
            await client.get_waiter("table_exists").wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    async def close(self) -> None:
        stack, self._exit_stack, self._client = self._exit_stack, None, None
        if stack is not None:
            await stack.aclose()

    async def commit(self, batch: Batch) -> None:
        if batch.is_empty():
            return
        items = self._transaction_items(batch)
        client = self._connected()
        for start in range(0, len(items), TRANSACTION_ITEMS):
            try:
                await client.transact_write_items(TransactItems=items[start : start + TRANSACTION_ITEMS])
            except _DRIVER_ERRORS as exc:
                written = f"; the first {start} of {len(items)} items were written" if start else ""
                raise StoreError(f"DynamoDB commit failed: {_describe(exc)}{written}") from exc

    def _transaction_items(self, batch: Batch) -> list[dict[str, Any]]:
        """One transaction item per row, rooms first. Checks what DynamoDB cannot (JSON, version)."""
        items: list[dict[str, Any]] = []
        for name, meta in batch.rooms.items():
            items.append({"Put": {"TableName": self.rooms_table, "Item": {"room": {"S": name}, "meta": {"B": meta}}}})
        for name in batch.implied_rooms():
            ensure = {
                "TableName": self.rooms_table,
                "Key": {"room": {"S": name}},
                "UpdateExpression": "SET meta = if_not_exists(meta, :empty)",
                "ExpressionAttributeValues": {":empty": {"B": b""}},
            }
            items.append({"Update": ensure})
        for (room, entity_id), record in batch.entities.items():
            if record is None:
                key = {"room": {"S": room}, "id": {"S": entity_id}}
                items.append({"Delete": {"TableName": self.entities_table, "Key": key}})
            else:
                items.append({"Put": {"TableName": self.entities_table, "Item": _entity_item(record)}})
        for position in batch.positions.values():
            item = {
                "room": {"S": position.room},
                "user": {"S": position.user},
                "data": {"B": position.data},
                "updated_at": {"N": repr(position.updated_at)},
            }
            items.append({"Put": {"TableName": self.positions_table, "Item": item}})
        return items

    async def _pages(self, operation: str, result_key: str, **request: Any) -> AsyncIterator[Item]:
        try:
            async for page in self._connected().get_paginator(operation).paginate(**request, ConsistentRead=True):
                for item in page[result_key]:
                    yield item
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"DynamoDB {operation} failed: {_describe(exc)}") from exc

    async def load_room(self, name: str) -> RoomRecord | None:
        try:
            response = await self._connected().get_item(
                TableName=self.rooms_table, Key={"room": {"S": name}}, ConsistentRead=True
            )
        except _DRIVER_ERRORS as exc:
            raise StoreError(f"DynamoDB get_item failed: {_describe(exc)}") from exc
        if "Item" not in response:
            return None
        query = self._by_room(self.entities_table, name)
        entities = [
            EntityRecord(name, item["id"]["S"], int(item["version"]["N"]), item["data"]["S"].encode())
            async for item in self._pages("query", "Items", **query)
        ]
        return RoomRecord(name, response["Item"]["meta"]["B"], entities)

    async def list_rooms(self) -> list[str]:
        scan = {
            "TableName": self.rooms_table,
            "ProjectionExpression": "#room",
            "ExpressionAttributeNames": {"#room": "room"},
        }
        return sorted([item["room"]["S"] async for item in self._pages("scan", "Items", **scan)])

    async def load_positions(self, room: str) -> list[PositionRecord]:
        return [
            PositionRecord(room, item["user"]["S"], item["data"]["B"], float(item["updated_at"]["N"]))
            async for item in self._pages("query", "Items", **self._by_room(self.positions_table, room))
        ]

    @staticmethod
    def _by_room(table: str, room: str) -> dict[str, Any]:
        return {
            "TableName": table,
            "KeyConditionExpression": "#room = :room",
            "ExpressionAttributeNames": {"#room": "room"},
            "ExpressionAttributeValues": {":room": {"S": room}},
        }


def _entity_item(record: EntityRecord) -> Item:
    """The entity as a DynamoDB item; raises StoreError for what SQL backends' constraints would refuse."""
    if record.version < 0:
        raise StoreError(f"entity {record.room}/{record.id}: negative version {record.version}")
    try:
        msgspec.json.decode(record.data)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise StoreError(f"entity {record.room}/{record.id}: data is not JSON ({exc})") from None
    return {
        "room": {"S": record.room},
        "id": {"S": record.id},
        "version": {"N": str(record.version)},
        "data": {"S": record.data.decode()},
    }


def _describe(exc: Exception) -> str:
    """The error with DynamoDB's per-item cancellation reasons, when a transaction was cancelled."""
    if isinstance(exc, ClientError):
        reasons = [r for r in exc.response.get("CancellationReasons", []) if r.get("Code") not in (None, "None")]
        if reasons:
            details = "; ".join(f"{reason.get('Code')}: {reason.get('Message', '')}" for reason in reasons)
            return f"{exc} ({details})"
    return str(exc)
