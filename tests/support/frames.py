"""Helpers for tests of binary frame checks."""

from __future__ import annotations

from collections.abc import Callable

from shoal.protocol.binary import BinaryFormatError


def with_changes(frame: bytes, changes: list[tuple[int, int]]) -> bytes:
    """`frame` with each (position, byte value) of `changes` applied; positions past its end are ignored."""
    changed = bytearray(frame)
    for position, value in changes:
        if position < len(changed):
            changed[position] = value
    return bytes(changed)


def accepts(check: Callable[[bytes], object], frame: bytes) -> bool:
    """Whether `check` accepts `frame` rather than raising BinaryFormatError."""
    try:
        check(frame)
    except BinaryFormatError:
        return False
    return True
