"""Running the benchmark scripts under `bench/` as a user does, for their tiny smoke runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

BENCH = Path(__file__).parents[2] / "bench"


def run_script(script: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `bench/<script> args` to its end, its output captured as text."""
    command = [sys.executable, str(BENCH / script), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def report_of(script: str, *args: str, timeout: float = 90) -> dict[str, Any]:
    """Run `bench/<script> args` to its end and return the one JSON line it prints; fails the test when the
    script exits non-zero (with its stderr) or prints anything but that line."""
    run = run_script(script, *args, timeout=timeout)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1, run.stdout
    return json.loads(lines[0])


def assert_poses_accounted(report: dict[str, Any], clients: int, hz: float, duration_s: float, *, relay: bool) -> None:
    """Check a tiny fan-out run's books balance, whatever the machine's scheduling did to its timing.

    Nothing is lost, every pose sent was relayed or coalesced (a relay coalesces none), the loaders never sent
    faster than `hz` (one more per client at an edge of the window), and the deliveries, counted by receive
    time, match the deliveries owed, counted by send time. What a stall may change is kept out: a loader late
    by less than a period sends its next pose soon after, and a tick then coalesces the two, so on a machine
    whose hypervisor takes a fifth of its time, 30-40 % of poses coalesce and a few sends are skipped; and poses
    held up across an edge of the window fall on the other side of it (hence the margin on deliveries).
    """
    loss = report["loss"]
    assert loss["lost"] == 0 and report["loss_pct"] == 0.0 and loss["owed"] > 0, loss
    assert loss["poses_sent"] == loss["poses_relayed"] + loss["coalesced"], loss
    if relay:
        assert loss["coalesced"] == 0 and loss["duplicates"] == 0, loss
    nominal = clients * hz * duration_s
    assert nominal / 2 <= loss["poses_sent"] <= nominal + clients, loss  # a late client skips ahead, never bursts
    assert 0.75 * loss["owed"] <= report["deliveries"] <= 1.25 * loss["owed"], (report["deliveries"], loss)
