"""Protocol v1 messages as msgspec Structs: the contract of docs/protocol.md in code.

Every message is a JSON object whose `type` field names it. Client messages are validated on decode
(types, required fields, numeric ranges); unknown fields are refused so that typos surface as errors.
Server messages omit fields that are null or absent (a pose without hands has no `left`/`right`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct, field

PROTOCOL_VERSION = 1

MAX_TOKEN_CHARS = 8192
"""The longest token accepted in `hello` or `?token=` (OIDC tokens with many claims run to a few KiB)."""

MAX_COORDINATE_M = 10_000.0
"""Positions are metres within +-10 km of the room origin."""

Coordinate = Annotated[float, Meta(ge=-MAX_COORDINATE_M, le=MAX_COORDINATE_M)]
# Bounds reject NaN and +-Infinity as well as absurd values; the server normalises the quaternion.
QuaternionPart = Annotated[float, Meta(ge=-1e6, le=1e6)]
Timestamp = Annotated[float, Meta(ge=-1e15, le=1e15)]
MemberId = Annotated[int, Meta(ge=1, le=2**32 - 1)]
Color = Annotated[str, Meta(pattern=r"^#[0-9a-fA-F]{6}$")]

Vec3 = tuple[Coordinate, Coordinate, Coordinate]
Quat = tuple[QuaternionPart, QuaternionPart, QuaternionPart, QuaternionPart]
Joint = tuple[Coordinate, Coordinate, Coordinate, QuaternionPart, QuaternionPart, QuaternionPart, QuaternionPart]
"""One hand joint: position `x, y, z` in metres and rotation quaternion `qx, qy, qz, qw`."""
JOINTS_PER_HAND = 25
"""WebXR `XRHand`: the wrist, then 4 thumb and 5 x 4 finger joints, in the order of the Hand Input spec."""
HandJoints = Annotated[list[Joint], Meta(min_length=JOINTS_PER_HAND, max_length=JOINTS_PER_HAND)]
ScalePart = Annotated[float, Meta(ge=1e-4, le=1e4)]
Scale = tuple[ScalePart, ScalePart, ScalePart]
EntityId = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
EntityKind = Annotated[str, Meta(min_length=1, max_length=64)]
Seq = Annotated[int, Meta(ge=0, le=2**53)]
"""A client-chosen number that marks a change reliable: the server answers `ack {seq}` once it is durable."""
Props = dict[str, Any]

ORIGIN: tuple[float, float, float] = (0.0, 0.0, 0.0)
IDENTITY: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
UNIT_SCALE: tuple[float, float, float] = (1.0, 1.0, 1.0)


# The pose structs below are made and dropped for every JSON pose (20 a second per member), so they are
# untracked by the cycle collector (`gc=False`): that saves its bookkeeping on each one, about a tenth of
# decoding a pose. It is safe because they hold only numbers, tuples of numbers and each other, which can
# never form a reference cycle.


class Transform(Struct, forbid_unknown_fields=True, gc=False):
    """A position in metres and a rotation as a unit quaternion `[x, y, z, w]`."""

    pos: Vec3
    rot: Quat


# ---- client -> server -------------------------------------------------------------------------


class ClientMessage(Struct, tag_field="type", forbid_unknown_fields=True):
    """Base of every message a client may send."""


class Hello(ClientMessage, tag="hello"):
    v: int = PROTOCOL_VERSION
    name: str = ""
    color: Color | None = None
    resume: Annotated[str, Meta(max_length=64)] | None = None
    """The `resume_token` of a session that dropped less than `resume_window` seconds ago: the member comes
    back with the same id, name and colour, in the same room."""
    token: Annotated[str, Meta(max_length=MAX_TOKEN_CHARS)] | None = None
    """An access token, WebSocket ticket or OIDC token (when the URL carried none): the member's name, colour and
    avatar then come from its account; `name` and `color` are ignored. A bad token closes the connection (4001)."""


class Join(ClientMessage, tag="join"):
    room: str
    password: Annotated[str, Meta(max_length=256)] | None = None
    """The room's password, for a private room."""
    invite: Annotated[str, Meta(max_length=256)] | None = None
    """The room's invite token (from its invite link), for a private room."""


