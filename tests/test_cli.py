"""The `shoal` command line: version, help, options and their `SHOAL_*` variables, errors and signals.

Servers here are real `python -m shoal serve` processes, started and stopped by their PID.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import socket
import subprocess
import time

from click.testing import CliRunner

from shoal import __version__
from shoal.cli import main
from shoal.protocol.errors import CloseCode
from support.clients import json_peer
from support.servers import HOST, free_port, running_server_process, shoal_command


def test_version_prints_the_package_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"shoal, version {__version__}"


def test_python_m_shoal_runs_the_same_command() -> None:
    result = subprocess.run(shoal_command("--version"), capture_output=True, text=True, timeout=30)
    assert (result.returncode, result.stdout.strip()) == (0, f"shoal, version {__version__}")


def test_serve_help_lists_every_option_with_its_default() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--data",
        "--tick-rate",
        "--joints-rate",
        "--name",
        "--max-members",
        "--max-message-bytes",
        "--ping-interval",
        "--hello-timeout",
        "--log-level",
        "--log-format",
    ):
        assert option in result.output
    assert "default: 8080" in result.output


def test_an_out_of_range_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in result.output
    assert "Traceback" not in result.output


async def test_shoal_variables_configure_the_server() -> None:
    port = free_port()
    env = {"SHOAL_PORT": str(port), "SHOAL_TICK_RATE": "30", "SHOAL_NAME": "from-env", "SHOAL_MAX_MEMBERS": "3"}
    with running_server_process(env=env) as server:
        assert server.port == port
        async with json_peer(server.ws_url) as peer:
            welcome = await peer.hello("Ada")
    assert welcome["tick_rate"] == 30.0
    assert welcome["server"]["name"] == "from-env"
    assert welcome["limits"]["max_members_per_room"] == 3


async def test_an_option_on_the_command_line_beats_its_variable() -> None:
    with running_server_process("--tick-rate", "40", "--hello-timeout", "0.5", env={"SHOAL_TICK_RATE": "30"}) as server:
        async with json_peer(server.ws_url) as peer:
            welcome = await peer.hello("Ada")
    assert welcome["tick_rate"] == 40.0
    assert welcome["limits"]["hello_timeout"] == 0.5


async def test_shoal_joints_rate_sets_how_often_rooms_relay_hand_joints() -> None:
    env = {"SHOAL_TICK_RATE": "10", "SHOAL_JOINTS_RATE": "2.5"}  # joints with every 4th tick: 400 ms apart
    with running_server_process(env=env) as server:
        async with json_peer(server.ws_url) as ada, json_peer(server.ws_url) as bob:
            for peer, name in ((ada, "Ada"), (bob, "Bob")):
                await peer.hello(name)
                await peer.join("hands")
            times = []
            for _ in range(14):
                await ada.send({"type": "joints"})  # "no hands tracked": relayed like any joints
                with contextlib.suppress(TimeoutError):
                    tick = await bob.recv(timeout=0.1)
                    assert (tick["type"], tick["joints"]) == ("tick", [{"id": ada.id}])
                    times.append(tick["t"])
    assert len(times) >= 2
    assert all(abs(later - earlier - 400.0) < 50.0 for earlier, later in itertools.pairwise(times))


def test_a_port_in_use_gives_a_clear_error_not_a_traceback(tmp_path) -> None:
    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            shoal_command("serve", "--port", str(port), "--data", str(tmp_path / "data")),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"Error: cannot listen on {HOST}:{port}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_sigterm_stops_the_server_and_clients_get_1012() -> None:
    with running_server_process() as server:
        async with json_peer(server.ws_url) as peer:
            await peer.hello("Ada")
            await peer.join("lobby")
            server.process.send_signal(signal.SIGTERM)
            stopping = time.monotonic()
            assert await peer.expect_close(timeout=5.0) == CloseCode.SERVICE_RESTART
        assert server.wait_exit(timeout=10) == 0
        assert time.monotonic() - stopping < 5.0
        assert "stopped" in server.log()
