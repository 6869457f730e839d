"""The suite's own rules: a missing service skips a test locally and fails it under CI."""

from __future__ import annotations

import pytest

from support.ci import require


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
