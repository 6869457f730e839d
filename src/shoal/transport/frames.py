"""Server-to-client WebSocket frames built once and written to many sockets.

A tick frame goes to every member of a room. Building the RFC 6455 frame (header + payload) once and
writing the same bytes to each socket avoids re-framing per recipient, which is most of the per-
delivery cost in Python servers. Server frames are never masked (RFC 6455 section 5.1) and Shoal never
compresses or fragments them, so a frame is simply a header followed by the payload.
"""

from __future__ import annotations

import struct

_FIN = 0x80
TEXT = 0x1
BINARY = 0x2
PING = 0x9


def encode_frame(payload: bytes, binary: bool = False) -> bytes:
    """One complete, unmasked, unfragmented data frame (RFC 6455 section 5.2)."""
    first = _FIN | (BINARY if binary else TEXT)
    length = len(payload)
    if length < 126:
        header = bytes((first, length))
    elif length < 65536:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload


EMPTY_PING = bytes((_FIN | PING, 0))
"""A ping without payload (RFC 6455 section 5.5.2); peers must answer it with a pong."""
