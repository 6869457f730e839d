"""The limits a Shoal server enforces, with their defaults.

One frozen object holds every limit so that the server, the protocol document and the `welcome`
message agree. Every field can be overridden from the CLI or the environment (see `shoal.config`).
"""

from __future__ import annotations

import msgspec


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-connection and per-room limits. Units are bytes, seconds and messages per second."""

    max_message_bytes: int = 64 * 1024
    """Largest incoming WebSocket message; a bigger one closes the connection with 1009."""
    max_members_per_room: int = 64
    """A join beyond this is refused with the error code `room_full`."""
    max_rooms: int = 10_000
    """Live rooms per server; a join that would create one more is refused with `too_many_rooms`."""
    pose_rate: float = 90.0
    """Sustained poses and entity updates per second per connection; excess ones are dropped and counted."""
    pose_burst: int = 180
    joints_rate: float = 30.0
    """Sustained hand-joints messages per second per connection; excess ones are dropped and counted."""
    joints_burst: int = 60
    joints_relay_rate: float = 10.0
    """Hz at which rooms relay hand joints (`shoal serve --joints-rate`): the latest of each member goes out with
    every `max(1, round(tick_rate / joints_relay_rate))`-th tick."""
    message_rate: float = 10.0
    """Sustained non-pose messages per second per connection (join, msg, ping, ...)."""
    message_burst: int = 20
    abuse_close_seconds: float = 5.0
    """A connection that keeps exceeding a rate limit for this long is closed with 4008."""
    invalid_burst: int = 5
    """Invalid messages tolerated per `invalid_window`; one more closes with 1008."""
    invalid_window: float = 60.0
    hello_timeout: float = 10.0
    """Seconds a new connection has to send `hello`; after that it is closed with 4000."""
    max_name_chars: int = 32
    max_room_chars: int = 64
    tick_skip_bytes: int = 64 * 1024
    """A member whose socket holds more unsent bytes than this skips pose ticks; it gets the full
    pose state once it drains, so it never holds more than one pending tick."""
    max_buffer_bytes: int = 1024 * 1024
    """Unsent bytes (reliable messages) after which a member is closed with 4009."""
    max_congested_seconds: float = 5.0
    """A member whose socket stays above `tick_skip_bytes` this long is closed with 4009."""
    max_entities_per_member: int = 256
    """Live entities one member has created."""
    max_entities_per_room: int = 4096
    max_props_bytes: int = 16 * 1024
    """Encoded size of one entity's `props` after a change is merged."""
    max_stored_rooms: int = 10_000
    """Rooms with stored (persistent) state; a persistent entity in one more room is refused."""
    position_interval: float = 5.0
    """Seconds: a moving member's last pose is stored at most this often, and always when it leaves. A
    crash loses at most this much of a member's movement; storing one costs a float decode, a JSON
    encode and a database row, about 5 % of a busy server's CPU at once a second."""
    resume_window: float = 60.0
    """Seconds during which a dropped member may come back with its resume token (same id and room)."""
    ping_interval: float = 20.0
    """Server WebSocket ping interval; a peer that has not answered within half of it is dropped."""
