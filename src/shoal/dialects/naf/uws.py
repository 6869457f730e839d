"""NAF's `uws` adapter: `{"event": E, "data": D}` JSON frames over a raw WebSocket (default path `/naf`).

A page selects it with `networked-scene="adapter: uws; serverURL: /naf"` (or a full `wss://host/naf`).
The server picks each client's id, the decimal string of a random 32-bit number, and tells it in
`connectSuccess {joinedTime, socketId}`, which always precedes the joiner's first `occupantsChanged`.

Kept from NAF's `server/uws-server.cjs`: text and binary frames are both parsed as JSON; a relayed
`send` carries no `to`. Changed: a `broadcast` is not echoed to its sender (F10; the socket.io server
never did); frames are capped at `max_message_bytes` (1009), invalid UTF-8 closes with 1007, a bad frame
gets an `error` event; and a client closed for abuse (too many invalid messages, a flood) is closed with
1000, the one code (with 1005) that stops NAF's uWS client from reconnecting, ten times over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import structlog
from aiohttp import WebSocketError, WSMsgType, web

from shoal.dialects.naf.core import NafClient
from shoal.dialects.naf.service import NafService
from shoal.protocol.errors import CloseCode
from shoal.transport.connection import Connection
from shoal.transport.frames import encode_frame
from shoal.transport.outbox import Outbox
from shoal.transport.upgrade import accept

log = structlog.get_logger("shoal.dialects.naf")

NO_RETURN = frozenset({CloseCode.POLICY_VIOLATION, CloseCode.RATE_LIMITED})
"""Close codes meaning "do not reconnect": sent as 1000, the reason keeps the cause."""


class UwsChannel:
    """The uWS WebSocket endpoint on `path`, feeding the shared NAF service."""

    def __init__(self, service: NafService, path: str = "/naf") -> None:
        if not path.startswith("/"):
            raise ValueError(f"the NAF uWS path must start with '/', not {path!r}")
        self.service = service
        self.path = path
        self.connections: set[Connection[NafClient]] = set()
        self._encode = msgspec.json.Encoder().encode
        self.outbox = Outbox()
        """What each socket is owed, written once per pass of the loop (see `shoal.transport.outbox`)."""
        self._accepting = True
        service.channels.append(self)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get(self.path, self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Upgrade, then feed each `{event, data}` frame to the NAF core until the socket closes."""
        if not self._accepting:
            raise web.HTTPServiceUnavailable(reason="server is shutting down")
        service, core = self.service, self.service.core
        limits = core.limits
        ws = web.WebSocketResponse(
            heartbeat=limits.ping_interval,
            compress=False,
            max_msg_size=limits.max_message_bytes,  # aiohttp closes with 1009 past it, and 1007 on bad UTF-8
        )
        transport = await accept(request, ws, "this is the networked-aframe uws endpoint: WebSocket upgrades only")
        if transport is None:  # the peer went away during the handshake
            return ws

        client = core.connect(time.time())
        connection = Connection(ws, transport, client)
        client.channel, client.link = self, connection
        self.connections.add(connection)
        try:
            async for message in ws:
                kind = message.type
                if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                    await self._receive(client, message.data)
                elif kind is WSMsgType.ERROR:
                    error = ws.exception()
                    if isinstance(error, WebSocketError):  # aiohttp closed it: too big, bad UTF-8, bad frame
                        core.stats.closes[error.code] += 1
                    break
        except Exception:  # a bug must cost one connection, never the process
            log.exception("naf_connection_failed", client=client.id)
            self.close(client, CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            self.connections.discard(connection)
            connection.closing = True
            await service.disconnect(client)
        return ws

    async def _receive(self, client: NafClient, frame: str | bytes) -> None:
        try:
            message = msgspec.json.decode(frame)
        except (msgspec.DecodeError, RecursionError):
            message = None
        if not isinstance(message, dict) or "event" not in message:
            now = time.time()
            await self.service.perform(self.service.core.refuse_frame(client, "expected {event, data} JSON", now), now)
            return
        await self.service.receive(client, message["event"], message.get("data"))

    async def deliver(self, clients: Sequence[NafClient], event: str, data: Any) -> None:
        """Owe one frame, built once, to each client (written at the end of the loop's pass); a reader too far
        behind is closed with 4009."""
        if event == "send":  # NAF's uWS server relays `send` without its `to`
            data = {key: value for key, value in data.items() if key != "to"}
        wire = encode_frame(self._encode({"event": event, "data": data}))
        close_above = self.service.core.limits.max_buffer_bytes - len(wire)
        written = 0
        behind = []
        for client in clients:
            connection: Connection[NafClient] = client.link
            if connection.closing:
                continue
            if connection.buffered() > close_above:  # never buffer without bound, never drop silently
                behind.append(client)
                continue
            self.outbox.add(connection, wire)
            written += 1
        stats = self.service.core.stats
        stats.frames_out += written
        stats.bytes_out += written * len(wire)
        if behind:
            now = time.time()
            await self.service.perform([self.service.core.slow_consumer(client) for client in behind], now)

    def close(self, client: NafClient, code: int, reason: str) -> None:
        if code in NO_RETURN:
            code, reason = CloseCode.NORMAL, f"closed: {reason}"
        self.outbox.flush(client.link)  # what it is owed goes before the close frame
        client.link.close(code, reason)

    async def shutdown(self) -> None:
        self._accepting = False
        for connection in list(self.connections):
            self.outbox.flush(connection)
            connection.close(CloseCode.SERVICE_RESTART, "server restarting")
        closers = [c.closer for c in self.connections if c.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=5.0)
