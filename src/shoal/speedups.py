"""Shoal's optional C speedups: `shoal/_speedups.c`, built at install time when a C compiler is there.

Two functions run for every binary pose a server relays, and in them the interpreter's dispatch costs more
than the byte work itself: `pack_pose` (a pose frame checked on arrival) and `packed_entry` (copied into a
tick entry), both in `shoal.protocol.binary`. Each has a C version in `_speedups` and a Python twin that
does exactly the same, which the tests hold to the same results; `shoal.protocol.binary` uses the C
versions when `native` is set.

`native` is None when the extension was not built (no compiler at install time; everything then works in
Python, a little slower), or when the environment variable `SHOAL_NO_SPEEDUPS` is set to anything but an
empty string (to compare the two, or to rule the C code out when chasing a bug).
"""

from __future__ import annotations

import os
from types import ModuleType


def _load() -> ModuleType | None:
    if os.environ.get("SHOAL_NO_SPEEDUPS"):
        return None
    try:
        from shoal import _speedups  # type: ignore[attr-defined]  # a C extension, absent when not built
    except ImportError:
        return None
    return _speedups


native: ModuleType | None = _load()
"""The C extension module, or None: see the module's docstring."""
