"""The accounts service: register, log in, refresh, log out, guests, and who a token belongs to.

The REST API (`shoal.web.auth_api`, `users_api`, `rooms_api`), the WebSocket handshake and `shoal user` all go
through `Accounts`; the room engine only ever sees the `Identity` it returns. Every failure is an `AuthError`
with the HTTP status it should become.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

import jwt
import msgspec

from shoal.auth.oidc import OidcRefused, OidcUser, OidcVerifier
from shoal.auth.passwords import Passwords, password_problem
from shoal.auth.settings import AuthSettings
from shoal.auth.throttle import LoginThrottle
from shoal.auth.tokens import Claims, TokenRefused, Tokens, secret_hash
from shoal.core.access import AuthMode, Identity
from shoal.core.engine import PALETTE
from shoal.store import Store, StoreConflict
from shoal.store.accounts import SessionRecord, UserRecord

USERNAME = re.compile(r"[a-z0-9][a-z0-9_.-]{2,31}")
"""Usernames: 3-32 lower-case letters, digits or `_ . -`, starting with a letter or digit."""
COLOR = re.compile(r"#[0-9a-f]{6}")
MAX_NAME_CHARS = 32


class AuthError(Exception):
    """A refused request: `status` is the HTTP status (401, 403, 409, 429, ...), `retry_after` in seconds for 429."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class TokenPair(msgspec.Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def display_name_problem(name: str) -> str | None:
    if not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable():
        return f"a display name has 1 to {MAX_NAME_CHARS} printable characters"
    return None


def clean_name(name: str) -> str:
    """White space collapsed, as the engine does for guest names."""
    return " ".join(name.split())


def avatar_url(user: UserRecord) -> str | None:
    """Where the account's avatar image is served; the version in the query makes caches fetch a new one."""
    return f"/api/users/{user.id}/avatar?v={user.avatar_version}" if user.avatar_version else None


def identity_of(user: UserRecord) -> Identity:
    return Identity(user=user.id, name=user.display_name, color=user.color, avatar=avatar_url(user))


def _color_for(user_id: str) -> str:
    return PALETTE[int(hashlib.sha256(user_id.encode()).hexdigest(), 16) % len(PALETTE)]


