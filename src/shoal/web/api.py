"""The REST API: health, rooms and counters, all JSON."""

from __future__ import annotations

import time

from aiohttp import web

from shoal import __version__
from shoal.core.engine import Engine

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
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


async def stats(request: web.Request) -> web.Response:
    """`GET /api/stats`: the server's counters (frames, drops by reason, closes by code, ...)."""
    return web.json_response(request.app[ENGINE].stats.as_dict())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/rooms", list_rooms)
    app.router.add_get("/api/stats", stats)
