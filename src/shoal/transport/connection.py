"""One WebSocket connection as the transport sees it: a socket to write frames to, and a way to close it."""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

from aiohttp import web

Owner = TypeVar("Owner")
"""Whom a connection belongs to: a core `Member`, or a dialect's own client object."""

CLOSE_TIMEOUT = 2.0
"""Seconds to wait for the peer's close frame before the socket is aborted."""


class Connection(Generic[Owner]):
    """Writes pre-built frames straight to the socket's asyncio transport.

    Writes never await: a peer that does not read fills its transport buffer, and the caller checks
    `buffered()` to decide whether to skip a pose tick or close the connection (see `WebSocketTransport`).
    """

    __slots__ = ("closer", "closing", "congested_since", "member", "transport", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: asyncio.Transport, member: Owner) -> None:
        self.ws = ws
        self.transport = transport
        self.member = member
        self.closing = False
        self.congested_since: float | None = None
        self.closer: asyncio.Task[None] | None = None

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()

    def write(self, wire: bytes) -> None:
        """Queue `wire` on the socket. Does nothing once the socket is closing: the peer may be gone
        before its handler has cleaned up, and writing then would raise (uvloop) or warn (asyncio)."""
        transport = self.transport
        if not transport.is_closing():
            transport.write(wire)

    def write_all(self, frames: list[bytes]) -> None:
        """Queue several frames on the socket in one write (one system call when the socket can take them)."""
        transport = self.transport
        if not transport.is_closing():
            transport.writelines(frames)

    def close(self, code: int, reason: str) -> None:
        """Start a close handshake with `code`; abort the socket if the peer does not answer in time.

        Idempotent: only the first call's code is sent.
        """
        if self.closing:
            return
        self.closing = True
        self.closer = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), CLOSE_TIMEOUT)
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            if not self.transport.is_closing():
                self.transport.abort()