class Leave(ClientMessage, tag="leave"):
    pass


class Pose(ClientMessage, tag="pose", gc=False):
    """The sender's avatar: head plus optional hands. `t` is an optional client timestamp (ms),
    relayed unchanged so receivers can measure end-to-end latency."""

    head: Transform
    left: Transform | None = None
    right: Transform | None = None
    t: Timestamp | None = None


class Joints(ClientMessage, tag="joints"):
    """The sender's tracked hand joints (25 per hand), at their own, lower rate than poses. A hand that is absent or
    null is not tracked; neither hand means "my hands are no longer tracked"."""

    left: HandJoints | None = None
    right: HandJoints | None = None


class Ping(ClientMessage, tag="ping"):
    t: Timestamp


class AppMessage(ClientMessage, tag="msg"):
    """An application message to the whole room, or to one member of the room with `to`."""

    topic: Annotated[str, Meta(min_length=1, max_length=64)]
    data: Any = None
    to: MemberId | None = None


class EntityCreate(ClientMessage, tag="entity_create"):
    """Create a shared entity. Without `id` the server assigns one. `owned` makes the creator its owner."""

    kind: EntityKind
    id: EntityId | None = None
    pos: Vec3 | None = None
    rot: Quat | None = None
    scale: Scale | None = None
    props: Props | None = None
    persistent: bool = False
    locked: bool = False
    owned: bool = True
    seq: Seq | None = None


class EntityUpdate(ClientMessage, tag="entity_update"):
    """Change an entity's transform, lock or props. `props` is merged: a key set to null is deleted."""

    id: EntityId
    pos: Vec3 | None = None
    rot: Quat | None = None
    scale: Scale | None = None
    props: Props | None = None
    locked: bool | None = None
    seq: Seq | None = None


class EntityDelete(ClientMessage, tag="entity_delete"):
    id: EntityId
    seq: Seq | None = None


class EntityClaim(ClientMessage, tag="entity_claim"):
    """Ask for ownership; answered with `claim_result`."""

    id: EntityId


class EntityRelease(ClientMessage, tag="entity_release"):
    """Give ownership back to the room."""

    id: EntityId
    seq: Seq | None = None


class Kick(ClientMessage, tag="kick"):
    """Remove a member from your room (moderators and the owner, over members of lower rank)."""

    id: MemberId
    reason: Annotated[str, Meta(max_length=200)] = ""


class BanMember(ClientMessage, tag="ban"):
    """Kick a member and keep it out of your room for `seconds` (absent: until unbanned over REST)."""

    id: MemberId
    seconds: Annotated[float, Meta(gt=0, le=10 * 365 * 86400)] | None = None
    reason: Annotated[str, Meta(max_length=200)] = ""


class Mute(ClientMessage, tag="mute"):
    """Drop (`muted`: true) or relay again (false) a member's app messages, voice signalling included."""

    id: MemberId
    muted: bool = True


class SetRole(ClientMessage, tag="set_role"):
    """Give a member of your room another role (`moderator`, `member` or `viewer`)."""

    id: MemberId
    role: Literal["moderator", "member", "viewer"]


ClientMessages = (
    Hello
    | Join
    | Leave
    | Pose
    | Joints
    | Ping
    | AppMessage
    | EntityCreate
    | EntityUpdate
    | EntityDelete
    | EntityClaim
    | EntityRelease
    | Kick
    | BanMember
    | Mute
    | SetRole
)


# ---- server -> client -------------------------------------------------------------------------


class ServerMessage(Struct, tag_field="type", omit_defaults=True):
    """Base of every message the server sends."""


class MemberPose(Struct, omit_defaults=True, gc=False):
    """One member's latest pose as it appears in `tick` frames and snapshots."""

    id: int
    head: Transform
    left: Transform | None = None
    right: Transform | None = None
    t: float | None = None


class MemberJoints(Struct, omit_defaults=True):
    """One member's latest hand joints as they appear in `tick.joints`: 25 `[x, y, z, qx, qy, qz, qw]` per
    tracked hand; an untracked hand is omitted (an entry with neither hand: hide that member's joints)."""

    id: int
    left: list[tuple[float, float, float, float, float, float, float]] | None = None
    right: list[tuple[float, float, float, float, float, float, float]] | None = None


