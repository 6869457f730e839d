"""Real Shoal servers for end-to-end tests: in-process on an aiohttp runner, or as a `shoal serve` process.

Both listen on 127.0.0.1 on a port the kernel picks, so tests never collide on a port.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from shoal.config import ServerConfig
from shoal.core.engine import Engine
from shoal.core.limits import Limits
from shoal.web import create_app
from shoal.web.api import ENGINE

HOST = "127.0.0.1"
_CONFIG_FIELDS = {f.name for f in dataclasses.fields(ServerConfig)} - {"limits"}
_LIMIT_FIELDS = set(Limits.__struct_fields__)


def server_config(data_dir: Path, **overrides: Any) -> ServerConfig:
    """A `ServerConfig` on 127.0.0.1, port 0, with `overrides` sorted into config fields (`tick_rate`,
    `server_name`, ...) and `Limits` fields (`hello_timeout`, `ping_interval`, ...)."""
    unknown = set(overrides) - _CONFIG_FIELDS - _LIMIT_FIELDS
    if unknown:
        raise TypeError(f"not a ServerConfig or Limits field: {', '.join(sorted(unknown))}")
    config = {name: value for name, value in overrides.items() if name in _CONFIG_FIELDS}
    limits = Limits(**{name: value for name, value in overrides.items() if name in _LIMIT_FIELDS})
    return ServerConfig(**{"host": HOST, "port": 0, "data_dir": data_dir, **config, "limits": limits})


@dataclasses.dataclass(frozen=True)
class RunningServer:
    """A server listening on 127.0.0.1: where to reach it and, in-process, its engine."""

    port: int
    engine: Engine

    @property
    def url(self) -> str:
        """Base HTTP URL without a trailing slash, e.g. `http://127.0.0.1:41234`."""
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    async def get(self, path: str) -> tuple[int, Any]:
        """GET `path`; return the status and the body (parsed when it is JSON, text otherwise)."""
        async with aiohttp.ClientSession() as session, session.get(self.url + path) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()

    async def stats(self) -> dict[str, Any]:
        """The counters of `GET /api/stats`."""
        status, body = await self.get("/api/stats")
        assert status == 200, body
        return body


StartServer = Callable[..., Awaitable[RunningServer]]
"""The type of the `start_server` fixture: `await start_server(**overrides)` -> `RunningServer`."""


@contextlib.asynccontextmanager
async def serving(data_dir: Path, **overrides: Any) -> AsyncIterator[RunningServer]:
    """Run `shoal.web.create_app` on an `AppRunner` + `TCPSite` until the block exits.

    It listens on a free port unless `port=` names one (to restart a server where it was). Leaving the
    block shuts the app down as `shoal serve` does: connections get 1012.
    """
    config = server_config(data_dir, **overrides)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.host, config.port)
        await site.start()
        yield RunningServer(port=runner.addresses[0][1], engine=app[ENGINE])
    finally:
        await runner.cleanup()


_LISTENING = re.compile(r"\blistening\b.*?\bport[=\":\s]+(\d+)")


class ServerProcess:
    """A `python -m shoal serve` child process. Its stderr (the log) is collected as it is written."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.port: int | None = None
        self._lines: list[str] = []
        self._listening = threading.Event()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()

    def _collect(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:  # draining also keeps the child from blocking on a full pipe
            self._lines.append(line)
            if self.port is None and (match := _LISTENING.search(line)):
                self.port = int(match.group(1))
                self._listening.set()
        self._listening.set()  # the process ended: stop waiting for it to listen

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{HOST}:{self.port}/ws"

    def log(self) -> str:
        """Everything the process has written to stderr so far."""
        return "".join(self._lines)

    def wait_listening(self, timeout: float) -> None:
        if not self._listening.wait(timeout) or self.port is None:
            raise AssertionError(f"server did not log `listening` within {timeout} s:\n{self.log()}")

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to end and for its log to be read; return its exit code."""
        code = self.process.wait(timeout)
        self._reader.join(timeout)
        return code

    def terminate(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 5 s. Only ever this child, by its PID."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)


def shoal_command(*args: str) -> list[str]:
    """`python -m shoal ARGS` with the interpreter running the tests."""
    return [sys.executable, "-m", "shoal", *args]


@contextlib.contextmanager
def running_server_process(
    *args: str, env: dict[str, str] | None = None, startup_timeout: float = 15.0
) -> Iterator[ServerProcess]:
    """Run `python -m shoal serve --port 0 ARGS` and yield it once it logs `listening`; kill it after.

    It runs in a temporary directory (its data directory defaults to one inside it). `env` adds to
    the current environment; `--port` in `args` (or `SHOAL_PORT` in `env`) replaces `--port 0`.
    """
    command = ["serve"]
    if "--port" not in args and "SHOAL_PORT" not in (env or {}):
        command += ["--port", "0"]
    with tempfile.TemporaryDirectory(prefix="shoal-test-") as workdir:
        process = subprocess.Popen(
            shoal_command(*command, *args),
            cwd=workdir,
            env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        server = ServerProcess(process)
        try:
            server.wait_listening(startup_timeout)
            yield server
        finally:
            server.terminate()


def free_port() -> int:
    """A port that was free a moment ago (for tests that must name the port themselves)."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]
