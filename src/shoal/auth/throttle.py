"""Login attempts limited per account and per client address, and the client address behind proxies.

Both limits apply to every attempt (failed or not): by default an account takes 5 attempts, then one every
12 s; an address takes 20, then one every 3 s. So guessing one account's password from many addresses is as
slow as from one, and one address cannot try many accounts quickly. Each limiter keeps at most `max_keys`
buckets (least recently used first out), so made-up usernames cannot grow memory; filling it takes one
address hours at its own rate.

`X-Forwarded-For` is believed only when the connection comes from a configured proxy, and then only the
addresses the proxies appended (read from the right): the left end is whatever the client wrote.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable

from shoal.core.ratelimit import TokenBucket

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class KeyedLimiter:
    """One token bucket per key, for at most `max_keys` keys (the least recently used is forgotten)."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def retry_after(self) -> int:
        """Seconds until one more attempt is allowed, at most."""
        return max(1, round(1 / self.rate))


class LoginThrottle:
    """Limits login attempts per account and per client address (both must allow the attempt)."""

    def __init__(self, max_keys: int = 10_000) -> None:
        self.accounts = KeyedLimiter(rate=1 / 12, burst=5, max_keys=max_keys)
        self.addresses = KeyedLimiter(rate=1 / 3, burst=20, max_keys=max_keys)

    def allow(self, account: str, address: str, now: float) -> int | None:
        """None if the attempt may go ahead, else the seconds to wait (for a `Retry-After` header)."""
        by_address = self.addresses.take(address, now)
        by_account = self.accounts.take(account, now)
        if not by_address:
            return self.addresses.retry_after()
        if not by_account:
            return self.accounts.retry_after()
        return None


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Proxy addresses or networks (`10.0.0.1`, `10.0.0.0/8`, `::1`); raises `ValueError` for anything else."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def client_address(peer: str, forwarded_for: str | None, trusted_proxies: tuple[Network, ...]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy, in which case the rightmost
    `X-Forwarded-For` entry that is not itself a trusted proxy (what the nearest untrusted hop connected from)."""
    if not forwarded_for or not _trusted(peer, trusted_proxies):
        return peer
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        if not _trusted(hop, trusted_proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed entry: the proxies' word stops being usable here
    return peer


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)
