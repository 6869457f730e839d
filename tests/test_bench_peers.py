"""The peers of the fan-out benchmark (`bench/fanout.py --peer`, `bench/peers.py`): tiny real runs.

Each peer (`bench/peers/`: Decentraland's ws-broadcast on Node `ws` 7.3.1, a plain relay on the
`websockets` library, and a Colyseus 0.16 relay room) is started, measured by the same loaders as Shoal
(the Colyseus room by both loaders, in its own protocol), and stopped: every pose reaches every other member
of its room, nothing is lost or coalesced (a relay has no ticks), the peer's CPU is read from /proc and the
Shoal-only counters are null. The Colyseus room relays a pose to the others of its room only, never back to
its sender. A peer is refused any protocol but its own, and Shoal the Colyseus one; a Node peer says to run
`npm ci` when its packages are not the ones package.json pins. The table of `bench/peers.py` is checked on
made-up reports, and its choice of loader (one for every run, C by default, a clear error without a
compiler) on stand-in runs. No speed is asserted: figures come from full-size runs
(docs/benchmarks/README.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import psutil
import pytest

from shoal.bench import fanout
from shoal.bench.fanout import PEERS, ROOT, BenchError, Target, peer_command, run_benchmark, started_peer
from shoal.bench.loader import (
    BROADCAST_POSE,
    ROOM_DATA,
    colyseus_pose_message,
    colyseus_poses,
    join_colyseus_room,
)
from support.bench import BENCH, assert_poses_accounted, report_of, run_script

RUN_TIMEOUT_S = 60
CLIENTS, ROOM_SIZE, HZ, DURATION_S = 10, 5, 20, 2.0


def _require_peer(peer: str, require: Callable[[bool, str], None]) -> None:
    """Skip (fail under CI=true) when peer `peer` cannot be started here: no node, no `npm ci`, no websockets."""
    try:
        peer_command(peer)
    except BenchError as missing:
        require(False, str(missing))


@pytest.mark.parametrize("peer", list(PEERS))
def test_a_tiny_run_against_a_peer_delivers_every_pose_without_loss_and_stops_it(
    peer: str, require: Callable[[bool, str], None]
) -> None:
    _require_peer(peer, require)
    protocol = PEERS[peer].protocol
    args = [
        "--peer", peer, "--protocol", protocol, "--clients", str(CLIENTS), "--room-size", str(ROOM_SIZE),
        "--hz", str(HZ), "--loaders", "2", "--warmup", "1", "--duration", str(DURATION_S),
    ]  # fmt: skip
    report = report_of("fanout.py", *args, timeout=RUN_TIMEOUT_S)

    params = report["params"]
    assert (params["server"], params["protocol"], params["loader"]) == (peer, protocol, "python")
    assert params["server_runtime"] and params["tick_rate"] is None
    assert_poses_accounted(report, CLIENTS, HZ, DURATION_S, relay=True)
    loss = report["loss"]
    assert report["errors"] == [] and report["closed"] == {}
    assert report["server_stats"] is None and loss["server_drops"] is None  # a peer has no /api/stats
    server = report["server"]
    assert server["us_per_delivered_pose"] > 0 and server["rss_mb"] > 0
    latency = report["latency_ms"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"] < 1000

    started = [server["pid"], *report["loader_pids"]]
    assert all(not psutil.pid_exists(pid) for pid in started), "the peer or a loader is still running"


async def test_the_colyseus_peer_relays_a_pose_to_the_others_of_its_room_and_not_back_to_its_sender(
    require: Callable[[bool, str], None],
) -> None:
    """Three clients joined as shoal.bench.loader joins them (seat, WebSocket, JOIN_ROOM), two in one room: a pose
    of the first reaches the second as the same ROOM_DATA bytes it was sent in, and neither its sender nor the
    member of the other room."""
    _require_peer("colyseus", require)
    with started_peer("colyseus") as target:
        async with aiohttp.ClientSession() as session:
            sender, mate, stranger = [
                await join_colyseus_room(session, target.ws_url, room, timeout=10.0) for room in ("a", "a", "b")
            ]
            sent = colyseus_pose_message(BROADCAST_POSE % (0, 0.007, 0.0, time.time() * 1e3))
            await sender.send_bytes(sent)
            received = await mate.receive(timeout=5.0)
            assert received.type is aiohttp.WSMsgType.BINARY and received.data == sent and received.data[0] == ROOM_DATA
            ((member, x, _t),) = colyseus_poses()(received.data) or ()
            assert (member, x) == (0, 0.007)
            for other in (sender, stranger):
                with pytest.raises(asyncio.TimeoutError):
                    await other.receive(timeout=0.3)
            for client in (sender, mate, stranger):
                await client.close()


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (
            ["--peer", "ws-broadcast", "--protocol", "json"],
            "--peer ws-broadcast is a ws-broadcast relay: it speaks --protocol broadcast only, not --protocol json",
        ),
        (
            ["--peer", "colyseus", "--protocol", "broadcast"],
            "--peer colyseus is a Colyseus relay room: it speaks --protocol colyseus only, not --protocol broadcast",
        ),
        (
            ["--peer", "websockets-relay", "--protocol", "colyseus"],
            "--peer websockets-relay is a ws-broadcast relay: it speaks --protocol broadcast only, not --protocol "
            "colyseus",
        ),
        (
            ["--protocol", "colyseus"],
            "Shoal does not speak --protocol colyseus, which is for --peer colyseus: Shoal speaks --protocol json, "
            "binary or broadcast",
        ),
    ],
    ids=["ws-broadcast json", "colyseus broadcast", "websockets-relay colyseus", "shoal colyseus"],
)
def test_a_server_is_refused_a_protocol_it_does_not_speak_before_anything_starts(args: list[str], refusal: str) -> None:
    run = run_script("fanout.py", *args, timeout=RUN_TIMEOUT_S)
    assert run.returncode != 0 and run.stdout == ""
    assert refusal in " ".join(run.stderr.split())  # click may wrap the line
    assert "fanout: connecting" not in run.stderr


@pytest.mark.parametrize(
    ("peer", "protocol", "refusal"),
    [
        ("websockets-relay", "binary", "speaks --protocol broadcast only, not --protocol binary"),
        ("colyseus", "json", "speaks --protocol colyseus only, not --protocol json"),
        (None, "colyseus", "Shoal does not speak --protocol colyseus"),
    ],
    ids=["websockets-relay binary", "colyseus json", "shoal colyseus"],
)
def test_run_benchmark_refuses_a_protocol_the_server_does_not_speak(
    peer: str | None, protocol: str, refusal: str
) -> None:
    target = Target.local(9, 0, peer=peer)  # nothing listens there: the refusal comes first
    with pytest.raises(BenchError, match=refusal):
        run_benchmark(
            target, clients=2, room_size=2, hz=1, loaders=1, warmup=0, duration=1, drain=1, tick_rate=None,
            protocol=protocol,
        )  # fmt: skip


def test_the_node_peers_run_on_the_npm_packages_that_package_json_pins() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]
    wanted = {package: version for peer in PEERS.values() for package, version in peer.npm_packages}
    assert sorted(wanted) == ["@colyseus/core", "@colyseus/ws-transport", "ws"]
    assert {package: pinned[package] for package in wanted} == wanted
    assert wanted["ws"] == "7.3.1" and wanted["@colyseus/core"].startswith("0.16.")


def test_a_node_peer_says_to_run_npm_ci_when_its_packages_are_missing_or_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, require: Callable[[bool, str], None]
) -> None:
    require(shutil.which("node") is not None, "no node on PATH")
    monkeypatch.setattr(fanout, "ROOT", tmp_path)  # a checkout where `npm ci` never ran
    core = dict(PEERS["colyseus"].npm_packages)["@colyseus/core"]
    with pytest.raises(BenchError) as missing:
        peer_command("colyseus")
    needs = f"--peer colyseus needs @colyseus/core {core} in {tmp_path / 'node_modules'}"
    assert str(missing.value.message) == f"{needs} (no @colyseus/core there): run `npm ci` in {tmp_path}"

    manifest = tmp_path / "node_modules" / "@colyseus" / "core" / "package.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"name": "@colyseus/core", "version": "0.15.0"}))
    with pytest.raises(BenchError) as other:
        peer_command("colyseus")
    assert str(other.value.message) == f"{needs} (@colyseus/core 0.15.0 there): run `npm ci` in {tmp_path}"


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
    shoal = [("shoal", "binary"), ("shoal", "json"), ("shoal", "broadcast")]
    expected = [*shoal, ("ws-broadcast", "broadcast"), ("websockets-relay", "broadcast"), ("colyseus", "colyseus")]
    assert list(peers.RUNS) == expected
    assert peers.expected_per_s(12, 5, 20.0) == 20.0 * (5 * 4 + 5 * 4 + 2 * 1)  # rooms of 5, 5 and 2

    runs = [
        _run("shoal", "binary", 0.5),
        _run("shoal", "json", 1.25),
        _run("shoal", "broadcast", 5.0),
        _run("ws-broadcast", "broadcast", 7.0),
        _run("websockets-relay", "broadcast", None, error="the server exited with 1:\nImportError"),
        _run("colyseus", "colyseus", 6.5),
    ]
    lines = peers.table(runs).splitlines()
    assert len(lines) == 2 + len(runs)
    assert lines[0].startswith("| server | protocol | delivered/s | expected/s | loss % |")
    assert lines[2] == "| shoal | binary | 640 | 840 | 0.00 | 0.4 / 2.2 | 0.50 | 0.07 | 0.10 | 1.00 | 0.40 |"
    assert lines[5].endswith("| 7.00 | 0.07 | 0.10 | 14.00 | 5.60 |")
    assert lines[6].startswith("| websockets-relay | broadcast | failed: the server exited with 1: |")
    assert lines[7] == "| colyseus | colyseus | 640 | 840 | 0.00 | 0.4 / 2.2 | 6.50 | 0.07 | 0.10 | 13.00 | 5.20 |"


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
