"""Bounded waiting: poll a condition instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_until(condition: Callable[[], bool], timeout: float = 2.0, what: str = "condition") -> float:
    """Poll `condition` every 10 ms until it holds; return the seconds it took.

    Raises `AssertionError` naming `what` if it still does not hold after `timeout` seconds.
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started
