"""Fixtures shared by the whole suite: real servers on 127.0.0.1 and the skip-locally / fail-under-CI rule.

- `start_server(**overrides)` starts an in-process server (`shoal.web.create_app` on an aiohttp runner,
  port 0) with `ServerConfig` or `Limits` fields overridden, e.g. `await start_server(hello_timeout=0.2)`;
  every server it started is shut down after the test.
- `server` is one such server with the defaults.
- `require` is `support.ci.require`: skip with a reason when a service is missing, fail when CI=true.
- `support.servers.running_server_process(*args)` runs `python -m shoal serve` as a real process.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from support.ci import require as _require
from support.servers import RunningServer, StartServer, serving

pytest_plugins = ["store_fixtures"]  # per-test store URLs on SQLite, PostgreSQL and DynamoDB (moto)


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """A factory: `await start_server(tick_rate=50, ping_interval=0.5)` -> a `RunningServer`."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> RunningServer:
            return await stack.enter_async_context(serving(tmp_path / "data", **overrides))

        yield start


@pytest.fixture
async def server(start_server: StartServer) -> RunningServer:
    """A server with the default limits (`.url`, `.ws_url`, `.port`, `.engine`)."""
    return await start_server()


@pytest.fixture
def require() -> Callable[[bool, str], None]:
    """`require(service_available, reason)`: skip with `reason`, or fail when CI=true."""
    return _require
