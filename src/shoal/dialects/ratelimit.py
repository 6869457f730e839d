"""A per-connection message budget for the dialects: a token bucket plus the "over the limit too long" rule.

The native engine keeps the same rule on its `Member`; dialect clients have no `Member`, so they carry
one `MessageBudget` each. Over-limit messages are dropped; a connection that stays over its limit for
`abuse_close_seconds` is to be closed (4008 in the native protocol).
"""

from __future__ import annotations

from enum import Enum

from shoal.core.ratelimit import TokenBucket

_GRACE = 1.0
"""Seconds without a drop after which a connection counts as back under its limit."""


class Verdict(Enum):
    ALLOW = "allow"
    DROP = "drop"
    CLOSE = "close"


class MessageBudget:
    """Allows `rate` messages per second with bursts of `burst`; told the time, reads no clock."""

    __slots__ = ("_abuse_since", "_bucket", "_last_drop_at", "abuse_close_seconds")

    def __init__(self, rate: float, burst: int, abuse_close_seconds: float, now: float) -> None:
        self._bucket = TokenBucket(rate, burst, now)
        self.abuse_close_seconds = abuse_close_seconds
        self._abuse_since: float | None = None
        self._last_drop_at = float("-inf")

    def take(self, now: float) -> Verdict:
        """Spend one message: ALLOW it, DROP it, or CLOSE the connection (over the limit for too long)."""
        if self._bucket.take(now):
            return Verdict.ALLOW
        if self._abuse_since is None or now - self._last_drop_at > _GRACE:
            self._abuse_since = now
        self._last_drop_at = now
        if now - self._abuse_since >= self.abuse_close_seconds:
            return Verdict.CLOSE
        return Verdict.DROP
