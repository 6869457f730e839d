"""Who may open a WebSocket, and who it is: the Origin check, tokens at the handshake, room passwords.

Before the upgrade (`admit`):
- **Origin.** A browser sends `Origin`; it must be this server's own (same host and port), a localhost one, or
  on the `--allowed-origin` list (exact scheme, host and port), else 403. No `Origin` (a non-browser client,
  which cannot be tricked into connecting with a victim's credentials) is allowed.
- **`?token=`** (an access token, a ticket, a guest token or an OIDC token) is checked before the 101: a bad one
  is refused with 401 and the member never exists.

After the upgrade the engine asks for checks it cannot do itself (`carry_out`): a `hello` token
(`VerifyToken`; the member's next frames are held until the answer, so nothing it sends is handled as a
guest's) and a private room's password (`VerifyRoomPassword`, argon2id in a thread).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import structlog
from aiohttp import web

from shoal.auth import Accounts, AuthError
from shoal.auth.throttle import Network, client_address
from shoal.core.access import AuthMode, Identity
from shoal.core.actions import Action, Close, VerifyRoomPassword, VerifyToken
from shoal.core.engine import Engine
from shoal.core.member import Member
from shoal.protocol.errors import CloseCode
from shoal.protocol.messages import MAX_TOKEN_CHARS

log = structlog.get_logger("shoal.access")

LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "::1")
MAX_HELD_FRAMES = 64
"""Frames held while a `hello` token is checked; one more closes the connection (1008)."""
CHECK_TIMEOUT = 10.0

Perform = Callable[[list[Action], float], None]


def origin_allowed(origin: str | None, host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a browser page from `origin` may connect to this server (reached as `host`)."""
    if origin is None:
        return True
    if origin in allowed:
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc or origin != f"{parts.scheme}://{parts.netloc}":
        return False  # "null", paths, user info: never
    return parts.netloc == host or parts.hostname in LOCAL_HOSTS


class AccessChecks:
    """The transport's checks of origins, tokens and room passwords, and the frames held meanwhile."""

    def __init__(self, engine: Engine, perform: Perform) -> None:
        self.engine = engine
        self.perform = perform
        self.accounts: Accounts | None = None
        """Set when the server has accounts (without it every connection is a guest)."""
        self.allowed_origins: tuple[str, ...] = ()
        self.trusted_proxies: tuple[Network, ...] = ()
        self._held: dict[Member, list[tuple[bytes, bool]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def address(self, request: web.Request) -> str:
        return client_address(request.remote or "", request.headers.get("X-Forwarded-For"), self.trusted_proxies)

    async def admit(self, request: web.Request) -> Identity | None:
        """Check the upgrade request: 403 for a foreign origin, 401 for a bad `?token=`; else its identity."""
        if not origin_allowed(request.headers.get("Origin"), request.host, self.allowed_origins):
            raise web.HTTPForbidden(reason="this origin may not open a WebSocket here (see --allowed-origin)")
        token = request.query.get("token")
        if not token or self.accounts is None or self.engine.auth_mode is AuthMode.OFF:
            return None
        if len(token) > MAX_TOKEN_CHARS:
            raise web.HTTPUnauthorized(reason="the token is too long")
        try:
            return await asyncio.wait_for(self.accounts.identify(token), CHECK_TIMEOUT)
        except AuthError as refused:
            raise web.HTTPUnauthorized(reason=refused.message, headers={"WWW-Authenticate": "Bearer"}) from None
        except TimeoutError:
            raise web.HTTPServiceUnavailable(reason="the token could not be checked in time") from None

    def holding(self, member: Member, frame: bytes, binary: bool) -> bool:
        """True if `member`'s frame must wait for its `hello` token check (it is kept, in order)."""
        held = self._held.get(member)
        if held is None:
            return False
        if len(held) >= MAX_HELD_FRAMES:
            self.engine.stats.closes[CloseCode.POLICY_VIOLATION] += 1
            self.perform([Close(member, CloseCode.POLICY_VIOLATION, "too many frames before welcome")], time.time())
        else:
            held.append((frame, binary))
        return True

    def forget(self, member: Member) -> None:
        self._held.pop(member, None)

    def carry_out(self, action: VerifyToken | VerifyRoomPassword) -> None:
        if isinstance(action, VerifyToken):
            self._held[action.member] = []
            self._start(self._check_token(action))
        else:
            self._start(self._check_password(action))

    def _start(self, check: object) -> None:
        task = asyncio.get_running_loop().create_task(check)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_token(self, action: VerifyToken) -> None:
        member = action.member
        identity, problem = None, ""
        try:
            if self.accounts is None:
                raise AuthError(401, "this server has no accounts")
            identity = await asyncio.wait_for(self.accounts.identify(action.token), CHECK_TIMEOUT)
        except AuthError as refused:
            problem = refused.message
        except TimeoutError:
            problem = "the token could not be checked in time"
        except Exception:
            log.exception("token_check_failed", member=member.id)
            problem = "the token could not be checked"
        now = time.time()
        self.perform(self.engine.token_checked(member, identity, problem, now), now)
        for frame, binary in self._held.pop(member, []):  # what it sent meanwhile, in order
            connection = member.link
            if connection is None or connection.closing:
                break
            now = time.time()
            self.perform(self.engine.receive(member, frame, now, binary), now)

    async def _check_password(self, action: VerifyRoomPassword) -> None:
        correct = False
        if self.accounts is not None:
            correct = await self.accounts.passwords.verify(action.password_hash, action.password)
        now = time.time()
        self.perform(self.engine.room_password_checked(action.member, action.room, correct, now), now)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
