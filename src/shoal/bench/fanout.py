"""The fan-out benchmark: server CPU per delivered pose, loss and latency with C clients in rooms of R.

    python bench/fanout.py                      # 200 clients, rooms of 25, 20 Hz, 2 loaders, JSON
    python bench/fanout.py --protocol binary --clients 50 --duration 10 --output docs/benchmarks/run.json
    shoal bench                                 # a sweep over client counts and protocols, with a plot

It starts `python -m shoal serve` from this checkout's `src/` as its own process (event loop chosen by
`--server-loop`), or targets a running server at `--server-url`, or starts a peer (`--peer`: a foreign
relay from `bench/peers/`, measured the same way; see below), connects the clients from `--loaders`
separate load-generator processes (`shoal.bench.loader`; one Python loader saturates before the server
does), lets every client send a head-and-hands pose at `--hz` for `--warmup` seconds in the chosen
protocol (`json`, `binary`, or `broadcast`: the ws-broadcast dialect, a plain per-message relay on the
same server; `colyseus` for the Colyseus peer only), then measures for `--duration` seconds and prints ONE
JSON line.

With `--loader c` the loaders are `loader.c`, built with the machine's C compiler: the same clients, orders
and counts in every protocol for less CPU (the Python loader spends about as much per client as the server
does; loader.c about a seventh of that with binary ticks, under half with JSON ticks, and about 70 % with
the ws-broadcast dialect's one message per pose, where the kernel's share dominates), so that on a small
machine the server keeps the cores it needs. It speaks TLS (`--https`, an https:// server) when built with
OpenSSL 3, which `loader_program` tries first (Debian: libssl-dev); a build without it is refused TLS runs.

With `--peer ws-broadcast` (Decentraland's relay on Node `ws` 7.3.1; needs `node` and `npm ci`),
`--peer websockets-relay` (a plain relay on the `websockets` library's `broadcast()`) or `--peer colyseus`
(a Colyseus 0.16 relay room, `broadcast(type, message, {except: client})`; needs `node` and `npm ci`), the
server under test is that peer, started on a free port of 127.0.0.1 and stopped by PID like Shoal. A peer
speaks one protocol only: the first two the ws-broadcast dialect (`--protocol broadcast`; any path is a
room), the Colyseus room Colyseus 0.16's own (`--protocol colyseus`, which Shoal does not speak: HTTP
matchmaking, then msgpack-framed messages carrying the same JSON pose, the sender excluded). A peer has no
HTTP API of Shoal's, so the figures that come from Shoal's `/api/stats` and `/api/rooms` (`server_stats`,
`rooms_members`, the server's drop counters) are null or empty; every other figure, the CPU ones from /proc
included, means the same. `bench/peers.py` measures Shoal and every peer one after the other in one run.

Clients of a room stand `--spread` metres apart along z, so that interest management
(`--interest-radius` of the started server) has near and far neighbours to tell apart.

What is measured, over the window [start, end):

- **deliveries**: pose entries received by a member other than their sender, counted by receive time.
  A pose resent in a full-state tick (after the receiver skipped a tick) is a duplicate, not a delivery.
- **server CPU µs per delivered pose**: user + system time of the server process (`/proc/PID/stat`,
  all threads) over the window, divided by the deliveries. Also the cores it used and its RSS.
- **latency p50/p99**: receive time minus the send time the pose carries in `t` (same host clock). The
  receive time is when the loader read the message, before it parses it (parsing is deferred, so one
  frame's parsing is not added to the next one's latency). It includes the wait for the next tick (up to
  one tick interval, by design) and the loaders' own scheduling delays.
- **loss**: each pose carries a per-sender sequence number (the head's x position in mm). For every
  pose sent in the window, the server does one of three things: it relays it in a tick frame, which
  carries the same bytes to every other member of the room; it coalesces it (a newer pose of the same
  sender arrived before the tick, and the latest wins, as docs/protocol.md says); or it drops it
  (rate limit, invalid, sender in no room: counted in `/api/stats`). So a pose that reached at least one
  receiver was relayed, and every other member of the room that did not get it lost it; a pose that
  reached no receiver was coalesced, unless the server's drop counters moved, and then each drop counts
  as lost for every receiver. `loss.lost` is the sum of both; `loss.pct` is `lost` over the deliveries
  owed (relayed poses times receivers, plus the dropped ones); a late pose still missing `--drain`
  seconds after the window counts as lost. The limit of this definition: a pose the server silently
  withheld from every receiver of its room would count as coalesced, so `loss.coalesced_pct` is
  reported too (at a tick rate equal to the send rate it stays a few per cent, from send jitter).
  With `--interest-radius`, only receivers within the radius of the sender are owed every relayed pose
  (the others get the far tier by design), so loss is counted over those pairs (`loss.scope`).

The server is stopped by PID, and every loader too, on success, error or Ctrl-C. Every wait is
bounded; the whole run takes about warmup + duration + drain + the time to connect.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import select
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import click

import shoal
from shoal.bench.loader import COLYSEUS_MATCHMAKE_PATH, pose_template
from shoal.tls import CERT_FILE

SOURCE_TREE = Path(shoal.__file__).parents[1]
"""Where this `shoal` package lives: the server and loaders it starts run this code, whatever is installed."""
ROOT = SOURCE_TREE.parent
"""The checkout's root, when this `shoal` runs from a checkout: `bench/`, `package.json`, `node_modules/`."""
SHOAL_PROTOCOLS = ("json", "binary", "broadcast")
"""What Shoal speaks: its protocol v1 in JSON and in binary, and its ws-broadcast dialect."""
PROTOCOLS = (*SHOAL_PROTOCOLS, "colyseus")
"""What the loaders speak: Shoal's protocols, and Colyseus 0.16's, which only the `colyseus` peer speaks."""
LOADERS = ("python", "c")
NATIVE_LOADER_SOURCE = Path(__file__).with_name("loader.c")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
SERVER_START_TIMEOUT_S = 20.0
HTTP_TIMEOUT_S = 30.0
SLOW_API_S = 1.0
"""A `/api/stats` answer slower than this is reported (`params.server_api_seconds`): the server counters
then describe a shifted window, a sign of saturation."""
STOP_TIMEOUT_S = 10.0
INTEREST_EDGE_M = 0.05
"""With interest management, pairs this close to the radius are not owed every pose (positions drift by
the x of their sequence numbers, a few millimetres)."""
LATENCY_BIN_MS = 0.01
"""Loaders histogram latencies in bins this wide (10 µs) and ship counts, not every sample."""
IDLE_SETTLE_S = 2.0
"""Seconds between the last idle client joining and reading the server's RSS."""
RESULT_MARGIN_S = 30.0
"""Seconds past the drain to wait for the loaders' results (they ship every receiver's bit sets)."""


