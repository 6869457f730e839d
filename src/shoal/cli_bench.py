"""`shoal bench`: measure fan-out against client counts and protocols, with a progress bar, a JSON report
and an HTML plot (docs/benchmarks/README.md). The benchmark's code is imported only when it runs."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import click

PROTOCOL_CHOICES = ("json", "binary", "broadcast")
LOADER_CHOICES = ("python", "c")
"""These mirror `shoal.bench.fanout.SHOAL_PROTOCOLS` (what Shoal speaks: not `colyseus`, a peer's) and `LOADERS`,
which this module does not import at start-up."""


def _counts(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter("a comma-separated list of client counts, e.g. 50,100,200") from None
    if not counts or any(not 2 <= count <= 20_000 for count in counts):
        raise click.BadParameter("client counts are between 2 and 20,000")
    return counts


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # so that the `finally` blocks stop the server and the loaders


@click.command(context_settings={"show_default": True})
@click.option("--clients", default="50,100,200", callback=_counts, help="Client counts to ramp through.")
@click.option(
    "--protocol",
    "protocols",
    multiple=True,
    default=("json", "binary"),
    type=click.Choice(PROTOCOL_CHOICES),
    help="What the clients speak (repeatable); broadcast is the ws-broadcast relay on the same server.",
)
@click.option("--room-size", default=25, type=click.IntRange(2, 10_000), help="Clients per room.")
@click.option("--hz", default=20.0, type=click.FloatRange(0.5, 90), help="Poses per second per client.")
@click.option("--loaders", default=2, type=click.IntRange(1, 64), help="Load-generator processes.")
@click.option(
    "--loader",
    default="python",
    type=click.Choice(LOADER_CHOICES),
    help="Load generator: shoal.bench.loader, or loader.c built with cc (any protocol, less CPU).",
)
@click.option("--warmup", default=3.0, type=click.FloatRange(0, 600), help="Seconds of traffic before measuring.")
@click.option("--duration", default=10.0, type=click.FloatRange(1, 3600), help="Seconds measured per point.")
@click.option("--drain", default=1.0, type=click.FloatRange(0.2, 60), help="Seconds to wait for late poses.")
@click.option("--tick-rate", default=20.0, type=click.FloatRange(0.5, 240), help="Tick rate of the started server.")
@click.option(
    "--interest-radius",
    default=0.0,
    type=click.FloatRange(0, 10_000),
    help="The started server's interest radius in metres (0: off); use with --spread.",
)
@click.option("--interest-far-every", default=4, type=click.IntRange(1, 1000), help="Far-tier period in ticks.")
@click.option("--spread", default=0.0, type=click.FloatRange(0, 1000), help="Metres between room mates (along z).")
@click.option("--idle-connections", default=0, type=click.IntRange(0, 20_000), help="Also measure RSS per idle one.")
@click.option("--server-url", default=None, help="Benchmark a running server (http://HOST:PORT) instead.")
@click.option("--server-pid", default=None, type=int, help="PID of --server-url's process, to read its CPU.")
@click.option(
    "--server-loop", default="auto", type=click.Choice(["auto", "asyncio", "uvloop"]), help="Started server's loop."
)
@click.option(
    "--output-dir",
    default=Path("bench-results"),
    type=click.Path(file_okay=False, path_type=Path),
    help="Where bench.json and bench.html are written.",
)
@click.option(
    "--https",
    is_flag=True,
    help="Start the server with --https (self-signed) and connect over TLS, as headsets must. With --loader c, "
    "loader.c is built with OpenSSL (Debian: libssl-dev).",
)
@click.option("--no-progress", is_flag=True, help="Print one line per phase instead of a progress bar.")
def bench(output_dir: Path, no_progress: bool, protocols: tuple[str, ...], **settings: Any) -> None:
    """Measure fan-out: delivered poses/s, p50/p99 latency and server CPU per delivered pose against clients.

    Starts `shoal serve` (or targets --server-url), spawns loader processes, ramps through --clients for
    each --protocol, then writes OUTPUT_DIR/bench.json and OUTPUT_DIR/bench.html.
    """
    from shoal.bench.sweep import SweepSettings, run_sweep

    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    report = run_sweep(
        SweepSettings(protocols=tuple(dict.fromkeys(protocols)), **settings), output_dir, not no_progress
    )
    for point in report["points"]:
        if "error" in point:
            click.echo(f"{point['params']['protocol']:>9} {point['params']['clients']:>6} clients: {point['error']}")
            continue
        params, latency = point["params"], point["latency_ms"]
        click.echo(
            f"{params['protocol']:>9} {params['clients']:>6} clients: {point['deliveries_per_s']:>8} poses/s, "
            f"loss {point['loss_pct']} %, p50 {latency['p50']} ms, p99 {latency['p99']} ms, "
            f"{point['us_per_delivered_pose']} µs CPU per pose (load {point['host']['loadavg_start'][0]})"
        )
    if report["idle"]:
        idle = report["idle"]
        click.echo(f"idle: {idle['kib_per_connection']} KiB of server RSS per connection ({idle['connections']})")
    for verdict in report["targets"]:
        met = "met" if verdict["met"] else "MISSED"
        click.echo(f"target {verdict['target']}: {verdict['measured']} ({verdict['limit']}): {met}")
    click.echo(f"wrote {output_dir / 'bench.json'} and {output_dir / 'bench.html'}")
