"""Who may do what in a room: identities, roles, bans, privacy and the member cap, as plain rules.

Identity reaches the core already verified (the transport checks tokens); here it is only data. Roles rank
owner > moderator > member > viewer:

- a viewer may be present and move but may not create, change, claim or delete entities;
- a moderator may kick, mute and ban members below its rank, and make members viewers and back;
- the owner may do all that, and make members moderators.

A private room admits only members with a role there, holders of its invite token, or who know its password
(checked outside the core: password hashes are slow on purpose). A banned member may not join until its ban
ends. Guests without an account are keyed by their address (`addr:IP`), so a ban holds when they change names.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum

import msgspec


@dataclass(frozen=True, slots=True)
class Identity:
    """A verified identity, as the transport hands it to `Engine.connect`.

    `user` is the account id (`u-…`, `o-…` for OIDC accounts) or, for a guest token, a guest id (`g-…`).
    `avatar` is the URL of the account's avatar image, if it has one.
    """

    user: str
    name: str
    color: str
    avatar: str | None = None
    guest: bool = False


class Role(StrEnum):
    OWNER = "owner"
    MODERATOR = "moderator"
    MEMBER = "member"
    VIEWER = "viewer"


_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.MODERATOR: 2, Role.OWNER: 3}


def may_edit_entities(role: Role) -> bool:
    return role is not Role.VIEWER


def may_moderate(actor: Role, target: Role) -> bool:
    """Kick, mute or ban: a moderator or the owner, over someone of lower rank."""
    return _RANK[actor] >= _RANK[Role.MODERATOR] and _RANK[actor] > _RANK[target]


def may_assign(actor: Role, current: Role, new: Role) -> bool:
    """Change someone's role from `current` to `new`: nobody makes owners; only the owner makes (or unmakes)
    moderators; a moderator moves members and viewers between those two roles."""
    if new is Role.OWNER or current is Role.OWNER:
        return False
    if actor is Role.OWNER:
        return True
    return actor is Role.MODERATOR and current in (Role.MEMBER, Role.VIEWER) and new in (Role.MEMBER, Role.VIEWER)


class RoomSettings(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A room's stored settings (a JSON document in the store). Hashes only: never a password or an invite."""

    owner: str | None = None
    """The account that created the room with `POST /api/rooms`."""
    private: bool = False
    password_hash: str | None = None
    """argon2id hash of the room password (checked outside the core)."""
    invite_hash: str | None = None
    """SHA-256 (hex) of the invite token: invites are long random secrets, so a fast hash is enough."""
    max_members: int | None = None
    """The room's own cap (the server's `max_members_per_room` still applies)."""
    default_role: Role = Role.MEMBER
    """The role of whoever joins without one (`viewer` makes a room of spectators)."""


def invite_hash(invite: str) -> str:
    return hashlib.sha256(invite.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Ban:
    until: float | None
    """Seconds since the epoch; None: until lifted."""
    reason: str = ""
    by: str = ""

    def active(self, now: float) -> bool:
        return self.until is None or now < self.until


@dataclass(slots=True)
class RoomAccess:
    """One room's settings, roles (by user key) and bans (by user key), plus what lives only in memory:
    who was let in by password, and who is muted."""

    settings: RoomSettings = field(default_factory=RoomSettings)
    roles: dict[str, Role] = field(default_factory=dict)
    bans: dict[str, Ban] = field(default_factory=dict)
    admitted: set[str] = field(default_factory=set)
    """Users let into the private room by its password since it was loaded (no second password check)."""
    muted: set[str] = field(default_factory=set)

    @classmethod
    def decode(cls, settings: bytes | None, roles: dict[str, str], bans: dict[str, Ban]) -> RoomAccess:
        """From stored values; raises `msgspec.ValidationError` for settings that are not a valid document."""
        parsed = RoomSettings() if settings is None else msgspec.json.decode(settings, type=RoomSettings)
        return cls(parsed, {user: Role(role) for user, role in roles.items()}, dict(bans))

    def role_of(self, key: str) -> Role:
        return self.roles.get(key, self.settings.default_role)

    def ban_of(self, key: str, now: float) -> Ban | None:
        ban = self.bans.get(key)
        return ban if ban is not None and ban.active(now) else None

    def invited(self, invite: str | None) -> bool:
        expected = self.settings.invite_hash
        return bool(invite) and expected is not None and hmac.compare_digest(invite_hash(invite or ""), expected)

    def may_enter_freely(self, key: str) -> bool:
        """Public room, or a private one where `key` has a role or already gave the password."""
        return not self.settings.private or key in self.roles or key in self.admitted


class AuthMode(StrEnum):
    """Who may connect: `off` (everyone is a guest, tokens are ignored), `guest` (tokens are checked when given,
    anyone else is a guest) or `required` (every connection needs an account's token)."""

    OFF = "off"
    GUEST = "guest"
    REQUIRED = "required"
