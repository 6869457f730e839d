"""The dialects' REST API: counters, and NAF rooms with their shadow state, as JSON."""

from __future__ import annotations

import msgspec
from aiohttp import web

from shoal.dialects import DIALECTS


async def stats(request: web.Request) -> web.Response:
    """`GET /api/dialects`: each dialect's counters and live rooms."""
    dialects = request.app[DIALECTS]
    relay, naf = dialects.broadcast, dialects.naf.core
    return _json(
        {
            "broadcast": {**relay.stats.as_dict(), "rooms": {key: len(room) for key, room in relay.rooms.items()}},
            "naf": {**naf.stats.as_dict(), "rooms": naf.room_summaries()},
        }
    )


async def naf_rooms(request: web.Request) -> web.Response:
    """`GET /api/naf/rooms`: live NAF room instances with their occupant and entity counts."""
    return _json({"rooms": request.app[DIALECTS].naf.core.room_summaries()})


async def naf_room(request: web.Request) -> web.Response:
    """`GET /api/naf/rooms/{room}`: one room instance's entities (their last full NAF state) and occupants.

    A live room answers from memory; otherwise its stored persistent entities are read, after pending
    writes commit, so an entity listed here survives a crash. 404 when the room is neither.
    """
    name = request.match_info["room"]
    state = await request.app[DIALECTS].naf.room_state(name)
    if state is None:
        raise web.HTTPNotFound(reason=f"no NAF room {name!r}")
    return _json(state)


def _json(body: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/dialects", stats)
    app.router.add_get("/api/naf/rooms", naf_rooms)
    app.router.add_get("/api/naf/rooms/{room}", naf_room)
