"""Shoal's own tokens: HS256 access tokens, single-use WebSocket tickets, opaque refresh tokens, and the secret.

- **Access token** (JWT, HS256, `aud` "shoal", 15 minutes by default): `sub` is the user id, `sid` its session.
  A guest token has no session; it carries `guest`, `name` and `color` instead.
- **WebSocket ticket** (JWT, `aud` "shoal-ws", 60 s, single use): for `?token=` in a WebSocket URL, where a
  token may end up in logs. Each ticket's `jti` is remembered until it expires, so it works once per server.
- **Refresh token**: `USER.SESSION.SECRET`, opaque to clients. Only a SHA-256 of the secret is stored (the secret
  is 256 random bits, so a slow hash adds nothing); a refresh rotates the secret, and presenting an old one
  ends the session (someone copied it).

The signing secret is 32 random bytes in `DATA/auth-secret` (mode 0600), created on first run, or given in
configuration (several servers must share it).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

ISSUER = "shoal"
ACCESS_AUDIENCE = "shoal"
TICKET_AUDIENCE = "shoal-ws"
SECRET_FILE = "auth-secret"


class TokenRefused(Exception):
    """A token is expired, badly signed, for another audience, malformed, or already used."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a verified access token or ticket says."""

    user: str
    session: str | None
    guest: bool
    name: str | None
    color: str | None
    ticket: bool


def load_or_create_secret(data_dir: Path) -> bytes:
    """The signing secret in `data_dir/auth-secret`, created (mode 0600, atomically) if missing."""
    path = data_dir / SECRET_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_bytes().strip()
        if len(secret) < 32:
            raise ValueError(f"{path} holds fewer than 32 bytes: delete it to make a new secret") from None
        return secret
    secret = secrets.token_urlsafe(48).encode()
    with os.fdopen(descriptor, "wb") as file:
        file.write(secret)
    return secret


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Tokens:
    """Issues and verifies access tokens and tickets with one HS256 secret; makes and parses refresh tokens."""

    def __init__(self, secret: bytes, access_ttl: float = 900.0, ticket_ttl: float = 60.0) -> None:
        if len(secret) < 32:
            raise ValueError("the token signing secret must be at least 32 bytes")
        self._secret = secret
        self.access_ttl = access_ttl
        self.ticket_ttl = ticket_ttl
        self._used_tickets: dict[str, float] = {}
        """Ticket ids already used, until they expire (insertion order = expiry order)."""

    def access_token(self, user: str, session: str, now: float | None = None) -> str:
        return self._sign({"sub": user, "sid": session, "aud": ACCESS_AUDIENCE}, self.access_ttl, now)

    def guest_token(self, guest: str, name: str, color: str, now: float | None = None) -> str:
        claims = {"sub": guest, "aud": ACCESS_AUDIENCE, "guest": True, "name": name, "color": color}
        return self._sign(claims, self.access_ttl, now)

    def ticket(self, claims: Claims, now: float | None = None) -> str:
        """A single-use WebSocket ticket for whoever `claims` (a verified access token) names."""
        body: dict[str, Any] = {"sub": claims.user, "aud": TICKET_AUDIENCE, "jti": secrets.token_urlsafe(12)}
        if claims.session is not None:
            body["sid"] = claims.session
        if claims.guest:
            body.update(guest=True, name=claims.name, color=claims.color)
        return self._sign(body, self.ticket_ttl, now)

    def _sign(self, claims: dict[str, Any], ttl: float, now: float | None) -> str:
        issued = int(time.time() if now is None else now)
        return jwt.encode({**claims, "iss": ISSUER, "iat": issued, "exp": issued + int(ttl)}, self._secret, "HS256")

    def verify(self, token: str, *, tickets: bool = False) -> Claims:
        """The claims of a valid access token (or, with `tickets`, also of an unused ticket, which is used up).

        Raises `TokenRefused` saying why (expired, bad signature, wrong audience, ...).
        """
        audiences = [ACCESS_AUDIENCE, TICKET_AUDIENCE] if tickets else [ACCESS_AUDIENCE]
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=audiences,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise TokenRefused("the token's signature is invalid") from None
        except jwt.InvalidAudienceError:
            raise TokenRefused("the token is meant for another audience") from None
        except jwt.InvalidTokenError as exc:
            raise TokenRefused(f"the token is invalid: {exc}") from None
        ticket = claims["aud"] == TICKET_AUDIENCE
        if ticket:
            self._use_ticket(str(claims.get("jti", "")), float(claims["exp"]))
        return Claims(
            user=str(claims["sub"]),
            session=claims.get("sid"),
            guest=bool(claims.get("guest", False)),
            name=claims.get("name"),
            color=claims.get("color"),
            ticket=ticket,
        )

    def _use_ticket(self, ticket_id: str, expires_at: float) -> None:
        now = time.time()
        used = self._used_tickets
        while used and next(iter(used.values())) <= now:  # forget tickets that expired anyway
            del used[next(iter(used))]
        if not ticket_id or ticket_id in used:
            raise TokenRefused("the ticket was already used")
        used[ticket_id] = expires_at

    @staticmethod
    def new_refresh_secret() -> str:
        return secrets.token_urlsafe(32)

    @staticmethod
    def refresh_token(user: str, session: str, secret: str) -> str:
        return f"{user}.{session}.{secret}"

    @staticmethod
    def parse_refresh_token(token: str) -> tuple[str, str, str]:
        """(user, session, secret); raises `TokenRefused` for anything else."""
        parts = token.split(".")
        if len(parts) != 3 or not all(parts) or len(token) > 512:
            raise TokenRefused("not a refresh token")
        user, session, secret = parts
        return user, session, secret