class BenchError(click.ClickException):
    """The benchmark could not run (server did not start, a loader failed, ...)."""


# ---- the server under test ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the server is: its HTTP base URL, its WebSocket URL and, when on this host, its PID.

    `ws_url` is Shoal's protocol endpoint (`.../ws`); clients of the `broadcast` protocol connect to
    `/broadcast/<room>` beside it, those of `colyseus` reserve their seats beside it. `peer` names a foreign
    server (one of `PEERS`) rather than Shoal: it has no HTTP API of Shoal's, so a run reads no `/api/rooms`
    or `/api/stats` from it, and it speaks its own protocol only. `runtime` says what a peer runs on, for
    the report.
    """

    http_url: str
    ws_url: str
    pid: int | None
    peer: str | None = None
    runtime: str | None = None
    ca_file: str | None = None
    """A PEM certificate that its HTTPS and WSS clients trust (the self-signed one of a server started with
    `https`); None: the system's trust store."""

    @classmethod
    def local(
        cls, port: int, pid: int, peer: str | None = None, runtime: str | None = None, ca_file: Path | None = None
    ) -> Target:
        """A server this benchmark started on `port` of 127.0.0.1; over HTTPS and WSS, trusting `ca_file`, when
        that is given."""
        if ca_file is None:
            return cls(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/ws", pid, peer, runtime)
        return cls(f"https://127.0.0.1:{port}", f"wss://127.0.0.1:{port}/ws", pid, peer, runtime, str(ca_file))


@contextlib.contextmanager
def started_server(
    tick_rate: float,
    max_members: int,
    loop: str,
    interest_radius: float = 0.0,
    interest_far_every: int = 4,
    data_dir: Path | None = None,
    store_url: str = "",
    https: bool = False,
) -> Iterator[Target]:
    """Run `shoal serve` on a free port of 127.0.0.1 in its own process; stop it by PID on exit.

    The port comes from the server's JSON `listening` log line. Logs go to a temporary file (info level:
    connection events only, never per message), which is quoted if the server fails to start. The server's
    data goes to a temporary directory unless `data_dir` names one that outlives it (for restarts). With
    `https` it serves HTTPS and WSS with the self-signed certificate it makes under its data, which the
    target's clients then trust.
    """
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as scratch:
        data = data_dir or Path(scratch) / "data"
        command = [
            sys.executable, "-m", "shoal", "serve", "--host", "127.0.0.1", "--port", "0",
            "--log-level", "info", "--log-format", "json", "--tick-rate", str(tick_rate),
            "--max-members", str(max_members), "--data", str(data), "--loop", loop,
            "--interest-radius", str(interest_radius), "--interest-far-every", str(interest_far_every),
            "--store", store_url, *(["--https"] if https else []),
        ]  # fmt: skip
        with _listening_process(command, Path(scratch) / "server.log") as (port, pid):
            yield Target.local(port, pid, ca_file=data / "tls" / CERT_FILE if https else None)


@contextlib.contextmanager
def _listening_process(command: list[str], log_path: Path) -> Iterator[tuple[int, int]]:
    """Run `command` in its own process and session, its stdout and stderr in `log_path`, until it prints
    the JSON line `{"event": "listening", "port": N, ...}`; yield (N, its PID) and stop it by PID on exit."""
    with open(log_path, "w+b") as log:
        server = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=child_environment(),
            start_new_session=True,
        )
        try:
            yield _wait_for_listening(server, log), server.pid
        finally:
            _stop(server, signal.SIGTERM)


PEERS_DIR = ROOT / "bench" / "peers"
"""The peers' scripts: in a checkout of Shoal (they are not part of the package)."""
WS_BROADCAST_WS_VERSION = "7.3.1"
"""The `ws` release Decentraland's ws-broadcast runs on, pinned in package.json."""
COLYSEUS_PACKAGES = (("@colyseus/core", "0.16.26"), ("@colyseus/ws-transport", "0.16.5"))
"""The Colyseus 0.16 releases (npm package, version) the Colyseus relay room runs on, pinned in package.json."""


@dataclass(frozen=True)
class Peer:
    """A foreign relay that a run can measure instead of Shoal (`--peer`)."""

    script: str
    """Its script in `PEERS_DIR`: it takes the port to listen on (0: any) and prints the same `listening` JSON
    line as `shoal serve`."""
    protocol: str
    """The one protocol of `PROTOCOLS` it speaks."""
    kind: str
    """What it is, in a sentence's words: "a ws-broadcast relay"."""
    npm_packages: tuple[tuple[str, str], ...] = ()
    """A Node script's npm packages (name, version pinned in package.json), which `npm ci` installs."""


