"""Error codes (sent in `error` messages) and WebSocket close codes, as documented in docs/protocol.md."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class ErrorCode(StrEnum):
    """The `code` of an `error` message. The connection stays open after an error."""

    BAD_JSON = "bad_json"
    """The frame is not valid JSON (or not valid UTF-8)."""
    UNKNOWN_TYPE = "unknown_type"
    """The message has no `type`, or a `type` this server does not know."""
    INVALID_MESSAGE = "invalid_message"
    """A field is missing, unknown, of the wrong type, or out of range (NaN, Infinity, > 10 km, ...)."""
    UNSUPPORTED_FRAME = "unsupported_frame"
    """A binary frame on a JSON connection."""
    UNSUPPORTED_VERSION = "unsupported_version"
    """`hello` asked for a protocol version the server does not speak; the connection closes with 4002."""
    HELLO_REQUIRED = "hello_required"
    ALREADY_GREETED = "already_greeted"
    INVALID_ROOM = "invalid_room"
    ROOM_FULL = "room_full"
    TOO_MANY_ROOMS = "too_many_rooms"
    NOT_IN_ROOM = "not_in_room"
    NO_SUCH_MEMBER = "no_such_member"
    RATE_LIMITED = "rate_limited"
    NO_SUCH_ENTITY = "no_such_entity"
    NOT_OWNER = "not_owner"
    """Only the entity's owner may change, delete or release it (anyone may change an unowned one)."""
    ENTITY_EXISTS = "entity_exists"
    QUOTA_EXCEEDED = "quota_exceeded"
    """Entities per member or per room, props size, or stored rooms over their limit; nothing was changed."""
    STORAGE_UNAVAILABLE = "storage_unavailable"
    """The room's stored state could not be loaded or a durable change could not be committed."""
    AUTH_FAILED = "auth_failed"
    """The token in `hello` is expired, badly signed, revoked or for another audience (then close 4001), or the
    server requires an account and `hello` carried no token."""
    FORBIDDEN = "forbidden"
    """Your role in the room does not allow this (a viewer editing entities, a member kicking)."""
    MUTED = "muted"
    """A moderator muted you: your app messages are dropped."""
    BANNED = "banned"
    """You are banned from the room you tried to join."""
    ACCESS_DENIED = "access_denied"
    """The room is private: join with its password or invite, or ask for a role there."""


class CloseCode(IntEnum):
    """WebSocket close codes the server uses. 1000-1015 are RFC 6455's; 4000-4999 are Shoal's."""

    NORMAL = 1000
    GOING_AWAY = 1001
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    HELLO_TIMEOUT = 4000
    AUTH_FAILED = 4001
    """The `hello` token is expired, badly signed, revoked or for another audience, or an account is required."""
    UNSUPPORTED_VERSION = 4002
    FORBIDDEN = 4003
    """Repeated forbidden actions (over the invalid-message budget)."""
    RATE_LIMITED = 4008
    SLOW_CONSUMER = 4009
