"""Carries out the engine's storage actions: where room state is stored and loaded.

The engine says *what* must last (`PersistEntity`, `PersistRoom`, `PersistPosition`), *when* to answer
(`AckWhenDurable`) and *which room* to load (`LoadRoom`); this adapter hands the changes to the
group-commit `StoreWriter` and loads rooms from the `Store`. Acknowledgements go out only after the
batch holding the change has committed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import structlog

from shoal.core.actions import (
    AckWhenDurable,
    Action,
    LoadRoom,
    PersistBan,
    PersistEntity,
    PersistPosition,
    PersistRole,
    PersistRoom,
    Send,
)
from shoal.core.engine import ROOM_NAME, Engine
from shoal.protocol.errors import ErrorCode
from shoal.protocol.messages import Ack, Error
from shoal.room_access import AccessWriter, load_access
from shoal.store.base import EntityRecord, PositionRecord, Store
from shoal.store.writer import StoreWriter

log = structlog.get_logger("shoal.persistence")

Perform = Callable[[list[Action], float], None]


class Persistence:
    """The bridge between the engine and a store. `perform` is the transport's action runner."""

    def __init__(self, engine: Engine, store: Store, writer: StoreWriter, perform: Perform) -> None:
        self.engine = engine
        self.store = store
        self.writer = writer
        self._perform = perform
        self._loads: set[asyncio.Task[None]] = set()
        self.access = AccessWriter(store)
        """Roles and bans decided by the engine, stored in order."""

    async def start(self) -> None:
        """Learn which native rooms have stored state (for the stored-rooms quota). Dialect rooms are stored
        under names no native room can have (`~naf:...`) and are not counted."""
        self.engine.stored_rooms.update(name for name in await self.store.list_rooms() if ROOM_NAME.fullmatch(name))

    def carry_out(self, action: Action) -> None:
        """Handle one storage action. Never blocks: writes are queued, loads and acks are tasks/callbacks."""
        kind = type(action)
        if kind is PersistEntity:
            assert isinstance(action, PersistEntity)
            if action.data is None:
                self.writer.delete_entity(action.room, action.entity_id)
            else:
                self.writer.put_entity(EntityRecord(action.room, action.entity_id, action.version, action.data))
        elif kind is PersistPosition:
            assert isinstance(action, PersistPosition)
            self.writer.put_position(PositionRecord(action.room, action.user, action.data, action.at))
        elif kind is PersistRoom:
            assert isinstance(action, PersistRoom)
            self.writer.put_room(action.room, action.meta)
        elif kind is AckWhenDurable:
            assert isinstance(action, AckWhenDurable)
            self._ack_when_durable(action)
        elif kind is LoadRoom:
            assert isinstance(action, LoadRoom)
            task = asyncio.get_running_loop().create_task(self._load(action.room))
            self._loads.add(task)
            task.add_done_callback(self._loads.discard)
        elif kind is PersistRole or kind is PersistBan:
            self.access.put(action)  # type: ignore[arg-type]

    def _ack_when_durable(self, action: AckWhenDurable) -> None:
        member, seq = action.member, action.seq

        def answer(committed: asyncio.Future[None]) -> None:
            if member.link is None or member.link.closing:
                return
            if committed.cancelled() or committed.exception() is not None:
                reply = Error(code=ErrorCode.STORAGE_UNAVAILABLE, message="the change could not be stored", seq=seq)
            else:
                reply = Ack(seq=seq)
            self._perform([Send((member,), member.codec.encode(reply), member.codec.binary)], time.time())

        self.writer.committed().add_done_callback(answer)

    async def _load(self, room: str) -> None:
        try:
            # A room emptied a moment ago may still have changes in the writer: commit them first, so the
            # state loaded is the latest.
            await self.writer.committed()
            record = await self.store.load_room(room)
            access = await load_access(self.store, room)
        except Exception as exc:
            log.exception("room_load_failed", room=room)
            self._perform(self.engine.room_load_failed(room, str(exc), time.time()), time.time())
            return
        entities = [entity.data for entity in record.entities] if record is not None else []
        now = time.time()
        self._perform(self.engine.room_loaded(room, entities, now, access), now)

    async def stop(self) -> None:
        """Finish loads in flight, then flush and stop the writer."""
        if self._loads:
            await asyncio.wait(self._loads, timeout=5.0)
        await self.access.stop()
        await self.writer.stop()