PEERS = {
    "ws-broadcast": Peer("ws-broadcast.js", "broadcast", "a ws-broadcast relay", (("ws", WS_BROADCAST_WS_VERSION),)),
    "websockets-relay": Peer("websockets_relay.py", "broadcast", "a ws-broadcast relay"),
    "colyseus": Peer("colyseus-relay.js", "colyseus", "a Colyseus relay room", COLYSEUS_PACKAGES),
}
"""The foreign relays a run can measure instead of Shoal (`--peer`), by name."""


def peer_command(name: str) -> tuple[list[str], str]:
    """The command that starts peer `name` (one of `PEERS`) on a free port of 127.0.0.1, and what it runs
    on (for the report). BenchError, saying what to install, when its runtime is missing."""
    peer = PEERS[name]
    script = PEERS_DIR / peer.script
    if not script.is_file():
        raise BenchError(f"--peer {name} runs {script}, which is missing: the peers live in a checkout of Shoal")
    if script.suffix == ".js":
        node = shutil.which("node")
        if node is None:
            raise BenchError(f"--peer {name} needs Node.js: install it (`node` on PATH), then run `npm ci` in {ROOT}")
        for package, pinned in peer.npm_packages:
            _require_npm_package(name, package, pinned)
        node_version = subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout
        packages = [f"{package} {pinned}" for package, pinned in peer.npm_packages]
        return [node, str(script), "0"], ", ".join([f"node {node_version.strip()}", *packages])
    try:
        import websockets
    except ImportError:
        raise BenchError(f"--peer {name} needs the websockets library: pip install 'websockets>=15'") from None
    runtime = f"python {platform.python_version()} (asyncio), websockets {websockets.__version__}"
    return [sys.executable, str(script), "0"], runtime


def _require_npm_package(peer: str, package: str, pinned: str) -> None:
    """BenchError, saying to run `npm ci`, unless `node_modules` holds npm package `package` at version `pinned`."""
    manifest = ROOT / "node_modules" / package / "package.json"
    version = json.loads(manifest.read_text())["version"] if manifest.is_file() else None
    if version != pinned:
        found = f"{package} {version}" if version else f"no {package}"
        raise BenchError(
            f"--peer {peer} needs {package} {pinned} in {ROOT / 'node_modules'} ({found} there): run `npm ci` in {ROOT}"
        )


@contextlib.contextmanager
def started_peer(name: str) -> Iterator[Target]:
    """Run peer `name` (one of `PEERS`) on a free port of 127.0.0.1 in its own process; stop it by PID on exit."""
    command, runtime = peer_command(name)
    with (
        tempfile.TemporaryDirectory(prefix="shoal-bench-peer-") as scratch,
        _listening_process(command, Path(scratch) / "server.log") as (port, pid),
    ):
        yield Target.local(port, pid, peer=name, runtime=runtime)


def refuse_foreign_protocol(peer: str | None, protocol: str) -> None:
    """BenchError unless the server under test speaks `protocol`: peer `peer` (one of `PEERS`) its own protocol
    only, Shoal (`peer` None) those of `SHOAL_PROTOCOLS`."""
    if peer is None and protocol not in SHOAL_PROTOCOLS:
        speakers = " or ".join(f"--peer {name}" for name, each in PEERS.items() if each.protocol == protocol)
        shoal_protocols = ", ".join(SHOAL_PROTOCOLS[:-1]) + f" or {SHOAL_PROTOCOLS[-1]}"
        raise BenchError(
            f"Shoal does not speak --protocol {protocol}, which is for {speakers}: Shoal speaks --protocol "
            f"{shoal_protocols}"
        )
    if peer is not None and protocol != PEERS[peer].protocol:
        raise BenchError(
            f"--peer {peer} is {PEERS[peer].kind}: it speaks --protocol {PEERS[peer].protocol} only, "
            f"not --protocol {protocol}"
        )


def is_tls_url(url: str) -> bool:
    """Whether `url` (a server's http(s):// or ws(s):// address) is reached over TLS."""
    return urlsplit(url).scheme in ("https", "wss")


NO_TLS_IN_C_LOADER = (
    "--loader c was built without TLS (its build with OpenSSL failed): to measure over TLS (--https, an https:// "
    "server) with it, install OpenSSL's headers (Debian: libssl-dev), or use --loader python"
)


def runs_over_tls(https: bool, server_url: str | None) -> bool:
    """Whether a benchmark's runs go over TLS: `https` (Shoal started with its self-signed certificate), or an
    https:// or wss:// `server_url`."""
    return https or is_tls_url(server_url or "")


def refuse_unusable_tls(https: bool, server_url: str | None, peer: str | None = None) -> None:
    """BenchError, before anything starts, for TLS settings that cannot work: `https` (start Shoal with its
    self-signed certificate) beside a running server or a peer. Whether the loaders speak TLS is known once
    they are built: `loader_program` refuses a loader.c built without it."""
    if https and (peer or server_url):
        raise BenchError("--https starts Shoal with its own certificate: leave out --peer and --server-url")


