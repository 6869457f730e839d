"""Frames for many sockets, written once per pass of the event loop: one write per socket, not one per frame.

A relay (the ws-broadcast and NAF dialects) passes each message on at once to every connection of its room.
Written one by one, each message costs a socket write per recipient, and the kernel's share of those writes
is most of a relay's CPU. An `Outbox` keeps the frames each connection is owed during the current pass of the
loop, over all the messages read in it, and writes them together once the pass has read its sockets: one
`writelines` per connection per pass. Nothing waits longer than that pass, so a relayed message gains no
latency; a busy server reads more messages per pass and so writes fewer times per message.
"""

from __future__ import annotations

import asyncio

from shoal.transport.connection import Connection


class Outbox:
    """Frames owed to connections, flushed at the end of the loop's current pass (each connection's in the
    order they were added). A connection that is closing when its frames are flushed gets none of them.

    Call `flush(connection)` before writing anything else to a connection (a close frame, say), so that the
    frames already owed to it go out first.
    """

    __slots__ = ("_owed", "_scheduled")

    def __init__(self) -> None:
        self._owed: dict[Connection[object], list[bytes]] = {}
        self._scheduled = False

    def add(self, connection: Connection[object], wire: bytes) -> None:
        """Owe `wire` (a complete frame) to `connection`."""
        frames = self._owed.get(connection)
        if frames is not None:
            frames.append(wire)
            return
        self._owed[connection] = [wire]
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush_all)

    def flush(self, connection: Connection[object]) -> None:
        """Write what `connection` is owed now."""
        frames = self._owed.pop(connection, None)
        if frames and not connection.closing:
            connection.write_all(frames)

    def flush_all(self) -> None:
        """Write what every connection is owed (called once per pass of the loop that added frames)."""
        self._scheduled = False
        owed, self._owed = self._owed, {}
        for connection, frames in owed.items():
            if not connection.closing:
                connection.write_all(frames)
