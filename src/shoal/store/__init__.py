"""Where room state lasts: the `Store` contract, its backends, and the group-commit `StoreWriter`.

See docs/storage.md for the durability contract, the schemas and the measured commit throughput.
"""

from shoal.store.base import (
    Batch,
    EntityRecord,
    PositionRecord,
    RoomRecord,
    Store,
    StoreConflict,
    StoreError,
    open_store,
)
from shoal.store.writer import StoreWriter, WriterStats

__all__ = [
    "Batch",
    "EntityRecord",
    "PositionRecord",
    "RoomRecord",
    "Store",
    "StoreConflict",
    "StoreError",
    "StoreWriter",
    "WriterStats",
    "open_store",
]
