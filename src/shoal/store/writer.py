"""Group commit: every change queued within one interval is written by one `Store.commit`.

Callers queue changes without waiting (`put_entity`, ...) and ask `committed()` for a future when they
need to know a change is durable (before acknowledging it to a client). One task commits the pending
batch `interval` seconds after its first change, or at once when `max_batch` changes are pending, and
resolves that batch's future. Batches commit one at a time, in order, so a commit is never one
transaction per change, and the store sees one writer.

Members' last positions take a slower lane: nobody waits for them, so they ride along with the next
commit, or commit on their own `position_interval` after the first one. A room of walking avatars then
costs one transaction a second, not one per 20 ms window (on a busy server, most of the writer's cost).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import structlog

from shoal.store.base import Batch, EntityKey, EntityRecord, PositionRecord, Store, StoreError

log = structlog.get_logger("shoal.store")

MAX_INTERVAL = 0.05
"""The durability contract promises an acknowledgement within one tick or 50 ms of commit latency."""


@dataclass(slots=True)
class WriterStats:
    """Counters since the writer started; `as_dict()` is what /api/stats can serve."""

    commits: int = 0
    """Successful commits (one transaction each, whatever their size)."""
    failed_commits: int = 0
    changes: int = 0
    """Changes queued, counting each call, including ones a later change to the same key replaced."""
    committed_rows: int = 0
    """Rows written by successful commits, after later changes replaced earlier ones."""
    largest_batch: int = 0
    last_batch: int = 0
    last_commit_seconds: float = 0.0
    """Wall time of the last commit, success or failure."""
    max_commit_seconds: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class StoreWriter:
    """Group commit: collects changes, commits them as one batch every `interval` (default 20 ms, max 50 ms)
    or when `max_batch` changes are pending; never one transaction per change.

    A batch may grow past `max_batch` while the previous commit is still running. A failed commit fails
    the future of its batch with the `StoreError` and drops the batch's changes (they were never
    acknowledged); the writer goes on with the next batch.
    """

    def __init__(
        self, store: Store, interval: float = 0.02, max_batch: int = 5000, position_interval: float = 1.0
    ) -> None:
        if not 0 < interval <= MAX_INTERVAL:
            raise ValueError(f"interval must be in (0, {MAX_INTERVAL}] seconds, not {interval}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if not position_interval > 0:
            raise ValueError(f"position_interval must be positive, not {position_interval}")
        self.store = store
        self.position_interval = position_interval
        self.interval = interval
        self.max_batch = max_batch
        self.stats = WriterStats()
        self._pending = Batch()
        self._pending_since = 0.0  # loop time of the pending batch's first change
        self._pending_committed: asyncio.Future[None] | None = None  # created by committed(), lazily
        self._in_flight_committed: asyncio.Future[None] | None = None
        self._positions: dict[EntityKey, PositionRecord] = {}
        """Positions waiting for a commit to ride along with (see the module docstring)."""
        self._positions_due: asyncio.TimerHandle | None = None
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pending(self) -> int:
        """Rows waiting for the next commit."""
        return len(self._pending) + len(self._positions)

    def put_entity(self, record: EntityRecord) -> None:
        self._queue(Batch.put_entity, record)

    def delete_entity(self, room: str, entity_id: str) -> None:
        self._queue(Batch.delete_entity, room, entity_id)

    def put_room(self, name: str, meta: bytes) -> None:
        self._queue(Batch.put_room, name, meta)

    def put_position(self, record: PositionRecord) -> None:
        """Best effort: committed with the next batch, or on its own within `position_interval` seconds."""
        if self._stopping:
            raise StoreError("the store writer is stopped")
        self._positions[record.room, record.user] = record
        self.stats.changes += 1
        if self._positions_due is None:
            self._positions_due = asyncio.get_running_loop().call_later(self.position_interval, self._take_positions)

    def _take_positions(self) -> None:
        """Move the waiting positions into the pending batch (starting it if it was empty)."""
        if self._positions_due is not None:
            self._positions_due.cancel()
            self._positions_due = None
        if not self._positions:
            return
        starts_batch = self._pending.is_empty()
        self._pending.positions.update(self._positions)
        self._positions.clear()
        if starts_batch:
            self._pending_since = asyncio.get_running_loop().time()
            self._wakeup.set()

    def _queue(self, change: Callable[..., None], *args: object) -> None:
        if self._stopping:
            raise StoreError("the store writer is stopped")
        starts_batch = self._pending.is_empty()
        change(self._pending, *args)
        self.stats.changes += 1
        if starts_batch:  # the window opens at a batch's first change; later ones never push it back
            self._pending_since = asyncio.get_running_loop().time()
            self._wakeup.set()
        elif len(self._pending) >= self.max_batch:
            self._wakeup.set()

    def committed(self) -> asyncio.Future[None]:
        """A future that resolves once every change queued so far is committed.

        It is the future of the batch holding the newest change; batches commit in order, so when it
        resolves every earlier batch has finished too (a failed one has failed its own future). It fails
        with `StoreError` if this batch's commit failed. Nothing queued: an already resolved future.
        """
        self._take_positions()
        if not self._pending.is_empty():
            if self._pending_committed is None:
                self._pending_committed = asyncio.get_running_loop().create_future()
            return self._pending_committed
        if self._in_flight_committed is not None:
            return self._in_flight_committed
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def start(self) -> None:
        """Start committing (changes queued before this wait for it)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="shoal-store-writer")

    async def stop(self) -> None:
        """Commit what is pending, then stop. Queuing a change afterwards raises `StoreError`."""
        self._stopping = True
        self._take_positions()
        self._wakeup.set()
        if self._task is not None:
            await self._task
        elif not self._pending.is_empty():  # never started: flush anyway
            await self._commit_pending()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self._pending.is_empty():
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            wait = self._pending_since + self.interval - loop.time()
            if wait > 0 and len(self._pending) < self.max_batch and not self._stopping:
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wakeup.wait()
                continue
            await self._commit_pending()

    async def _commit_pending(self) -> None:
        self._take_positions()
        batch, committed = self._pending, self._pending_committed
        self._pending, self._pending_committed = Batch(), None
        self._in_flight_committed = committed
        started = time.perf_counter()
        try:
            await self.store.commit(batch)
        except asyncio.CancelledError:
            if committed is not None:
                committed.cancel()
            raise
        except Exception as exc:
            self._finished(batch, started, ok=False)
            log.error("store_commit_failed", rows=len(batch), error=str(exc), exc_info=not isinstance(exc, StoreError))
            if committed is not None:
                committed.set_exception(exc if isinstance(exc, StoreError) else StoreError(str(exc)))
        else:
            self._finished(batch, started, ok=True)
            if committed is not None:
                committed.set_result(None)
        finally:
            self._in_flight_committed = None

    def _finished(self, batch: Batch, started: float, *, ok: bool) -> None:
        stats = self.stats
        stats.last_commit_seconds = elapsed = time.perf_counter() - started
        stats.max_commit_seconds = max(stats.max_commit_seconds, elapsed)
        stats.last_batch = len(batch)
        stats.largest_batch = max(stats.largest_batch, len(batch))
        if ok:
            stats.commits += 1
            stats.committed_rows += len(batch)
        else:
            stats.failed_commits += 1
