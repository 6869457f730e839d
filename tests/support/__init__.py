"""Shared test support: real servers, real clients, and drivers for the sans-I/O core.

Modules: `ci` (skip locally, fail under CI), `servers` (in-process and subprocess servers), `clients`
(protocol peers built on the independent `websockets` library, strict JSON), `core` (an engine driven
by a hand-moved clock), `waiting` (bounded polling).
"""
