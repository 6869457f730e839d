"""Shoal's optional C speedups: `shoal/_speedups.c`, built at install time when a C compiler is there.

A few functions do byte work and arithmetic for every pose or hand a server relays, and in them the
interpreter's dispatch costs more than the work: `pack_pose` and `pack_joints` (a pose or hand-joints frame
checked on arrival), `packed_entry` (a pose copied into a tick entry), and `encode_body`, `encode_hand` and
`pack_quaternion` (poses, hands and rotations quantised for binary members when their sender spoke JSON), in
`shoal.protocol.binary` and `shoal.protocol.joints`. Each has a C version in `_speedups` and a Python twin;
the C version takes the common input only and passes everything else, errors included, to its twin, and
the tests hold the two to the same results. Those modules use the C versions when `native` is set.

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
