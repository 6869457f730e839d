"""Running a server process: bind, log where it listens, stop cleanly on SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal

import structlog
from aiohttp import web

from shoal import __version__
from shoal.config import ServerConfig
from shoal.web.app import create_app

log = structlog.get_logger("shoal.server")


async def serve(config: ServerConfig, stop: asyncio.Event | None = None) -> None:
    """Serve until `stop` is set or the process gets SIGINT/SIGTERM, then drain and close."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=1024)
    await site.start()
    port = runner.addresses[0][1] if runner.addresses else config.port
    log.info(
        "listening",
        url=f"http://{config.host}:{port}/",
        ws=f"ws://{config.host}:{port}/ws",
        port=port,
        version=__version__,
        tick_rate=config.tick_rate,
        data=str(config.data_dir),
    )

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
