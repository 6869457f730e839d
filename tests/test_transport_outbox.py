"""`Outbox`: the frames a relay owes each connection go out in one write per connection per pass of the loop."""

from __future__ import annotations

import asyncio
from typing import Any

from shoal.transport.connection import Connection
from shoal.transport.outbox import Outbox


class RecordingTransport:
    """What `Connection` writes through, recording each write call (an asyncio transport's write methods)."""

    def __init__(self) -> None:
        self.writes: list[list[bytes]] = []
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing

    def write(self, data: bytes) -> None:
        self.writes.append([data])

    def writelines(self, frames: list[bytes]) -> None:
        self.writes.append(list(frames))


def connection() -> tuple[Connection[Any], RecordingTransport]:
    transport = RecordingTransport()
    return Connection(None, transport, "room"), transport  # type: ignore[arg-type]  # no ws: writes only


async def test_what_a_pass_owes_each_connection_goes_out_in_one_write_in_order_after_the_pass() -> None:
    outbox = Outbox()
    (ada, ada_socket), (bob, bob_socket) = connection(), connection()
    for frame in (b"1", b"2", b"3"):
        outbox.add(ada, frame)
        outbox.add(bob, frame)
    outbox.add(ada, b"4")
    assert ada_socket.writes == [] and bob_socket.writes == []  # nothing before the pass has read its sockets
    await asyncio.sleep(0)
    assert ada_socket.writes == [[b"1", b"2", b"3", b"4"]]
    assert bob_socket.writes == [[b"1", b"2", b"3"]]
    outbox.add(bob, b"5")  # the next pass starts afresh
    await asyncio.sleep(0)
    assert bob_socket.writes == [[b"1", b"2", b"3"], [b"5"]] and len(ada_socket.writes) == 1


async def test_a_connection_flushed_early_is_not_written_twice_and_a_closing_one_gets_nothing() -> None:
    outbox = Outbox()
    (ada, ada_socket), (bob, bob_socket), (cyd, cyd_socket) = connection(), connection(), connection()
    for peer in (ada, bob, cyd):
        outbox.add(peer, b"x")
    outbox.flush(ada)  # as before a close frame: what it is owed goes first
    assert ada_socket.writes == [[b"x"]]
    bob.closing = True  # the server is closing it
    cyd_socket.closing = True  # the peer has gone
    await asyncio.sleep(0)
    assert ada_socket.writes == [[b"x"]] and bob_socket.writes == [] and cyd_socket.writes == []
