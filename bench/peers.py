"""Shoal and its peers, measured in one run on one machine by the same loader: a Markdown table.

    npm ci                                   # once: ws 7.3.1 and Colyseus 0.16, which two peers run on
    python bench/peers.py                    # 200 clients, rooms of 25, 20 Hz, 2 C loaders, 5 s + 20 s each
    python bench/peers.py --duration 15 --warmup 4 --output /tmp/peers.json
    python bench/peers.py --loader python    # the Python loaders instead (no C compiler needed)

The performance targets (performance.md, issue #4) are set against three naive relays "measured in one
run with the peers", since the same code measures ±40 % apart on two machines of the same kind. This
command measures, one after the other, with the fan-out benchmark (`shoal.bench.fanout.run_benchmark`)
and the same loaders (`--loaders` processes of `--loader`, by default `c`: loader.c, built with the
machine's C compiler; without one the command stops before any run and says to pass `--loader python`):

1. Shoal (`python -m shoal serve` from this checkout, a fresh process per run, tick rate 20 Hz) in its
   `binary` protocol, its `json` protocol, and its `broadcast` protocol (its ws-broadcast dialect, a plain
   per-message relay, no ticks);
2. `ws-broadcast`: Decentraland's relay on Node `ws` 7.3.1 (`bench/peers/ws-broadcast.js`; needs `node`
   and `npm ci`), in the ws-broadcast dialect it defines;
3. `websockets-relay`: a plain Python relay on the `websockets` library's `broadcast()` and asyncio
   (`bench/peers/websockets_relay.py`), in the same dialect;
4. `colyseus`: a Colyseus 0.16 relay room, `broadcast(type, message, {except: client})` on @colyseus/core
   and its WebSocket transport (`bench/peers/colyseus-relay.js`; needs `node` and `npm ci`), in Colyseus's
   own protocol (`colyseus`: HTTP matchmaking, msgpack-framed messages carrying the same JSON pose).

Every run has the same clients, rooms, rate, warm-up and window, and each server is started on a free
port of 127.0.0.1 and stopped by PID. It prints the machine (cores, CPU model, load average) and a table:
delivered and expected poses per second, loss, latency p50/p99, the server's CPU µs per delivered pose
(the figure performance.md compares servers by) and cores, the loaders' cores, and each run's µs per pose
over Shoal's binary and JSON figures (for a peer: how many times Shoal's cost it spends). Progress goes to
stderr; `--output` writes every run's full report (the figures are defined in `shoal.bench.fanout`). A run
that fails is shown as such and the others go on; the exit status is then 1.

Why C loaders by default: both loaders speak every protocol with the same semantics (the same messages,
counts and report), and loader.c needs less CPU. At the default size every run delivers about 96,000
poses/s; measured on two cores, the Python loaders took 0.42 cores for Shoal's JSON ticks (one C loader:
0.18) and a whole core for the ws-broadcast relay (0.98-1.01; one C loader: 0.68-0.76, most of it the
kernel's, as each pose is its own message), which the server under test then lacks. The loader of each
run is in its report (`params.loader`) and in the line above the table.

Read the CPU figures of a row only where its loss is 0: a saturated server's cost per pose is not
comparable. On a machine with few cores the loaders compete with the server: watch the loader cores.
"""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import click

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shoal.bench.fanout import (  # after the path is set
    PEERS,
    BenchError,
    Target,
    loader_option,
    loader_program,
    peer_command,
    raise_on_sigterm,
    run_benchmark,
    started_peer,
    started_server,
)
from shoal.bench.sweep import machine_description

SHOAL = "shoal"
RUNS = [
    *((SHOAL, protocol) for protocol in ("binary", "json", "broadcast")),
    *((name, peer.protocol) for name, peer in PEERS.items()),
]
"""(server, protocol) of each run, in order: each peer in the one protocol it speaks."""
TICK_RATE = 20.0
"""Shoal's tick rate in these runs (`bench/fanout.py`'s default)."""
DRAIN_S = 1.0


def expected_per_s(clients: int, room_size: int, hz: float) -> float:
    """Deliveries per second with nothing lost or coalesced: each pose reaches every other member of its room."""
    rooms = [min(room_size, clients - first) for first in range(0, clients, room_size)]
    return hz * sum(size * (size - 1) for size in rooms)


def _server(name: str, room_size: int) -> AbstractContextManager[Target]:
    if name == SHOAL:
        return started_server(TICK_RATE, max(room_size, 64), "auto")
    return started_peer(name)


LOADER_NAMES = {"c": "C", "python": "Python"}


