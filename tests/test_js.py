"""The JavaScript side under the one `pytest` command: the SDK's unit tests (`node --test`), its type
declarations (`tsc --noEmit`) and the formatting of the browser code (`prettier --check`), with TypeScript and
Prettier from `npm ci`; and the vendored files against their recorded sums."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
JS_TESTS = sorted((ROOT / "js" / "test").glob("*.test.js"))
TSC = ROOT / "node_modules" / ".bin" / "tsc"
PRETTIER = ROOT / "node_modules" / ".bin" / "prettier"
FORMATTED = ["src/shoal/web/static/{app,sdk}/*.{js,ts,css}", "js/**/*.{js,ts,json}"]
"""What `npm run format` formats (Prettier expands the patterns itself)."""
VENDORED = [ROOT / "src/shoal/web/static/vendor/three", ROOT / "tests/browser/vendor/iwer"]


def run(command: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)


def failures_of(tap: str) -> str:
    """What follows each `not ok` line of node's TAP output (the failing test and its error), else the tail."""
    starts = [match.start() for match in re.finditer(r"^ *not ok ", tap, re.MULTILINE)]
    if not starts:
        return tap[-6000:]
    return "\n".join(tap[start : start + 3000] for start in starts)[:12000]


def test_sdk_unit_tests_pass_under_node(require: Callable[[bool, str], None]) -> None:
    node = shutil.which("node")
    require(node is not None, "Node.js is not installed (apt-get install nodejs)")
    assert JS_TESTS, "no js/test/*.test.js files"
    result = run([str(node), "--test", *map(str, JS_TESTS)], timeout=120)
    assert result.returncode == 0, failures_of(result.stdout) + result.stderr[-2000:]
    passed = re.search(r"^# pass (\d+)$", result.stdout, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", result.stdout, re.MULTILINE)
    assert passed and int(passed.group(1)) > 0 and failed and failed.group(1) == "0", result.stdout[-3000:]


def test_sdk_type_declarations_check_with_tsc(require: Callable[[bool, str], None]) -> None:
    require(shutil.which("node") is not None, "Node.js is not installed (apt-get install nodejs)")
    require(TSC.exists(), "TypeScript is not installed (run `npm ci` in the repository root)")
    result = run([str(TSC), "--noEmit", "-p", "js/tsconfig.json"], timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_browser_code_is_formatted_with_prettier(require: Callable[[bool, str], None]) -> None:
    require(shutil.which("node") is not None, "Node.js is not installed (apt-get install nodejs)")
    require(PRETTIER.exists(), "Prettier is not installed (run `npm ci` in the repository root)")
    result = run([str(PRETTIER), "--check", *FORMATTED], timeout=120)
    assert result.returncode == 0, f"run `npm run format`:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("directory", VENDORED, ids=lambda path: path.name)
def test_vendored_files_match_their_recorded_sums(directory: Path) -> None:
    listed = {}
    for line in (directory / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        listed[name] = digest
    present = {str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file()}
    assert present - {"SHA256SUMS"} == set(listed), "files added or removed without scripts/vendor-js.sh"
    for name, digest in listed.items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, f"{name} was edited by hand"
    name, version = (directory / "VERSION").read_text().split()[:2]
    pinned = re.search(rf"^{name.upper()}_VERSION=(\S+)$", (ROOT / "scripts/vendor-js.sh").read_text(), re.MULTILINE)
    assert pinned and pinned.group(1) == version, f"{name} {version} is not the version scripts/vendor-js.sh pins"
