"""Wire dialects: existing clients of other servers connect to Shoal unchanged.

- `broadcast`: Decentraland's ws-broadcast relay, on `/broadcast` and any configured prefix;
- `naf`: networked-aframe's servers, over a raw WebSocket (`uws` adapter, on `/naf`) and socket.io
  (`socketio` adapter, on `/socket.io/`), with server-side shadow state and storage of persistent entities.

Each dialect is a thin adapter around a sans-I/O core of its own, as the native protocol is around the
room engine. `add_routes` puts them all on the app; docs/dialects.md tells how to point each client here.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from aiohttp import web

from shoal.config import ServerConfig
from shoal.dialects.broadcast import BroadcastRelay
from shoal.dialects.naf import DEMO_DIR, DEMO_PATH
from shoal.dialects.naf.core import NafCore
from shoal.dialects.naf.service import NafService
from shoal.dialects.naf.uws import UwsChannel
from shoal.persistence import Persistence

log = structlog.get_logger("shoal.dialects")


@dataclass(frozen=True, slots=True)
class Dialects:
    """The dialect endpoints of one app (for the API and for tests)."""

    broadcast: BroadcastRelay
    naf: NafService


DIALECTS: web.AppKey[Dialects] = web.AppKey("dialects", Dialects)


def add_routes(app: web.Application, config: ServerConfig, persistence: Persistence) -> Dialects:
    """Serve every dialect on `app`: ws-broadcast on `config.broadcast_prefixes`, NAF uWS on
    `config.naf_path`, NAF socket.io on `/socket.io/` (when python-socketio is installed: the `naf` extra),
    the NAF demo pages under `/examples/naf/`, and `GET /api/dialects`, `/api/naf/rooms[/{room}]`.

    NAF rooms are stored through `persistence`'s store and writer; connections close with 1012 on shutdown.
    """
    from shoal.dialects import api  # the API reads DIALECTS, defined above

    relay = BroadcastRelay(config.limits, config.broadcast_prefixes)
    relay.add_routes(app)

    core = NafCore(config.limits, room_capacity=config.naf_room_capacity, store_backed=True)
    naf = NafService(core, persistence.writer, persistence.store)
    UwsChannel(naf, config.naf_path).add_routes(app)
    try:
        from shoal.dialects.naf.socketio import SocketIOChannel
    except ImportError:
        log.warning("naf_socketio_unavailable", hint="pip install 'shoal[naf]' for NAF's socketio adapter")
    else:
        SocketIOChannel(naf, config.naf_allowed_origins).attach(app)

    async def close_naf(app: web.Application) -> None:
        await naf.shutdown()

    app.on_shutdown.append(close_naf)
    app.router.add_get(DEMO_PATH, _demo_index)
    app.router.add_static(DEMO_PATH, DEMO_DIR)
    dialects = app[DIALECTS] = Dialects(relay, naf)
    api.add_routes(app)
    return dialects


async def _demo_index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(DEMO_DIR / "index.html")
