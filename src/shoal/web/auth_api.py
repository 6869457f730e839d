"""`/api/auth/...`: register, log in, refresh, log out, guests, WebSocket tickets. JSON in, JSON out.

Also the helpers the other account routes share: the bearer token of a request, its client address (behind
trusted proxies), strict JSON bodies, and `AuthError` -> HTTP error (429s carry `Retry-After`).
"""

from __future__ import annotations

from typing import TypeVar

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from shoal.auth import Accounts, AuthError
from shoal.auth.accounts import avatar_url
from shoal.auth.throttle import Network, client_address
from shoal.auth.tokens import TokenRefused
from shoal.store.accounts import UserRecord
from shoal.web.errors import error_response

ACCOUNTS: web.AppKey[Accounts] = web.AppKey("accounts", Accounts)
TRUSTED_PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("trusted_proxies", tuple)

Body = TypeVar("Body", bound=msgspec.Struct)


class Credentials(msgspec.Struct, forbid_unknown_fields=True):
    username: str
    password: str
    name: str | None = None
    """Display name at registration (default: the username)."""


class RefreshRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: str


class LogoutRequest(msgspec.Struct, forbid_unknown_fields=True):
    refresh_token: str | None = None


class GuestRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: str | None = None


@web.middleware
async def auth_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """An `AuthError` becomes a JSON error with its HTTP status."""
    try:
        return await handler(request)
    except AuthError as error:
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        if error.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="shoal"'
        return error_response(error.status, error.message, headers)


async def read_body(request: web.Request, kind: type[Body], *, optional: bool = False) -> Body:
    """The request's JSON body as `kind`; 400 with the reason when it is not (unknown fields included)."""
    data = await request.read()
    if not data and optional:
        return kind()
    try:
        return msgspec.json.decode(data, type=kind)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise web.HTTPBadRequest(reason=f"invalid request body: {exc}") from None


def bearer_token(request: web.Request) -> str:
    """The token of `Authorization: Bearer TOKEN`; 401 without one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(401, "send Authorization: Bearer <access token>")
    return token.strip()


async def current_user(request: web.Request) -> UserRecord:
    """The account of the request's bearer token (an access or OIDC token); 401/403 otherwise."""
    user, _ = await request.app[ACCOUNTS].authenticate(bearer_token(request))
    return user


def address_of(request: web.Request) -> str:
    return client_address(request.remote or "", request.headers.get("X-Forwarded-For"), request.app[TRUSTED_PROXIES])


def json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(body), status=status, content_type="application/json")


def profile(user: UserRecord) -> dict[str, object]:
    """An account as its owner sees it (`GET /api/me`)."""
    return {
        "id": user.id,
        "username": user.username,
        "name": user.display_name,
        "color": user.color,
        "avatar": avatar_url(user),
        "provider": user.provider,
    }


async def register(request: web.Request) -> web.Response:
    """`POST /api/auth/register {username, password, name?}` -> 201 with tokens and the new profile."""
    body = await read_body(request, Credentials)
    accounts = request.app[ACCOUNTS]
    tokens = await accounts.register(body.username, body.password, body.name, address_of(request))
    user = await accounts.store.find_user(body.username.strip().lower())
    assert user is not None
    return json({**msgspec.to_builtins(tokens), "user": profile(user)}, status=201)


async def login(request: web.Request) -> web.Response:
    """`POST /api/auth/login {username, password}` -> tokens (429 with Retry-After past the attempt limits)."""
    body = await read_body(request, Credentials)
    accounts = request.app[ACCOUNTS]
    tokens = await accounts.login(body.username, body.password, address_of(request))
    user = await accounts.store.find_user(body.username.strip().lower())
    assert user is not None
    return json({**msgspec.to_builtins(tokens), "user": profile(user)})


async def refresh(request: web.Request) -> web.Response:
    """`POST /api/auth/refresh {refresh_token}` -> new tokens; the old refresh token stops working."""
    body = await read_body(request, RefreshRequest)
    return json(await request.app[ACCOUNTS].refresh(body.refresh_token))


async def logout(request: web.Request) -> web.Response:
    """`POST /api/auth/logout {refresh_token}` (or with the session's bearer token) -> 204. The session's
    access tokens and refresh token are refused from then on, over REST and WebSocket."""
    body = await read_body(request, LogoutRequest, optional=True)
    accounts = request.app[ACCOUNTS]
    claims = None
    if body.refresh_token is None:
        try:
            claims = accounts.tokens.verify(bearer_token(request))
        except TokenRefused as exc:
            raise AuthError(401, str(exc)) from None
    await accounts.logout(body.refresh_token, claims)
    return web.Response(status=204)


async def guest(request: web.Request) -> web.Response:
    """`POST /api/auth/guest {name?}` -> a guest token with a generated name (403 with `--auth required`)."""
    body = await read_body(request, GuestRequest, optional=True)
    return json(request.app[ACCOUNTS].guest(body.name), status=201)


async def ticket(request: web.Request) -> web.Response:
    """`POST /api/auth/ticket` with a bearer access (or guest) token -> a single-use WebSocket ticket valid for
    60 s, for `ws://HOST/ws?token=TICKET` (so the long-lived token never appears in a URL)."""
    accounts = request.app[ACCOUNTS]
    try:
        claims = accounts.tokens.verify(bearer_token(request))
    except TokenRefused as exc:
        raise AuthError(401, str(exc)) from None
    if not claims.guest:
        await accounts.authenticate(bearer_token(request))  # the session must still be live
    return json({"ticket": accounts.tokens.ticket(claims), "expires_in": int(accounts.tokens.ticket_ttl)}, 201)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/auth/register", register)
    app.router.add_post("/api/auth/login", login)
    app.router.add_post("/api/auth/refresh", refresh)
    app.router.add_post("/api/auth/logout", logout)
    app.router.add_post("/api/auth/guest", guest)
    app.router.add_post("/api/auth/ticket", ticket)