def child_environment() -> dict[str, str]:
    """This environment, with `SOURCE_TREE` first on PYTHONPATH so that children import this `shoal`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_TREE), env.get("PYTHONPATH")]))
    return env


def _wait_for_listening(server: subprocess.Popen[bytes], log: Any) -> int:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        log.seek(0)
        for line in log:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == "listening":
                    return int(event["port"])
        if server.poll() is not None:
            log.seek(0)
            raise BenchError(f"the server exited with {server.returncode}:\n{log.read().decode(errors='replace')}")
        time.sleep(0.05)
    raise BenchError(f"the server did not log 'listening' within {SERVER_START_TIMEOUT_S:.0f} s")


def _stop(process: subprocess.Popen[Any], how: signal.Signals) -> None:
    """Stop one child by its PID: `how` first, SIGKILL if it is still alive after STOP_TIMEOUT_S."""
    if process.poll() is None:
        process.send_signal(how)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def running_server(url: str, pid: int | None) -> Target:
    """A server that is already running at `url` (`http://host:port` or `ws://host:port/ws`).

    Its CPU can only be read when it runs on this host: give `pid`, or it is looked up by its
    listening port (needs psutil). Without a PID the CPU figures are null.
    """
    parts = urlsplit(url)
    secure = is_tls_url(url)
    http_url = urlunsplit(("https" if secure else "http", parts.netloc, "", "", ""))
    ws_url = urlunsplit(("wss" if secure else "ws", parts.netloc, "/ws", "", ""))
    if pid is None and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        pid = _listening_pid(parts.port or (443 if secure else 80))
    return Target(http_url, ws_url, pid)


def _listening_pid(port: int) -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port and connection.pid:
                return connection.pid
    return None


@dataclass(frozen=True)
class ProcessSample:
    """CPU seconds (user, system) and memory of one process at one instant, from /proc."""

    user_s: float
    system_s: float
    rss_bytes: int
    peak_rss_bytes: int

    @classmethod
    def read(cls, pid: int) -> ProcessSample:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name in parentheses may hold spaces
        utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), counted from 1
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES
        peak = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
        return cls(utime / CLOCK_TICKS, stime / CLOCK_TICKS, rss, peak)


def fetch_json(url: str, ca_file: str | None = None) -> Any:
    """GET `url` as JSON, an https one trusting `ca_file` too when given. The timeout is long: a saturated
    server (the point of some runs) answers late."""
    context = ssl.create_default_context(cafile=ca_file) if url.startswith("https:") else None
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S, context=context) as response:
        return json.load(response)


# ---- the loaders ----------------------------------------------------------------------------------


class Loader:
    """One `shoal.bench.loader` process (or `command`), spoken to in JSON lines over its stdin and stdout."""

    def __init__(self, plan: dict[str, Any], command: list[str] | None = None) -> None:
        first_order = self.encode(plan)  # before the process starts: a plan it cannot take leaves nothing behind
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "shoal.bench.loader"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
            env=child_environment(),
            start_new_session=True,  # Ctrl-C reaches the orchestrator only; it stops every child by PID
        )
        self._buffer = b""
        self._write(first_order)

    def encode(self, message: dict[str, Any]) -> bytes:
        """One order (the plan, or the window's start and end) as the loader reads it: a JSON line."""
        return json.dumps(message).encode() + b"\n"

    def send(self, message: dict[str, Any]) -> None:
        self._write(self.encode(message))

    def _write(self, data: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def receive(self, deadline: float) -> dict[str, Any]:
        """The loader's next JSON line; BenchError if it exits or says nothing before `deadline` (monotonic)."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError(f"loader {self.process.pid} did not answer in time")
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    code = self.process.wait()
                    raise BenchError(f"loader {self.process.pid} ended (exit code {code}) before it answered")
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def stop(self) -> None:
        _stop(self.process, signal.SIGTERM)


class NativeLoader(Loader):
    """A process of `loader.c` (built by `loader_program`), in any of `PROTOCOLS`. It answers in the same JSON
    lines, but reads its orders as lines of text (`native_order`), so that it needs no JSON parser for them."""

    def encode(self, message: dict[str, Any]) -> bytes:
        return native_order(message)


def native_order(message: dict[str, Any]) -> bytes:
    """An order to a loader (the plan, or the window's start and end) in the form loader.c reads (see the
    comment at its top): the plan as a line of settings (the protocol among them) and one line per client,
    with its binary pose frame in the binary protocol. For `broadcast` the path is the one the Python loader
    connects to (`/broadcast/` beside `/ws`), without the room, which loader.c appends per client; for
    `colyseus` it is where both loaders reserve their seats (`COLYSEUS_MATCHMAKE_PATH`). A wss:// URL adds `tls=1`
    and the plan's `ca_file`, which loader.c trusts beside the system's certificates (as the Python loader does)."""
    if "start" in message:
        return f"start {float(message['start'])!r} {float(message['end'])!r}\n".encode()
    protocol = message["protocol"]
    if protocol not in PROTOCOLS:
        raise BenchError(f"the C loader speaks {', '.join(PROTOCOLS)}, not {protocol!r}")
    url = urlsplit(message["url"])
    if url.scheme not in ("ws", "wss") or not url.hostname:
        raise BenchError(f"the C loader connects to ws:// and wss:// URLs only, not {message['url']}")
    tls = url.scheme == "wss"
    path = url.path or "/"
    if protocol == "broadcast":  # as shoal.bench.loader.connect builds it
        path = urlsplit(message["url"].rsplit("/ws", 1)[0] + "/broadcast/").path
    elif protocol == "colyseus":
        path = COLYSEUS_MATCHMAKE_PATH
    settings = {"host": url.hostname, "port": url.port or (443 if tls else 80), "protocol": protocol, "path": path}
    settings |= {key: message[key] for key in ("hz", "drain", "latency_bin_ms", "ready_timeout") if key in message}
    settings |= {"idle": int(bool(message.get("idle"))), "clients": len(message["clients"])}
    if tls:  # the CA file's path %XX-escaped, as the settings are split at spaces
        settings |= {"tls": 1} | ({"ca_file": quote(message["ca_file"])} if message.get("ca_file") else {})
    lines = [" ".join(f"{key}={value}" for key, value in settings.items())]
    for index, room, z in message["clients"]:
        if not room or any(character.isspace() for character in room):
            raise BenchError(f"the C loader takes room names without spaces, not {room!r}")
        if protocol == "broadcast" and quote(room, safe="") != room:  # loader.c puts it in the path as it is
            raise BenchError(f"the C loader takes broadcast room names that need no URL quoting, not {room!r}")
        pose = f" {pose_template(z).hex()}" if protocol == "binary" else ""
        lines.append(f"{index} {room} {float(z)!r}{pose}")
    return "\n".join(lines).encode() + b"\n"


@dataclass(frozen=True)
class LoaderProgram:
    """Which load generator a run starts: `shoal.bench.loader` (`python`), or loader.c built at `executable` (`c`)."""

    kind: str = "python"
    executable: Path | None = None
    tls: bool = False
    """For `c`: whether this build speaks TLS (built with OpenSSL: `NATIVE_LOADER_TLS_BUILD`)."""

    @property
    def speaks_tls(self) -> bool:
        """Whether its clients can reach a wss:// server: the Python loader's always can, loader.c's if built so."""
        return self.kind == "python" or self.tls

    def start(self, plan: dict[str, Any]) -> Loader:
        if self.executable is None:
            return Loader(plan)
        return NativeLoader(plan, [str(self.executable)])


NATIVE_LOADER_TLS_BUILD = (["-DSHOAL_LOADER_TLS"], ["-lssl", "-lcrypto"])
"""What a build of loader.c that speaks TLS adds: the define before the source, OpenSSL's libraries after it."""


@contextlib.contextmanager
def loader_program(kind: str, protocols: Iterable[str], tls: bool = False) -> Iterator[LoaderProgram]:
    """The load generator of `kind` (one of `LOADERS`) for runs in `protocols` (any of `PROTOCOLS`: both
    loaders speak them all, with the same semantics), over TLS if `tls`. `c` builds loader.c with the machine's
    `cc` or `gcc` into a temporary directory, removed on exit: with TLS (OpenSSL) if that builds, else without.
    BenchError, before anything starts, without a compiler, or for `tls` with a build without TLS."""
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        raise BenchError(f"no loader speaks {', '.join(unknown)}: the protocols are {', '.join(PROTOCOLS)}")
    if kind == "python":
        yield LoaderProgram()
        return
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise BenchError("--loader c needs a C compiler (cc or gcc) on PATH; without one, use --loader python")
    with tempfile.TemporaryDirectory(prefix="shoal-loader-") as scratch:
        executable = Path(scratch) / "loader"
        flags, libraries = NATIVE_LOADER_TLS_BUILD
        with_tls = _build_native_loader(compiler, executable, flags, libraries)
        if with_tls.returncode == 0:
            yield LoaderProgram("c", executable, tls=True)
            return
        build = _build_native_loader(compiler, executable, [], [])
        if build.returncode != 0:
            raise BenchError(f"{compiler} could not build {NATIVE_LOADER_SOURCE}:\n{build.stderr}")
        if tls:
            why = next((line for line in with_tls.stderr.splitlines() if "error" in line), with_tls.stderr.strip())
            raise BenchError(f"{NO_TLS_IN_C_LOADER} ({compiler} said: {why})")
        yield LoaderProgram("c", executable)


def _build_native_loader(
    compiler: str, executable: Path, flags: list[str], libraries: list[str]
) -> subprocess.CompletedProcess[str]:
    """Compile loader.c into `executable` with `flags` and link it with `libraries` and libm."""
    command = [compiler, "-O2", *flags, "-o", str(executable), str(NATIVE_LOADER_SOURCE), *libraries, "-lm"]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def loader_option(default: str, text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The `--loader` option of a benchmark command (one of `LOADERS`, `default` unless given; `text` is its help)."""
    return click.option("--loader", default=default, type=click.Choice(LOADERS), help=text)


https_option = click.option(
    "--https",
    is_flag=True,
    help="Start the server with --https (a self-signed certificate) and connect over TLS: what headsets cost, since "
    "WebXR needs a secure page. With --loader c, loader.c is built with OpenSSL (Debian: libssl-dev).",
)
"""The `--https` flag of a benchmark command that starts Shoal (see `started_server`)."""


def plan_clients(clients: int, room_size: int, loaders: int, run_id: str, spread: float = 0.0) -> list[list[list[Any]]]:
    """Client i joins room i // room_size and stands at z = `spread` x its place in the room; loaders take
    contiguous slices, so a room may span two."""
    everyone = [
        [index, f"bench-{run_id}-{index // room_size}", spread * (index % room_size)] for index in range(clients)
    ]
    per_loader = -(-clients // loaders)
    return [everyone[start : start + per_loader] for start in range(0, clients, per_loader)]


# ---- turning counts into figures -------------------------------------------------------------------


@dataclass
class LossCount:
    """Deliveries owed and missed in the window, by the definition in this module's docstring."""

    sent: int = 0
    relayed: int = 0
    owed: int = 0
    lost: int = 0
    coalesced: int = 0


def count_losses(
    senders: dict[str, list[Any]], receivers: dict[str, list[Any]], owed: Callable[[str, str], bool] | None = None
) -> LossCount:
    """Compare, per sender, what each room mate received against what any room mate received.

    `owed(sender, receiver)` limits the receivers owed every relayed pose (default: every room mate).
    """
    rooms: dict[str, list[str]] = {}
    for member, (room, _first, _last) in senders.items():
        rooms.setdefault(room, []).append(member)
    count = LossCount()
    for members in rooms.values():
        for sender in members:
            _room, first, last = senders[sender]
            if first is None:
                continue
            window = ((1 << (last + 1)) - 1) ^ ((1 << first) - 1)
            received = [
                int(receivers[r][1].get(sender, "0x0"), 16) & window
                for r in members
                if r != sender and (owed is None or owed(sender, r))
            ]
            relayed = 0
            for bits in received:
                relayed |= bits
            relayed_count = relayed.bit_count()
            count.sent += last - first + 1
            count.relayed += relayed_count
            count.owed += relayed_count * len(received)
            count.lost += sum((relayed & ~bits).bit_count() for bits in received)
            count.coalesced += (last - first + 1) - relayed_count
    return count


def percentile(bins: Counter[int], fraction: float, bin_ms: float) -> float | None:
    """The `fraction` quantile of a histogram of `bin_ms`-wide bins, at the middle of its bin."""
    total = sum(bins.values())
    if not total:
        return None
    rank, seen = fraction * total, 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return round((index + 0.5) * bin_ms, 3)
    return None


def _delta(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """Counter-by-counter difference of two `/api/stats` bodies (nested counters too)."""
    delta: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            nested = _delta(value, before.get(key, {}))
            delta[key] = {k: v for k, v in nested.items() if v}
        elif isinstance(value, int | float):
            delta[key] = value - before.get(key, 0)
    return delta


# ---- the run ------------------------------------------------------------------------------------------


def run_benchmark(
    target: Target,
    *,
    clients: int,
    room_size: int,
    hz: float,
    loaders: int,
    warmup: float,
    duration: float,
    drain: float,
    tick_rate: float | None,
    protocol: str = "json",
    spread: float = 0.0,
    interest_radius: float = 0.0,
    on_phase: Callable[[str, float], None] | None = None,
    program: LoaderProgram = LoaderProgram(),
) -> dict[str, Any]:
    """Connect, warm up, measure, and return the report (see the module docstring for definitions).

    `on_phase(name, seconds)` is told when each phase starts (`connecting`, `warming up`, `measuring`,
    `draining`) and how long it should take; by default phases are printed on stderr. `program` is the load
    generator to start (see `loader_program`). A `target.peer` is measured in the protocol it speaks only, and
    Shoal in its own ones (BenchError otherwise, see `refuse_foreign_protocol`); a peer without its server
    counters: it has no `/api/rooms` or `/api/stats`.
    """
    refuse_foreign_protocol(target.peer, protocol)
    phase = on_phase or _print_phase
    run_id = f"{os.getpid()}-{int(time.time())}"
    ready_timeout = 10.0 + clients * 0.05
    started: list[Loader] = []
    try:
        phase("connecting", min(ready_timeout, 1.0 + clients * 0.005))
        orders = {"hz": hz, "drain": drain, "latency_bin_ms": LATENCY_BIN_MS}
        plans = plan_clients(clients, room_size, loaders, run_id, spread)
        _start_loaders(started, plans, target, protocol, ready_timeout, orders, program)
        phase("warming up", warmup)
        own_rooms: list[dict[str, Any] | None] = []
        if target.peer is None:
            rooms = {room["name"]: room for room in fetch_json(target.http_url + "/api/rooms", target.ca_file)["rooms"]}
            own_rooms = [rooms.get(f"bench-{run_id}-{index}") for index in range(-(-clients // room_size))]
            if tick_rate is None and own_rooms and own_rooms[0] is not None:
                tick_rate = own_rooms[0]["tick_rate"]

        start = time.time() + warmup
        end = start + duration
        for loader in started:
            loader.send({"start": start, "end": end})

        time.sleep(max(start - time.time(), 0.0))
        phase("measuring", duration)
        cpu_before = ProcessSample.read(target.pid) if target.pid else None
        stats_waits: list[float] = []
        stats_before = _server_stats(target, stats_waits)
        load_before = os.getloadavg()
        time.sleep(max(end - time.time(), 0.0))
        cpu_after = ProcessSample.read(target.pid) if target.pid else None
        stats_after = _server_stats(target, stats_waits)
        load_after = os.getloadavg()

        phase("draining", drain)
        deadline = time.monotonic() + drain + RESULT_MARGIN_S
        results = [loader.receive(deadline)["result"] for loader in started]
    finally:
        for loader in started:
            loader.stop()

    observed = Observed(
        results=results,
        server_pid=target.pid,
        loader_pids=[loader.process.pid for loader in started],
        cpu_before=cpu_before,
        cpu_after=cpu_after,
        stats=_delta(stats_after, stats_before) if stats_after is not None and stats_before is not None else None,
        room_sizes=[room["members"] if room else 0 for room in own_rooms] if protocol != "broadcast" else [],
        load_before=load_before,
        load_after=load_after,
    )
    params = {
        "server": target.peer or "shoal",
        "clients": clients,
        "room_size": room_size,
        "hz": hz,
        "loaders": loaders,
        "loader": program.kind,
        "warmup_s": warmup,
        "duration_s": duration,
        "drain_s": drain,
        "tick_rate": tick_rate,
        "server_url": target.http_url,
        "tls": is_tls_url(target.ws_url),
        "protocol": protocol,
        "spread_m": spread,
        "interest_radius_m": interest_radius or None,
    }
    if target.runtime:
        params["server_runtime"] = target.runtime
    if max(stats_waits, default=0.0) > SLOW_API_S:  # the counters were read late: the server was saturated
        params["server_api_seconds"] = [round(wait, 2) for wait in stats_waits]
    return _report(observed, params)


def _server_stats(target: Target, waits: list[float]) -> dict[str, Any] | None:
    """Shoal's `/api/stats` now, appending how long it took to answer to `waits`; None for a peer (no API)."""
    if target.peer is not None:
        return None
    asked = time.monotonic()
    stats = fetch_json(target.http_url + "/api/stats", target.ca_file)
    waits.append(time.monotonic() - asked)
    return stats


def _start_loaders(
    started: list[Loader],
    plans: list[list[list[Any]]],
    target: Target,
    protocol: str,
    ready_timeout: float,
    orders: dict[str, Any],
    program: LoaderProgram,
) -> None:
    """Start one `program` process per plan (appending each to `started`, so the caller can stop them all
    even if a later one fails) and wait until every one reports its clients ready. BenchError, before any
    starts, for a loader.c built without TLS against a wss:// server."""
    if not program.speaks_tls and is_tls_url(target.ws_url):
        raise BenchError(NO_TLS_IN_C_LOADER)
    for plan in plans:
        message = {"url": target.ws_url, "protocol": protocol, "clients": plan, "ready_timeout": ready_timeout}
        if target.ca_file:
            message["ca_file"] = target.ca_file
        started.append(program.start({**message, **orders}))
    deadline = time.monotonic() + ready_timeout + 5.0
    for loader in started:
        loader.receive(deadline)


def measure_idle_connections(
    target: Target,
    *,
    connections: int,
    loaders: int,
    protocol: str = "binary",
    room_size: int = 25,
    program: LoaderProgram = LoaderProgram(),
) -> dict[str, Any]:
    """Open `connections` clients that greet, join rooms of `room_size` and then stay silent, from
    `loaders` processes, and report how much the server's RSS grew per connection (`kib_per_connection`).

    The RSS is read from /proc before the clients connect and `IDLE_SETTLE_S` after the last one joined.
    """
    if target.pid is None:
        raise BenchError("measuring idle connections needs the server's PID (start it, or give --server-pid)")
    run_id = f"idle-{os.getpid()}-{int(time.time())}"
    ready_timeout = 10.0 + connections * 0.05
    before = ProcessSample.read(target.pid)
    load_before = os.getloadavg()
    started: list[Loader] = []
    try:
        plans = plan_clients(connections, room_size, min(loaders, connections), run_id)
        _start_loaders(started, plans, target, protocol, ready_timeout, {"idle": True}, program)
        time.sleep(IDLE_SETTLE_S)
        after = ProcessSample.read(target.pid)
    finally:
        for loader in started:
            loader.stop()
    return {
        "connections": connections,
        "protocol": protocol,
        "kib_per_connection": round((after.rss_bytes - before.rss_bytes) / connections / 1024, 2),
        "rss_before_mb": round(before.rss_bytes / 2**20, 1),
        "rss_after_mb": round(after.rss_bytes / 2**20, 1),
        "loadavg": [round(value, 2) for value in load_before],
    }


@dataclass(frozen=True)
class Observed:
    """Everything one run saw, before it is turned into figures."""

    results: list[dict[str, Any]]
    """One result per loader (see `shoal.bench.loader.run`)."""
    server_pid: int | None
    loader_pids: list[int]
    cpu_before: ProcessSample | None
    cpu_after: ProcessSample | None
    stats: dict[str, Any] | None
    """Change of the server's `/api/stats` counters over the window; None for a peer, which has no such API."""
    room_sizes: list[int]
    """Members of each benchmark room as `/api/rooms` listed them once everyone had joined."""
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]


def _report(observed: Observed, params: dict[str, Any]) -> dict[str, Any]:
    duration = params["duration_s"]
    senders: dict[str, list[Any]] = {}
    receivers: dict[str, list[Any]] = {}
    latency: Counter[int] = Counter()
    deliveries = duplicates = 0
    errors: list[str] = []
    closed: dict[str, int] = {}
    loader_cpu = 0.0
    for result in observed.results:
        senders.update(result["senders"])
        receivers.update(result["receivers"])
        latency.update({int(index): count for index, count in result["latency_bins"].items()})
        deliveries += result["deliveries"]
        duplicates += result["duplicates"]
        errors += result["errors"]
        closed.update(result["closed"])
        loader_cpu += result["cpu_s"]

    radius = params["interest_radius_m"]
    owed_pair = None
    if radius:
        positions: dict[str, float] = {}
        for result in observed.results:
            positions.update(result["positions"])
        # x (the sequence number in mm) is about the same for everyone; a margin keeps pairs on the edge out
        near = radius - INTEREST_EDGE_M
        owed_pair = lambda sender, receiver: abs(positions[sender] - positions[receiver]) <= near  # noqa: E731
    losses = count_losses(senders, receivers, owed_pair)
    cpu_before, cpu_after, stats = observed.cpu_before, observed.cpu_after, observed.stats or {}
    server_drops = stats.get("dropped", {}).get("pose_rate", 0) + stats.get("poses_ignored", 0)
    server_drops += stats.get("invalid_messages", 0)
    receivers_per_pose = params["room_size"] - 1
    lost = losses.lost + server_drops * receivers_per_pose
    owed = losses.owed + server_drops * receivers_per_pose
    coalesced = max(losses.coalesced - server_drops, 0)

    cpu: dict[str, Any] = {"pid": observed.server_pid, "us_per_delivered_pose": None, "cores_used": None}
    if cpu_before and cpu_after:
        user = cpu_after.user_s - cpu_before.user_s
        system = cpu_after.system_s - cpu_before.system_s
        cpu = {
            "pid": observed.server_pid,
            "us_per_delivered_pose": round((user + system) * 1e6 / deliveries, 3) if deliveries else None,
            "cores_used": round((user + system) / duration, 3),
            "cpu_s": round(user + system, 2),
            "user_s": round(user, 2),
            "system_s": round(system, 2),
            "rss_mb": round(cpu_after.rss_bytes / 2**20, 1),
            "peak_rss_mb": round(cpu_after.peak_rss_bytes / 2**20, 1),
        }

    return {
        "bench": "fanout",
        "us_per_delivered_pose": cpu["us_per_delivered_pose"],
        "deliveries_per_s": round(deliveries / duration),
        "loss_pct": round(100.0 * lost / owed, 4) if owed else None,
        "latency_ms": {
            "p50": percentile(latency, 0.50, LATENCY_BIN_MS),
            "p99": percentile(latency, 0.99, LATENCY_BIN_MS),
            "max": percentile(latency, 1.0, LATENCY_BIN_MS),
        },
        "server": cpu,
        "deliveries": deliveries,
        "loss": {
            "lost": lost,
            "owed": owed,
            "pct": round(100.0 * lost / owed, 4) if owed else None,
            "poses_sent": losses.sent,
            "poses_relayed": losses.relayed,
            "coalesced": coalesced,
            "coalesced_pct": round(100.0 * coalesced / losses.sent, 2) if losses.sent else None,
            "server_drops": server_drops if observed.stats is not None else None,  # a peer counts none
            "duplicates": duplicates,
            "scope": "receivers within the interest radius" if radius else "every other member of the room",
        },
        "poses_sent_per_s": round(losses.sent / duration),
        "server_stats": observed.stats,
        "rooms_members": sorted(set(observed.room_sizes)),
        "closed": closed,
        "errors": errors[:20],
        "loaders_cores_used": round(loader_cpu / duration, 3),
        "loader_pids": observed.loader_pids,
        "params": params,
        "host": {
            "loadavg_start": [round(value, 2) for value in observed.load_before],
            "loadavg_end": [round(value, 2) for value in observed.load_after],
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "uvloop": has_uvloop(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _print_phase(name: str, seconds: float) -> None:
    print(f"fanout: {name} ({seconds:.0f} s)", file=sys.stderr, flush=True)


def raise_on_sigterm(signum: int, frame: Any) -> None:
    """A SIGTERM handler for benchmark commands: exit through the `finally` blocks."""
    raise SystemExit(128 + signum)  # so that the `finally` blocks stop the server and the loaders


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--clients", default=200, type=click.IntRange(2, 10_000), help="Clients in all.")
@click.option("--room-size", default=25, type=click.IntRange(2, 10_000), help="Clients per room.")
@click.option("--hz", default=20.0, type=click.FloatRange(0.5, 90), help="Poses per second per client.")
@click.option("--loaders", default=2, type=click.IntRange(1, 64), help="Load-generator processes.")
@loader_option("python", "Load generator: shoal.bench.loader, or loader.c built with cc (any protocol, less CPU).")
@click.option("--warmup", default=5.0, type=click.FloatRange(0, 600), help="Seconds of traffic before measuring.")
@click.option("--duration", default=20.0, type=click.FloatRange(1, 3600), help="Seconds measured.")
@click.option("--drain", default=1.0, type=click.FloatRange(0.2, 60), help="Seconds to wait for late poses.")
@click.option("--tick-rate", default=20.0, type=click.FloatRange(0.5, 240), help="Tick rate of the started server.")
@click.option(
    "--protocol",
    default="json",
    type=click.Choice(PROTOCOLS),
    help="What the clients speak; colyseus with --peer colyseus only, which speaks nothing else.",
)
@click.option("--spread", default=0.0, type=click.FloatRange(0, 1000), help="Metres between room mates (z).")
@click.option(
    "--interest-radius", default=0.0, type=click.FloatRange(0, 10_000), help="The started server's interest radius."
)
@click.option(
    "--server-loop",
    default="auto",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    help="Event loop of the started server (its --loop).",
)
@click.option("--server-url", default=None, help="Benchmark a running server (http://HOST:PORT) instead.")
@click.option("--server-pid", default=None, type=int, help="PID of --server-url's process, to read its CPU.")
@click.option(
    "--peer",
    default=None,
    type=click.Choice(list(PEERS)),
    help="Start and measure this foreign relay (bench/peers/) instead of Shoal, in the protocol it speaks: "
    "--protocol colyseus for colyseus, broadcast for the others.",
)
@https_option
@click.option("--output", default=None, type=click.Path(dir_okay=False, path_type=Path), help="Also write here.")
def main(
    clients: int,
    room_size: int,
    hz: float,
    loaders: int,
    loader: str,
    warmup: float,
    duration: float,
    drain: float,
    tick_rate: float,
    protocol: str,
    spread: float,
    interest_radius: float,
    server_loop: str,
    server_url: str | None,
    server_pid: int | None,
    peer: str | None,
    https: bool,
    output: Path | None,
) -> None:
    """Measure Shoal's fan-out: server CPU µs per delivered pose, loss and latency; print one JSON line."""
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    refuse_foreign_protocol(peer, protocol)
    if peer and server_url:
        raise BenchError("--peer starts its own server: leave out --server-url")
    refuse_unusable_tls(https, server_url, peer)
    if peer and interest_radius:
        raise BenchError(f"--peer {peer} has no interest management: leave out --interest-radius")
    loaders = min(loaders, clients)
    options = dict(
        clients=clients, room_size=room_size, hz=hz, loaders=loaders, warmup=warmup, duration=duration, drain=drain,
        protocol=protocol, spread=spread, interest_radius=interest_radius,
    )  # fmt: skip
    with loader_program(loader, [protocol], runs_over_tls(https, server_url)) as program:
        if server_url:
            report = run_benchmark(running_server(server_url, server_pid), tick_rate=None, program=program, **options)
        elif peer:
            with started_peer(peer) as target:
                report = run_benchmark(target, tick_rate=None, program=program, **options)
        else:
            with started_server(tick_rate, max(room_size, 64), server_loop, interest_radius, https=https) as target:
                report = run_benchmark(target, tick_rate=tick_rate, program=program, **options)
            if server_loop == "auto":  # the server runs on this interpreter, so it resolves `auto` the same way
                server_loop = "uvloop" if has_uvloop() else "asyncio"
            report["params"]["server_loop"] = server_loop
    line = json.dumps(report)
    if output:
        output.write_text(json.dumps(report, indent=2) + "\n")
    print(line, flush=True)


if __name__ == "__main__":
    main()
