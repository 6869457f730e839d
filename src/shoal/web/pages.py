"""`GET /status`: a small status page (server name, version, live rooms); the web client has `/`."""

from __future__ import annotations

from html import escape

from aiohttp import web

from shoal import __version__
from shoal.web.api import ENGINE

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{name} - Shoal</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;color:#1b2430}}
table{{border-collapse:collapse}}td,th{{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}}
code{{background:#f2f4f7;padding:0 .3rem}}</style></head>
<body><h1>{name}</h1>
<p>Shoal {version} is running. WebSocket clients connect to <code>{ws_url}</code> (see docs/protocol.md).</p>
<h2>Rooms</h2>{rooms}
</body></html>
"""


async def status(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    rooms = engine.room_summaries()
    if rooms:
        rows = "".join(f"<tr><td>{escape(str(r['name']))}</td><td>{r['members']}</td></tr>" for r in rooms)
        table = f"<table><tr><th>Room</th><th>Members</th></tr>{rows}</table>"
    else:
        table = "<p>No one is here yet.</p>"
    scheme = "wss" if request.secure else "ws"
    html = PAGE.format(
        name=escape(engine.server_name),
        version=__version__,
        rooms=table,
        ws_url=escape(f"{scheme}://{request.host}/ws"),
    )
    return web.Response(text=html, content_type="text/html")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/status", status)
