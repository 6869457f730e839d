"""Transports: where bytes from sockets enter the engine and where the engine's frames leave."""

from shoal.transport.websocket import WebSocketTransport

__all__ = ["WebSocketTransport"]
