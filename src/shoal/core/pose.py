"""Pose checks that the message schema cannot express: quaternion normalisation."""

from __future__ import annotations

import math

from shoal.protocol.messages import MemberPose, Pose, Transform

MIN_QUATERNION_NORM = 1e-6


class InvalidPose(ValueError):
    pass


Quaternion = tuple[float, float, float, float]


def unit_quaternion(rot: Quaternion) -> Quaternion:
    """`rot` scaled to unit length; raises `InvalidPose` if it is zero."""
    x, y, z, w = rot
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if norm < MIN_QUATERNION_NORM:
        raise InvalidPose("rotation quaternion is zero")
    if abs(norm - 1.0) < 1e-9:
        return rot
    return (x / norm, y / norm, z / norm, w / norm)


_UNIT_SQUARED_TOLERANCE = 2e-9
"""|norm - 1| < 1e-9 (what `unit_quaternion` leaves alone) is |norm^2 - 1| < 2e-9, to within 1e-18."""


def _unit(transform: Transform) -> Transform:
    x, y, z, w = transform.rot
    if abs(x * x + y * y + z * z + w * w - 1.0) < _UNIT_SQUARED_TOLERANCE:  # the usual case: no sqrt, no copy
        return transform
    rot = unit_quaternion(transform.rot)
    return transform if rot is transform.rot else Transform(transform.pos, rot)


def member_pose(member_id: int, pose: Pose) -> MemberPose:
    """The pose as the room stores and relays it: stamped with the sender's id, quaternions unit length.

    Positions are already bounded to +-10 km and every number is finite (the schema checks that).
    Raises `InvalidPose` for a zero quaternion.
    """
    return MemberPose(
        id=member_id,
        head=_unit(pose.head),
        left=None if pose.left is None else _unit(pose.left),
        right=None if pose.right is None else _unit(pose.right),
        t=pose.t,
    )
