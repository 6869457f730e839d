"""Accounts in the app: the `Accounts` service built from the configuration, its routes, and the transport's
origin and token checks."""

from __future__ import annotations

from aiohttp import web

from shoal.auth import Accounts, AuthSettings
from shoal.auth.oidc import OidcVerifier
from shoal.auth.throttle import parse_networks
from shoal.auth.tokens import Tokens, load_or_create_secret
from shoal.config import ServerConfig
from shoal.store import Store
from shoal.transport.websocket import WebSocketTransport
from shoal.web import auth_api, rooms_api, users_api


def build_accounts(settings: AuthSettings, config: ServerConfig, store: Store) -> Accounts:
    """The accounts service; the signing secret comes from the settings or `DATA/auth-secret` (created)."""
    secret = settings.secret or load_or_create_secret(config.data_dir)
    oidc = None
    if settings.oidc_issuer:
        if not settings.oidc_audience:
            raise ValueError("--oidc-issuer needs --oidc-audience (the client id tokens are issued for)")
        oidc = OidcVerifier(settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
    return Accounts(store, Tokens(secret, access_ttl=settings.access_ttl), settings, oidc=oidc)


def install(app: web.Application, config: ServerConfig, store: Store, transport: WebSocketTransport) -> None:
    """Add `/api/auth/...`, `/api/me`, `/api/users/...` and the room access routes; arm the WebSocket checks."""
    settings = config.auth
    accounts = build_accounts(settings, config, store)
    proxies = parse_networks(settings.trusted_proxies)
    app[auth_api.ACCOUNTS] = accounts
    app[auth_api.TRUSTED_PROXIES] = proxies
    app[rooms_api.PERFORM] = transport.perform
    transport.access.accounts = accounts
    transport.access.allowed_origins = settings.allowed_origins
    transport.access.trusted_proxies = proxies
    auth_api.add_routes(app)
    users_api.add_routes(app)
    rooms_api.add_routes(app)

    async def close_accounts(app: web.Application) -> None:
        await transport.access.stop()
        await accounts.close()

    app.on_cleanup.append(close_accounts)
