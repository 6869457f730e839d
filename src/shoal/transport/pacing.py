"""Read pacing: fewer event-loop wake-ups under load, reading the sockets just before each tick.

Each time the event loop finds nothing ready it blocks in `epoll_wait`, and the next message wakes it. At
4,000 messages a second from 200 clients that is about 1,700 sleeps and wake-ups a second, 2.4 messages
each, and the switch back in costs about a tenth of the server's CPU on a VM. While poses keep
arriving, `ReadPacer` sleeps out the rest of a short window at the end of each loop iteration that read
one (messages the server answers at once, such as hello and join, start no pause), so the loop polls
at most once per window and reads every socket that became ready meanwhile in one pass. An iteration
without such a message schedules no sleep: an idle server blocks in `epoll_wait` as usual, and the first
message after a quiet spell is handled at once.

The pause never runs past the next tick (`deadline`): the loop wakes at the tick's deadline, reads every
pose sent since its last pass, and the tick that follows carries them all. So poses gain no latency from
pacing whatever the window, since they would have waited for that tick anyway; what a wider window delays
is only what the server passes on at once (app messages, replies to requests, and every message of the
relaying dialects, NAF and ws-broadcast, which share the loop), by up to the window. Game servers read
their clients' input at the tick for the same reason. Measured at 200 clients, 20 Hz: a 20 ms window
costs 15-18 % less CPU per pose than a 4 ms one that ignores ticks (docs/benchmarks/).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

MAX_WINDOW = 0.1
"""Seconds: the widest window `ReadPacer` accepts."""


class ReadPacer:
    """Paces the running loop while messages arrive: `window` seconds (0: off, the default) is the longest
    a message waits beyond its arrival, and the shortest gap between two of the loop's polls while busy.

    `deadline`, when given, returns the wall-clock time (`time.time()`) by which the loop must poll again:
    the next tick's. A pause ends there even when the window has not run out.
    """

    __slots__ = ("_deadline", "_last", "_scheduled", "window")

    def __init__(self, window: float = 0.0, deadline: Callable[[], float] | None = None) -> None:
        if not 0.0 <= window <= MAX_WINDOW:
            limit = f"{MAX_WINDOW * 1000:g} ms"
            raise ValueError(f"the read pacing window must be within 0 and {limit}, not {window * 1000:g} ms")
        self.window = window
        self._deadline = deadline
        self._scheduled = False
        self._last = 0.0

    def message_arrived(self) -> None:
        """Call for each message read whose effect waits for the tick (a pose): the loop paces once it has
        handled this iteration's reads. Messages answered at once should not call it, so that a burst of
        joins is not paced. Call it after scheduling anything that should run before the pause (a due tick)."""
        if not self._scheduled and self.window:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._pace)

    def _pace(self) -> None:
        """Sleep out the rest of the window since the previous pause, or until the deadline if sooner."""
        self._scheduled = False
        wait = self.window - (time.monotonic() - self._last)
        if self._deadline is not None:
            wait = min(wait, self._deadline() - time.time())
        if wait > 0:
            time.sleep(wait)  # blocking on purpose: the loop's sockets fill meanwhile, then one poll reads them all
        self._last = time.monotonic()
