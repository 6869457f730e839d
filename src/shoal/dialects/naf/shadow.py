"""The server's shadow of a NAF room: the latest full state of every `networkId`, kept by NAF's own rules.

networked-aframe clients own their entities and sync them peer to peer through the server: a `u` is one
entity's full sync, a `um` carries partial updates of several entities (only changed components), an
`r` removes one. Stock NAF servers relay these blindly. The shadow watches them, so the server can:

- bring a late joiner up to date itself (`catch_up`: one first-sync `u` per entity);
- keep `persistent` entities after everyone has left, and hand them to the store;
- refuse updates that are not the sender's to make (NAF has no server arbitration, so anyone can speak
  for anyone's avatar).

**Ownership follows NAF's receiver rule exactly** (`networked.networkUpdate`): an update is stale if its
`lastOwnerTime` is older than the known one, or equal with a known owner id that is greater (string
compare). The server must pick the winner the clients pick; otherwise two clients can both believe they
own an entity. On top of that, an update is accepted only from:

- the owner it names, when that owner is the sender (the owner updating, or a claim that wins by the rule);
- the entity's creator while the owner it names is absent from the room (NAF's `canSync` lets the creator
  sync on behalf of an owner who left, so a strict "owner must be the sender" rule would break NAF).

A `um` entry carrying `isFirstSync` is dropped (only `u` creates entities; Hubs applies the same rule).
An unknown entity is created only by a `u` naming the sender as owner (its `creator`, if it names someone
else, is replaced by the sender) or as creator on behalf of an absent owner.

Sans-I/O: no sockets, no clock; every method takes the sender and the ids present in the room.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from enum import StrEnum
from typing import Annotated, Any

import msgspec

MAX_ID_CHARS = 64
"""Longest `networkId`, `owner`, `creator` or `parent` accepted (NAF makes 7-character network ids)."""
MAX_COMPONENTS = 64
"""Most component slots per entity (NAF keys them by index in the template's schema)."""

Id = Annotated[str, msgspec.Meta(max_length=MAX_ID_CHARS)]
ComponentIndex = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,3}$")]
OwnerTime = Annotated[float, msgspec.Meta(ge=-1.0, le=1e14)]
"""Milliseconds since the epoch by the owner's corrected clock; -1 before the first ownership."""


class EntityState(msgspec.Struct, forbid_unknown_fields=False):
    """One entity as NAF syncs it (the `data` of a `u`, or one entry of a `um`'s `d`)."""

    networkId: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]
    owner: Id
    lastOwnerTime: OwnerTime
    creator: Id = ""
    template: Annotated[str, msgspec.Meta(max_length=256)] = ""
    persistent: bool = False
    parent: Id | None = None
    components: Annotated[dict[ComponentIndex, Any], msgspec.Meta(max_length=MAX_COMPONENTS)] = {}
    """Component values by schema index; `null` means "not sent" and never overwrites a known value."""
    isFirstSync: bool = False


class RemoveMessage(msgspec.Struct, forbid_unknown_fields=False):
    networkId: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_ID_CHARS)]


class UpdateMulti(msgspec.Struct, forbid_unknown_fields=False):
    d: list[Any]


class Refusal(StrEnum):
    """Why an update was not applied nor relayed (counted in the dialect's `dropped` stats)."""

    MALFORMED = "malformed_entity"
    STALE = "stale_owner_time"
    NOT_OWNER = "not_owner"
    UNKNOWN = "unknown_entity"
    FIRST_SYNC_IN_UM = "um_first_sync"
    TOO_LARGE = "entity_too_large"
    QUOTA = "entity_quota"


class Refused(Exception):
    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason.value)
        self.reason = reason


def wins(incoming_time: float, incoming_owner: str, known_time: float, known_owner: str) -> bool:
    """NAF's receiver rule: does an update stamped (`incoming_time`, `incoming_owner`) apply over the known
    (`known_time`, `known_owner`)? Equal times go to the greater owner id (JS string compare); identical
    stamps apply (the owner's ordinary updates)."""
    if incoming_time != known_time:
        return incoming_time > known_time
    return not known_owner > incoming_owner


