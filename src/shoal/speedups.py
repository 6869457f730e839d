"""Shoal's optional C speedups: `shoal/_speedups.c`, built at install time when a C compiler is there.

A few functions run for every pose a server relays, and in them the interpreter's dispatch costs more than
the work itself. Each has a C version in `_speedups` and a Python twin that does exactly the same, which the
tests hold to the same results:

- `pack_pose` and `packed_entry` (`shoal.protocol.binary`): a binary pose checked on arrival, and copied
  into a tick entry;
- `fan_out` (`shoal.transport.frames`): a tick frame written to every member of a room.

The modules that define the twins use the C versions when `native` is set. It is None when the extension
was not built (no compiler at install time; everything then works in Python, a little slower), or when the
environment variable `SHOAL_NO_SPEEDUPS` is set to anything but an empty string (to compare the two, or to
rule the C code out when chasing a bug).
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
