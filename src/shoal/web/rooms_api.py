"""Rooms with owners: create one with settings, change them, give roles, ban and unban, over REST.

- `POST /api/rooms {name, private?, password?, invite?, max_members?, default_role?}`: the caller (an account)
  becomes the owner. 409 if the room already exists (live or stored). With `invite: true` the answer holds
  the invite token, once (only its hash is stored): share `?invite=TOKEN` links; joins send it in `join`.
- `GET /api/rooms/{room}/access`: settings (never hashes), roles and bans; moderators and the owner.
- `PATCH /api/rooms/{room}/settings`: the owner changes them (`password: ""` removes it; `new_invite: true`
  makes a new invite, the old one stops working).
- `PUT /api/rooms/{room}/roles/{user} {role}` and `DELETE` (back to the default role): the owner makes
  moderators; moderators move members and viewers between those roles.
- `PUT /api/rooms/{room}/bans/{user} {seconds?, reason?}` (kicks the user out if present) and `DELETE`.

Every change is stored, then applied to the live room, so protocol and REST agree.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Annotated

import msgspec
from aiohttp import web
from msgspec import Meta

from shoal.auth import AuthError
from shoal.core.access import Ban, Role, RoomAccess, RoomSettings, invite_hash, may_assign, may_moderate
from shoal.core.actions import Action
from shoal.core.engine import ROOM_NAME
from shoal.room_access import load_access
from shoal.store.accounts import BanRecord, UserRecord
from shoal.web.api import ENGINE, PERSISTENCE
from shoal.web.auth_api import ACCOUNTS, current_user, json, read_body

PERFORM: web.AppKey[Callable[[list[Action], float], None]] = web.AppKey("perform")
"""The transport's action runner: what the engine answers to a REST change (kicks, role updates) goes out."""

Password = Annotated[str, Meta(max_length=256)]
Cap = Annotated[int, Meta(ge=1, le=10_000)]


