"""`shoal bench`: a tiny real sweep (a started server, loader processes, three protocols, idle connections)
writes a well-formed JSON report and a self-contained HTML plot, and stops every process it started.

It asserts that the benchmark measures, not how fast: the figures come from full-size runs
(docs/benchmarks/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

from shoal.bench.fanout import count_losses, plan_clients

SOURCE_TREE = Path(__file__).parents[1] / "src"
RUN_TIMEOUT_S = 120


def test_a_tiny_sweep_writes_the_report_and_the_plot_and_stops_its_processes(tmp_path: Path) -> None:
    command = [
        sys.executable, "-m", "shoal", "bench", "--clients", "4,6", "--room-size", "3", "--warmup", "0.5",
        "--duration", "1.5", "--drain", "0.5", "--protocol", "json", "--protocol", "binary",
        "--protocol", "broadcast", "--idle-connections", "20", "--output-dir", str(tmp_path), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(SOURCE_TREE), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=env, check=False)
    assert run.returncode == 0, run.stdout + run.stderr

    report = json.loads((tmp_path / "bench.json").read_text())
    points = report["points"]
    assert [(p["params"]["protocol"], p["params"]["clients"]) for p in points] == [
        (protocol, clients) for clients in (4, 6) for protocol in ("json", "binary", "broadcast")
    ]
    for point in points:
        assert point["deliveries"] > 0 and point["loss"]["lost"] == 0, point
        assert point["errors"] == [] and point["closed"] == {}
        assert point["us_per_delivered_pose"] > 0 and point["server"]["rss_mb"] > 0
        assert 0 < point["latency_ms"]["p50"] <= point["latency_ms"]["p99"]
        assert len(point["host"]["loadavg_start"]) == 3
    assert report["idle"]["connections"] == 20 and report["idle"]["kib_per_connection"] is not None
    assert report["machine"]["cores"] == os.cpu_count() and report["settings"]["room_size"] == 3
    # rooms of 3 are not the targets' shape: only the idle connections are judged (whatever they measured)
    assert [verdict["target"] for verdict in report["targets"]] == ["an idle connection: server RSS"]

    page = (tmp_path / "bench.html").read_text()
    assert (
        page.count("<svg") == 3
        and "<script" not in page
        and "://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )  # self-contained: nothing fetched
    for title in ("Delivered poses per second", "Latency", "Server CPU per delivered pose"):
        assert title in page
    assert page.count("<polyline") == 3 * 4  # 3 protocols: poses/s, p50, p99, CPU
    assert "wrote" in run.stdout and "µs CPU per pose" in run.stdout and "target an idle connection" in run.stdout

    started = [point["server"]["pid"] for point in points] + [pid for p in points for pid in p["loader_pids"]]
    assert all(not psutil.pid_exists(pid) for pid in started), "the server or a loader is still running"


def test_with_interest_only_receivers_within_the_radius_are_owed_every_relayed_pose() -> None:
    (plan,) = plan_clients(4, 4, 1, "run", spread=3.0)
    assert [z for _index, _room, z in plan] == [0.0, 3.0, 6.0, 9.0]
    # sender "1" sent poses 1..4; "2" (3 m away) got them all, "3" (6 m) only the far-tier ones, 2 and 4
    senders = {"1": ["r", 1, 4], "2": ["r", None, None], "3": ["r", None, None]}
    receivers = {"1": ["r", {}], "2": ["r", {"1": hex(0b11110)}], "3": ["r", {"1": hex(0b10100)}]}
    positions = {"1": 0.0, "2": 3.0, "3": 6.0}
    within_5_m = count_losses(senders, receivers, lambda s, r: abs(positions[s] - positions[r]) <= 5.0)
    assert (within_5_m.relayed, within_5_m.owed, within_5_m.lost) == (4, 4, 0)
    everyone = count_losses(senders, receivers)
    assert (everyone.owed, everyone.lost) == (8, 2)  # without the radius, the far receiver's gaps are losses
