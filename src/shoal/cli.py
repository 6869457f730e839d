"""The `shoal` command line. Every `serve` option can also come from a `SHOAL_*` environment variable."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from shoal import __version__
from shoal.cli_accounts import auth_options, auth_settings, user
from shoal.cli_bench import bench
from shoal.config import ServerConfig
from shoal.core.interest import DEFAULT_FAR_EVERY, Interest
from shoal.core.limits import Limits
from shoal.logs import configure_logging
from shoal.store import StoreError, open_store
from shoal.transport.pacing import MAX_WINDOW


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="shoal")
def main() -> None:
    """Shoal: real-time multiplayer WebXR rooms in one process."""


main.add_command(user)
main.add_command(bench)


def _check_store_url(ctx: click.Context, param: click.Parameter, url: str) -> str:
    """Refuse a malformed store URL (or a missing driver) before anything starts; connecting comes later."""
    try:
        open_store(url, Path("."))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return url


@main.command()
@click.option("--host", envvar="SHOAL_HOST", default="127.0.0.1", help="Address to listen on.")
@click.option(
    "--port",
    envvar="SHOAL_PORT",
    default=8080,
    type=click.IntRange(0, 65535),
    help="Port for HTTP and WebSockets (0 picks a free one).",
)
@click.option(
    "--https",
    envvar="SHOAL_HTTPS",
    is_flag=True,
    help="Serve HTTPS, which VR/AR headsets on the LAN need: a self-signed certificate kept under --data.",
)
@click.option(
    "--cert",
    "cert_file",
    envvar="SHOAL_TLS_CERT",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Serve HTTPS with this certificate chain (PEM) instead of a self-signed one.",
)
@click.option(
    "--key",
    "key_file",
    envvar="SHOAL_TLS_KEY",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The private key (PEM) of --cert.",
)
@click.option(
    "--data",
    "data_dir",
    envvar="SHOAL_DATA",
    default="shoal-data",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the server's files.",
)
@click.option(
    "--store",
    "store_url",
    envvar="SHOAL_STORE",
    default="",
    show_default="SQLite in --data",
    callback=_check_store_url,
    help="Where room state is stored: sqlite:///PATH, postgresql://..., dynamodb://?region=...",
)
@click.option(
    "--tick-rate",
    envvar="SHOAL_TICK_RATE",
    default=20.0,
    type=click.FloatRange(0.5, 240),
    help="Room tick rate in Hz: how often pose changes are sent.",
)
@click.option(
    "--interest-radius",
    envvar="SHOAL_INTEREST_RADIUS",
    default=0.0,
    type=click.FloatRange(0, 10_000),
    help="Interest management: poses within this many metres every tick, the others every "
    "--interest-far-every ticks (0: off, everyone gets every pose).",
)
@click.option(
    "--interest-far-every",
    envvar="SHOAL_INTEREST_FAR_EVERY",
    default=DEFAULT_FAR_EVERY,
    type=click.IntRange(1, 1000),
    help="Ticks between two deliveries of the poses beyond --interest-radius.",
)
@click.option(
    "--joints-rate",
    envvar="SHOAL_JOINTS_RATE",
    default=Limits().joints_relay_rate,
    type=click.FloatRange(0.1, 240),
    help="Hz at which rooms relay hand joints (every round(tick rate / this)-th tick).",
)
@click.option(
    "--read-pacing",
    "read_pacing_ms",
    envvar="SHOAL_READ_PACING",
    default=ServerConfig().read_pacing * 1000,
    type=click.FloatRange(0, MAX_WINDOW * 1000),
    help="Milliseconds: while busy, the event loop polls its sockets at most once per this window and just "
    "before each tick; fewer wake-ups, no added latency for poses, up to this much for app messages (0: off).",
)
@click.option("--name", "server_name", envvar="SHOAL_NAME", default="shoal", help="Server name shown to clients.")
@click.option(
    "--max-members",
    envvar="SHOAL_MAX_MEMBERS",
    default=Limits().max_members_per_room,
    type=click.IntRange(1, 10_000),
    help="Members per room.",
)
@click.option(
    "--max-message-bytes",
    envvar="SHOAL_MAX_MESSAGE_BYTES",
    default=Limits().max_message_bytes,
    type=click.IntRange(1024, 16 * 1024 * 1024),
    help="Largest WebSocket message accepted.",
)
@click.option(
    "--ping-interval",
    envvar="SHOAL_PING_INTERVAL",
    default=Limits().ping_interval,
    type=click.FloatRange(0.1, 3600),
    help="Seconds between server pings; no pong in half of it drops.",
)
@click.option(
    "--hello-timeout",
    envvar="SHOAL_HELLO_TIMEOUT",
    default=Limits().hello_timeout,
    type=click.FloatRange(0.1, 3600),
    help="Seconds a new connection has to send hello.",
)
@click.option(
    "--broadcast-prefix",
    "broadcast_prefixes",
    envvar="SHOAL_BROADCAST_PREFIXES",
    multiple=True,
    default=("/broadcast",),
    help="Path of the ws-broadcast relay (repeatable); rooms are every path below it, query included.",
)
@click.option(
    "--naf-path",
    envvar="SHOAL_NAF_PATH",
    default="/naf",
    help="Path of the networked-aframe uws adapter (serverURL); socket.io is at /socket.io/.",
)
@click.option(
    "--log-level", envvar="SHOAL_LOG_LEVEL", default="info", type=click.Choice(["debug", "info", "warning", "error"])
)
@click.option("--log-format", envvar="SHOAL_LOG_FORMAT", default="console", type=click.Choice(["console", "json"]))
@click.option(
    "--loop",
    "loop_name",
    envvar="SHOAL_LOOP",
    default="auto",
    type=click.Choice(["auto", "asyncio", "uvloop"]),
    help="Event loop; auto is uvloop (installed with Shoal except on Windows): ~40% less CPU per pose than asyncio, "
    "and a TLS connection in a sixth of the memory.",
)
@auth_options
def serve(
    host: str,
    port: int,
    https: bool,
    cert_file: Path | None,
    key_file: Path | None,
    data_dir: Path,
    store_url: str,
    tick_rate: float,
    interest_radius: float,
    interest_far_every: int,
    joints_rate: float,
    read_pacing_ms: float,
    server_name: str,
    max_members: int,
    max_message_bytes: int,
    ping_interval: float,
    hello_timeout: float,
    broadcast_prefixes: tuple[str, ...],
    naf_path: str,
    log_level: str,
    log_format: str,
    loop_name: str,
) -> None:
    """Serve HTTP and WebSockets on one port until interrupted."""
    configure_logging(log_level, log_format)
    limits = Limits(
        max_members_per_room=max_members,
        max_message_bytes=max_message_bytes,
        ping_interval=ping_interval,
        hello_timeout=hello_timeout,
        joints_relay_rate=joints_rate,
    )
    for path in (*broadcast_prefixes, naf_path):
        if not path.startswith("/") or path.rstrip("/") == "":
            raise click.BadParameter(f"{path!r} is not a path below / (e.g. /broadcast)")
    config = ServerConfig(
        broadcast_prefixes=tuple(broadcast_prefixes),
        naf_path=naf_path,
        host=host,
        port=port,
        data_dir=data_dir,
        store_url=store_url,
        tick_rate=tick_rate,
        server_name=server_name,
        limits=limits,
        auth=auth_settings(),
        interest=Interest(interest_radius, interest_far_every) if interest_radius > 0 else None,
        read_pacing=read_pacing_ms / 1000,
    )
    from shoal import tls  # imported late, like the server: --help needs neither
    from shoal.server import serve as run  # imported late: aiohttp is not needed for --help

    lan = tls.lan_addresses()
    ssl_context = _tls_context(https, cert_file, key_file, data_dir, lan)

    def announce(bound_port: int) -> None:
        click.echo(tls.startup_notice(ssl_context is not None, host, bound_port, lan))

    try:
        _loop_runner(loop_name)(run(config, ssl_context=ssl_context, on_listening=announce))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except StoreError as exc:
        raise click.ClickException(f"cannot open the store: {exc}") from None


def _tls_context(
    https: bool, cert_file: Path | None, key_file: Path | None, data_dir: Path, lan: list[str]
) -> ssl.SSLContext | None:
    """The TLS context for `--https` or `--cert`/`--key`, or None for plain HTTP. A self-signed certificate
    for localhost and the `lan` addresses is made under `data_dir/tls` when needed."""
    from shoal import tls

    if cert_file is None and key_file is None and not https:
        return None
    if (cert_file is None) != (key_file is None):
        raise click.UsageError("--cert and --key go together")
    if cert_file is None or key_file is None:
        cert_file, key_file = tls.self_signed_certificate(data_dir / "tls", tls.certificate_hosts(lan))
    try:
        return tls.server_context(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise click.ClickException(f"cannot use the certificate {cert_file} with key {key_file}: {exc}") from None


def _loop_runner(loop_name: str) -> Callable[[Coroutine[Any, Any, None]], None]:
    """`uvloop.run` for `uvloop`, and for `auto` when uvloop is installed; `asyncio.run` otherwise."""
    if loop_name != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop_name == "uvloop":
                missing = "uvloop is not installed (it has no Windows build): pip install uvloop"
                raise click.ClickException(missing) from None
        else:
            return uvloop.run
    return asyncio.run
