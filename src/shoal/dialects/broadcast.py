"""The Decentraland ws-broadcast relay: every message goes to every connection of its room, sender included.

What is kept exactly (scenes depend on it, see docs/dialects.md):

- the room key is the request-target as received, `request.raw_path`: path plus `?query`, undecoded, so
  `/broadcast/r1` and `/broadcast/r1?x=1` are different rooms;
- each message is relayed byte for byte with its opcode (text stays text, binary stays binary) to every
  open connection of the room, **including the sender**, in the order each sender sent them;
- nothing is sent on connect or close.

What is added, invisible to well-behaved scenes: a message cap (`max_message_bytes`, 64 KiB, close
1009), a member cap per room (close 4010), server pings (`ping_interval`), a rate limit per connection
(`pose_rate`/`pose_burst`, excess dropped, close 4008 when it lasts), invalid UTF-8 in a text frame
closes that connection with 1007, a slow reader is closed with 4009 instead of buffering without bound,
and a malformed frame closes only its own connection.

The relay never awaits a reader: each message is framed once (`encode_frame`) and the same bytes are
owed to every socket of the room. Messages arrive straight from the socket's read callback
(`shoal.transport.inbound`), and what each socket is owed goes out in one write per pass of the event loop
(`shoal.transport.outbox`): a busy room costs a write per recipient per pass, not per message, and no message
waits beyond the pass that read it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

import structlog
from aiohttp import web

from shoal.core.limits import Limits
from shoal.dialects.ratelimit import MessageBudget, Verdict
from shoal.dialects.stats import DialectStats
from shoal.protocol.errors import CloseCode
from shoal.transport.connection import Connection
from shoal.transport.frames import encode_frame
from shoal.transport.heartbeat import Heartbeat
from shoal.transport.inbound import deliver_directly, read_until_closed
from shoal.transport.outbox import Outbox
from shoal.transport.upgrade import accept

log = structlog.get_logger("shoal.dialects.broadcast")

ROOM_FULL = 4010

Room = set[Connection[str]]
"""The open connections of one room; each connection's owner is its room key."""


class BroadcastRelay:
    """Rooms of ws-broadcast connections, keyed by raw request-target, and the WebSocket handler.

    `prefixes` are the paths served: each prefix itself and everything below it (`/broadcast`,
    `/broadcast/anything?at=all`).
    """

    def __init__(self, limits: Limits, prefixes: Iterable[str] = ("/broadcast",)) -> None:
        self.limits = limits
        self.prefixes = tuple(_checked_prefix(prefix) for prefix in prefixes)
        self.rooms: dict[str, Room] = {}
        self.stats = DialectStats()
        self.outbox = Outbox()
        self._accepting = True

    def add_routes(self, app: web.Application) -> None:
        for prefix in self.prefixes:
            app.router.add_get(prefix, self.handle)
            app.router.add_get(prefix + "/{rest:.*}", self.handle)
        app.on_shutdown.append(self.shutdown)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Upgrade, join the room named by the raw request-target, relay until the socket closes."""
        if not self._accepting:
            raise web.HTTPServiceUnavailable(reason="server is shutting down")
        limits = self.limits
        ws = web.WebSocketResponse(
            heartbeat=None,  # `Heartbeat` pings instead, at no cost per message
            autoping=False,  # pings and pongs come to `read_until_closed`
            compress=False,
            max_msg_size=limits.max_message_bytes,
            decode_text=False,  # relayed as the bytes received; UTF-8 is checked below
        )
        transport = await accept(request, ws, "ws-broadcast rooms only accept WebSocket upgrades")
        if transport is None:  # the peer went away during the handshake
            return ws

        key = request.raw_path
        connection = Connection(ws, transport, key)
        room = self.rooms.setdefault(key, set())
        if len(room) >= limits.max_members_per_room:  # checked after the last await: the cap is exact
            self._close(connection, ROOM_FULL, "room full")
            if not room:
                del self.rooms[key]
            if connection.closer is not None:
                await connection.closer
            return ws
        room.add(connection)
        self.stats.connections += 1
        budget = MessageBudget(limits.pose_rate, limits.pose_burst, limits.abuse_close_seconds, time.time())
        heartbeat = Heartbeat(connection, limits.ping_interval)

        def receive(payload: bytes, binary: bool) -> None:
            """One message from this connection, relayed to its room. A bug costs this connection only."""
            if connection.closing:  # being closed: frames still in flight are dropped
                return
            try:
                self._relay(connection, room, payload, binary, budget)
            except Exception:
                log.exception("broadcast_connection_failed", room=key)
                self._close(connection, CloseCode.INTERNAL_ERROR, "internal error")

        deliver_directly(ws, request, limits.max_message_bytes, receive, heartbeat.pong)
        try:
            await read_until_closed(ws, receive, heartbeat.pong, self.stats.closes)
        except Exception:  # a bug must cost one connection, never the process
            log.exception("broadcast_connection_failed", room=key)
            self._close(connection, CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            heartbeat.stop()
            connection.closing = True
            room.discard(connection)
            if not room and self.rooms.get(key) is room:
                del self.rooms[key]
        return ws

    def _relay(self, sender: Connection[str], room: Room, payload: bytes, binary: bool, budget: MessageBudget) -> None:
        self.stats.messages_in += 1
        if not binary:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                self._close(sender, CloseCode.INVALID_DATA, "invalid UTF-8 in a text message")
                return
        verdict = budget.take(time.time())
        if verdict is not Verdict.ALLOW:
            self.stats.dropped["rate"] += 1
            if verdict is Verdict.CLOSE:
                self._close(sender, CloseCode.RATE_LIMITED, "rate limit exceeded")
            return
        wire = encode_frame(payload, binary)
        # The frames a connection is owed in this pass are not in its buffer yet: at most one pass's messages.
        close_above = self.limits.max_buffer_bytes - len(wire)
        outbox = self.outbox
        written = 0
        for connection in room:
            if connection.closing:
                continue
            if connection.buffered() > close_above:  # never buffer without bound for a slow reader
                self._close(connection, CloseCode.SLOW_CONSUMER, "slow consumer: send buffer full")
                continue
            outbox.add(connection, wire)
            written += 1
        self.stats.frames_out += written
        self.stats.bytes_out += written * len(wire)

    def _close(self, connection: Connection[str], code: int, reason: str) -> None:
        if not connection.closing:
            self.stats.closes[code] += 1
            self.outbox.flush(connection)  # what it is owed goes before the close frame
            connection.close(code, reason)

    async def shutdown(self, app: web.Application) -> None:
        """Refuse new upgrades and close every connection with 1012 (clients should reconnect)."""
        self._accepting = False
        connections = [connection for room in self.rooms.values() for connection in room]
        for connection in connections:
            self._close(connection, CloseCode.SERVICE_RESTART, "server restarting")
        closers = [c.closer for c in connections if c.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=5.0)


def _checked_prefix(prefix: str) -> str:
    """A route prefix: starts with `/`, no trailing `/`, not `/` itself (that would take every path)."""
    cleaned = prefix.rstrip("/")
    if not cleaned.startswith("/") or "{" in cleaned or "}" in cleaned:
        raise ValueError(f"a ws-broadcast prefix is a path like /broadcast, not {prefix!r}")
    return cleaned
