"""Data messages handed from aiohttp's frame parser straight to a callback, without a task switch.

aiohttp parses WebSocket frames inside its protocol's `data_received` and queues each message for the
handler task, which `async for message in ws` wakes once per message: a future, a task step and the
coroutine frames of `receive()` for every pose, more Python than the engine spends on the pose itself.
`deliver_directly` puts a `DirectQueue` in place of aiohttp's queue: it hands text and binary messages
to a callback, and pongs to another, from inside `data_received`. Pings, close frames, parse errors and
the end of the stream still go through the queue to the handler's `receive()` loop, so aiohttp keeps
doing the close handshake and reporting protocol errors with their close codes. The socket's protocol is
swapped too, for a `ParsingProtocol` that hands each read to the parser itself and every other event
(end of stream, loss, write flow control) to aiohttp's.

This reaches into two aiohttp internals: the `WebSocketDataQueue` class that `WebSocketResponse`
reads from, and the parser slot of the request's protocol (the protocol swap itself is asyncio's public
`Transport.set_protocol`). When the installed aiohttp does not have them as expected, `deliver_directly`
changes nothing and returns False, and the handler receives every message the ordinary way (the same
handler code serves both).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

from aiohttp import WebSocketError, WSMessage, WSMsgType, web

try:
    from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
except ImportError:  # another aiohttp layout: `deliver_directly` declines, messages take the ordinary path
    WebSocketDataQueue = WebSocketReader = None

QUEUE_LIMIT = 2**16
"""Bytes of control messages the queue holds before aiohttp pauses reading (aiohttp's own default)."""

OnMessage = Callable[[bytes, bool], None]
"""Called with each complete data message and whether it came in binary frames."""

_TEXT, _BINARY, _PONG = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.PONG


class DirectQueue(WebSocketDataQueue or object):  # type: ignore[misc]  # `object` only when never used
    """aiohttp's message queue, except that data messages and pongs go to callbacks as they are parsed.

    Nothing accumulates for data messages, so aiohttp's read pausing applies to control frames only:
    a sender's flood is bounded by the engine's rate limits instead, message by message.
    """

    def __init__(
        self, protocol: object, *, loop: asyncio.AbstractEventLoop, on_message: OnMessage, on_pong: Callable[[], None]
    ) -> None:
        super().__init__(protocol, QUEUE_LIMIT, loop=loop)
        self._on_message = on_message
        self._on_pong = on_pong

    def feed_data(self, message: WSMessage, size: int) -> None:
        kind = message.type
        if kind is _TEXT or kind is _BINARY:
            self._on_message(message.data, kind is _BINARY)
        elif kind is _PONG:
            self._on_pong()
        else:
            super().feed_data(message, size)


def deliver_directly(
    ws: web.WebSocketResponse,
    request: web.Request,
    max_message_bytes: int,
    on_message: OnMessage,
    on_pong: Callable[[], None],
) -> bool:
    """After `ws.prepare(request)`: deliver `ws`'s data messages to `on_message` and its pongs to
    `on_pong`, from the socket's read callback. Returns False, changing nothing, when that cannot be done.

    `ws` must have been created with `compress=False` and `decode_text=False` (data arrives as bytes);
    `max_message_bytes` is the largest message the new parser accepts (pass `ws`'s `max_msg_size`).
    `on_message` should not raise: aiohttp would take its exception for a parse error and end the
    connection. Messages parsed before the switch are delivered at once, in order.
    """
    protocol = request.protocol
    queue = getattr(ws, "_reader", None)
    if (
        WebSocketDataQueue is None
        or type(queue) is not WebSocketDataQueue
        or ws.compress
        or queue.is_eof()
        or getattr(protocol, "_payload_parser", None) is not getattr(ws, "_parser", ())
    ):
        return False
    direct = DirectQueue(protocol, loop=asyncio.get_running_loop(), on_message=on_message, on_pong=on_pong)
    parser = WebSocketReader(direct, max_message_bytes, compress=False, decode_text=False)
    protocol._payload_parser = parser
    ws._reader, ws._parser = direct, parser  # the response reads control messages from the new queue
    pending = queue._buffer
    while pending:
        direct.feed_data(*pending.popleft())
    transport = request.transport
    if transport is not None:
        transport.set_protocol(ParsingProtocol(protocol, parser))
    return True


class ParsingProtocol(asyncio.Protocol):
    """An upgraded socket's protocol: its bytes go straight to the frame parser, its other events to aiohttp's.

    aiohttp's `data_received` only checks that the request is still open and then feeds the same parser: one
    Python call per read, which this saves. A parse error still reaches the handler, through the queue.
    """

    __slots__ = ("_handler", "data_received")

    def __init__(self, handler: asyncio.Protocol, parser: WebSocketReader) -> None:
        self._handler = handler
        self.data_received = parser.feed_data  # type: ignore[method-assign]  # C; returns (eof, tail), not needed

    def connection_lost(self, exc: Exception | None) -> None:
        self._handler.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


async def read_until_closed(
    ws: web.WebSocketResponse, on_message: OnMessage, on_pong: Callable[[], None], closes: Counter[int]
) -> None:
    """Read `ws` until its stream ends: data messages to `on_message` (all of them when `deliver_directly`
    declined, else none reach here), pings answered, pongs to `on_pong`. A protocol error that aiohttp closed
    the socket for (too big, a bad frame, ...) is counted in `closes` under its close code.

    `ws` must have been created with `autoping=False`, or aiohttp keeps the pongs to itself.
    """
    async for message in ws:
        kind = message.type
        if kind is _TEXT or kind is _BINARY:
            on_message(message.data, kind is _BINARY)
        elif kind is WSMsgType.PING:
            await ws.pong(message.data)
        elif kind is _PONG:
            on_pong()
        elif kind is WSMsgType.ERROR:
            error = ws.exception()
            if isinstance(error, WebSocketError):
                closes[error.code] += 1
            break
