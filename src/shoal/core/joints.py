"""Hand joints in a room: the latest joints of each member, and who gets whose at a joints tick.

Joints (25 per tracked hand, see docs/protocol.md "Hand joints") travel at their own, lower rate: the room keeps
the latest joints of each member (a newer message replaces an unsent one) and puts those that changed into every
`every`-th tick. Each entry is encoded once per codec per tick (a binary sender's joints stay packed and its bytes
are relayed as they are; they are decoded only for JSON members);
the sender never gets its own joints back. With interest management, joints go only to members whose heads are
within the radius (never in the far tier). A full-state tick carries every member's latest joints.
"""

from __future__ import annotations

import math
from itertools import starmap
from operator import itemgetter

from shoal.core.interest import Interest, SpatialGrid
from shoal.core.member import Member
from shoal.core.pose import InvalidPose, unit_quaternion
from shoal.protocol.codec import Codec
from shoal.protocol.joints import HandTooBig, Joint, PackedJoints, check_hand
from shoal.protocol.messages import Joints, MemberJoints

_UNIT_SQUARED_TOLERANCE = 2e-9
"""As for poses: a quaternion this close to unit length is relayed as it came."""


_ROTATION = itemgetter(3, 4, 5, 6)
_SURELY_UNIT = 5e-10
"""Rotations whose length (`math.hypot`, exact to an ulp) is this close to 1 have a squared length within
`_UNIT_SQUARED_TOLERANCE` of it: a whole hand of them passes with no Python code per joint."""


def _unit_hand(hand: list[Joint]) -> list[Joint]:
    """`hand` with unit quaternions (the same list when they all are); raises `InvalidPose`."""
    lengths = list(starmap(math.hypot, map(_ROTATION, hand)))
    if min(lengths) > 1.0 - _SURELY_UNIT and max(lengths) < 1.0 + _SURELY_UNIT:  # as the SDKs send them
        return _checked(hand)
    normalised = hand
    for index, joint in enumerate(hand):
        qx, qy, qz, qw = joint[3], joint[4], joint[5], joint[6]
        if abs(qx * qx + qy * qy + qz * qz + qw * qw - 1.0) < _UNIT_SQUARED_TOLERANCE:
            continue
        if normalised is hand:
            normalised = list(hand)
        normalised[index] = (joint[0], joint[1], joint[2], *unit_quaternion((qx, qy, qz, qw)))
    return _checked(normalised)


def _checked(hand: list[Joint]) -> list[Joint]:
    try:
        check_hand(hand)
    except HandTooBig as exc:
        raise InvalidPose(str(exc)) from None
    return hand


def member_joints(member_id: int, message: Joints) -> MemberJoints:
    """The joints as the room stores and relays them: stamped with the sender's id, quaternions unit length.

    Raises `InvalidPose` for a zero quaternion or a joint more than 3.2767 m from its wrist on some axis.
    """
    left = None if message.left is None else _unit_hand(message.left)  # type: ignore[arg-type]
    right = None if message.right is None else _unit_hand(message.right)  # type: ignore[arg-type]
    return MemberJoints(id=member_id, left=left, right=right)


def joints_every(tick_rate: float, joints_rate: float) -> int:
    """Ticks between two joints ticks: `max(1, round(tick_rate / joints_rate))` (2 at 20 Hz and 10 Hz)."""
    if not (math.isfinite(joints_rate) and joints_rate > 0):
        raise ValueError("the joints rate must be a positive number of Hz")
    return max(1, round(tick_rate / joints_rate))


class RoomJoints:
    """The hand joints of one room's members between ticks."""

    __slots__ = ("changed", "every", "latest")

    def __init__(self, every: int) -> None:
        self.every = every
        """Joints go out with every `every`-th tick of the room."""
        self.latest: dict[int, MemberJoints | PackedJoints] = {}
        """Each member's latest joints, by member id: as numbers, or packed as a binary sender sent them."""
        self.changed: dict[int, Member] = {}
        """Members whose joints changed since the previous joints tick."""

    def set(self, member: Member, joints: MemberJoints | PackedJoints) -> None:
        """Record `member`'s latest joints; the latest one before a joints tick wins."""
        self.latest[member.id] = joints
        self.changed[member.id] = member

    def forget(self, member: Member) -> None:
        """`member` left: its joints are never sent again (its `member_left` tells clients to drop them)."""
        self.latest.pop(member.id, None)
        self.changed.pop(member.id, None)

    def start_tick(self, tick_number: int, members: dict[int, Member], interest: Interest | None) -> JointsTick | None:
        """The joints of tick number `tick_number`, or None when it carries none at all (the usual case)."""
        if not self.latest:
            return None
        senders: list[Member] = []
        if tick_number % self.every == 0 and self.changed:
            senders = list(self.changed.values())
            self.changed.clear()
        return JointsTick(self, senders, members, interest)


class JointsTick:
    """Whose joints each recipient of one tick gets, and their entries, encoded once per codec."""

    __slots__ = ("_entries", "_grid", "_members", "_state", "covered", "senders")

    def __init__(
        self, state: RoomJoints, senders: list[Member], members: dict[int, Member], interest: Interest | None
    ) -> None:
        self._state = state
        self._members = members
        self.senders = senders
        """Members whose changed joints go out in this tick (empty when it is no joints tick)."""
        self._grid = None if interest is None or not senders else SpatialGrid(interest.radius, senders)
        self._entries: dict[Codec, dict[int, bytes]] = {}
        self.covered: set[int] = set()
        """Members that got a frame of this tick so far."""

    def chosen(self, recipient: Member, full: bool) -> list[Member]:
        """The members whose joints `recipient` gets: with `full`, everyone's latest, else the changed ones
        (of its neighbours, with interest management); never its own."""
        if full:
            members = self._members
            return [members[key] for key in self._state.latest if key != recipient.id and key in members]
        if self._grid is not None:
            return self._grid.near(recipient)
        return [sender for sender in self.senders if sender is not recipient]

    def entries(self, codec: Codec, senders: list[Member]) -> list[bytes]:
        """The joints entries of `senders` in `codec`, each encoded at most once per tick."""
        cache = self._entries.get(codec)
        if cache is None:
            cache = self._entries[codec] = {}
        latest = self._state.latest
        entries = []
        for sender in senders:
            entry = cache.get(sender.id)
            if entry is None:
                entry = cache[sender.id] = codec.joints_entry(sender.id, latest[sender.id])
            entries.append(entry)
        return entries
