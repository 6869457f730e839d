"""Accounts and tokens: who a connection or a request is, checked before it reaches the room engine.

- `passwords`: argon2id hashing in worker threads, at most a few at a time;
- `tokens`: HS256 access tokens, single-use WebSocket tickets, opaque refresh tokens, the signing secret;
- `oidc`: RS256 tokens of an external OpenID Connect provider (Cognito included), checked against its JWKS;
- `throttle`: login attempts limited per account and per client address; the client address behind proxies;
- `accounts`: the service the REST API and the WebSocket handshake use (register, log in, refresh, log out,
  guests, and `identify(token)` -> `Identity`).
"""

from shoal.auth.accounts import Accounts, AuthError
from shoal.auth.passwords import Passwords
from shoal.auth.settings import AuthSettings

__all__ = ["Accounts", "AuthError", "AuthSettings", "Passwords"]
