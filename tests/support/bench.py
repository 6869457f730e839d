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
