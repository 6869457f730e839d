"""Protocol v1 messages as msgspec Structs: the contract of docs/protocol.md in code.

Every message is a JSON object whose `type` field names it. Client messages are validated on decode
(types, required fields, numeric ranges); unknown fields are refused so that typos surface as errors.
Server messages omit fields that are null or absent (a pose without hands has no `left`/`right`).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta, Struct, field

PROTOCOL_VERSION = 1

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


class Transform(Struct, forbid_unknown_fields=True):
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


class Join(ClientMessage, tag="join"):
    room: str


class Leave(ClientMessage, tag="leave"):
    pass


class Pose(ClientMessage, tag="pose"):
    """The sender's avatar: head plus optional hands. `t` is an optional client timestamp (ms),
    relayed unchanged so receivers can measure end-to-end latency."""

    head: Transform
    left: Transform | None = None
    right: Transform | None = None
    t: Timestamp | None = None


class Ping(ClientMessage, tag="ping"):
    t: Timestamp


class AppMessage(ClientMessage, tag="msg"):
    """An application message to the whole room, or to one member of the room with `to`."""

    topic: Annotated[str, Meta(min_length=1, max_length=64)]
    data: Any = None
    to: MemberId | None = None


ClientMessages = Hello | Join | Leave | Pose | Ping | AppMessage


# ---- server -> client -------------------------------------------------------------------------


class ServerMessage(Struct, tag_field="type", omit_defaults=True):
    """Base of every message the server sends."""


class MemberPose(Struct, omit_defaults=True):
    """One member's latest pose as it appears in `tick` frames and snapshots."""

    id: int
    head: Transform
    left: Transform | None = None
    right: Transform | None = None
    t: float | None = None


class MemberInfo(Struct, omit_defaults=True):
    """Presence of one member: who it is and, once it has sent one, its last pose."""

    id: int
    name: str
    color: str
    pose: MemberPose | None = None


class Welcome(ServerMessage, tag="welcome"):
    id: int
    resume_token: str
    server_time: float
    tick_rate: float
    v: int = PROTOCOL_VERSION
    server: dict[str, str] = field(default_factory=dict)
    limits: dict[str, float] = field(default_factory=dict)


class Joined(ServerMessage, tag="joined"):
    room: str
    id: int
    tick_rate: float
    seq: int
    members: list[MemberInfo]


class Left(ServerMessage, tag="left"):
    room: str


class MemberJoined(ServerMessage, tag="member_joined"):
    room: str
    member: MemberInfo


class MemberLeft(ServerMessage, tag="member_left"):
    room: str
    id: int


class Tick(ServerMessage, tag="tick"):
    """Every pose that changed in the room since the previous tick. `seq` strictly increases per room."""

    seq: int
    t: float
    poses: list[MemberPose]


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


ServerMessages = Welcome | Joined | Left | MemberJoined | MemberLeft | Tick | Pong | Relay | Error


def to_builtins(message: ServerMessage) -> dict[str, Any]:
    """The message as plain JSON-ready Python objects (for logs and tests)."""
    return msgspec.to_builtins(message)
