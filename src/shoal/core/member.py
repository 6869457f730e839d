"""A member: one connection's identity, presence and per-connection limits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shoal.core.access import Role
from shoal.core.limits import Limits
from shoal.core.ratelimit import TokenBucket
from shoal.protocol.codec import Codec
from shoal.protocol.messages import Hello, Join, MemberInfo, MemberPose

if TYPE_CHECKING:
    from shoal.core.room import Room
    from shoal.protocol.binary import PackedPose


class Member:
    """One connected client, from the WebSocket handshake until it disconnects.

    It exists before `hello` (`greeted` is False) so that limits apply from the first frame. It is in
    at most one room at a time. `link` belongs to the transport (its connection object); the core
    never reads it.
    """

    __slots__ = (
        "_pose",
        "abuse_since",
        "address",
        "avatar",
        "codec",
        "color",
        "connected_at",
        "greeted",
        "guest",
        "id",
        "invalid_budget",
        "join_request",
        "joining",
        "joints_budget",
        "last_rate_drop_at",
        "last_rate_error_at",
        "link",
        "message_budget",
        "muted",
        "name",
        "needs_full_state",
        "packed",
        "pending_hello",
        "pose_budget",
        "position_saved_at",
        "resume_token",
        "role",
        "room",
        "user",
    )

    def __init__(
        self, member_id: int, codec: Codec, limits: Limits, now: float, resume_token: str, address: str = ""
    ) -> None:
        self.id = member_id
        self.codec = codec
        self.address = address
        self.resume_token = resume_token
        self.connected_at = now
        self.greeted = False
        self.name = ""
        self.color = ""
        self.room: Room | None = None
        self.joining: Room | None = None
        """A room whose stored state is loading; the member joins it once that is done."""
        self.user: str | None = None
        """The account this member is logged in as, if any (its stored last poses are keyed by it)."""
        self.guest = True
        """No account: a plain connection, or a guest token (whose id is then in `user`)."""
        self.avatar: str | None = None
        """The URL of its account's avatar image."""
        self.role = Role.MEMBER
        """Its role in its room (set when it joins)."""
        self.muted = False
        self.pending_hello: Hello | None = None
        """A `hello` whose token is being verified."""
        self.join_request: Join | None = None
        """The `join` being carried out (its room is loading, or its password is being checked)."""
        self.position_saved_at = float("-inf")
        self._pose: MemberPose | None = None
        self.packed: PackedPose | None = None
        """The latest pose as the binary frame it arrived in, validated but not decoded (see `pose`)."""
        self.needs_full_state = False
        self.link: Any = None
        self.pose_budget = TokenBucket(limits.pose_rate, limits.pose_burst, now)
        self.joints_budget = TokenBucket(limits.joints_rate, limits.joints_burst, now)
        self.message_budget = TokenBucket(limits.message_rate, limits.message_burst, now)
        self.invalid_budget = TokenBucket(limits.invalid_burst / limits.invalid_window, limits.invalid_burst, now)
        self.abuse_since: float | None = None
        self.last_rate_drop_at = 0.0
        self.last_rate_error_at = float("-inf")

    @property
    def pose(self) -> MemberPose | None:
        """The latest pose in its room; one that arrived packed is decoded on first use, once."""
        if self._pose is None and self.packed is not None:
            self._pose = self.packed.unpack(self.id)
        return self._pose

    @property
    def head_position(self) -> tuple[float, float, float] | None:
        """Where its head is (None before its first pose in the room), decoding no more than that."""
        if self._pose is not None:
            return self._pose.head.pos
        if self.packed is not None:
            return self.packed.head_position()
        return None

    def set_pose(self, pose: MemberPose | None, packed: PackedPose | None = None) -> None:
        """Record the latest pose: as floats, or `packed` (then `pose` is None until someone asks)."""
        self._pose = pose
        self.packed = packed

    @property
    def access_key(self) -> str:
        """Whom roles and bans in a room apply to: its account (or guest token) id, else its address."""
        return self.user or f"addr:{self.address}"

    @property
    def user_key(self) -> str:
        """Whom this member's stored last pose belongs to: its account, or its display name as a guest."""
        return self.user or f"guest:{self.name}"

    def info(self) -> MemberInfo:
        """This member's presence as sent in snapshots and `member_joined`."""
        return MemberInfo(
            id=self.id,
            name=self.name,
            color=self.color,
            pose=self.pose,
            user=None if self.guest else self.user,
            avatar=self.avatar,
            role=None if self.role is Role.MEMBER else self.role.value,
            muted=self.muted,
        )

    def __repr__(self) -> str:
        room = self.room.name if self.room else None
        return f"<Member {self.id} {self.name!r} room={room!r}>"
