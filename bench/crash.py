"""The long durability run: `kill -9` a real server many times while a client makes reliable changes.

    python bench/crash.py --iterations 50                       # SQLite in a temporary directory
    python bench/crash.py --iterations 20 --store postgresql://postgres@127.0.0.1:5432/test?schema=crash

Prints one JSON line: iterations, changes acknowledged, acknowledged changes lost (must be none), and the
slowest restart. CI runs a few iterations of the same code (tests/test_persistence.py).
"""

import asyncio
import json
import sys
import tempfile
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shoal.bench.crash import run_crash_test  # after the path is set


@click.command()
@click.option("--iterations", default=50, type=click.IntRange(1, 10_000), show_default=True)
@click.option("--store", "store_url", default="", help="Store URL (default: SQLite in a temporary directory).")
@click.option("--seed", default=1, type=int, show_default=True, help="Seed for the kill moments.")
def main(iterations: int, store_url: str, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="shoal-crash-") as data_dir:
        report = asyncio.run(run_crash_test(iterations, Path(data_dir), store_url, seed))
    print(json.dumps({"bench": "crash", "store": store_url or "sqlite", **report.as_dict()}))
    sys.exit(1 if report.lost else 0)


if __name__ == "__main__":
    main()
