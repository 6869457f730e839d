"""Counters the engine and the transport keep; served at /api/stats and used by tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Stats:
    """Monotonic counters since the server started. Nothing here is per message in the logs."""

    connections: int = 0
    frames_in: int = 0
    poses_in: int = 0
    poses_ignored: int = 0
    """Poses received from a member that is in no room."""
    joints_in: int = 0
    joints_ignored: int = 0
    """Hand joints received from a member that is in no room."""
    frames_out: int = 0
    bytes_out: int = 0
    ticks_sent: int = 0
    ticks_skipped: int = 0
    """Tick frames not written because the member's socket was backed up (it got full state later)."""
    invalid_messages: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    """Messages dropped by reason (`pose_rate`, `joints_rate`, `update_rate`, `message_rate`)."""
    closes: Counter[int] = field(default_factory=Counter)
    """Connections the server closed, by close code."""

    def as_dict(self) -> dict[str, object]:
        data: dict[str, object] = {name: getattr(self, name) for name in self.__slots__}  # type: ignore[attr-defined]
        data["dropped"] = dict(self.dropped)
        data["closes"] = {str(code): count for code, count in self.closes.items()}
        return data
