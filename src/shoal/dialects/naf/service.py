"""The I/O side of the NAF core, shared by its two transports: carries out actions, loads and stores rooms.

A `NafClient` arrives over one `Channel` (the uWS WebSocket endpoint or socket.io), and one room may hold
clients of both. `perform` hands each `Emit` to the channels of its recipients (each channel encodes the
event once for all of its clients), closes clients, and moves storage actions to the store: a NAF room
instance `<name>` is stored as the store room `~naf:<name>`, a name no native room can have (native names
start with a letter or digit), each persistent entity as an `EntityRecord` whose `data` is its last full
NAF state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, Protocol

import msgspec
import structlog

from shoal.core.actions import LoadRoom, PersistEntity
from shoal.dialects.naf.core import Action, CloseClient, Emit, NafClient, NafCore
from shoal.store.base import EntityRecord, Store, StoreError
from shoal.store.writer import StoreWriter

log = structlog.get_logger("shoal.dialects.naf")

STORE_PREFIX = "~naf:"


def store_room(name: str) -> str:
    """The store room holding NAF room instance `name`."""
    return STORE_PREFIX + name


class Channel(Protocol):
    """A transport NAF clients connect over. `deliver` must not wait for a slow reader."""

    async def deliver(self, clients: Sequence[NafClient], event: str, data: Any) -> None: ...

    def close(self, client: NafClient, code: int, reason: str) -> None: ...

    async def shutdown(self) -> None:
        """Close every connection with 1012 and stop accepting new ones."""
        ...


class NafService:
    """One `NafCore`, the channels feeding it, and (optionally) the store its rooms live in."""

    def __init__(self, core: NafCore, writer: StoreWriter | None = None, store: Store | None = None) -> None:
        if core.store_backed and (writer is None or store is None):
            raise ValueError("a store-backed NAF core needs a writer and a store")
        self.core = core
        self.writer = writer
        self.store = store
        self.channels: list[Channel] = []
        self._loads: set[asyncio.Task[None]] = set()

    async def receive(self, client: NafClient, event: Any, data: Any) -> None:
        now = time.time()
        await self.perform(self.core.receive(client, event, data, now), now)

    async def disconnect(self, client: NafClient) -> None:
        now = time.time()
        await self.perform(self.core.disconnect(client, now), now)

    async def perform(self, actions: list[Action], now: float) -> None:
        """Carry out the core's actions in order."""
        for action in actions:
            if type(action) is Emit:
                for channel, clients in _by_channel(action.recipients):
                    await channel.deliver(clients, action.event, action.data)
            elif type(action) is CloseClient:
                client = action.client
                if client.channel is not None:
                    client.channel.close(client, action.code, action.reason)
                await self.perform(
                    self.core.disconnect(client, now), now
                )  # it leaves at once, not when the socket ends
            elif type(action) is PersistEntity:
                self._store(action)
            elif type(action) is LoadRoom:
                task = asyncio.get_running_loop().create_task(self._load(action.room))
                self._loads.add(task)
                task.add_done_callback(self._loads.discard)

    def _store(self, action: PersistEntity) -> None:
        if self.writer is None:
            return
        room = store_room(action.room)
        try:
            if action.data is None:
                self.writer.delete_entity(room, action.entity_id)
            else:
                self.writer.put_entity(EntityRecord(room, action.entity_id, action.version, action.data))
        except StoreError as exc:  # the writer stops at shutdown; the change was never acknowledged
            log.warning("naf_entity_not_stored", room=action.room, entity=action.entity_id, error=str(exc))

    async def _load(self, name: str) -> None:
        assert self.writer is not None and self.store is not None
        try:
            await self.writer.committed()  # a room emptied a moment ago may have writes in flight
            record = await self.store.load_room(store_room(name))
        except Exception as exc:
            log.exception("naf_room_load_failed", room=name)
            now = time.time()
            await self.perform(self.core.room_load_failed(name, str(exc), now), now)
            return
        stored = [entity.data for entity in record.entities] if record is not None else []
        now = time.time()
        await self.perform(self.core.room_loaded(name, stored, now), now)

    async def room_state(self, name: str) -> dict[str, Any] | None:
        """A room instance's entities and occupants: live from memory, else as stored; None if neither."""
        room = self.core.rooms.get(name)
        if room is not None and not room.loading:
            entities = list(room.shadow.entities.values())
            return {"name": name, "live": True, "occupants": dict(room.joined), "entities": entities}
        if self.writer is None or self.store is None:
            return None
        await self.writer.committed()
        record = await self.store.load_room(store_room(name))
        if record is None:
            return None
        entities = [msgspec.Raw(entity.data) for entity in record.entities]
        return {"name": name, "live": False, "occupants": {}, "entities": entities}

    async def shutdown(self) -> None:
        """Close every NAF connection with 1012, then let room loads in flight finish."""
        for channel in self.channels:
            await channel.shutdown()
        if self._loads:
            await asyncio.wait(self._loads, timeout=5.0)


def _by_channel(recipients: Sequence[NafClient]) -> list[tuple[Channel, list[NafClient]]]:
    """Recipients grouped by channel, in order of first appearance; clients without one are skipped."""
    groups: dict[int, tuple[Channel, list[NafClient]]] = {}
    for client in recipients:
        channel = client.channel
        if channel is not None:
            groups.setdefault(id(channel), (channel, []))[1].append(client)
    return list(groups.values())
