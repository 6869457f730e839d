"""Ticks stay on time when the tick loop's timer is late: arriving messages run a due tick themselves.

With thousands of busy sockets, uvloop polls many rounds of ready sockets before it runs a timer; the
test stands in for that by stopping the tick loop altogether, on a real server with real clients."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from aiohttp import web

from shoal.client import ShoalClient
from shoal.protocol.messages import Tick
from shoal.web.app import TRANSPORT, create_app
from support.servers import HOST, server_config

IDENTITY = (0.0, 0.0, 0.0, 1.0)


async def test_poses_reach_the_room_when_the_tick_loop_does_not_run(tmp_path: Path) -> None:
    app = create_app(server_config(tmp_path, tick_rate=20.0))
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, HOST, 0).start()
        url = f"ws://{HOST}:{runner.addresses[0][1]}/ws"
        async with (
            await ShoalClient.connect(url, name="Ada", binary=True) as ada,
            await ShoalClient.connect(url, name="Bob", binary=True) as bob,
        ):
            await ada.join("lobby")
            await bob.join("lobby")
            ticker = app[TRANSPORT]._ticker
            assert ticker is not None
            ticker.cancel()  # from here on only arriving messages can run a tick
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

            for step in range(1, 6):
                await ada.send_pose(head=((step / 10, 1.6, 0.0), IDENTITY))
                await asyncio.sleep(0.06)  # more than a tick interval: each pose finds a tick due
            seen = []
            while len(seen) < 3:
                tick = await bob.expect(Tick, timeout=3.0)
                seen += [pose.head.pos[0] for pose in tick.poses if pose.id == ada.id]
            assert seen == sorted(seen) and set(seen) <= {0.1, 0.2, 0.3, 0.4, 0.5}
    finally:
        await runner.cleanup()
