"""What the engine asks the transport to do: the only outputs of the sans-I/O core."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shoal.core.member import Member


@dataclass(slots=True)
class Send:
    """Write the same `frame` to every member in `recipients`.

    `binary` selects the WebSocket opcode. A `droppable` frame carries only poses: the transport may
    skip it for a congested member, and must then set `member.needs_full_state` so the room sends that
    member every current pose on a later tick (poses coalesce; nothing else is ever skipped).
    """

    recipients: Sequence[Member]
    frame: bytes
    binary: bool = False
    droppable: bool = False


@dataclass(slots=True)
class Close:
    """Close one member's connection with a WebSocket close code and a short reason."""

    member: Member
    code: int
    reason: str


Action = Send | Close
