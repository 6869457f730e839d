"""Smoke test of the floor benchmark (bench/floor.py): tiny real runs of both floor servers.

It checks that each floor server relays what a fan-out must (every client's poses reach the other
members of its room, tick after tick) and that the server's CPU is read; it asserts no speed. The
figures come from full-size runs (docs/benchmarks/README.md).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from support.bench import report_of

FLOOR = Path(__file__).parents[1] / "bench" / "floor.py"


@pytest.mark.parametrize("server", ["python", "c"])
def test_a_tiny_run_delivers_every_pose_to_the_other_members(server: str, require: Callable[[bool, str], None]) -> None:
    if server == "c":
        require(shutil.which("cc") is not None or shutil.which("gcc") is not None, "no C compiler (cc or gcc)")
    args = ["--server", server, "--clients", "10", "--room-size", "5", "--hz", "20", "--warmup", "1", "--duration", "2"]
    report = report_of("floor.py", *args, timeout=60)
    assert report["server"] == server
    assert report["expected_per_s"] == 10 * 20 * 4  # each pose to the 4 others of its room
    # never above the rate; below it only by the ticks a stalled VM runs late (the floor does not catch up)
    assert 0.5 <= report["deliveries_per_s"] / report["expected_per_s"] <= 1.2, report
    # /proc counts CPU in clock ticks (10 ms): the C server's few ms of this tiny run may read as 0
    assert report["us_per_delivered_pose"] >= 0 and report["server_cores_used"] >= 0
    if server == "python":
        assert report["us_per_delivered_pose"] > 0
    split = report["server_cpu_s"]  # user and system apart: what Shoal's figure is compared with, part by part
    cores = (split["user"] + split["system"]) / report["params"]["duration_s"]
    assert split["user"] >= 0 and split["system"] >= 0 and abs(cores - report["server_cores_used"]) < 0.05, report
    assert report["params"]["read_pacing_ms"] == 20.0


def test_clients_must_fill_whole_rooms() -> None:
    run = subprocess.run(
        [sys.executable, str(FLOOR), "--clients", "7", "--room-size", "5"], capture_output=True, text=True, timeout=30
    )
    assert run.returncode == 2 and "multiple of --room-size" in run.stderr
