"""The REST API: health, rooms and counters, all JSON."""

from __future__ import annotations

import time

import msgspec
from aiohttp import web

from shoal import __version__
from shoal.core.engine import ROOM_NAME, Engine
from shoal.persistence import Persistence

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
PERSISTENCE: web.AppKey[Persistence] = web.AppKey("persistence", Persistence)
STARTED_AT: web.AppKey[float] = web.AppKey("started_at", float)


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: 200 while the process serves requests."""
    engine = request.app[ENGINE]
    return web.json_response(
        {
            "status": "ok",
            "version": __version__,
            "uptime_s": round(time.time() - request.app[STARTED_AT], 3),
            "members": len(engine.members),
            "rooms": len(engine.rooms),
        }
    )


async def list_rooms(request: web.Request) -> web.Response:
    """`GET /api/rooms`: live rooms with their member counts, largest first."""
    return web.json_response({"rooms": request.app[ENGINE].room_summaries()})


async def room_state(request: web.Request) -> web.Response:
    """`GET /api/rooms/{room}`: the room's entities and who is present.

    A live room answers from memory; otherwise its stored state is read (after pending writes commit).
    404 when the room is neither live nor stored.
    """
    name = request.match_info["room"]
    if not ROOM_NAME.fullmatch(name):
        raise web.HTTPBadRequest(reason="invalid room name")
    room = request.app[ENGINE].rooms.get(name)
    if room is not None and not room.loading:
        return _json(
            {
                "name": name,
                "live": True,
                "members": room.snapshot(),
                "entities": room.all_entities(),
            }
        )
    persistence = request.app[PERSISTENCE]
    await persistence.writer.committed()
    record = await persistence.store.load_room(name)
    if record is None:
        raise web.HTTPNotFound(reason=f"no room {name!r}")
    return _json(
        {
            "name": name,
            "live": False,
            "members": [],
            "entities": [msgspec.json.decode(entity.data) for entity in record.entities],
        }
    )


def _json(body: object) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), content_type="application/json")


async def stats(request: web.Request) -> web.Response:
    """`GET /api/stats`: the server's counters (frames, drops by reason, closes by code, ...)."""
    return web.json_response(request.app[ENGINE].stats.as_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_get("/api/rooms/{room}", room_state)
    app.router.add_get("/api/stats", stats)
