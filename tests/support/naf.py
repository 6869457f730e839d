"""Peers for the networked-aframe dialect tests: a raw `uws` WebSocket client, and NAF entity payloads.

`UwsPeer` speaks exactly what NAF 0.14's `naf-uws-adapter.js` puts on the wire (`{"event", "data"}` JSON
text frames) over the independent `websockets` library, and parses what it gets strictly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from support.clients import strict_json

Event = tuple[str, Any]


def naf_entity(owner: str, network_id: str = "av1", **fields: Any) -> dict[str, Any]:
    """A `u` payload shaped as NAF's `networked.createSyncData` makes it (a first sync unless told)."""
    return {
        "networkId": network_id,
        "owner": owner,
        "creator": fields.pop("creator", owner),
        "lastOwnerTime": fields.pop("lastOwnerTime", time.time() * 1000),
        "template": "#avatar-template",
        "persistent": False,
        "parent": None,
        "components": {"0": {"x": 0, "y": 1.6, "z": 0}, "1": {"x": 0, "y": 90, "z": 0}},
        "isFirstSync": True,
        **fields,
    }


class UwsPeer:
    """One NAF uWS connection. `id` is learned from `connectSuccess`; every event read is kept in `seen`."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.id: str | None = None
        self.seen: list[Event] = []

    async def emit(self, event: str, data: Any = None) -> None:
        await self.ws.send(json.dumps({"event": event, "data": data}))

    async def next(self, timeout: float = 2.0) -> Event:
        frame = await asyncio.wait_for(self.ws.recv(), timeout)
        assert isinstance(frame, str), f"NAF frames are text, got {frame!r}"
        message = strict_json(frame)
        assert set(message) == {"event", "data"}, frame
        self.seen.append((message["event"], message["data"]))
        return message["event"], message["data"]

    async def expect(self, event: str, timeout: float = 2.0) -> Any:
        """Read until `event` arrives (skipping others); return its data."""
        async with asyncio.timeout(timeout):
            while True:
                name, data = await self.next(timeout)
                if name == event:
                    return data

    async def silent(self, seconds: float = 0.2) -> None:
        with contextlib.suppress(TimeoutError):
            event = await self.next(seconds)
            raise AssertionError(f"expected silence, got {event}")

    async def join(self, room: str = "basic") -> dict[str, Any]:
        """`joinRoom`; return `connectSuccess`'s data after checking `occupantsChanged` follows it."""
        await self.emit("joinRoom", {"room": room})
        success = await self.next()
        assert success[0] == "connectSuccess", success
        self.id = success[1]["socketId"]
        event, data = await self.next()
        assert event == "occupantsChanged" and self.id in data["occupants"], (event, data)
        return success[1]

    async def close_code(self, timeout: float = 3.0) -> tuple[int | None, str]:
        with contextlib.suppress(ConnectionClosed):
            async with asyncio.timeout(timeout):
                while True:
                    await self.ws.recv()
        return self.ws.close_code, self.ws.close_reason or ""


@contextlib.asynccontextmanager
async def uws_peers(url: str, count: int, room: str | None = "basic") -> AsyncIterator[list[UwsPeer]]:
    """`count` connected `UwsPeer`s, joined to `room` in order unless it is None; closed on exit."""
    async with contextlib.AsyncExitStack() as stack:
        peers = []
        for _ in range(count):
            ws = await stack.enter_async_context(
                connect(url, compression=None, max_queue=None, ping_interval=None, open_timeout=5, close_timeout=1)
            )
            peers.append(UwsPeer(ws))
        if room is not None:
            for peer in peers:
                await peer.join(room)
                for earlier in peers[: peers.index(peer)]:  # each earlier peer hears the new occupant
                    await earlier.expect("occupantsChanged")
        yield peers
