"""Profiles: `GET/PATCH /api/me`, `PUT /api/me/avatar`, `GET /api/users/{id}`, `GET /api/users/{id}/avatar`.

An avatar upload is the raw image as the request body (PNG, JPEG or WebP, at most 1 MiB), checked by content
(`shoal.web.images`). The avatar URL in profiles and in member presence carries the avatar's version, so an
image is served with long caching and a new upload gets a new URL. New names, colours and images show in
rooms from the member's next connection.
"""

from __future__ import annotations

import asyncio
import re

import msgspec
from aiohttp import web

from shoal.auth import AuthError
from shoal.auth.accounts import avatar_url, clean_name, display_name_problem
from shoal.store.accounts import AvatarRecord
from shoal.web.auth_api import ACCOUNTS, current_user, json, profile, read_body
from shoal.web.images import ImageRefused, check_avatar

COLOR = re.compile(r"#[0-9a-fA-F]{6}")
AVATAR_MAX_AGE = 86400
"""Seconds a client may cache an avatar image (the URL changes with every upload)."""


class ProfileChange(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None
    color: str | None = None


async def me(request: web.Request) -> web.Response:
    """`GET /api/me`: the caller's profile."""
    return json(profile(await current_user(request)))


async def change_me(request: web.Request) -> web.Response:
    """`PATCH /api/me {name?, color?}`: change the display name or colour (`#rrggbb`)."""
    user = await current_user(request)
    change = await read_body(request, ProfileChange)
    name = user.display_name if change.name is None else clean_name(change.name)
    if problem := display_name_problem(name):
        raise AuthError(400, problem)
    if change.color is not None and not COLOR.fullmatch(change.color):
        raise AuthError(400, "a colour is #rrggbb")
    user = msgspec.structs.replace(user, display_name=name, color=(change.color or user.color).lower())
    await request.app[ACCOUNTS].store.update_user(user)
    return json(profile(user))


async def put_avatar(request: web.Request) -> web.Response:
    """`PUT /api/me/avatar` with the image as the body: 415 unless it is a real PNG, JPEG or WebP image."""
    user = await current_user(request)
    data = await request.read()  # the app refuses bodies over 1 MiB with 413
    try:
        content_type = await asyncio.to_thread(check_avatar, data)
    except ImageRefused as refused:
        raise web.HTTPUnsupportedMediaType(reason=str(refused)) from None
    store = request.app[ACCOUNTS].store
    version = user.avatar_version + 1
    await store.put_avatar(AvatarRecord(user.id, content_type, data, version))
    user = msgspec.structs.replace(user, avatar_version=version)
    await store.update_user(user)
    return json(profile(user))


async def user_profile(request: web.Request) -> web.Response:
    """`GET /api/users/{id}`: anyone's public profile (name, colour, avatar URL); 404 if unknown."""
    user = await request.app[ACCOUNTS].store.load_user(request.match_info["user"])
    if user is None:
        raise web.HTTPNotFound(reason="no such user")
    return json({"id": user.id, "name": user.display_name, "color": user.color, "avatar": avatar_url(user)})


async def user_avatar(request: web.Request) -> web.Response:
    """`GET /api/users/{id}/avatar`: the image with its real Content-Type, an ETag and a day of caching
    (`immutable` when the URL names the current version). Loadable from any origin (WebGL textures need CORS)."""
    avatar = await request.app[ACCOUNTS].store.load_avatar(request.match_info["user"])
    if avatar is None:
        raise web.HTTPNotFound(reason="this user has no avatar image")
    etag = f'"v{avatar.version}"'
    cache = f"public, max-age={AVATAR_MAX_AGE}"
    if request.query.get("v") == str(avatar.version):
        cache += ", immutable"
    headers = {
        "ETag": etag,
        "Cache-Control": cache,
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
        "Access-Control-Allow-Origin": "*",
    }
    if etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=avatar.data, content_type=avatar.content_type, headers=headers)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/me", me)
    app.router.add_patch("/api/me", change_me)
    app.router.add_put("/api/me/avatar", put_avatar)
    app.router.add_get("/api/users/{user}", user_profile)
    app.router.add_get("/api/users/{user}/avatar", user_avatar)
