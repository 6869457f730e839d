"""A plain Python relay, the third peer of the performance reference, for Shoal's fan-out benchmark.

    python bench/peers/websockets_relay.py PORT      # 0: any free port; prints {"event": "listening", "port": N}

The `websockets` library's asyncio server (`websockets.asyncio.server.serve`) on 127.0.0.1 and
`broadcast()`: the room is the request path, query included (as ws-broadcast's request-target), and every
message goes to every connection of its room, the sender included, text as text and binary as binary (the
message is relayed as the library hands it over: `str` or `bytes`). Nothing else: no ids, presence, auth
or limits beyond the library's own; no per-message deflate (`compression=None`, as ws-broadcast), a
generous 100 MiB `max_size` (ws 7's default), the library's default keepalive pings. It runs on
`asyncio.run`, not uvloop: the reference relay is plain. `bench/fanout.py --peer websockets-relay` and
`bench/peers.py` start it, measure it, and stop it by PID (SIGTERM ends it).
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

MAX_MESSAGE_BYTES = 100 * 2**20
"""ws 7.3.1's default maxPayload, which the original ws-broadcast keeps."""

rooms: dict[str, set[ServerConnection]] = {}


async def relay(connection: ServerConnection) -> None:
    """Join the room named by the request path; relay every message to the whole room until the connection ends."""
    room = connection.request.path if connection.request else ""
    members = rooms.setdefault(room, set())
    members.add(connection)
    try:
        async for message in connection:
            broadcast(members, message)
    finally:
        members.discard(connection)
        if not members:
            del rooms[room]


async def main(port: int) -> None:
    async with serve(relay, "127.0.0.1", port, compression=None, max_size=MAX_MESSAGE_BYTES) as server:
        bound = server.sockets[0].getsockname()[1]
        print(json.dumps({"event": "listening", "host": "127.0.0.1", "port": bound}), flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) > 65535:
        sys.exit("usage: python bench/peers/websockets_relay.py PORT   (0: any free port)")
    asyncio.run(main(int(sys.argv[1])))
