"""Read pacing (transport/pacing.py): while messages arrive, the loop polls at most once per window; idle, never."""

from __future__ import annotations

import asyncio
import time

import pytest

from shoal.transport.pacing import ReadPacer


async def iterations_in(seconds: float, on_each: object = None) -> int:
    """How many times the running loop comes round in `seconds`, calling `on_each()` on each pass."""
    loop = asyncio.get_running_loop()
    count = 0
    deadline = time.monotonic() + seconds
    done = loop.create_future()

    def step() -> None:
        nonlocal count
        count += 1
        if on_each is not None:
            on_each()  # type: ignore[operator]
        if time.monotonic() < deadline:
            loop.call_soon(step)
        else:
            done.set_result(None)

    loop.call_soon(step)
    await done
    return count


async def test_a_busy_loop_polls_at_most_once_per_window() -> None:
    pacer = ReadPacer(0.004)
    paced = await iterations_in(0.2, pacer.message_arrived)  # a message on every pass: always busy
    assert 20 <= paced <= 0.2 / 0.004 + 2, paced  # about 50 passes, each after the window has run out


async def test_pacing_stops_when_messages_stop_and_is_off_by_default() -> None:
    pacer = ReadPacer(0.004)
    pacer.message_arrived()
    await asyncio.sleep(0.02)  # one paced pass, then a pass without messages ends it
    started = time.monotonic()
    free = await iterations_in(0.05)
    assert free > 500, f"the loop still paced after the messages stopped: {free} passes in 50 ms"
    assert time.monotonic() - started < 0.2

    off = ReadPacer()
    assert await iterations_in(0.05, off.message_arrived) > 500  # window 0: never sleeps


async def test_a_pause_ends_at_the_deadline_so_the_tick_reads_everything_on_time() -> None:
    """With a window far longer than the time to the next tick, the loop still comes round by the tick."""
    due = 0.0
    pacer = ReadPacer(0.1, deadline=lambda: due)
    pacer.message_arrived()
    await asyncio.sleep(0)  # the first pause of a busy spell starts the window: it does not sleep
    loop = asyncio.get_running_loop()
    came_round = loop.create_future()
    due = time.time() + 0.01
    pacer.message_arrived()
    loop.call_soon(lambda: came_round.set_result(time.time()))  # runs once the pause has ended
    at = await came_round
    assert due <= at < due + 0.02, f"the loop came round {(at - due) * 1000:.1f} ms after the deadline"

    due = time.time() - 0.001  # a deadline already reached: no pause at all
    started = time.monotonic()
    pacer.message_arrived()
    await asyncio.sleep(0)
    assert time.monotonic() - started < 0.005


def test_the_window_is_bounded() -> None:
    with pytest.raises(ValueError, match="100 ms"):
        ReadPacer(0.2)
    with pytest.raises(ValueError):
        ReadPacer(-0.001)
