"""The WebSocket upgrade shared by every endpoint (native, ws-broadcast, NAF uWS)."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def accept(request: web.Request, ws: web.WebSocketResponse, refusal: str) -> asyncio.Transport | None:
    """Complete the handshake for `ws`; return the socket's transport, or None if the peer left meanwhile.

    A request that is not a WebSocket upgrade gets 426 with `refusal` as the JSON error message.
    Per-message deflate must already be off in `ws` (`compress=False`): every endpoint relays small frames,
    where deflate costs far more CPU than it saves.
    """
    if not ws.can_prepare(request).ok:
        raise web.HTTPUpgradeRequired(reason=refusal, headers={"Upgrade": "websocket"})
    await ws.prepare(request)
    return request.transport  # type: ignore[return-value]