class Accounts:
    """Accounts in a `Store`, with Shoal's own tokens and, optionally, an external OIDC provider's."""

    def __init__(
        self,
        store: Store,
        tokens: Tokens,
        settings: AuthSettings | None = None,
        passwords: Passwords | None = None,
        oidc: OidcVerifier | None = None,
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.settings = settings or AuthSettings()
        self.passwords = passwords or Passwords()
        self.oidc = oidc
        self.throttle = LoginThrottle()
        self.registrations = LoginThrottle().addresses
        """Registrations per client address (each costs a password hash)."""

    @property
    def mode(self) -> AuthMode:
        return self.settings.mode

    # ---- accounts ------------------------------------------------------------------------------------

    async def create_user(self, username: str, password: str, display_name: str | None = None) -> UserRecord:
        """A new local account. Raises `AuthError` 400 for a bad username, password or name, 409 if taken."""
        username = username.strip().lower()
        if not USERNAME.fullmatch(username):
            raise AuthError(400, "a username has 3 to 32 letters, digits or _ . - and starts with a letter or digit")
        if problem := password_problem(password):
            raise AuthError(400, problem)
        name = clean_name(display_name if display_name is not None else username)
        if problem := display_name_problem(name):
            raise AuthError(400, problem)
        user_id = "u-" + secrets.token_hex(8)
        user = UserRecord(
            id=user_id,
            username=username,
            display_name=name,
            color=_color_for(user_id),
            password_hash=await self.passwords.hash(password),
            created_at=time.time(),
        )
        try:
            await self.store.create_user(user)
        except StoreConflict:
            raise AuthError(409, f"the username {username!r} is taken") from None
        return user

    async def set_password(self, user: UserRecord, password: str) -> UserRecord:
        """Change the password and end every session of the account (its tokens stop working)."""
        if problem := password_problem(password):
            raise AuthError(400, problem)
        changed = msgspec.structs.replace(user, password_hash=await self.passwords.hash(password))
        await self.store.update_user(changed)
        await self.store.delete_sessions(user.id)
        return changed

    async def find(self, username_or_id: str) -> UserRecord | None:
        return await self.store.find_user(username_or_id.strip().lower()) or await self.store.load_user(username_or_id)

    # ---- sessions --------------------------------------------------------------------------------------

    async def register(self, username: str, password: str, display_name: str | None, address: str) -> TokenPair:
        if self.mode is AuthMode.OFF:
            raise AuthError(403, "accounts are off on this server (--auth off)")
        if not self.registrations.take(address, time.monotonic()):
            raise AuthError(429, "too many registrations from this address", self.registrations.retry_after())
        user = await self.create_user(username, password, display_name)
        return await self._start_session(user)

    async def login(self, username: str, password: str, address: str) -> TokenPair:
        """Tokens for a correct username and password. Attempts are limited per account and per address (429)."""
        if self.mode is AuthMode.OFF:
            raise AuthError(403, "accounts are off on this server (--auth off)")
        username = username.strip().lower()
        wait = self.throttle.allow(username, address, time.monotonic())
        if wait is not None:
            raise AuthError(429, "too many login attempts: try again later", wait)
        user = await self.store.find_user(username) if USERNAME.fullmatch(username) else None
        if not await self.passwords.verify(user.password_hash if user else None, password) or user is None:
            raise AuthError(401, "wrong username or password")
        assert user.password_hash is not None
        if self.passwords.needs_rehash(user.password_hash):
            user = msgspec.structs.replace(user, password_hash=await self.passwords.hash(password))
            await self.store.update_user(user)
        return await self._start_session(user)

    async def _start_session(self, user: UserRecord) -> TokenPair:
        now = time.time()
        session = SessionRecord(user.id, secrets.token_hex(8), "", now + self.settings.refresh_ttl, now)
        return await self._issue(session, now)

    async def _issue(self, session: SessionRecord, now: float) -> TokenPair:
        """Rotate the session's refresh secret and return a fresh pair of tokens."""
        secret = Tokens.new_refresh_secret()
        await self.store.put_session(msgspec.structs.replace(session, secret_hash=secret_hash(secret)))
        return TokenPair(
            access_token=self.tokens.access_token(session.user, session.id, now),
            refresh_token=Tokens.refresh_token(session.user, session.id, secret),
            expires_in=int(self.tokens.access_ttl),
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """New tokens for a valid refresh token; its secret is rotated. An old (already rotated) secret ends
        the session: someone else holds a copy."""
        try:
            user, session_id, secret = Tokens.parse_refresh_token(refresh_token)
        except TokenRefused as exc:
            raise AuthError(401, str(exc)) from None
        session = await self.store.load_session(user, session_id)
        now = time.time()
        if session is None or session.expires_at <= now:
            raise AuthError(401, "the session has ended: log in again")
        if not secrets.compare_digest(session.secret_hash, secret_hash(secret)):
            await self.store.delete_session(user, session_id)
            raise AuthError(401, "this refresh token was already used: the session is ended")
        return await self._issue(session, now)

    async def logout(self, refresh_token: str | None, claims: Claims | None) -> None:
        """End the session named by the refresh token or the access token's claims: both stop working at once."""
        if refresh_token:
            try:
                user, session_id, _ = Tokens.parse_refresh_token(refresh_token)
            except TokenRefused as exc:
                raise AuthError(401, str(exc)) from None
            await self.store.delete_session(user, session_id)
        elif claims is not None and claims.session is not None:
            await self.store.delete_session(claims.user, claims.session)
        else:
            raise AuthError(400, "give the refresh token, or the access token of a session")

    def guest(self, name: str | None = None) -> dict[str, object]:
        """A guest identity with a generated (or the given) name and a token for it."""
        if self.mode is not AuthMode.GUEST:
            raise AuthError(403, f"guests are not allowed on this server (--auth {self.mode})")
        guest_id = "g-" + secrets.token_hex(8)
        name = clean_name(name or f"Guest {secrets.randbelow(10000):04d}")
        if problem := display_name_problem(name):
            raise AuthError(400, problem)
        color = _color_for(guest_id)
        token = self.tokens.guest_token(guest_id, name, color)
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(self.tokens.access_ttl),
                "guest": {"id": guest_id, "name": name, "color": color}}  # fmt: skip

    # ---- who a token belongs to ---------------------------------------------------------------------------

    async def identify(self, token: str) -> Identity:
        """The identity of a WebSocket token: an access token, a ticket, a guest token or an OIDC token.
        Raises `AuthError` 401 when it is expired, badly signed, revoked, for another audience, ..."""
        if self.mode is AuthMode.OFF:
            raise AuthError(401, "tokens are not used on this server (--auth off)")
        claims = await self._claims_or_oidc(token, tickets=True)
        if isinstance(claims, UserRecord):
            return identity_of(claims)
        if claims.guest:
            if self.mode is not AuthMode.GUEST:
                raise AuthError(401, "guest tokens are not accepted: this server requires an account")
            return Identity(claims.user, claims.name or "Guest", claims.color or PALETTE[0], guest=True)
        return identity_of(await self._account_of(claims))

    async def authenticate(self, token: str) -> tuple[UserRecord, Claims | None]:
        """The account behind a REST bearer token (an access token or an OIDC token), and its claims."""
        if self.mode is AuthMode.OFF:
            raise AuthError(403, "accounts are off on this server (--auth off)")
        claims = await self._claims_or_oidc(token, tickets=False)
        if isinstance(claims, UserRecord):
            return claims, None
        if claims.guest:
            raise AuthError(403, "guests have no account: register or log in")
        return await self._account_of(claims), claims

    async def _claims_or_oidc(self, token: str, *, tickets: bool) -> Claims | UserRecord:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.InvalidTokenError:
            raise AuthError(401, "the token is malformed") from None
        if algorithm == "HS256":
            try:
                return self.tokens.verify(token, tickets=tickets)
            except TokenRefused as exc:
                raise AuthError(401, str(exc)) from None
        if self.oidc is None:
            raise AuthError(401, f"tokens signed with {algorithm!r} are not accepted (no OIDC provider configured)")
        try:
            return await self._oidc_account(await self.oidc.verify(token))
        except OidcRefused as exc:
            raise AuthError(401, str(exc)) from None

    async def _account_of(self, claims: Claims) -> UserRecord:
        if claims.session is None:
            raise AuthError(401, "the token names no session")
        session = await self.store.load_session(claims.user, claims.session)
        if session is None or session.expires_at <= time.time():
            raise AuthError(401, "the token was revoked (its session ended): log in again")
        user = await self.store.load_user(claims.user)
        if user is None:
            raise AuthError(401, "the token's account no longer exists")
        return user

    async def _oidc_account(self, person: OidcUser) -> UserRecord:
        """The local account of an OIDC user, created the first time its token is seen."""
        user_id = "o-" + hashlib.sha256(f"{person.issuer}\n{person.subject}".encode()).hexdigest()[:24]
        user = await self.store.load_user(user_id)
        if user is not None:
            return user
        name = clean_name(person.name)[:MAX_NAME_CHARS] or "OIDC user"
        user = UserRecord(
            id=user_id, username=None, display_name=name, color=_color_for(user_id), provider="oidc",
            created_at=time.time(),
        )  # fmt: skip
        try:
            await self.store.create_user(user)
        except StoreConflict:  # created by a concurrent request
            return await self.store.load_user(user_id) or user
        return user

    async def close(self) -> None:
        if self.oidc is not None:
            await self.oidc.close()
