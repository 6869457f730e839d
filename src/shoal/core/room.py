"""A room: its members, their latest poses, its entities, and the tick that batches fan-out.

Poses are not relayed one by one. Between two ticks the room keeps only the latest pose of each member
and the current state of each changed entity; at the tick it encodes each changed pose ONCE per codec in
use (a pose entry) and assembles tick frames from those bytes. Without interest management every member
of a codec gets the same frame; with it (`Interest`), members get the entries of their neighbours every
tick and everyone's every `far_every`-th tick, and members with the same neighbours share one frame.
A room where nothing changed sends nothing. Hand joints ride in every few ticks (`shoal.core.joints`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from shoal.core.access import RoomAccess
from shoal.core.actions import Send
from shoal.core.entities import Entities
from shoal.core.interest import Interest, SpatialGrid
from shoal.core.joints import JointsTick, RoomJoints
from shoal.core.limits import Limits
from shoal.core.member import Member
from shoal.protocol.binary import PackedPose
from shoal.protocol.codec import Codec, JointsTickEncoder, TickEncoder
from shoal.protocol.joints import PackedJoints
from shoal.protocol.messages import Entity, MemberInfo, MemberJoints, MemberPose, ServerMessage, Tick


class Room:
    """Members of one named room and the pose state that the tick fans out.

    `tick_interval` is in seconds. Ticks are aligned to multiples of the interval so that every room
    with the same rate ticks on the same wake-up of the transport's timer. `interest` (None: everyone
    gets every pose every tick) limits each member's poses by distance (see `shoal.core.interest`).
    Hand joints go out with every `joints_every`-th tick.
    """

    __slots__ = (
        "_changed",
        "_changed_since_far",
        "_ticks",
        "access",
        "coalesced",
        "entities",
        "interest",
        "joints",
        "loading",
        "members",
        "name",
        "next_tick_at",
        "seq",
        "tick_interval",
        "waiting",
    )

    def __init__(
        self,
        name: str,
        tick_interval: float,
        now: float,
        limits: Limits,
        loading: bool = False,
        interest: Interest | None = None,
        joints_every: int = 2,
    ) -> None:
        self.name = name
        self.tick_interval = tick_interval
        self.interest = interest
        self.members: dict[int, Member] = {}
        self.entities = Entities(limits)
        self.access = RoomAccess()
        """Settings, roles and bans (public and open until the store says otherwise)."""
        self.loading = loading
        """True until the room's stored state is loaded; joins wait in `waiting` meanwhile."""
        self.waiting: dict[int, Member] = {}
        self.seq = 0
        self.coalesced = 0
        """Poses replaced by a newer one from the same member before a tick could send them."""
        self._changed: dict[int, Member] = {}
        """Members whose pose changed since the previous tick."""
        self._changed_since_far: dict[int, Member] = {}
        """With interest management: members whose pose changed since the previous far-tier tick."""
        self._ticks = 0
        self.joints = RoomJoints(joints_every)
        """Each member's latest hand joints, and which changed since the previous joints tick."""
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
        self._changed_since_far.pop(member.id, None)
        member.room = None
        member.set_pose(None)
        self.joints.forget(member)

    def snapshot(self) -> list[MemberInfo]:
        """Every member with its last pose, for a late joiner."""
        return [member.info() for member in self.members.values()]

    def all_entities(self) -> list[Entity]:
        return list(self.entities.by_id.values())

    def is_idle(self) -> bool:
        """No members and no one waiting to join: the room can be unloaded."""
        return not self.members and not self.waiting

    def set_pose(self, member: Member, pose: MemberPose | None, packed: PackedPose | None = None) -> None:
        """Record `member`'s latest pose, as floats or as the binary frame it came in; the latest one within
        a tick wins."""
        if member.id in self._changed:
            self.coalesced += 1
        self._changed[member.id] = member
        if self.interest is not None:
            self._changed_since_far[member.id] = member
        member.set_pose(pose, packed)

    def set_joints(self, member: Member, joints: MemberJoints | PackedJoints) -> None:
        """Record `member`'s latest hand joints, as numbers or packed; the latest before a joints tick wins."""
        self.joints.set(member, joints)

    def others(self, member: Member) -> list[Member]:
        return [other for other in self.members.values() if other is not member]

    def tick(self, now: float) -> list[Send]:
        """Advance the room by one tick and return the frames to send.

        Members flagged `needs_full_state` (they skipped a tick while congested) get the room's complete
        state instead of the delta. A member with nothing new for it gets nothing.
        """
        self.next_tick_at += self.tick_interval
        if self.next_tick_at <= now:  # fell behind: skip missed ticks rather than burst
            self.next_tick_at = (math.floor(now / self.tick_interval) + 1) * self.tick_interval
        self._ticks += 1

        changed = self._changed
        entities = self.entities
        entity_news = bool(entities.changed or entities.removed)
        changed_entities, removed = entities.take_changes() if entity_news else ([], [])
        tick = _TickBuilder(self.seq + 1, now * 1000.0, changed_entities, removed)
        if self.joints.latest:
            tick.joints = self.joints.start_tick(self._ticks, self.members, self.interest)
        interest = self.interest
        if interest is None:
            self._send_to_all(tick, changed.values(), entity_news)
        elif self._ticks % interest.far_every == 0:
            self._send_to_all(tick, self._changed_since_far.values(), entity_news)
            self._changed_since_far.clear()
        else:
            self._send_near(tick, SpatialGrid(interest.radius, changed.values()), entity_news)
        self._send_full_state(tick)
        if tick.joints is not None and tick.joints.senders:
            tick.send_joints_only(self.members.values())
        changed.clear()
        if tick.sends:
            self.seq += 1
        return tick.sends

    def _send_to_all(self, tick: _TickBuilder, senders: Iterable[Member], entity_news: bool) -> None:
        """One frame per codec holding the poses of `senders`, to every member that has news in it."""
        senders = list(senders)
        only_sender = senders[0] if len(senders) == 1 and not entity_news else None
        if not senders and not entity_news:
            return
        by_codec: dict[Codec, list[Member]] = {}
        for member in self.members.values():
            if not member.needs_full_state and member is not only_sender:
                by_codec.setdefault(member.codec, []).append(member)
        for codec, recipients in by_codec.items():
            tick.send(codec, recipients, senders)

    def _send_near(self, tick: _TickBuilder, grid: SpatialGrid, entity_news: bool) -> None:
        """Each member gets the changed poses of its neighbours; members with the same neighbours share a frame."""
        groups: dict[tuple[Codec, tuple[int, ...]], tuple[list[Member], list[Member]]] = {}
        for member in self.members.values():
            if member.needs_full_state:
                continue
            near = grid.near(member)
            if not near and not entity_news:
                continue
            key = (member.codec, tuple(sender.id for sender in near))
            group = groups.get(key)
            if group is None:
                groups[key] = ([member], near)
            else:
                group[0].append(member)
        for (codec, _), (recipients, senders) in groups.items():
            tick.send(codec, recipients, senders)

    def _send_full_state(self, tick: _TickBuilder) -> None:
        """Members that skipped a tick get every current pose and every entity, whatever their distance."""
        by_codec: dict[Codec, list[Member]] = {}
        for member in self.members.values():
            if member.needs_full_state:
                by_codec.setdefault(member.codec, []).append(member)
                member.needs_full_state = False
        if not by_codec:
            return
        everyone = [member for member in self.members.values() if member.pose is not None]
        for codec, recipients in by_codec.items():
            tick.send(codec, recipients, everyone, full_entities=self.all_entities())


