"""`shoal bench`: the fan-out benchmark over a list of client counts and protocols, in one server.

For each client count and each protocol (`json`, `binary`, and `broadcast`, the ws-broadcast relay on
the same server, measured by the same loader), `shoal.bench.fanout.run_benchmark` connects the clients
from separate loader processes, warms up, measures and drains. If asked, the RSS cost of idle connections
is measured first, on the fresh server: after 1,000 busy clients the heap they grew holds 2,000 idle ones
for 0.7 KiB each, against 19 KiB measured first. A progress bar (rich) follows every phase. The result is
`bench.json` (every point's full report, the machine and the settings) and `bench.html` (charts against
clients: delivered poses per second, p50/p99 latency, server CPU per delivered pose).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shoal.bench.fanout import (
    BenchError,
    Target,
    has_uvloop,
    loader_program,
    measure_idle_connections,
    refuse_unusable_tls,
    run_benchmark,
    running_server,
    runs_over_tls,
    started_server,
)
from shoal.bench.plot import render_html
from shoal.bench.targets import verdicts


@dataclass(frozen=True)
class SweepSettings:
    """What to measure; see `shoal bench --help` for each field."""

    clients: tuple[int, ...] = (50, 100, 200)
    protocols: tuple[str, ...] = ("json", "binary")
    room_size: int = 25
    hz: float = 20.0
    loaders: int = 2
    loader: str = "python"
    warmup: float = 3.0
    duration: float = 10.0
    drain: float = 1.0
    tick_rate: float = 20.0
    interest_radius: float = 0.0
    interest_far_every: int = 4
    spread: float = 0.0
    server_url: str | None = None
    server_pid: int | None = None
    server_loop: str = "auto"
    idle_connections: int = 0
    https: bool = False


def run_sweep(settings: SweepSettings, output_dir: Path, show_progress: bool = True) -> dict[str, Any]:
    """Run every point, write `bench.json` and `bench.html` into `output_dir` (again after each point, so
    that an interrupted sweep keeps what it measured), and return the report.

    A point that fails (a loader gave up, the server stopped answering) is recorded with its `error` and
    the sweep goes on; a failure of the server itself ends it.
    """
    refuse_unusable_tls(settings.https, settings.server_url)
    points = [(protocol, clients) for clients in settings.clients for protocol in settings.protocols]
    report: dict[str, Any] = {
        "bench": "shoal bench",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_description(),
        "settings": {key: value for key, value in asdict(settings).items() if value is not None},
        "points": [],
        "idle": None,
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    over_tls = runs_over_tls(settings.https, settings.server_url)
    with (
        loader_program(settings.loader, settings.protocols, over_tls) as program,  # built (or refused) first
        _target(settings) as target,
        _Progress(len(points) + bool(settings.idle_connections), show_progress) as bar,
    ):
        if settings.idle_connections:  # first: after a load point the heap it grew takes them in, and reads low
            bar.next_point(f"{settings.idle_connections} idle connections")
            bar.phase("connecting", 2.0 + settings.idle_connections * 0.005)
            report["idle"] = measure_idle_connections(
                target,
                connections=settings.idle_connections,
                loaders=settings.loaders,
                room_size=settings.room_size,
                program=program,
            )
            _write(report, output_dir)
        for protocol, clients in points:
            bar.next_point(f"{protocol}, {clients} clients")
            try:
                point = run_benchmark(
                    target,
                    clients=clients,
                    room_size=min(settings.room_size, clients),
                    hz=settings.hz,
                    loaders=min(settings.loaders, clients),
                    warmup=settings.warmup,
                    duration=settings.duration,
                    drain=settings.drain,
                    tick_rate=settings.tick_rate if settings.server_url is None else None,
                    protocol=protocol,
                    spread=settings.spread,
                    interest_radius=settings.interest_radius,
                    on_phase=bar.phase,
                    program=program,
                )
            except (BenchError, OSError) as exc:  # OSError: the server's HTTP API timed out or refused
                point = {"params": {"protocol": protocol, "clients": clients}, "error": str(exc)}
            report["points"].append(point)
            _write(report, output_dir)
    report["machine"] = machine_description()  # the load average at the end
    report["targets"] = [asdict(verdict) for verdict in verdicts(report)]
    _write(report, output_dir)
    return report


def _write(report: dict[str, Any], output_dir: Path) -> None:
    (output_dir / "bench.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "bench.html").write_text(render_html(report))


@contextlib.contextmanager
def _target(settings: SweepSettings) -> Iterator[Target]:
    if settings.server_url:
        yield running_server(settings.server_url, settings.server_pid)
        return
    max_members = max(settings.room_size, 64)
    with started_server(
        settings.tick_rate,
        max_members,
        settings.server_loop,
        settings.interest_radius,
        settings.interest_far_every,
        https=settings.https,
    ) as target:
        yield target


def machine_description() -> dict[str, Any]:
    """The CPU model, cores, memory, OS, Python and event loop: what a reader needs to compare figures."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with contextlib.suppress(OSError, ValueError):
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "uvloop": has_uvloop(),
        "loadavg_at_end": [round(value, 2) for value in os.getloadavg()],
    }


class _Progress:
    """A rich progress display: one bar for the points, one for the current phase, advanced by a clock
    thread while the benchmark sleeps through its phases. Without `enabled`, phases print one line each."""

    def __init__(self, points: int, enabled: bool) -> None:
        self._enabled = enabled
        self._points = points
        self._started_points = 0
        self._point_name = ""
        self._stop = threading.Event()
        self._phase_started = 0.0
        self._phase_seconds = 1.0
        self._lock = threading.Lock()

    def __enter__(self) -> _Progress:
        if not self._enabled:
            return self
        try:  # only `shoal bench` needs rich
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
        except ImportError:
            raise BenchError("the progress bar needs rich: pip install 'shoal[bench]', or use --no-progress") from None

        self._progress = Progress(
            TextColumn("{task.description:<34}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
        )
        self._progress.__enter__()
        self._overall = self._progress.add_task("points", total=self._points)
        self._current = self._progress.add_task("", total=1.0)
        self._clock = threading.Thread(target=self._advance, name="bench-progress", daemon=True)
        self._clock.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._enabled:
            return
        self._stop.set()
        self._clock.join(timeout=1.0)
        self._progress.update(self._overall, completed=self._points)
        self._progress.__exit__(None, None, None)

    def next_point(self, name: str) -> None:
        """The previous point (if any) is done; `name` starts."""
        self._point_name = name
        self._started_points += 1
        if self._enabled:
            description = f"point {self._started_points} of {self._points}"
            self._progress.update(self._overall, description=description, completed=self._started_points - 1)

    def phase(self, name: str, seconds: float) -> None:
        if not self._enabled:
            print(f"shoal bench: {self._point_name}: {name} ({seconds:.0f} s)", flush=True)
            return
        with self._lock:
            self._phase_started = time.monotonic()
            self._phase_seconds = max(seconds, 0.1)
            self._progress.update(self._current, description=f"{self._point_name}: {name}", completed=0.0)

    def _advance(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                done = min((time.monotonic() - self._phase_started) / self._phase_seconds, 1.0)
                self._progress.update(self._current, completed=done)
