"""A room: its members, their latest poses, its entities, and the tick that batches fan-out.

Poses are not relayed one by one. Between two ticks the room keeps only the latest pose of each member
and the current state of each changed entity; at the tick it encodes ONE `tick` frame per codec in use
holding everything that changed, and the same bytes go to every member. A room where nothing changed
sends nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from shoal.core.actions import Send
from shoal.core.entities import Entities
from shoal.core.limits import Limits
from shoal.core.member import Member
from shoal.protocol.codec import Codec
from shoal.protocol.messages import Entity, MemberInfo, MemberPose, ServerMessage, Tick


class Room:
    """Members of one named room and the pose state that the tick fans out.

    `tick_interval` is in seconds. Ticks are aligned to multiples of the interval so that every room
    with the same rate ticks on the same wake-up of the transport's timer.
    """

    __slots__ = (
        "_changed",
        "coalesced",
        "entities",
        "loading",
        "members",
        "name",
        "next_tick_at",
        "seq",
        "tick_interval",
        "waiting",
    )

    def __init__(self, name: str, tick_interval: float, now: float, limits: Limits, loading: bool = False) -> None:
        self.name = name
        self.tick_interval = tick_interval
        self.members: dict[int, Member] = {}
        self.entities = Entities(limits)
        self.loading = loading
        """True until the room's stored state is loaded; joins wait in `waiting` meanwhile."""
        self.waiting: dict[int, Member] = {}
        self.seq = 0
        self.coalesced = 0
        """Poses replaced by a newer one from the same member before a tick could send them."""
        self._changed: dict[int, MemberPose] = {}
        self.next_tick_at = (math.floor(now / tick_interval) + 1) * tick_interval

    def __len__(self) -> int:
        return len(self.members)

    def add(self, member: Member) -> None:
        self.members[member.id] = member
        member.room = self
        member.needs_full_state = False

    def remove(self, member: Member) -> None:
        """Take `member` out; its pending pose is forgotten so it never reaches anyone after it left."""
        self.members.pop(member.id, None)
        self._changed.pop(member.id, None)
        member.room = None
        member.pose = None

    def snapshot(self) -> list[MemberInfo]:
        """Every member with its last pose, for a late joiner."""
        return [member.info() for member in self.members.values()]

    def all_entities(self) -> list[Entity]:
        return list(self.entities.by_id.values())

    def is_idle(self) -> bool:
        """No members and no one waiting to join: the room can be unloaded."""
        return not self.members and not self.waiting

    def set_pose(self, member: Member, pose: MemberPose) -> None:
        """Record `member`'s latest pose; the latest one within a tick wins."""
        if self._changed.get(member.id) is not None:
            self.coalesced += 1
        self._changed[member.id] = pose
        member.pose = pose

    def others(self, member: Member) -> list[Member]:
        return [other for other in self.members.values() if other is not member]

    def tick(self, now: float) -> list[Send]:
        """Advance the room by one tick and return the frames to send.

        Members flagged `needs_full_state` (they skipped a tick while congested) get the room's complete
        state instead of the delta. A member whose own pose is the only change gets nothing.
        """
        self.next_tick_at += self.tick_interval
        if self.next_tick_at <= now:  # fell behind: skip missed ticks rather than burst
            self.next_tick_at = (math.floor(now / self.tick_interval) + 1) * self.tick_interval

        changed = self._changed
        entities = self.entities
        entity_news = bool(entities.changed or entities.removed)
        only_changed_id = next(iter(changed)) if len(changed) == 1 and not entity_news else None
        anything_new = entity_news or bool(changed)
        delta: dict[Codec, list[Member]] = {}
        full: dict[Codec, list[Member]] = {}
        for member in self.members.values():
            if member.needs_full_state:
                full.setdefault(member.codec, []).append(member)
            elif anything_new and member.id != only_changed_id:
                delta.setdefault(member.codec, []).append(member)
        changed_entities, removed = entities.take_changes() if entity_news else ([], [])
        if not delta and not full:
            changed.clear()
            return []

        self.seq += 1
        t = now * 1000.0
        sends = []
        if delta:
            tick = Tick(seq=self.seq, t=t, poses=list(changed.values()), entities=changed_entities, removed=removed)
            sends += _encode_for(tick, delta)
        if full:
            everyone = [m.pose for m in self.members.values() if m.pose is not None]
            sends += _encode_for(Tick(seq=self.seq, t=t, poses=everyone, entities=self.all_entities(), full=True), full)
            for members in full.values():
                for member in members:
                    member.needs_full_state = False
        changed.clear()
        return sends


def _encode_for(tick: Tick, recipients_by_codec: dict[Codec, list[Member]]) -> list[Send]:
    return [
        Send(recipients, codec.encode(tick), codec.binary, droppable=True)
        for codec, recipients in recipients_by_codec.items()
    ]


def encode_once_per_codec(message: ServerMessage, recipients: Iterable[Member]) -> list[Send]:
    """One `Send` per codec among `recipients`, each frame encoded once."""
    groups: dict[Codec, list[Member]] = {}
    for member in recipients:
        groups.setdefault(member.codec, []).append(member)
    return [Send(members, codec.encode(message), codec.binary) for codec, members in groups.items()]
