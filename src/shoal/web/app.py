"""The aiohttp application: HTTP routes and the WebSocket endpoint on one port."""

from __future__ import annotations

import time

from aiohttp import web

from shoal.config import ServerConfig
from shoal.core.engine import Engine
from shoal.dialects import add_routes as add_dialect_routes
from shoal.persistence import Persistence
from shoal.store import StoreWriter, open_store
from shoal.transport.websocket import WebSocketTransport
from shoal.web import accounts, api, client_app, pages
from shoal.web.auth_api import auth_errors
from shoal.web.errors import json_errors

TRANSPORT: web.AppKey[WebSocketTransport] = web.AppKey("transport", WebSocketTransport)


def create_app(config: ServerConfig | None = None) -> web.Application:
    """Build the app: the web client (`GET /`, `/app/`, `/sdk/`, `/vendor/`), `/status`, `/healthz`,
    `/api/...` and the WebSocket endpoint `GET /ws`.

    On startup the store opens (SQLite under `data_dir` unless `store_url` names another) and the tick
    loop starts. On shutdown every connection is closed with 1012, pending writes are committed, and the
    store is closed.
    """
    config = config or ServerConfig()
    engine = Engine(
        limits=config.limits,
        tick_rate=config.tick_rate,
        server_name=config.server_name,
        store_backed=True,
        interest=config.interest,
        auth_mode=config.auth.mode,
    )
    transport = WebSocketTransport(engine, config.read_pacing)
    store = open_store(config.store_url, config.data_dir)
    persistence = Persistence(engine, store, StoreWriter(store), transport.perform)
    transport.persistence = persistence

    async def open_storage(app: web.Application) -> None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        await store.open()
        await persistence.writer.start()
        await persistence.start()

    async def close_storage(app: web.Application) -> None:
        await persistence.stop()
        await store.close()

    app = web.Application(middlewares=[json_errors, auth_errors], client_max_size=1024 * 1024 + 1)
    app[api.ENGINE] = engine
    app[api.PERSISTENCE] = persistence
    app[api.STARTED_AT] = time.time()
    app[TRANSPORT] = transport
    client_app.add_routes(app)
    pages.add_routes(app)
    api.add_routes(app)
    accounts.install(app, config, store, transport)  # /api/auth, /api/me, /api/users, room access
    add_dialect_routes(app, config, persistence)  # ws-broadcast, NAF uWS + socket.io
    app.router.add_get("/ws", transport.handle)
    app.on_startup.append(open_storage)
    app.on_startup.append(transport.start)
    app.on_shutdown.append(transport.shutdown)
    app.on_cleanup.append(close_storage)
    return app
