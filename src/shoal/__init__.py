"""Shoal: a real-time multiplayer WebXR server in one Python process."""

__version__ = "0.1.0"
