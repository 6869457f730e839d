"""The suite's rule for tests that need a service (Redis, PostgreSQL, Chromium, ...)."""

from __future__ import annotations

import os

import pytest


def running_under_ci() -> bool:
    """True when the environment variable `CI` is exactly `true` (as `.ci/run` sets it)."""
    return os.environ.get("CI") == "true"


def require(service_available: bool, reason: str) -> None:
    """Skip the calling test with `reason` when a service is missing, but fail it under CI.

    A laptop without Redis skips the Redis tests; a CI machine without Redis is a broken CI machine,
    so there the same test fails loudly instead of passing by skipping.
    """
    if service_available:
        return
    if running_under_ci():
        pytest.fail(f"{reason} (CI=true: required services must be present)", pytrace=False)
    pytest.skip(reason)
