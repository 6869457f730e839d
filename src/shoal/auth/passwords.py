"""Password hashing with argon2id, off the event loop.

A hash costs about 120 ms of CPU and 64 MiB of memory (argon2-cffi's defaults: t=3, m=64 MiB, p=4), on
purpose. Each runs in a worker thread, and at most `max_concurrent` run at once, so a burst of logins
neither blocks the loop nor exhausts memory: the others wait for a slot.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 256


class Passwords:
    """argon2id hashes, computed in threads, `max_concurrent` at a time (default 2: one per core here)."""

    def __init__(self, max_concurrent: int = 2, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        self._slots = asyncio.Semaphore(max_concurrent)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches. With no hash (unknown user) a dummy hash is checked anyway, so the
        answer takes as long and does not tell which usernames exist."""
        if password_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash("no such user: this hash only spends the same time")
            password_hash = self._dummy
            password = password + "\0"  # never matches
        async with self._slots:
            return await asyncio.to_thread(self._check, password_hash, password)

    def _check(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than today's (rehash it at the next login)."""
        return self._hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """Why `password` is not acceptable, or None."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        return f"a password has {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
    return None
