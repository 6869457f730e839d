"""The WebSocket transport: moves frames between aiohttp sockets and the room engine.

Where a message enters: `WebSocketTransport.handle` accepts the upgrade on `GET /ws`, reads each
message and hands its bytes to `Engine.receive`. Everything the engine returns is carried out by
`perform`, which is also called by the tick loop (`run_ticker`) with each round of tick frames.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import structlog
from aiohttp import hdrs, web

from shoal.core.actions import Action, Close, Send, VerifyRoomPassword, VerifyToken
from shoal.core.engine import Engine
from shoal.protocol.binary import BINARY
from shoal.protocol.codec import JSON, Codec
from shoal.protocol.errors import CloseCode
from shoal.transport.access import AccessChecks
from shoal.transport.connection import Connection
from shoal.transport.frames import encode_frame, fan_out
from shoal.transport.heartbeat import Heartbeat
from shoal.transport.inbound import deliver_directly, read_until_closed
from shoal.transport.pacing import ReadPacer
from shoal.transport.upgrade import accept

if TYPE_CHECKING:
    from shoal.persistence import Persistence

log = structlog.get_logger("shoal.transport")

CODECS: dict[str, Codec] = {BINARY.subprotocol: BINARY, JSON.subprotocol: JSON}
"""`Sec-WebSocket-Protocol` values the server accepts, in the order it prefers them."""


TIMER_SLACK = 0.001
"""Seconds the tick loop sleeps past a deadline. uvloop truncates timers to whole milliseconds and runs
them on its cached clock, so a sleep to the exact deadline wakes early, again and again until it is due:
about ten wake-ups per tick. Under load, arriving messages run due ticks on time anyway (see `tick`)."""


FLOODED_AFTER = 0.005
"""Seconds past its deadline after which an arriving message runs the tick at once instead of after the
round of reads it came in (see `WebSocketTransport.tick`)."""


def choose_codec(offered: str) -> Codec:
    """The codec for a `Sec-WebSocket-Protocol` header: binary when offered, else JSON (also when the
    client offers none of ours, or nothing at all)."""
    names = {name.strip() for name in offered.split(",")}
    return next((codec for name, codec in CODECS.items() if name in names), JSON)


class WebSocketTransport:
    """Connections on one aiohttp app, the engine they feed, and the tick loop that drives it."""

    def __init__(self, engine: Engine, read_pacing: float = 0.0) -> None:
        self.engine = engine
        self.pacer = ReadPacer(read_pacing, lambda: self._next_tick_at)
        """Fewer loop wake-ups under load: reads in step with the ticks, app messages wait up to `read_pacing`
        seconds (see transport/pacing.py)."""
        self.persistence: Persistence | None = None
        self.access = AccessChecks(engine, self.perform)
        """Origin and token checks at the upgrade; hello tokens and room passwords after it."""
        """Set when the server has a store: storage actions go there (else they are dropped)."""
        self.connections: set[Connection] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._next_tick_at = 0.0
        """When `tick` must next run (seconds, wall clock)."""
        self._tick_soon = False
        """A due tick is scheduled to run once the loop has handled this round of reads."""
        self._accepting = True

    # ---- the WebSocket endpoint ------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """`GET /ws`: upgrade, then feed every message to the engine until the socket closes."""
        if not self._accepting:
            raise web.HTTPServiceUnavailable(reason="server is shutting down")
        identity = await self.access.admit(request)  # 403 for a foreign Origin, 401 for a bad ?token=
        limits = self.engine.limits
        max_msg_size = limits.max_message_bytes + 1  # aiohttp refuses a message of max_msg_size bytes
        codec = choose_codec(request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, ""))
        ws = web.WebSocketResponse(
            protocols=(codec.subprotocol,),  # aiohttp would pick the client's first choice; we prefer binary
            heartbeat=None,  # `Heartbeat` pings instead, at no cost per message
            autoping=False,  # pings and pongs come to `read_until_closed`
            compress=False,  # per-message deflate costs ~2.5x CPU on pose traffic
            max_msg_size=max_msg_size,
            decode_text=False,  # msgspec decodes bytes directly
        )
        transport = await accept(request, ws, "this endpoint only accepts WebSocket upgrades")
        if transport is None:  # the peer went away during the handshake
            return ws

        address = self.access.address(request)
        now = time.time()
        member = self.engine.connect(codec, now, address, identity)
        connection = Connection(ws, transport, member)
        member.link = connection
        self.connections.add(connection)
        bound = log.bind(member=member.id, peer=address)
        bound.info("connected", codec=codec.name)
        engine, access = self.engine, self.access
        heartbeat = Heartbeat(connection, limits.ping_interval)
        message_arrived = self.pacer.message_arrived
        loop = asyncio.get_running_loop()

        def receive(frame: bytes, binary: bool) -> None:
            """One data message: to the engine, and its actions out. A bug costs this connection only."""
            if connection.closing:  # the server is closing it: frames still in flight are dropped
                return
            if access._held and access.holding(member, frame, binary):  # its hello token is being checked
                return
            now = time.time()
            actions = None
            try:
                actions = engine.receive(member, frame, now, binary)
                if actions:
                    self.perform(actions, now)
            except Exception:
                bound.exception("connection_failed")
                connection.close(CloseCode.INTERNAL_ERROR, "internal error")
            if now >= self._next_tick_at:  # the timer is late: the loop is busy (see `tick`)
                if now - self._next_tick_at > FLOODED_AFTER:
                    self.tick(now)
                elif not self._tick_soon:
                    self._tick_soon = True
                    loop.call_soon(self._tick_after_reads)
            if not actions:  # its effect waits for the tick (a pose, joints): pace. A reply went out at once,
                message_arrived()  # and joins and hellos must not wait. After the tick: a pause must not delay it.

        # From here data messages arrive in `receive` straight from the socket's read callback;
        # `read_until_closed` passes them on only if this aiohttp does not allow that (see transport/inbound.py).
        deliver_directly(ws, request, max_msg_size, receive, heartbeat.pong)
        try:
            await read_until_closed(ws, receive, heartbeat.pong, engine.stats.closes)
        except Exception:  # a bug must cost one connection, never the process
            bound.exception("connection_failed")
            connection.close(CloseCode.INTERNAL_ERROR, "internal error")
        finally:
            heartbeat.stop()
            access.forget(member)
            self.connections.discard(connection)
            connection.closing = True
            self.perform(engine.disconnect(member, time.time()), time.time())
            bound.info("disconnected", code=ws.close_code, name=member.name or None)
        return ws

    # ---- carrying out the engine's actions ---------------------------------------------------------

    def perform(self, actions: list[Action], now: float) -> None:
        """Write each `Send` to its recipients, start each `Close`, pass storage actions on. Never awaits."""
        stats = self.engine.stats
        limits = self.engine.limits
        for action in actions:
            if type(action) is Send:
                wire = encode_frame(action.frame, action.binary)
                written = 0
                if action.droppable:  # one per member per tick: the hot loop
                    written, backed_up = fan_out(action.recipients, wire, limits.tick_skip_bytes)
                    if backed_up is not None:
                        for connection in backed_up:
                            self._skip_tick(connection, now)
                    stats.ticks_sent += written
                else:
                    close_above = limits.max_buffer_bytes
                    for member in action.recipients:
                        connection = member.link
                        if connection is None or connection.closing:
                            continue
                        if connection.buffered() + len(wire) > close_above:
                            self._close(connection, CloseCode.SLOW_CONSUMER, "slow consumer: send buffer full", now)
                            continue
                        connection.write(wire)
                        written += 1
                stats.frames_out += written
                stats.bytes_out += written * len(wire)
            elif type(action) is Close:
                connection = action.member.link
                if connection is not None and not connection.closing:
                    connection.close(action.code, action.reason)
                    self.perform(self.engine.disconnect(action.member, now), now)
            elif type(action) is VerifyToken or type(action) is VerifyRoomPassword:
                self.access.carry_out(action)
            elif self.persistence is not None:
                self.persistence.carry_out(action)

    def _skip_tick(self, connection: Connection, now: float) -> None:
        """The member's socket is backed up: skip this pose tick, send it full state later."""
        self.engine.stats.ticks_skipped += 1
        connection.member.needs_full_state = True
        if connection.congested_since is None:
            connection.congested_since = now
        elif now - connection.congested_since > self.engine.limits.max_congested_seconds:
            self._close(connection, CloseCode.SLOW_CONSUMER, "slow consumer: not reading", now)

    def _close(self, connection: Connection, code: int, reason: str, now: float) -> None:
        """Close a connection on the transport's own initiative; its member leaves the room at once."""
        self.engine.stats.closes[code] += 1
        connection.close(code, reason)
        self.perform(self.engine.disconnect(connection.member, now), now)

    # ---- the tick loop -------------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Tick the rooms that are due and remember the next deadline. A failing tick is logged, not fatal.

        The tick loop calls this at each deadline (after the loop has read its sockets), and so does the
        first message read after a deadline, once the loop has handled that round of reads, so that the tick
        holds every pose read with it. With thousands of busy sockets libuv (uvloop) polls up to 48 rounds of
        1,024 ready sockets before it runs a timer or a callback, so both can come a second late: a message
        that finds the tick more than `FLOODED_AFTER` late runs it at once.
        """
        try:
            actions, self._next_tick_at = self.engine.tick(now)
            if actions:
                self.perform(actions, now)
        except Exception:
            log.exception("tick_failed")
            self._next_tick_at = now + 0.05

    def _tick_after_reads(self) -> None:
        """The due tick an arriving message found, run after every message read in the same pass."""
        self._tick_soon = False
        self.tick(time.time())

    async def run_ticker(self) -> None:
        """Tick the engine at each room's deadline, forever."""
        while True:
            self.tick(time.time())
            await asyncio.sleep(max(self._next_tick_at - time.time(), 0.0) + TIMER_SLACK)
            await asyncio.sleep(0)  # timers run before the loop polls its sockets: let it read them first

    async def start(self, app: web.Application) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self.run_ticker())

    async def shutdown(self, app: web.Application) -> None:
        """Refuse new upgrades and close every connection with 1012 (clients should reconnect)."""
        self._accepting = False
        if self._ticker is not None:
            self._ticker.cancel()
        for connection in list(self.connections):
            connection.close(CloseCode.SERVICE_RESTART, "server restarting")
        closers = [c.closer for c in self.connections if c.closer is not None]
        if closers:
            await asyncio.wait(closers, timeout=5.0)
