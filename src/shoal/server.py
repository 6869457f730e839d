"""Running a server process: bind, log where it listens, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import ssl
from collections.abc import Callable

import structlog
from aiohttp import web

from shoal import __version__
from shoal.config import ServerConfig
from shoal.web.app import create_app

log = structlog.get_logger("shoal.server")


async def serve(
    config: ServerConfig,
    stop: asyncio.Event | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    on_listening: Callable[[int], None] | None = None,
) -> None:
    """Serve until `stop` is set or the process gets SIGINT/SIGTERM, then drain and close.

    With `ssl_context` it serves HTTPS and `wss://`. `on_listening(port)` is called once the port is bound.
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=1024, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else config.port
    secure = "s" if ssl_context else ""
    log.info(
        "listening",
        url=f"http{secure}://{config.host}:{port}/",
        ws=f"ws{secure}://{config.host}:{port}/ws",
        port=port,
        version=__version__,
        tick_rate=config.tick_rate,
        data=str(config.data_dir),
    )
    if on_listening is not None:
        on_listening(port)

    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        log.info("stopping")
        await runner.cleanup()
        log.info("stopped")
