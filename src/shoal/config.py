"""Server configuration: what `shoal serve` reads from its options and environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shoal.auth.settings import AuthSettings
from shoal.core.interest import Interest
from shoal.core.limits import Limits


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything a server process needs to start. Defaults are the embedded, single-process setup."""

    host: str = "127.0.0.1"
    port: int = 8080
    """0 picks a free port; the chosen one is logged in the `listening` event."""
    data_dir: Path = Path("shoal-data")
    store_url: str = ""
    """Where room state is stored: empty for SQLite at `data_dir/shoal.db`, or `sqlite:///path`,
    `postgresql://...`, `dynamodb://?region=...&endpoint=...&prefix=...` (see docs/storage.md)."""
    tick_rate: float = 20.0
    server_name: str = "shoal"
    limits: Limits = field(default_factory=Limits)
    interest: Interest | None = None
    """Interest management in every room: poses within a radius every tick, the others at a slower rate
    (None: everyone gets every pose every tick). See `shoal.core.interest`."""
    read_pacing: float = 0.020
    """Seconds: while busy, the event loop polls its sockets at most once per this window and just before
    each tick (0: off). Poses gain no latency from it; app messages and replies wait up to the window. At 200
    clients it costs about a fifth less CPU per pose than no pacing. See `shoal.transport.pacing`."""
    broadcast_prefixes: tuple[str, ...] = ("/broadcast",)
    """Paths of the ws-broadcast relay: each prefix and every path below it (the room is the raw path + query)."""
    naf_path: str = "/naf"
    """Path of networked-aframe's `uws` adapter (its `socketio` adapter is always at /socket.io/)."""
    naf_room_capacity: int = 50
    """Occupants of a NAF room before joins overflow to `<room>--2`, `--3`, ..."""
    naf_allowed_origins: tuple[str, ...] = ()
    """Origins allowed to open NAF socket.io connections; empty allows only this server's own origin."""
    auth: AuthSettings = field(default_factory=AuthSettings)
    """Accounts, tokens, OIDC, trusted proxies and WebSocket origins (see docs/accounts.md)."""
