"""Smoke test of the fan-out benchmark: a tiny real run prints one well-formed JSON report.

It checks that the benchmark measures (deliveries happen, nothing is lost, the server's CPU is read)
and cleans up after itself; it asserts no speed. Speed figures come from running `bench/fanout.py`
at full size (docs/benchmarks/README.md).
"""

from __future__ import annotations

import psutil
import pytest

from support.bench import report_of, run_script

RUN_TIMEOUT_S = 90


def test_a_tiny_run_reports_deliveries_without_loss_and_stops_its_server() -> None:
    args = ["--clients", "10", "--room-size", "5", "--hz", "20", "--loaders", "2", "--warmup", "1", "--duration", "2"]
    report = report_of("fanout.py", *args, timeout=RUN_TIMEOUT_S)
    params = report["params"]
    assert (params["clients"], params["room_size"], params["hz"], params["loaders"]) == (10, 5, 20.0, 2)
    assert (params["warmup_s"], params["duration_s"], params["tick_rate"]) == (1.0, 2.0, 20.0)
    assert params["server_url"].startswith("http://127.0.0.1:") and params["tls"] is False
    assert report["deliveries"] > 0
    assert report["deliveries_per_s"] == round(report["deliveries"] / 2.0)
    assert report["loss"]["lost"] == 0 and report["loss_pct"] == 0.0
    assert report["loss"]["owed"] > 0 and report["loss"]["poses_relayed"] > 0
    assert report["loss"]["poses_sent"] == report["loss"]["poses_relayed"] + report["loss"]["coalesced"]
    assert report["errors"] == [] and report["closed"] == {}
    assert report["rooms_members"] == [5]
    server = report["server"]
    assert server["cpu_s"] is not None and server["cpu_s"] >= 0
    assert report["us_per_delivered_pose"] == server["us_per_delivered_pose"]
    assert server["rss_mb"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert len(report["host"]["loadavg_start"]) == 3

    started = [server["pid"], *report["loader_pids"]]
    assert all(not psutil.pid_exists(pid) for pid in started), "the server or a loader is still running"


def test_over_tls_the_loaders_trust_the_started_servers_own_certificate_and_lose_nothing() -> None:
    """`--https`: the server makes its self-signed certificate, and the loaders and the benchmark's own HTTPS
    requests (`/api/rooms`, `/api/stats`) trust it, as a headset is told to."""
    args = ["--https", "--protocol", "binary", "--clients", "6", "--room-size", "3", "--loaders", "1"]
    report = report_of("fanout.py", *args, "--warmup", "1", "--duration", "2", timeout=RUN_TIMEOUT_S)
    params = report["params"]
    assert params["tls"] is True and params["server_url"].startswith("https://127.0.0.1:")
    assert report["deliveries"] > 0 and report["loss"]["lost"] == 0 and report["loss"]["owed"] > 0
    assert report["errors"] == [] and report["closed"] == {}
    assert report["rooms_members"] == [3] and report["server_stats"] is not None  # read over HTTPS
    started = [report["server"]["pid"], *report["loader_pids"]]
    assert all(not psutil.pid_exists(pid) for pid in started), "the server or a loader is still running"


HTTPS_STARTS_SHOAL = "--https starts Shoal with its own certificate"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--https", "--server-url", "http://127.0.0.1:9"], HTTPS_STARTS_SHOAL),
        (["--https", "--peer", "websockets-relay", "--protocol", "broadcast"], HTTPS_STARTS_SHOAL),
    ],
)
def test_tls_settings_that_cannot_work_are_refused_before_anything_starts(args: list[str], message: str) -> None:
    run = run_script("fanout.py", *args, timeout=30)
    assert run.returncode != 0 and message in run.stderr, run.stderr
    assert run.stdout == ""
