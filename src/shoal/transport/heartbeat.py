"""The server's heartbeat: ping every connection on a schedule, drop the ones that stop answering.

aiohttp's own `heartbeat=` re-arms its timer on every frame received, a loop callback per message;
at pose rates that costs more than the rest of the receive path. This heartbeat pings on a fixed
schedule instead, whatever the traffic, and costs nothing per message.
"""

from __future__ import annotations

import asyncio

from shoal.transport.connection import Connection
from shoal.transport.frames import EMPTY_PING


class Heartbeat:
    """Pings `connection` every `interval` seconds and aborts its socket when a ping is not answered
    with a pong within `interval / 2` (docs/protocol.md: "A peer that has not answered a ping within
    half the interval is dropped"). The socket's handler then sees the stream end and cleans up.

    Call `pong()` for every pong received and `stop()` when the connection ends.
    """

    __slots__ = ("_answered", "_connection", "_interval", "_loop", "_timer")

    def __init__(self, connection: Connection[object], interval: float) -> None:
        self._connection = connection
        self._interval = interval
        self._answered = True
        self._loop = asyncio.get_running_loop()
        self._timer = self._loop.call_later(interval, self._ping)

    def pong(self) -> None:
        self._answered = True

    def stop(self) -> None:
        self._timer.cancel()

    def _ping(self) -> None:
        connection = self._connection
        if connection.closing:
            return
        self._answered = False
        connection.write(EMPTY_PING)
        self._timer = self._loop.call_later(self._interval / 2, self._check)

    def _check(self) -> None:
        if not self._answered:
            self._connection.transport.abort()
            return
        self._timer = self._loop.call_later(self._interval / 2, self._ping)
