"""NAF's `socketio` adapter: python-socketio (Socket.IO 5 / Engine.IO 4) on the app, at `/socket.io/`.

A page selects it with `networked-scene="adapter: socketio"` and loads the socket.io 4 client as the
global `io`. Long-polling (the client's first transport) and the upgrade to WebSocket both work. The
client id is the Socket.IO socket id, as with NAF's own server.

python-socketio is only the transport here: every event goes to the shared NAF core (one handler, in
order per client: `async_handlers=False`), and nothing uses Socket.IO rooms, so no room name can ever
address a client's personal room (F4). Engine.IO settings: `max_http_buffer_size` is the server's message
cap (64 KiB; NAF's server allows 1 MB), pings every `ping_interval` s (20) with as long a timeout, CORS limited
to `allowed_origins` (same origin when empty).

Packets are encoded and decoded with msgspec instead of the stdlib `json`, which accepts `NaN` and
`Infinity` and writes them back out, where a JavaScript client cannot parse them: one client's bad number
must not break everyone else's socket. This is python-socketio's documented `json` hook; it applies to
the whole process (python-socketio sets it on its packet classes).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import socketio
import structlog
from aiohttp import web

from shoal.dialects.naf.core import NafClient
from shoal.dialects.naf.service import NafService
from shoal.protocol.errors import CloseCode

log = structlog.get_logger("shoal.dialects.naf")

MAX_QUEUED_PACKETS = 1024
"""Packets waiting in one client's Engine.IO queue after which it counts as a slow consumer (4009)."""


class StrictJson:
    """The `json` module python-socketio and python-engineio use, made strict: RFC 8259 only."""

    @staticmethod
    def dumps(obj: Any, **_: Any) -> str:
        return msgspec.json.encode(obj).decode()

    @staticmethod
    def loads(text: str | bytes, **_: Any) -> Any:
        try:
            return msgspec.json.decode(text)
        except (msgspec.DecodeError, RecursionError) as exc:
            raise ValueError(f"invalid JSON: {exc}") from None


class SocketIOChannel:
    """The socket.io endpoint, feeding the shared NAF service."""

    def __init__(self, service: NafService, allowed_origins: Sequence[str] = ()) -> None:
        limits = service.core.limits
        self.service = service
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            # None is python-engineio's same-origin check; the pages are served by this server
            cors_allowed_origins=list(allowed_origins) or None,
            max_http_buffer_size=limits.max_message_bytes,
            ping_interval=limits.ping_interval,
            ping_timeout=limits.ping_interval,  # 20 s by default, as reliability.md asks
            async_handlers=False,  # one event at a time per client, in the order sent
            json=StrictJson,
            logger=False,
            engineio_logger=False,
        )
        self.clients: dict[str, NafClient] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on("*", self._on_event)
        service.channels.append(self)

    def attach(self, app: web.Application) -> None:
        """Serve `/socket.io/` (GET and POST for polling, GET for the WebSocket upgrade)."""
        self.sio.attach(app)

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        client = self.service.core.connect(time.time(), client_id=sid)
        client.channel = self
        self.clients[sid] = client

    async def _on_disconnect(self, sid: str, reason: Any = None) -> None:
        client = self.clients.pop(sid, None)
        if client is not None:
            await self.service.disconnect(client)

    async def _on_event(self, event: str, sid: str, *args: Any) -> None:
        client = self.clients.get(sid)
        if client is None:
            return
        try:
            await self.service.receive(client, event, args[0] if args else None)
        except Exception:  # a bug must cost one connection, never the process
            log.exception("naf_socketio_event_failed", client=sid, naf_event=event)
            self.close(client, CloseCode.INTERNAL_ERROR, "internal error")
            await self.service.disconnect(client)

    async def deliver(self, clients: Sequence[NafClient], event: str, data: Any) -> None:
        """Emit once to every client; python-socketio queues per socket, so this never waits on a reader.
        A client whose queue is too long is closed as a slow consumer instead of growing it."""
        ready = []
        behind = []
        for client in clients:
            (behind if self._queued(client.id) > MAX_QUEUED_PACKETS else ready).append(client)
        if ready:
            await self.sio.emit(event, data, to=[client.id for client in ready])
            stats = self.service.core.stats
            stats.frames_out += len(ready)
        if behind:
            now = time.time()
            await self.service.perform([self.service.core.slow_consumer(client) for client in behind], now)

    def _queued(self, sid: str) -> int:
        """Packets waiting in the client's Engine.IO queue (0 if it cannot be seen)."""
        eio_sid = self.sio.manager.eio_sid_from_sid(sid, "/")
        socket = self.sio.eio.sockets.get(eio_sid) if eio_sid is not None else None
        queue = getattr(socket, "queue", None)
        return queue.qsize() if queue is not None else 0

    def close(self, client: NafClient, code: int, reason: str) -> None:
        """Disconnect the client (Socket.IO has no close codes; socket.io clients do not reconnect after a
        server-side disconnect)."""
        if self.clients.pop(client.id, None) is not None:
            task = asyncio.get_running_loop().create_task(self.sio.disconnect(client.id))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def shutdown(self) -> None:
        await self.sio.shutdown()
