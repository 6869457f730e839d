"""A room's shared entities and the rules of server-granted ownership.

The server decides who may change what, instead of letting clients race (as networked-aframe does):
- only the owner may update, delete or release an entity; anyone may change an unowned one;
- a claim is granted when the entity is unowned, already the claimer's, or owned by someone else and not
  locked (a takeover); a locked entity refuses takeovers;
- when a member leaves, the non-persistent entities it created disappear and the ones it owned return to
  the room (owner cleared); persistent entities stay.

Every check happens before any change, so a refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import msgspec

from shoal.core.limits import Limits
from shoal.protocol.errors import ErrorCode
from shoal.protocol.messages import (
    IDENTITY,
    ORIGIN,
    UNIT_SCALE,
    Entity,
    EntityCreate,
    EntityUpdate,
    Props,
)

_props_encoder = msgspec.json.Encoder()


class EntityRefused(Exception):
    """A request that breaks a rule or a quota. Nothing was changed."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Departure:
    """What a member's leaving did to the room's entities."""

    removed: list[Entity]
    released: list[Entity]


class Entities:
    """The entities of one room, and which of them changed since the last tick."""

    __slots__ = ("_limits", "by_id", "changed", "created_by", "removed")

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self.by_id: dict[str, Entity] = {}
        self.changed: dict[str, Entity] = {}
        self.removed: set[str] = set()
        self.created_by: dict[int, int] = {}
        """Live entity count per creating member, for the per-member quota."""

    def __len__(self) -> int:
        return len(self.by_id)

    def restore(self, entities: Iterable[Entity]) -> None:
        """Put back stored entities (after a restart nobody owns them). Not reported as changes."""
        for entity in entities:
            entity.owner = None
            entity.creator = None
            self.by_id[entity.id] = entity

    def get(self, entity_id: str) -> Entity:
        entity = self.by_id.get(entity_id)
        if entity is None:
            raise EntityRefused(ErrorCode.NO_SUCH_ENTITY, f"no entity {entity_id!r} in this room")
        return entity

    def create(self, member_id: int, request: EntityCreate, entity_id: str) -> Entity:
        limits = self._limits
        if entity_id in self.by_id:
            raise EntityRefused(ErrorCode.ENTITY_EXISTS, f"entity {entity_id!r} already exists")
        if len(self.by_id) >= limits.max_entities_per_room:
            raise EntityRefused(
                ErrorCode.QUOTA_EXCEEDED, f"a room holds at most {limits.max_entities_per_room} entities"
            )
        if self.created_by.get(member_id, 0) >= limits.max_entities_per_member:
            raise EntityRefused(
                ErrorCode.QUOTA_EXCEEDED, f"a member may create at most {limits.max_entities_per_member} entities"
            )
        props = _without_nulls(request.props or {})
        self._check_props_size(props)
        entity = Entity(
            id=entity_id,
            kind=request.kind,
            persistent=request.persistent,
            locked=request.locked,
            pos=request.pos or ORIGIN,
            rot=request.rot or IDENTITY,
            scale=request.scale or UNIT_SCALE,
            props=props,
            v=1,
            owner=member_id if request.owned else None,
            creator=member_id,
        )
        self.by_id[entity_id] = entity
        self.created_by[member_id] = self.created_by.get(member_id, 0) + 1
        self._mark(entity)
        return entity

    def update(self, member_id: int, request: EntityUpdate, rot: tuple[float, float, float, float] | None) -> Entity:
        """Apply an update (`rot` already normalised). Only the owner, or anyone if unowned."""
        entity = self.get(request.id)
        self._check_may_change(entity, member_id)
        props = entity.props
        if request.props is not None:
            props = {**entity.props, **request.props}
            props = _without_nulls(props)
            self._check_props_size(props)
        if request.pos is not None:
            entity.pos = request.pos
        if rot is not None:
            entity.rot = rot
        if request.scale is not None:
            entity.scale = request.scale
        if request.locked is not None:
            entity.locked = request.locked
        entity.props = props
        entity.v += 1
        self._mark(entity)
        return entity

    def delete(self, member_id: int, entity_id: str) -> Entity:
        entity = self.get(entity_id)
        self._check_may_change(entity, member_id)
        self._forget(entity)
        return entity

    def claim(self, member_id: int, entity_id: str) -> tuple[bool, Entity]:
        """Grant ownership unless the entity is locked and owned by someone else."""
        entity = self.get(entity_id)
        if entity.owner == member_id:
            return True, entity
        if entity.owner is not None and entity.locked:
            return False, entity
        entity.owner = member_id
        entity.v += 1
        self._mark(entity)
        return True, entity

    def release(self, member_id: int, entity_id: str) -> Entity:
        entity = self.get(entity_id)
        if entity.owner != member_id:
            raise EntityRefused(ErrorCode.NOT_OWNER, f"entity {entity_id!r} is not yours to release")
        entity.owner = None
        entity.v += 1
        self._mark(entity)
        return entity

    def member_left(self, member_id: int) -> Departure:
        """Remove the leaver's non-persistent entities and clear its ownership of the rest."""
        removed: list[Entity] = []
        released: list[Entity] = []
        for entity in list(self.by_id.values()):
            if entity.creator == member_id and not entity.persistent:
                self._forget(entity)
                removed.append(entity)
            elif entity.owner == member_id:
                entity.owner = None
                entity.v += 1
                self._mark(entity)
                released.append(entity)
        self.created_by.pop(member_id, None)
        return Departure(removed, released)

    def take_changes(self) -> tuple[list[Entity], list[str]]:
        """The entities changed and the ids removed since the last call, then forget them."""
        changed = list(self.changed.values())
        removed = list(self.removed)
        self.changed.clear()
        self.removed.clear()
        return changed, removed

    # ---- rules ---------------------------------------------------------------------------------------

    def _check_may_change(self, entity: Entity, member_id: int) -> None:
        if entity.owner is not None and entity.owner != member_id:
            raise EntityRefused(ErrorCode.NOT_OWNER, f"entity {entity.id!r} is owned by member {entity.owner}")

    def _check_props_size(self, props: Props) -> None:
        size = len(_props_encoder.encode(props))
        if size > self._limits.max_props_bytes:
            raise EntityRefused(
                ErrorCode.QUOTA_EXCEEDED, f"props are {size} bytes; the limit is {self._limits.max_props_bytes}"
            )

    def _mark(self, entity: Entity) -> None:
        self.changed[entity.id] = entity
        self.removed.discard(entity.id)

    def _forget(self, entity: Entity) -> None:
        del self.by_id[entity.id]
        self.changed.pop(entity.id, None)
        self.removed.add(entity.id)
        if entity.creator is not None and entity.creator in self.created_by:
            self.created_by[entity.creator] -= 1


def _without_nulls(props: Props) -> Props:
    return {key: value for key, value in props.items() if value is not None}
