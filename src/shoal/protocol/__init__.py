"""Shoal's own wire protocol: message types, error and close codes, and the codecs that frame them."""

from shoal.protocol.codec import JSON, Codec, DecodeFailure, JsonCodec
from shoal.protocol.errors import CloseCode, ErrorCode
from shoal.protocol.messages import PROTOCOL_VERSION

__all__ = ["JSON", "PROTOCOL_VERSION", "CloseCode", "Codec", "DecodeFailure", "ErrorCode", "JsonCodec"]