class _TickBuilder:
    """The frames of one tick: each pose entry encoded at most once per codec, frames assembled from them."""

    __slots__ = (
        "_encoders",
        "_entries",
        "_joints_encoders",
        "changed_entities",
        "joints",
        "removed",
        "sends",
        "seq",
        "t",
    )

    def __init__(self, seq: int, t: float, changed_entities: list[Entity], removed: list[str]) -> None:
        self.seq = seq
        self.t = t
        self.changed_entities = changed_entities
        self.removed = removed
        self.sends: list[Send] = []
        self._entries: dict[Codec, dict[int, bytes]] = {}
        self._encoders: dict[tuple[Codec, bool], TickEncoder] = {}
        self.joints: JointsTick | None = None
        """Set when the room has hand joints: frames then carry the joints each recipient is due."""
        self._joints_encoders: dict[tuple[Codec, bool], JointsTickEncoder] = {}

    def send(
        self, codec: Codec, recipients: list[Member], senders: list[Member], full_entities: list[Entity] | None = None
    ) -> None:
        """Add one droppable frame for `recipients` holding the poses of `senders` (and the tick's entity
        changes, or with `full_entities` the room's complete state)."""
        cache = self._entries.get(codec)
        if cache is None:
            cache = self._entries[codec] = {}
        t = self.t
        entries = []
        for sender in senders:
            entry = cache.get(sender.id)
            if entry is None:
                entry = cache[sender.id] = codec.pose_entry(sender, t)
            entries.append(entry)
        full = full_entities is not None
        encoder = self._encoders.get((codec, full))
        if encoder is None:
            encoder = self._encoders[(codec, full)] = codec.tick_encoder(self._header(full_entities))
        joints = self.joints
        if joints is not None and (full or joints.senders):
            self._send_with_joints(joints, codec, recipients, entries, encoder, full_entities)
            return
        self.sends.append(Send(recipients, encoder(entries), codec.binary, droppable=True))

    def _header(self, full_entities: list[Entity] | None) -> Tick:
        """The tick without its poses: its entity changes, or with `full_entities` the room's complete state."""
        if full_entities is not None:
            return Tick(seq=self.seq, t=self.t, poses=[], entities=full_entities, full=True)
        return Tick(seq=self.seq, t=self.t, poses=[], entities=self.changed_entities, removed=self.removed)

    def _send_with_joints(
        self,
        joints: JointsTick,
        codec: Codec,
        recipients: Iterable[Member],
        entries: list[bytes],
        encoder: TickEncoder | None,
        full_entities: list[Entity] | None = None,
    ) -> None:
        """Frames for `recipients` holding the pose `entries` and the joints each is due; recipients due the
        same joints share a frame. Without `encoder`, a recipient due no joints gets nothing."""
        full = full_entities is not None
        groups: dict[tuple[int, ...], tuple[list[Member], list[Member]]] = {}
        for member in recipients:
            joints.covered.add(member.id)
            chosen = joints.chosen(member, full)
            key = tuple(sender.id for sender in chosen)
            group = groups.get(key)
            if group is None:
                groups[key] = ([member], chosen)
            else:
                group[0].append(member)
        for members, chosen in groups.values():
            if chosen:
                joints_encoder = self._joints_encoders.get((codec, full))
                if joints_encoder is None:
                    joints_encoder = codec.joints_tick_encoder(self._header(full_entities))
                    self._joints_encoders[(codec, full)] = joints_encoder
                frame = joints_encoder(entries, joints.entries(codec, chosen))
            elif encoder is not None:
                frame = encoder(entries)
            else:
                continue
            self.sends.append(Send(members, frame, codec.binary, droppable=True))

    def send_joints_only(self, members: Iterable[Member]) -> None:
        """Frames with no poses for the `members` that got no frame yet but are due some joints."""
        joints = self.joints
        if joints is None:
            return
        by_codec: dict[Codec, list[Member]] = {}
        for member in members:
            if member.id not in joints.covered:
                by_codec.setdefault(member.codec, []).append(member)
        for codec, recipients in by_codec.items():
            self._send_with_joints(joints, codec, recipients, [], None)


def encode_once_per_codec(message: ServerMessage, recipients: Iterable[Member]) -> list[Send]:
    """One `Send` per codec among `recipients`, each frame encoded once."""
    groups: dict[Codec, list[Member]] = {}
    for member in recipients:
        groups.setdefault(member.codec, []).append(member)
    return [Send(members, codec.encode(message), codec.binary) for codec, members in groups.items()]
