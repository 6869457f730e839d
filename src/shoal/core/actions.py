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


@dataclass(slots=True)
class LoadRoom:
    """Load a room's stored state, then call `Engine.room_loaded` (or `room_load_failed`).

    Joins to the room wait until then. The loader must first wait for pending writes to commit, so that
    a room that was just emptied and is joined again sees its latest state.
    """

    room: str


@dataclass(slots=True)
class PersistEntity:
    """Store a persistent entity's new state (`data`, its JSON), or delete it when `data` is None."""

    room: str
    entity_id: str
    version: int
    data: bytes | None


@dataclass(slots=True)
class PersistRoom:
    """Record that a room has stored state, with its metadata as JSON."""

    room: str
    meta: bytes


@dataclass(slots=True)
class PersistPosition:
    """Store a user's last pose in a room (at most once a second per member, and when it leaves)."""

    room: str
    user: str
    data: bytes
    at: float


@dataclass(slots=True)
class AckWhenDurable:
    """Send `ack {seq}` to `member` once every change persisted so far is durably committed (or an
    `error` `storage_unavailable` with that `seq` if the commit fails)."""

    member: Member
    seq: int


@dataclass(slots=True)
class VerifyToken:
    """Check the token `member` sent in `hello`, then call `Engine.token_checked` with its identity (or the
    problem). The member's next frames must wait until then."""

    member: Member
    token: str


@dataclass(slots=True)
class VerifyRoomPassword:
    """Check `password` against the private room's `password_hash` (slow on purpose: not on the event loop),
    then call `Engine.room_password_checked`."""

    member: Member
    room: str
    password: str
    password_hash: str


@dataclass(slots=True)
class PersistRole:
    """Store `user`'s role in `room` (None: back to the room's default role)."""

    room: str
    user: str
    role: str | None


@dataclass(slots=True)
class PersistBan:
    """Store a ban of `user` from `room` until `until` (seconds since the epoch; None: until lifted)."""

    room: str
    user: str
    until: float | None
    reason: str
    by: str


Action = (
    Send
    | Close
    | LoadRoom
    | PersistEntity
    | PersistRoom
    | PersistPosition
    | AckWhenDurable
    | VerifyToken
    | VerifyRoomPassword
    | PersistRole
    | PersistBan
)
