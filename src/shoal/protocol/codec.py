"""Codecs turn frames into client messages and server messages into frames.

A codec is chosen per connection at the handshake. The room engine encodes each frame once per codec
in use and hands the same bytes to every member that speaks it. Protocol v1 has one codec, JSON text;
the interface leaves room for a compact binary one.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from shoal.protocol.errors import ErrorCode
from shoal.protocol.messages import ClientMessage, ClientMessages, ServerMessage


class DecodeFailure(Exception):
    """A frame that is not a valid client message. `code` is the error code to reply with."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Codec(Protocol):
    """What the engine needs from a wire format."""

    name: str
    binary: bool
    """True when frames are sent as binary WebSocket messages, False for text."""

    def decode(self, frame: bytes) -> ClientMessage:
        """Decode and validate one client frame; raise `DecodeFailure` if it is not a valid message."""
        ...

    def encode(self, message: ServerMessage) -> bytes:
        """Encode one server message as the payload of one frame."""
        ...


class JsonCodec:
    """Shoal protocol v1 as JSON text frames (`Sec-WebSocket-Protocol: shoal.v1.json`, the default).

    Output is strict RFC 8259 JSON: the decoder refuses NaN, Infinity and numbers that overflow a
    double, so no non-finite number can reach a peer.
    """

    name = "json"
    binary = False

    def __init__(self) -> None:
        self._decoder = msgspec.json.Decoder(ClientMessages)
        self._encoder = msgspec.json.Encoder()

    def decode(self, frame: bytes) -> ClientMessage:
        try:
            return self._decoder.decode(frame)
        except msgspec.ValidationError as exc:
            text = str(exc)
            if "`$.type`" in text or "required field `type`" in text:
                raise DecodeFailure(ErrorCode.UNKNOWN_TYPE, text) from None
            raise DecodeFailure(ErrorCode.INVALID_MESSAGE, text) from None
        except msgspec.DecodeError as exc:
            raise DecodeFailure(ErrorCode.BAD_JSON, str(exc)) from None
        except UnicodeDecodeError:
            raise DecodeFailure(ErrorCode.BAD_JSON, "frame is not valid UTF-8") from None
        except RecursionError:
            raise DecodeFailure(ErrorCode.INVALID_MESSAGE, "JSON nested too deeply") from None

    def encode(self, message: ServerMessage) -> bytes:
        return self._encoder.encode(message)


JSON = JsonCodec()
"""The shared JSON codec instance (codecs are stateless)."""
