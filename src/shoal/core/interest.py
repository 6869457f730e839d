"""Interest management: who gets whose pose at every tick, and who only at a slower rate.

With an `Interest` set, a room sends each member, every tick, only the poses of members whose head is
within `radius` metres of its own head (the near tier); every `far_every`-th tick it sends everyone every
pose that changed since the previous such tick (the far tier, which also refreshes the near tier). A
member that has not sent a pose yet has no position: it gets the far tier only. Entity changes, presence
and messages are never filtered.

`SpatialGrid` finds the near members without comparing every pair: heads are hashed into square cells
of `radius` on the horizontal plane, and only the 3 x 3 cells around a receiver are searched, so a
tick costs O(members x neighbours), not O(members^2).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from shoal.core.member import Member

DEFAULT_FAR_EVERY = 4
"""At 20 Hz, poses beyond the radius arrive at 5 Hz."""


@dataclass(frozen=True, slots=True)
class Interest:
    """A room's interest settings: `radius` in metres (head to head, in 3D), and the far tier's period in
    ticks (`far_every` 4 at 20 Hz: poses beyond the radius arrive at 5 Hz)."""

    radius: float
    far_every: int = DEFAULT_FAR_EVERY

    def __post_init__(self) -> None:
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise ValueError("the interest radius must be a positive number of metres")
        if self.far_every < 1:
            raise ValueError("far_every must be at least 1 tick")


Cell = tuple[int, int]


class SpatialGrid:
    """The head positions of `members` (those with a pose), bucketed into cells of `radius` metres."""

    __slots__ = ("_cells", "_radius", "_radius_squared")

    def __init__(self, radius: float, members: Iterable[Member]) -> None:
        self._radius = radius
        self._radius_squared = radius * radius
        cells: dict[Cell, list[tuple[Member, float, float, float]]] = {}
        for member in members:
            head = member.head_position
            if head is None:
                continue
            x, y, z = head
            cells.setdefault((math.floor(x / radius), math.floor(z / radius)), []).append((member, x, y, z))
        self._cells = cells

    def near(self, receiver: Member) -> list[Member]:
        """The members of the grid, other than `receiver`, whose heads are within the radius of its head;
        empty when `receiver` has no pose. Cells are searched in a fixed order, so two receivers with the
        same neighbours get them in the same order when they share a cell."""
        head = receiver.head_position
        if head is None:
            return []
        x, y, z = head
        column, row = math.floor(x / self._radius), math.floor(z / self._radius)
        limit = self._radius_squared
        cells = self._cells
        found = []
        for dx in (-1, 0, 1):
            for dz in (-1, 0, 1):
                for member, mx, my, mz in cells.get((column + dx, row + dz), ()):
                    if member is not receiver and (mx - x) ** 2 + (my - y) ** 2 + (mz - z) ** 2 <= limit:
                        found.append(member)
        return found
