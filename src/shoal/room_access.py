"""Room access (settings, roles, bans) between the store and the engine.

`load_access` reads what `Engine.room_loaded` needs; `AccessWriter` stores the roles and bans the engine
decides (`PersistRole`, `PersistBan`) one at a time and in order, off the engine's path. These writes are rare
(a moderator acting), so each is its own small transaction rather than part of the group commit.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from shoal.core.access import Ban, RoomAccess
from shoal.core.actions import PersistBan, PersistRole
from shoal.store import Store
from shoal.store.accounts import BanRecord

log = structlog.get_logger("shoal.access")


async def load_access(store: Store, room: str) -> RoomAccess:
    """The room's settings, roles and bans as the engine keeps them. Raises `StoreError` (or
    `msgspec.ValidationError` for stored settings that are not a valid document)."""
    record = await store.load_room_access(room)
    bans = {ban.user: Ban(ban.until, ban.reason, ban.by) for ban in record.bans}
    return RoomAccess.decode(record.settings, record.roles, bans)


class AccessWriter:
    """Stores roles and bans in the order the engine decided them, one write at a time."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._queue: asyncio.Queue[PersistRole | PersistBan] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def put(self, action: PersistRole | PersistBan) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="shoal-access-writer")
        self._queue.put_nowait(action)

    async def _run(self) -> None:
        while True:
            action = await self._queue.get()
            try:
                if isinstance(action, PersistRole):
                    await self.store.put_room_role(action.room, action.user, action.role)
                else:
                    ban = BanRecord(action.room, action.user, action.until, action.reason, action.by)
                    await self.store.put_room_ban(ban)
            except Exception:  # the engine already applied it in memory; the store will miss it
                log.exception("access_write_failed", room=action.room, user=action.user)
            finally:
                self._queue.task_done()

    async def stop(self) -> None:
        """Write what is queued (for at most 5 s), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 5.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