def measure(settings: dict[str, Any], loader: str = "c") -> Iterator[dict[str, Any]]:
    """Run every (server, protocol) of `RUNS` with `settings` (the options of `main`) and the loaders of kind
    `loader` (one of `LOADERS`), one after the other; yield each report, or `{"params": ..., "error": ...}`
    for a run that failed. BenchError before any run when that loader cannot be had (`c` without a compiler)."""
    with loader_program(loader, [protocol for _server_name, protocol in RUNS]) as program:
        for name, protocol in RUNS:

            def phase(step: str, seconds: float, name: str = name, protocol: str = protocol) -> None:
                print(f"peers: {name} {protocol}: {step} ({seconds:.0f} s)", file=sys.stderr, flush=True)

            try:
                with _server(name, settings["room_size"]) as target:
                    report = run_benchmark(
                        target,
                        tick_rate=TICK_RATE if name == SHOAL else None,
                        protocol=protocol,
                        drain=DRAIN_S,
                        on_phase=phase,
                        program=program,
                        **settings,
                    )
            except (BenchError, OSError) as exc:  # OSError: Shoal's HTTP API timed out or refused
                print(f"peers: {name} {protocol} failed: {exc}", file=sys.stderr, flush=True)
                params = {"server": name, "protocol": protocol, "loader": program.kind, **settings}
                report = {"params": params, "error": str(exc)}
            yield report  # once its server has stopped


def table(runs: list[dict[str, Any]]) -> str:
    """The Markdown table of `runs` (reports of `run_benchmark`, or failed runs with an `error`)."""
    shoal = {run["params"]["protocol"]: _us(run) for run in runs if run["params"]["server"] == SHOAL}
    header = [
        "server", "protocol", "delivered/s", "expected/s", "loss %", "p50 / p99 ms", "server µs/pose",
        "server cores", "loader cores", "µs/pose vs Shoal binary", "µs/pose vs Shoal JSON",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * 2 + "---:|" * (len(header) - 2)]
    for run in runs:
        params = run["params"]
        cells = [params["server"], params["protocol"]]
        if "error" in run:
            cells += [f"failed: {run['error'].splitlines()[0]}"] + [""] * (len(header) - 3)
        else:
            latency, server = run["latency_ms"], run["server"]
            expected = expected_per_s(params["clients"], params["room_size"], params["hz"])
            cells += [
                f"{run['deliveries_per_s']:,}",
                f"{expected:,.0f}",
                _number(run["loss_pct"], 2),
                f"{_number(latency['p50'], 1)} / {_number(latency['p99'], 1)}",
                _number(server["us_per_delivered_pose"], 2),
                _number(server["cores_used"], 2),
                _number(run["loaders_cores_used"], 2),
                _ratio(_us(run), shoal.get("binary")),
                _ratio(_us(run), shoal.get("json")),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _us(run: dict[str, Any]) -> float | None:
    return None if "error" in run else run["server"]["us_per_delivered_pose"]


def _number(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, reference: float | None) -> str:
    return f"{value / reference:.2f}" if value is not None and reference else "n/a"


def machine_line(machine: dict[str, Any]) -> str:
    load = ", ".join(f"{value:.2f}" for value in machine["loadavg_at_end"])
    return (
        f"Machine: nproc {machine['cores']}, {machine['cpu']}, {machine['memory_gib']} GiB, {machine['os']}, "
        f"Python {machine['python']}; load average at the end {load}"
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--clients", default=200, type=click.IntRange(2, 10_000), help="Clients in all.")
@click.option("--room-size", default=25, type=click.IntRange(2, 10_000), help="Clients per room.")
@click.option("--hz", default=20.0, type=click.FloatRange(0.5, 90), help="Poses per second per client.")
@click.option("--loaders", default=2, type=click.IntRange(1, 64), help="Load-generator processes.")
@loader_option("c", "Load generator of every run: loader.c built with cc (less CPU), or shoal.bench.loader.")
@click.option("--warmup", default=5.0, type=click.FloatRange(0, 600), help="Seconds of traffic before measuring.")
@click.option("--duration", default=20.0, type=click.FloatRange(1, 3600), help="Seconds measured, per run.")
@click.option("--output", default=None, type=click.Path(dir_okay=False, path_type=Path), help="JSON of all runs.")
def main(loader: str, output: Path | None, **settings: Any) -> None:
    """Measure Shoal (binary, JSON, broadcast) and its peers (ws-broadcast, websockets relay, Colyseus) in one run."""
    signal.signal(signal.SIGTERM, raise_on_sigterm)
    for peer in PEERS:
        peer_command(peer)  # a missing runtime (node, npm ci) fails now, not after Shoal's runs
    settings["loaders"] = min(settings["loaders"], settings["clients"])  # clients, room_size, hz, warmup, duration
    runs: list[dict[str, Any]] = []
    for run in measure(settings, loader):
        runs.append(run)
        if output:  # after every run, so that an interrupted run keeps what it measured
            document = {
                "bench": "peers", "machine": machine_description(), "settings": {**settings, "loader": loader},
                "runs": runs,
            }  # fmt: skip
            output.write_text(json.dumps(document, indent=2) + "\n")
    print(machine_line(machine_description()))
    print(
        f"{settings['clients']} clients, rooms of {settings['room_size']}, {settings['hz']:g} Hz, "
        f"{settings['loaders']} {LOADER_NAMES[loader]} loaders, {settings['warmup']:g} s warm-up, "
        f"{settings['duration']:g} s measured per run"
    )
    print()
    print(table(runs))
    if any("error" in run for run in runs):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
