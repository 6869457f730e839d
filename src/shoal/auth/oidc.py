"""Tokens from an external OpenID Connect provider (Cognito, Keycloak, Auth0, ...), checked with RS256.

The browser logs in at the provider (authorization code + PKCE); Shoal only checks the tokens it is given:
signature against the provider's JWKS, `iss`, `exp`, and the audience. ID tokens name the client in `aud`;
Cognito's access tokens have no `aud` but `client_id` (and `token_use: access`), which is accepted too.

The JWKS is fetched with aiohttp (from `jwks_url`, or the `jwks_uri` of the issuer's discovery document),
cached for `cache_seconds`, and fetched again when a token names a key id it does not hold (the provider
rotated its keys). Such refetches are limited (a burst of 3, then one a minute), so tokens with made-up key
ids cannot make the server fetch the JWKS for every request. PyJWKClient is not used: it fetches with
blocking urllib and refetches on every unknown key id.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from shoal.core.ratelimit import TokenBucket

ALGORITHMS = ("RS256",)


class OidcRefused(Exception):
    """The token is not a valid token of the configured provider for the configured audience."""


@dataclass(frozen=True, slots=True)
class OidcUser:
    issuer: str
    subject: str
    name: str


class OidcVerifier:
    """Checks RS256 tokens of one issuer for one audience against the issuer's JWKS (cached)."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        cache_seconds: float = 3600.0,
        timeout: float = 5.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.jwks_url = jwks_url
        self.cache_seconds = cache_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._refetches = TokenBucket(rate=1 / 60, burst=3, now=time.monotonic())
        self._fetching: asyncio.Lock | None = None
        self._session: aiohttp.ClientSession | None = None

    async def verify(self, token: str) -> OidcUser:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise OidcRefused(f"the token is malformed: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise OidcRefused(f"the token's algorithm {header.get('alg')!r} is not accepted")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                issuer=self.issuer,
                options={"verify_aud": False, "require": ["exp", "iat", "iss", "sub"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise OidcRefused("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise OidcRefused("the token's signature is invalid") from None
        except jwt.InvalidTokenError as exc:
            raise OidcRefused(f"the token is invalid: {exc}") from None
        if not self._meant_for_us(claims):
            raise OidcRefused("the token is meant for another audience")
        name = next(
            (str(claims[c]) for c in ("name", "preferred_username", "cognito:username", "email") if claims.get(c)),
            str(claims["sub"]),
        )
        return OidcUser(self.issuer, str(claims["sub"]), name)

    def _meant_for_us(self, claims: dict[str, Any]) -> bool:
        audience = claims.get("aud")
        if audience is not None:
            return self.audience in (audience if isinstance(audience, list) else [audience])
        # Cognito access tokens: no `aud`, the app client in `client_id`
        return claims.get("token_use") == "access" and claims.get("client_id") == self.audience

    async def _key(self, key_id: str) -> jwt.PyJWK:
        expired = time.monotonic() - self._fetched_at > self.cache_seconds
        if expired or (key_id not in self._keys and self._refetches.take(time.monotonic())):
            await self._refresh()
        key = self._keys.get(key_id)
        if key is None:
            raise OidcRefused(f"the provider has no signing key {key_id!r}")
        return key

    async def _refresh(self) -> None:
        if self._fetching is None:
            self._fetching = asyncio.Lock()
        async with self._fetching:
            try:
                url = self.jwks_url or await self._discover_jwks_url()
                document = await self._get_json(url)
                keys = jwt.PyJWKSet.from_dict(document).keys
            except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWKSetError) as exc:
                if self._keys:  # keep the keys we have; try again after the next refetch allowance
                    return
                raise OidcRefused(f"the provider's signing keys cannot be fetched: {exc}") from None
            self._keys = {str(key.key_id): key for key in keys if key.key_id}
            self._fetched_at = time.monotonic()

    async def _discover_jwks_url(self) -> str:
        document = await self._get_json(f"{self.issuer}/.well-known/openid-configuration")
        if str(document.get("issuer", "")).rstrip("/") != self.issuer:
            raise ValueError("the discovery document names another issuer")
        return str(document["jwks_uri"])

    async def _get_json(self, url: str) -> dict[str, Any]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        async with self._session.get(url) as response:
            response.raise_for_status()
            document = await response.json(content_type=None)
        if not isinstance(document, dict):
            raise ValueError(f"{url} did not answer with a JSON object")
        return document

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
