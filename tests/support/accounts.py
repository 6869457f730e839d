"""Accounts over HTTP for end-to-end tests: one-call requests, registration and login, test images."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from PIL import Image

from support.servers import RunningServer

PASSWORD = "correct horse battery staple"


async def call(
    server: RunningServer,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Mapping[str, str]]:
    """One HTTP request; (status, parsed JSON or raw bytes, headers)."""
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    payload = json.dumps(body).encode() if body is not None else data
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, data=payload, headers=sent) as response,
    ):
        raw = await response.read()
        parsed: Any = json.loads(raw) if response.content_type == "application/json" else raw
        return response.status, parsed, response.headers.copy()  # case-insensitive keys


async def register(server: RunningServer, username: str, name: str | None = None) -> dict[str, Any]:
    status, body, _ = await call(server, "POST", "/api/auth/register", {"username": username, "password": PASSWORD,
                                                                         "name": name})  # fmt: skip
    assert status == 201, body
    return body


async def login(server: RunningServer, username: str, password: str = PASSWORD) -> tuple[int, Any, Mapping[str, str]]:
    return await call(server, "POST", "/api/auth/login", {"username": username, "password": password})


def image(kind: str, size: tuple[int, int] = (64, 64)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, format=kind)
    return buffer.getvalue()
