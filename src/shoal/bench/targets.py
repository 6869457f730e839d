"""The performance targets Shoal is held to (issue 4, docs/benchmarks/README.md), judged against a report.

The targets hold for one shape of load, the one `performance.md` compares servers by: clients in rooms of
25, each sending 20 poses a second, no interest management, plain WebSockets. CPU, loss and latency are
judged at 200 clients, capacity (0 loss) at 2,000, memory by the idle-connection measurement. A report's
points of any other shape, or over TLS, are not judged: the targets say nothing about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.bench.fanout import runs_over_tls

CPU_US_PER_POSE = {"binary": 0.7, "json": 1.2}
"""Server CPU per delivered pose at 200 clients (µs), by protocol."""
P99_SLACK_MS = 10.0
"""The p99 latency at 200 clients may exceed one tick by this much (ms): the wait for the tick is by design."""
IDLE_KIB_PER_CONNECTION = 30.0
"""Server RSS per idle connection (KiB)."""

REFERENCE_CLIENTS = 200
CAPACITY_CLIENTS = 2000
ROOM_SIZE = 25
POSES_PER_SECOND = 20.0


@dataclass(frozen=True)
class Verdict:
    """One target checked against one measurement."""

    target: str
    """What is measured, and where: "binary: server CPU per delivered pose, 200 clients"."""
    limit: str
    """The target, with its unit: "≤ 0.7 µs"."""
    measured: str
    met: bool


def p99_limit_ms(tick_rate: float) -> float:
    """The highest p99 latency the target allows at `tick_rate` Hz: one tick plus `P99_SLACK_MS`."""
    return 1000.0 / tick_rate + P99_SLACK_MS


def verdicts(report: dict[str, Any]) -> list[Verdict]:
    """Every target that `report` (a `shoal bench` report, see `shoal.bench.sweep`) measured, met or not, in
    the order of its points; the idle-connection target last."""
    judged = []
    for point in report["points"]:
        if "error" in point or not _reference_shape(point["params"]):
            continue
        params = point["params"]
        where = f"{params['protocol']}, {params['clients']:,} clients"
        lost = point["loss"]["lost"]
        if params["clients"] == REFERENCE_CLIENTS:
            cpu_limit = CPU_US_PER_POSE.get(params["protocol"])
            if cpu_limit is not None:
                cpu = point["us_per_delivered_pose"]
                judged.append(
                    Verdict(
                        f"{where}: server CPU per delivered pose", f"≤ {cpu_limit} µs", f"{cpu} µs", cpu <= cpu_limit
                    )
                )
            judged.append(Verdict(f"{where}: loss", "0 poses", f"{lost:,} poses", lost == 0))
            if params["tick_rate"]:  # unknown for a server the benchmark did not start
                limit, p99 = p99_limit_ms(params["tick_rate"]), point["latency_ms"]["p99"]
                judged.append(Verdict(f"{where}: p99 latency", f"≤ {limit:g} ms", f"{p99} ms", p99 <= limit))
        elif params["clients"] == CAPACITY_CLIENTS:
            judged.append(Verdict(f"{where} in one process: loss", "0 poses", f"{lost:,} poses", lost == 0))
    idle = report.get("idle")
    settings = report["settings"]
    if idle and not runs_over_tls(bool(settings.get("https")), settings.get("server_url")):
        kib = idle["kib_per_connection"]
        limit = IDLE_KIB_PER_CONNECTION
        judged.append(Verdict("an idle connection: server RSS", f"≤ {limit:g} KiB", f"{kib} KiB", kib <= limit))
    return judged


def _reference_shape(params: dict[str, Any]) -> bool:
    return (
        params["server"] == "shoal"
        and params["room_size"] == ROOM_SIZE
        and params["hz"] == POSES_PER_SECOND
        and not params["tls"]
        and not params["interest_radius_m"]
    )
