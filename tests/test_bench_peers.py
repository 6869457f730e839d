"""The peers of the fan-out benchmark (`bench/fanout.py --peer`, `bench/peers.py`): tiny real runs.

Each peer (`bench/peers/`: Decentraland's ws-broadcast on Node `ws` 7.3.1, and a plain relay on the
`websockets` library) is started, measured by the same loaders as Shoal, and stopped: every pose reaches
every other member of its room, nothing is lost or coalesced (a relay has no ticks), the peer's CPU is read
from /proc and the Shoal-only counters are null. Only `--protocol broadcast` is accepted for a peer. The
table of `bench/peers.py` is checked on made-up reports, and its choice of loader (one for every run, C by
default, a clear error without a compiler) on stand-in runs. No speed is asserted: figures come from
full-size runs (docs/benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
from collections.abc import Callable
from types import ModuleType
from typing import Any

import psutil
import pytest

from shoal.bench.fanout import PEERS, BenchError, Target, peer_command, run_benchmark
from support.bench import BENCH, report_of, run_script

RUN_TIMEOUT_S = 60
CLIENTS, ROOM_SIZE, HZ, DURATION_S = 10, 5, 20, 2.0


@pytest.mark.parametrize("peer", list(PEERS))
def test_a_tiny_run_against_a_peer_delivers_every_pose_without_loss_and_stops_it(
    peer: str, require: Callable[[bool, str], None]
) -> None:
    try:
        peer_command(peer)
    except BenchError as missing:  # ws-broadcast without node or `npm ci`: skipped here, failed under CI=true
        require(False, str(missing))
    args = [
        "--peer", peer, "--protocol", "broadcast", "--clients", str(CLIENTS), "--room-size", str(ROOM_SIZE),
        "--hz", str(HZ), "--loaders", "2", "--warmup", "1", "--duration", str(DURATION_S),
    ]  # fmt: skip
    report = report_of("fanout.py", *args, timeout=RUN_TIMEOUT_S)

    params = report["params"]
    assert (params["server"], params["protocol"], params["loader"]) == (peer, "broadcast", "python")
    assert params["server_runtime"] and params["tick_rate"] is None
    expected = CLIENTS * HZ * (ROOM_SIZE - 1) * DURATION_S  # every pose to the other members of its room
    assert 0.9 <= report["deliveries"] / expected <= 1.05, report
    loss = report["loss"]
    assert loss["lost"] == 0 and report["loss_pct"] == 0.0 and loss["owed"] > 0
    assert loss["coalesced"] == 0 and loss["poses_sent"] == loss["poses_relayed"]  # a relay relays every pose
    assert abs(loss["poses_sent"] - CLIENTS * HZ * DURATION_S) <= CLIENTS  # one more or less at an edge
    assert report["errors"] == [] and report["closed"] == {}
    assert report["server_stats"] is None and loss["server_drops"] is None  # a peer has no /api/stats
    server = report["server"]
    assert server["us_per_delivered_pose"] > 0 and server["rss_mb"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 1000

    started = [server["pid"], *report["loader_pids"]]
    assert all(not psutil.pid_exists(pid) for pid in started), "the peer or a loader is still running"


def test_a_peer_is_refused_any_protocol_but_broadcast_before_anything_starts() -> None:
    run = run_script("fanout.py", "--peer", "ws-broadcast", "--protocol", "json", timeout=RUN_TIMEOUT_S)
    assert run.returncode != 0 and run.stdout == ""
    assert "--peer ws-broadcast is a ws-broadcast relay: it speaks --protocol broadcast only" in run.stderr
    assert "fanout: connecting" not in run.stderr

    target = Target.local(9, 0, peer="websockets-relay")  # nothing listens there: the refusal comes first
    with pytest.raises(BenchError, match="speaks --protocol broadcast only, not --protocol binary"):
        run_benchmark(
            target, clients=2, room_size=2, hz=1, loaders=1, warmup=0, duration=1, drain=1, tick_rate=None,
            protocol="binary",
        )  # fmt: skip


def _peers_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_peers", BENCH / "peers.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(server: str, protocol: str, us: float | None, error: str | None = None) -> dict[str, Any]:
    params = {"server": server, "protocol": protocol, "clients": 12, "room_size": 5, "hz": 20.0}
    if error:
        return {"params": params, "error": error}
    return {
        "params": params,
        "deliveries_per_s": 640,
        "loss_pct": 0.0,
        "latency_ms": {"p50": 0.4, "p99": 2.25},
        "server": {"us_per_delivered_pose": us, "cores_used": 0.07},
        "loaders_cores_used": 0.1,
    }


def test_the_peers_table_has_a_row_per_run_and_each_cost_over_shoal_binary_and_json() -> None:
    peers = _peers_script()
    assert [server for server, _protocol in peers.RUNS] == ["shoal"] * 3 + list(PEERS)
    assert peers.expected_per_s(12, 5, 20.0) == 20.0 * (5 * 4 + 5 * 4 + 2 * 1)  # rooms of 5, 5 and 2

    runs = [
        _run("shoal", "binary", 0.5),
        _run("shoal", "json", 1.25),
        _run("shoal", "broadcast", 5.0),
        _run("ws-broadcast", "broadcast", 7.0),
        _run("websockets-relay", "broadcast", None, error="the server exited with 1:\nImportError"),
    ]
    lines = peers.table(runs).splitlines()
    assert len(lines) == 2 + len(runs)
    assert lines[0].startswith("| server | protocol | delivered/s | expected/s | loss % |")
    assert lines[2] == "| shoal | binary | 640 | 840 | 0.00 | 0.4 / 2.2 | 0.50 | 0.07 | 0.10 | 1.00 | 0.40 |"
    assert lines[5].endswith("| 7.00 | 0.07 | 0.10 | 14.00 | 5.60 |")
    assert lines[6].startswith("| websockets-relay | broadcast | failed: the server exited with 1: |")


@pytest.mark.parametrize("loader", ["c", "python"])
def test_peers_measures_every_run_with_the_one_loader_it_is_given(
    loader: str, monkeypatch: pytest.MonkeyPatch, require: Callable[[bool, str], None]
) -> None:
    if loader == "c":
        require(shutil.which("cc") is not None or shutil.which("gcc") is not None, "no C compiler (cc or gcc)")
    peers = _peers_script()
    option = next(param for param in peers.main.params if param.name == "loader")
    assert option.default == "c" and list(option.type.choices) == ["python", "c"]

    measured: list[tuple[str, str, str]] = []

    def stand_in(target: Target, *, protocol: str, program: Any, **settings: Any) -> dict[str, Any]:
        measured.append((target.peer or "shoal", protocol, program.kind))
        return {"params": {"server": target.peer or "shoal", "protocol": protocol, "loader": program.kind}}

    monkeypatch.setattr(peers, "_server", lambda name, room_size: contextlib.nullcontext(Target.local(9, 0)))
    monkeypatch.setattr(peers, "run_benchmark", stand_in)
    settings = {"clients": 10, "room_size": 5, "hz": 20.0, "loaders": 1, "warmup": 0.0, "duration": 1.0}
    runs = list(peers.measure(settings, loader))
    assert [(protocol, kind) for _server, protocol, kind in measured] == [
        (protocol, loader) for _server, protocol in peers.RUNS
    ]
    assert [run["params"]["loader"] for run in runs] == [loader] * len(peers.RUNS)


def test_peers_says_to_use_the_python_loader_when_there_is_no_c_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    peers = _peers_script()
    monkeypatch.setattr(shutil, "which", lambda name: None)  # neither cc nor gcc on PATH
    with pytest.raises(BenchError, match=r"--loader c needs a C compiler \(cc or gcc\) on PATH; .* --loader python"):
        next(peers.measure({}, "c"))  # before any run: no server was started