class Entity(Struct, omit_defaults=True):
    """A shared object in a room, as sent in snapshots and ticks and as stored.

    `owner` is the member id that may change it (absent: anyone may); `creator` the member that created it
    in this server's lifetime (absent after a restart); `v` increases by one with every change.
    """

    id: str
    kind: str
    persistent: bool
    locked: bool
    pos: tuple[float, float, float]
    rot: tuple[float, float, float, float]
    scale: tuple[float, float, float]
    props: Props
    v: int
    owner: int | None = None
    creator: int | None = None


class MemberInfo(Struct, omit_defaults=True):
    """Presence of one member: who it is and, once it has sent one, its last pose.

    `user` is the account id of a logged-in member (absent for guests), `avatar` the URL of its avatar image,
    `role` its role in the room when not `member`, `muted` true while a moderator mutes it.
    """

    id: int
    name: str
    color: str
    pose: MemberPose | None = None
    user: str | None = None
    avatar: str | None = None
    role: str | None = None
    muted: bool = False


class Welcome(ServerMessage, tag="welcome"):
    id: int
    resume_token: str
    server_time: float
    tick_rate: float
    v: int  # no default: `omit_defaults` would leave it out, and clients need to see the version
    resumed: bool
    """Always present. True when `hello.resume` restored a dropped session (a `joined` for its room follows)."""
    server: dict[str, str] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)


class Joined(ServerMessage, tag="joined"):
    room: str
    id: int
    tick_rate: float
    seq: int
    members: list[MemberInfo]
    entities: list[Entity] = field(default_factory=list)


class Left(ServerMessage, tag="left"):
    room: str


class MemberJoined(ServerMessage, tag="member_joined"):
    room: str
    member: MemberInfo


class MemberLeft(ServerMessage, tag="member_left"):
    room: str
    id: int


class Tick(ServerMessage, tag="tick"):
    """Every pose and entity that changed in the room since the previous tick. `seq` strictly increases per room.

    With `full`, `poses` and `entities` are the room's complete state (sent to a member that fell behind):
    the receiver drops entities it knows that are not listed; `joints` then holds every other member's latest.
    """

    seq: int
    t: float
    poses: list[MemberPose]
    entities: list[Entity] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    full: bool = False
    joints: list[MemberJoints] = field(default_factory=list)
    """Hand joints that changed since the previous joints tick (every few ticks; see `limits.joints_rate`)."""


class ClaimResult(ServerMessage, tag="claim_result"):
    id: str
    granted: bool
    owner: int | None = None


class Ack(ServerMessage, tag="ack"):
    """The change sent with this `seq` is applied and, for persistent state, durably committed."""

    seq: int


class Pong(ServerMessage, tag="pong"):
    t: float
    server_time: float


class Relay(ServerMessage, tag="msg"):
    """An application message, stamped by the server with its real sender."""

    topic: str
    sender: int = field(name="from")
    data: Any = None
    to: int | None = None


class Error(ServerMessage, tag="error"):
    code: str
    message: str
    ref: str | None = None
    """The `type` of the message that caused the error, when known."""
    seq: int | None = None
    """The `seq` of the reliable change that failed, when it had one."""


class Kicked(ServerMessage, tag="kicked"):
    """You were removed from `room` by member `by`; with `banned`, you may not come back until `until` (ms since the
    epoch; absent: until unbanned)."""

    room: str
    by: int
    reason: str = ""
    banned: bool = False
    until: float | None = None


class MemberUpdated(ServerMessage, tag="member_updated"):
    """A member's role or mute changed; `member` is its presence as it is now."""

    room: str
    member: MemberInfo


ServerMessages = (
    Welcome
    | Joined
    | Left
    | MemberJoined
    | MemberLeft
    | Tick
    | Pong
    | Relay
    | Error
    | ClaimResult
    | Ack
    | Kicked
    | MemberUpdated
)


def to_builtins(message: ServerMessage) -> dict[str, Any]:
    """The message as plain JSON-ready Python objects (for logs and tests)."""
    return msgspec.to_builtins(message)
