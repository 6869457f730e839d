"""How a server authenticates (`shoal serve --auth ... --oidc-issuer ...`), as plain configuration."""

from __future__ import annotations

from dataclasses import dataclass

from shoal.core.access import AuthMode


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """The defaults: guests welcome, 15-minute access tokens, 30-day sessions, no OIDC provider, no proxies."""

    mode: AuthMode = AuthMode.GUEST
    secret: bytes | None = None
    """The HS256 signing secret (at least 32 bytes); None: `DATA/auth-secret`, created on first run."""
    access_ttl: float = 900.0
    refresh_ttl: float = 30 * 86400.0
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    """Where the provider's keys are; None: from the issuer's discovery document."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of reverse proxies whose `X-Forwarded-For` is believed."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins (`https://app.example.com`) allowed to open the WebSocket besides this server's own and
    localhost ones."""
