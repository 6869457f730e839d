"""The targets of issue 4 judged against `shoal bench` reports: which points are judged, and how."""

from __future__ import annotations

from typing import Any

from shoal.bench.plot import render_html
from shoal.bench.targets import Verdict, p99_limit_ms, verdicts


def point(protocol: str, clients: int, us: float, *, lost: int = 0, p99: float = 52.0, **params: Any) -> dict[str, Any]:
    """A measured point as `run_benchmark` reports it, with only what the targets and the page read."""
    return {
        "params": {
            "server": "shoal",
            "clients": clients,
            "room_size": 25,
            "hz": 20.0,
            "tick_rate": 20.0,
            "tls": False,
            "protocol": protocol,
            "interest_radius_m": None,
            "loaders": 1,
            "duration_s": 20.0,
            **params,
        },
        "us_per_delivered_pose": us,
        "loss": {"lost": lost},
        "loss_pct": 0.0,
        "latency_ms": {"p50": 27.0, "p99": p99},
        "deliveries_per_s": clients * 24 * 20,
        "server": {"cores_used": 0.1},
        "server_stats": {"bytes_out": 0},
        "loaders_cores_used": 0.1,
        "host": {"loadavg_start": [0.1, 0.1, 0.1]},
    }


def report(*points: dict[str, Any], idle_kib: float | None = None, **settings: Any) -> dict[str, Any]:
    idle = {"connections": 2000, "protocol": "binary", "kib_per_connection": idle_kib, "loadavg": [0.1]}
    return {
        "measured_at": "2026-11-22T00:00:00Z",
        "machine": {"cores": 2},
        "settings": {"tick_rate": 20.0, **settings},
        "points": list(points),
        "idle": idle if idle_kib is not None else None,
    }


def test_cpu_loss_and_latency_are_judged_at_200_clients_and_capacity_at_2000() -> None:
    judged = verdicts(
        report(
            point("binary", 50, 1.5),  # no target at 50 clients
            point("binary", 200, 0.65),
            point("json", 200, 1.26, lost=3, p99=61.0),
            point("broadcast", 200, 7.0),  # the relaying dialect has no CPU target, only loss and latency
            point("binary", 2000, 0.9, p99=80.0),  # capacity: loss alone
            idle_kib=18.9,
        )
    )
    assert judged == [
        Verdict("binary, 200 clients: server CPU per delivered pose", "≤ 0.7 µs", "0.65 µs", True),
        Verdict("binary, 200 clients: loss", "0 poses", "0 poses", True),
        Verdict("binary, 200 clients: p99 latency", "≤ 60 ms", "52.0 ms", True),
        Verdict("json, 200 clients: server CPU per delivered pose", "≤ 1.2 µs", "1.26 µs", False),
        Verdict("json, 200 clients: loss", "0 poses", "3 poses", False),
        Verdict("json, 200 clients: p99 latency", "≤ 60 ms", "61.0 ms", False),
        Verdict("broadcast, 200 clients: loss", "0 poses", "0 poses", True),
        Verdict("broadcast, 200 clients: p99 latency", "≤ 60 ms", "52.0 ms", True),
        Verdict("binary, 2,000 clients in one process: loss", "0 poses", "0 poses", True),
        Verdict("an idle connection: server RSS", "≤ 30 KiB", "18.9 KiB", True),
    ]


def test_points_of_another_shape_are_not_judged() -> None:
    """The targets hold for rooms of 25 at 20 Hz, plain WebSockets, no interest management, Shoal itself."""
    others = [
        point("binary", 200, 0.5, room_size=8),
        point("binary", 200, 0.5, hz=30.0),
        point("binary", 200, 0.5, tls=True),
        point("binary", 200, 0.5, interest_radius_m=5.0),
        point("broadcast", 200, 7.0, server="ws-broadcast"),
        {"params": {"protocol": "binary", "clients": 200}, "error": "a loader gave up"},
    ]
    assert verdicts(report(*others)) == []


def test_latency_needs_the_tick_rate_and_idle_memory_is_not_judged_over_tls() -> None:
    """A server the benchmark did not start has an unknown tick rate; TLS connections cost more by nature."""
    assert [v.target for v in verdicts(report(point("binary", 200, 0.6, tick_rate=None)))] == [
        "binary, 200 clients: server CPU per delivered pose",
        "binary, 200 clients: loss",
    ]
    assert verdicts(report(idle_kib=44.5, https=True)) == []
    assert verdicts(report(idle_kib=44.5, server_url="https://127.0.0.1:8443")) == []
    assert p99_limit_ms(20.0) == 60.0 and p99_limit_ms(60.0) == 1000.0 / 60.0 + 10.0


def test_the_page_lists_the_targets_met_and_missed() -> None:
    page = render_html(report(point("binary", 200, 0.93), point("json", 200, 1.1)))
    assert "<h2>Targets</h2>" in page
    assert "<td>0.93 µs</td><td><b>missed</b></td>" in page and "<td>1.1 µs</td><td>met</td>" in page
    assert "<h2>Targets</h2>" not in render_html(report(point("binary", 50, 0.93)))