class NewRoom(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    private: bool = False
    password: Password | None = None
    invite: bool = False
    max_members: Cap | None = None
    default_role: Role = Role.MEMBER


class SettingsChange(msgspec.Struct, forbid_unknown_fields=True):
    private: bool | None = None
    password: Password | None = None
    new_invite: bool = False
    max_members: Cap | None = None
    default_role: Role | None = None


class RoleChange(msgspec.Struct, forbid_unknown_fields=True):
    role: Role


class BanRequest(msgspec.Struct, forbid_unknown_fields=True):
    seconds: Annotated[float, Meta(gt=0, le=10 * 365 * 86400)] | None = None
    reason: Annotated[str, Meta(max_length=200)] = ""


def _room_name(request: web.Request) -> str:
    name = request.match_info["room"]
    if not ROOM_NAME.fullmatch(name) or len(name) > 64:
        raise web.HTTPBadRequest(reason="invalid room name")
    return name


async def _access(request: web.Request, room: str) -> RoomAccess:
    """The live room's access (current), else the stored one."""
    live = request.app[ENGINE].rooms.get(room)
    if live is not None and not live.loading:
        return live.access
    return await load_access(request.app[ACCOUNTS].store, room)


async def _acting(request: web.Request) -> tuple[str, UserRecord, RoomAccess, Role]:
    room = _room_name(request)
    user = await current_user(request)
    access = await _access(request, room)
    return room, user, access, access.role_of(user.id)


def _view(access: RoomAccess) -> dict[str, object]:
    settings = access.settings
    return {
        "owner": settings.owner,
        "private": settings.private,
        "has_password": settings.password_hash is not None,
        "has_invite": settings.invite_hash is not None,
        "max_members": settings.max_members,
        "default_role": settings.default_role,
        "roles": dict(access.roles),
        "bans": {user: {"until": ban.until, "reason": ban.reason, "by": ban.by} for user, ban in access.bans.items()},
    }


async def create_room(request: web.Request) -> web.Response:
    user = await current_user(request)
    body = await read_body(request, NewRoom)
    if not ROOM_NAME.fullmatch(body.name) or len(body.name) > 64:
        raise AuthError(400, "room names are 1-64 letters, digits or _.~:- starting with a letter or digit")
    store = request.app[ACCOUNTS].store
    persistence = request.app[PERSISTENCE]
    await persistence.writer.committed()
    existing = await store.load_room_access(body.name)
    if body.name in request.app[ENGINE].rooms or existing.settings is not None or await store.load_room(body.name):
        raise AuthError(409, f"room {body.name!r} already exists")
    invite = secrets.token_urlsafe(18) if body.invite else None
    password_hash = await request.app[ACCOUNTS].passwords.hash(body.password) if body.password else None
    settings = RoomSettings(
        owner=user.id,
        private=body.private,
        password_hash=password_hash,
        invite_hash=invite_hash(invite) if invite else None,
        max_members=body.max_members,
        default_role=body.default_role,
    )
    await store.put_room_settings(body.name, msgspec.json.encode(settings))
    await store.put_room_role(body.name, user.id, Role.OWNER.value)
    answer: dict[str, object] = {"room": body.name, **_view(RoomAccess(settings, {user.id: Role.OWNER}))}
    if invite:
        answer["invite"] = invite
    return json(answer, status=201)


async def room_access(request: web.Request) -> web.Response:
    room, _, access, role = await _acting(request)
    if role not in (Role.OWNER, Role.MODERATOR):
        raise AuthError(403, "only the owner and moderators see a room's roles and bans")
    return json({"room": room, **_view(access)})


async def change_settings(request: web.Request) -> web.Response:
    room, _, access, role = await _acting(request)
    if role is not Role.OWNER:
        raise AuthError(403, "only the room's owner changes its settings")
    change = await read_body(request, SettingsChange)
    settings = access.settings
    updates: dict[str, object] = {}
    if change.private is not None:
        updates["private"] = change.private
    if change.password is not None:
        passwords = request.app[ACCOUNTS].passwords
        updates["password_hash"] = await passwords.hash(change.password) if change.password else None
    if change.max_members is not None:
        updates["max_members"] = change.max_members
    if change.default_role is not None:
        updates["default_role"] = change.default_role
    invite = secrets.token_urlsafe(18) if change.new_invite else None
    if invite:
        updates["invite_hash"] = invite_hash(invite)
    settings = msgspec.structs.replace(settings, **updates)
    await request.app[ACCOUNTS].store.put_room_settings(room, msgspec.json.encode(settings))
    request.app[ENGINE].apply_settings(room, settings)
    access.settings = settings
    answer: dict[str, object] = {"room": room, **_view(access)}
    if invite:
        answer["invite"] = invite
    return json(answer)


async def set_role(request: web.Request) -> web.Response:
    room, _, access, role = await _acting(request)
    target = request.match_info["user"]
    new = (await read_body(request, RoleChange)).role if request.method == "PUT" else None
    current = access.role_of(target)
    if not may_assign(role, current, new or access.settings.default_role):
        raise AuthError(403, f"a {role} cannot make a {current} a {new or access.settings.default_role}")
    await request.app[ACCOUNTS].store.put_room_role(room, target, None if new is None else new.value)
    _perform(request, request.app[ENGINE].apply_role(room, target, new, time.time()))
    return web.Response(status=204)


async def ban(request: web.Request) -> web.Response:
    room, user, access, role = await _acting(request)
    target = request.match_info["user"]
    if not may_moderate(role, access.role_of(target)):
        raise AuthError(403, f"a {role} cannot ban a {access.role_of(target)}")
    store = request.app[ACCOUNTS].store
    now = time.time()
    if request.method == "DELETE":
        await store.delete_room_ban(room, target)
        _perform(request, request.app[ENGINE].apply_ban(room, target, None, now))
        return web.Response(status=204)
    body = await read_body(request, BanRequest, optional=True)
    until = None if body.seconds is None else now + body.seconds
    await store.put_room_ban(BanRecord(room, target, until, body.reason, user.id))
    _perform(request, request.app[ENGINE].apply_ban(room, target, Ban(until, body.reason, user.id), now))
    return web.Response(status=204)


def _perform(request: web.Request, actions: list[Action]) -> None:
    if actions:
        request.app[PERFORM](actions, time.time())


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/rooms", create_room)
    app.router.add_get("/api/rooms/{room}/access", room_access)
    app.router.add_patch("/api/rooms/{room}/settings", change_settings)
    app.router.add_put("/api/rooms/{room}/roles/{user}", set_role)
    app.router.add_delete("/api/rooms/{room}/roles/{user}", set_role)
    app.router.add_put("/api/rooms/{room}/bans/{user}", ban)
    app.router.add_delete("/api/rooms/{room}/bans/{user}", ban)
