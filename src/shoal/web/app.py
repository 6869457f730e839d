"""The aiohttp application: HTTP routes and the WebSocket endpoint on one port."""

from __future__ import annotations

import time

from aiohttp import web

from shoal.config import ServerConfig
from shoal.core.engine import Engine
from shoal.transport.websocket import WebSocketTransport
from shoal.web import api, pages
from shoal.web.errors import json_errors

TRANSPORT: web.AppKey[WebSocketTransport] = web.AppKey("transport", WebSocketTransport)


def create_app(config: ServerConfig | None = None) -> web.Application:
    """Build the app: `GET /`, `/healthz`, `/api/...` and the WebSocket endpoint `GET /ws`.

    The tick loop starts with the app and every connection is closed with 1012 when it shuts down.
    """
    config = config or ServerConfig()
    engine = Engine(limits=config.limits, tick_rate=config.tick_rate, server_name=config.server_name)
    transport = WebSocketTransport(engine)

    app = web.Application(middlewares=[json_errors], client_max_size=1024 * 1024)
    app[api.ENGINE] = engine
    app[api.STARTED_AT] = time.time()
    app[TRANSPORT] = transport
    pages.add_routes(app)
    api.add_routes(app)
    app.router.add_get("/ws", transport.handle)
    app.on_startup.append(transport.start)
    app.on_shutdown.append(transport.shutdown)
    return app
