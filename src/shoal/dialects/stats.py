"""Counters a dialect keeps; served at `GET /api/dialects` next to the native `/api/stats`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class DialectStats:
    """Monotonic counters since the server started, per dialect."""

    connections: int = 0
    messages_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    """Messages (or parts of them) not relayed, by reason: `rate`, `cross_room_send`, `not_owner`, ..."""
    closes: Counter[int] = field(default_factory=Counter)
    """Connections closed, by close code (the server's own closes and the protocol errors it saw)."""

    def as_dict(self) -> dict[str, object]:
        return {
            "connections": self.connections,
            "messages_in": self.messages_in,
            "frames_out": self.frames_out,
            "bytes_out": self.bytes_out,
            "dropped": dict(self.dropped),
            "closes": {str(code): count for code, count in self.closes.items()},
        }