class Shadow:
    """The entities of one NAF room. `max_entities` bounds the room; `max_state_bytes` bounds each
    entity's encoded components."""

    def __init__(self, max_entities: int = 4096, max_state_bytes: int = 16 * 1024) -> None:
        self.entities: dict[str, EntityState] = {}
        self.versions: dict[str, int] = {}
        """A counter per entity, bumped on every applied change (the store's record version)."""
        self.max_entities = max_entities
        self.max_state_bytes = max_state_bytes
        self._encode = msgspec.json.Encoder().encode

    def __len__(self) -> int:
        return len(self.entities)

    # ---- the three NAF data types -----------------------------------------------------------------

    def apply_update(self, sender: str, present: Collection[str], data: Any) -> EntityState:
        """A `u` from `sender`: apply it and return the state to relay (the `creator` may be corrected).

        Raises `Refused` when it must not be applied nor relayed.
        """
        incoming = _convert(data, EntityState)
        known = self.entities.get(incoming.networkId)
        if known is None:
            return self._create(sender, present, incoming)
        self._check_may_update(sender, present, incoming, known)
        self._merge(known, incoming)
        return incoming

    def apply_update_multi(
        self, sender: str, present: Collection[str], data: Any
    ) -> tuple[list[EntityState], list[Refusal]]:
        """A `um` from `sender`: the entries applied (to relay, in order) and the reasons for the others.

        Raises `Refused` only when the message itself is malformed.
        """
        entries = _convert(data, UpdateMulti).d
        applied: list[EntityState] = []
        refusals: list[Refusal] = []
        for entry in entries:
            try:
                incoming = _convert(entry, EntityState)
                if incoming.isFirstSync:
                    raise Refused(Refusal.FIRST_SYNC_IN_UM)
                known = self.entities.get(incoming.networkId)
                if known is None:
                    raise Refused(Refusal.UNKNOWN)
                self._check_may_update(sender, present, incoming, known)
                self._merge(known, incoming)
            except Refused as refusal:
                refusals.append(refusal.reason)
            else:
                applied.append(incoming)
        return applied, refusals

    def apply_remove(self, sender: str, present: Collection[str], data: Any) -> EntityState:
        """An `r` from `sender`: forget the entity and return its last state. Raises `Refused`."""
        network_id = _convert(data, RemoveMessage).networkId
        known = self.entities.get(network_id)
        if known is None:
            raise Refused(Refusal.UNKNOWN)
        if not _may_speak_for(sender, present, known.owner, known):
            raise Refused(Refusal.NOT_OWNER)
        self._forget(network_id)
        return known

    # ---- membership ---------------------------------------------------------------------------------

    def client_left(self, client_id: str) -> list[EntityState]:
        """Forget what NAF clients delete when `client_id` leaves: its non-persistent entities (created by
        it, or owned by it with no creator) and their networked children. Persistent ones stay, with their
        owner unchanged, until someone takes them over. Returns the entities forgotten."""
        doomed = {
            network_id
            for network_id, state in self.entities.items()
            if not state.persistent and (state.creator == client_id or (not state.creator and state.owner == client_id))
        }
        grown = True
        while grown:  # children go with their parent (bounded: each pass adds at least one id)
            children = {
                network_id
                for network_id, state in self.entities.items()
                if state.parent in doomed and network_id not in doomed
            }
            grown = bool(children)
            doomed |= children
        return [self._forget(network_id) for network_id in doomed]

    def catch_up(self) -> list[EntityState]:
        """Every entity as a first-sync `u` carries it, parents before their children."""
        placed: set[str] = set()
        ordered: list[EntityState] = []
        remaining = list(self.entities.values())
        while remaining:
            ready = [s for s in remaining if s.parent not in self.entities or s.parent in placed]
            if not ready:  # a parent cycle (only a client can make one): send the rest as they are
                ready = remaining
            placed.update(state.networkId for state in ready)
            ordered += ready
            remaining = [state for state in remaining if state.networkId not in placed]
        return [msgspec.structs.replace(state, isFirstSync=True) for state in ordered]

    def persistent(self) -> list[EntityState]:
        return [state for state in self.entities.values() if state.persistent]

    def restore(self, states: Iterable[EntityState]) -> None:
        """Load stored entities (a room coming back after everyone left, or after a restart)."""
        for state in states:
            self.entities[state.networkId] = msgspec.structs.replace(state, isFirstSync=False)
            self.versions.setdefault(state.networkId, 0)

    def encode_state(self, state: EntityState) -> bytes:
        """The entity as stored: its full NAF state as JSON (without `isFirstSync`)."""
        return self._encode(msgspec.structs.replace(state, isFirstSync=False))

    # ---- rules --------------------------------------------------------------------------------------

    def _create(self, sender: str, present: Collection[str], incoming: EntityState) -> EntityState:
        if incoming.owner == sender:
            if incoming.creator not in ("", sender):  # nobody creates on another client's behalf
                incoming = msgspec.structs.replace(incoming, creator=sender)
        elif not (incoming.creator == sender and incoming.owner and incoming.owner not in present):
            raise Refused(Refusal.NOT_OWNER)
        if len(self.entities) >= self.max_entities:
            raise Refused(Refusal.QUOTA)
        stored = msgspec.structs.replace(incoming, isFirstSync=False, components=_non_null(incoming.components))
        self._check_size(stored.components)
        self.entities[incoming.networkId] = stored
        self.versions[incoming.networkId] = 1
        return incoming

    def _check_may_update(
        self, sender: str, present: Collection[str], incoming: EntityState, known: EntityState
    ) -> None:
        if not wins(incoming.lastOwnerTime, incoming.owner, known.lastOwnerTime, known.owner):
            raise Refused(Refusal.STALE)  # every client would ignore it too
        if incoming.owner == sender:
            return  # the owner's own update, or its claim, which wins by NAF's rule
        if incoming.owner == known.owner and _may_speak_for(sender, present, known.owner, known):
            return  # the creator syncing on behalf of an owner who left
        raise Refused(Refusal.NOT_OWNER)

    def _merge(self, known: EntityState, incoming: EntityState) -> None:
        merged = dict(known.components)
        merged.update(_non_null(incoming.components))
        self._check_size(merged)
        known.components = merged
        if incoming.owner != known.owner:  # as NAF: the owner time moves only with the owner
            known.owner = incoming.owner
            known.lastOwnerTime = incoming.lastOwnerTime
        known.persistent = incoming.persistent
        self.versions[known.networkId] = self.versions.get(known.networkId, 0) + 1

    def _check_size(self, components: dict[str, Any]) -> None:
        if len(components) > MAX_COMPONENTS or len(self._encode(components)) > self.max_state_bytes:
            raise Refused(Refusal.TOO_LARGE)

    def _forget(self, network_id: str) -> EntityState:
        self.versions.pop(network_id, None)
        return self.entities.pop(network_id)


def _may_speak_for(sender: str, present: Collection[str], owner: str, known: EntityState) -> bool:
    """The owner itself, or the entity's creator while that owner is not in the room."""
    return sender == owner or (sender == known.creator and owner not in present)


def _non_null(components: dict[str, Any]) -> dict[str, Any]:
    return {index: value for index, value in components.items() if value is not None}


def _convert(data: Any, kind: type[Any]) -> Any:
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise Refused(Refusal.MALFORMED) from exc
