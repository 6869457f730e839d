"""The suite's own rules: a missing service skips a test locally and fails it under CI."""

from __future__ import annotations

import pytest

from support.ci import require
from support.servers import StartServer, free_port


def test_a_missing_service_skips_with_its_reason_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="redis-server is not running"):
        require(False, "redis-server is not running")


def test_a_missing_service_fails_the_test_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="redis-server is not running"):
        require(False, "redis-server is not running")


def test_an_available_service_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require(True, "unused")


async def test_a_test_server_listens_on_a_free_port_or_where_asked(start_server: StartServer) -> None:
    anywhere = await start_server()
    port = free_port()
    there = await start_server(port=port)

    assert there.port == port != anywhere.port
    for server in (anywhere, there):
        assert (await server.get("/healthz"))[0] == 200


async def test_an_unknown_override_is_refused(start_server: StartServer) -> None:
    with pytest.raises(TypeError, match="tick_rat"):
        await start_server(tick_rat=10)
