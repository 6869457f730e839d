"""The networked-aframe (NAF) server protocol as plain objects: rooms, occupants, relaying, shadow state.

Both NAF transports (the raw-WebSocket `uws` adapter and the `socketio` adapter) speak the same events,
so one sans-I/O core serves them: an adapter turns frames into `receive(client, event, data, now)` calls
and carries out the returned actions (`Emit`, `CloseClient`, and the storage actions `LoadRoom` and
`PersistEntity` shared with the native engine). No socket, task or clock in here.

The events and payloads are NAF 0.14's (docs/dialects.md, "NAF"):

- `joinRoom {room}` -> `connectSuccess {joinedTime, socketId, room}` to the joiner, then `occupantsChanged
  {occupants: {id: joinedTime}}` to the whole room, joiner included; `socketId` is what the uWS client
  reads its id from, `room` names the instance joined (past `room_capacity`, `<room>--2`, `--3`, ...);
- `send {to, type, data}` -> `send {from, to, type, data}` to `to` only;
- `broadcast {type, data}` -> `broadcast {from, type, data}` to the rest of the room (never the sender);
- a leave -> `occupantsChanged` to the rest.

What the stock servers get wrong is fixed here: `from` is always the sender's id (F1); the NAF data types
`u`/`um`/`r` go through the room's `Shadow`, which drops what the sender may not say (F2); `send` reaches
only a member of the sender's room (F3), and rooms and client ids live in separate tables (F4); a second
`joinRoom` is idempotent, or moves the client (F5); a missing or malformed payload is an `error` event for
that client only, and repeated ones close it (F6); overflow instances never collide and are told (F8).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from shoal.core.actions import LoadRoom, PersistEntity
from shoal.core.limits import Limits
from shoal.core.ratelimit import TokenBucket
from shoal.dialects.naf.shadow import EntityState, Refusal, Refused, Shadow
from shoal.dialects.ratelimit import MessageBudget, Verdict
from shoal.dialects.stats import DialectStats
from shoal.protocol.errors import CloseCode, ErrorCode

log = structlog.get_logger("shoal.dialects.naf")

ROOM_CAPACITY = 50
"""Occupants per room instance before joins overflow to `<room>--2` (NAF's socket.io server uses 50)."""
MAX_TYPE_CHARS = 64
"""Longest message `type` (`u`, `um`, `r`, or an app's own, like `chat`)."""


class NafClient:
    """One NAF connection, from its open until it closes. In at most one room instance at a time.

    `channel` and `link` belong to the adapter (which transport carries this client); the core never
    reads them.
    """

    __slots__ = (
        "channel",
        "data_budget",
        "id",
        "invalid_budget",
        "join_budget",
        "joining",
        "link",
        "requested",
        "room",
    )

    def __init__(self, client_id: str, limits: Limits, now: float) -> None:
        self.id = client_id
        self.room: NafRoom | None = None
        self.joining: NafRoom | None = None
        """A room instance whose stored state is loading; the client joins it once that is done."""
        self.requested: str | None = None
        """The room name the client asked for (its instance may be `<name>--N`)."""
        self.data_budget = MessageBudget(limits.pose_rate, limits.pose_burst, limits.abuse_close_seconds, now)
        self.join_budget = MessageBudget(limits.message_rate, limits.message_burst, limits.abuse_close_seconds, now)
        self.invalid_budget = TokenBucket(limits.invalid_burst / limits.invalid_window, limits.invalid_burst, now)
        self.channel: Any = None
        self.link: Any = None

    def __repr__(self) -> str:
        return f"<NafClient {self.id} room={self.room.name if self.room else None!r}>"


class NafRoom:
    """One room instance: its occupants with their join times, and its shadow state."""

    __slots__ = ("joined", "last_joined", "loading", "name", "occupants", "shadow", "stored", "waiting")

    def __init__(self, name: str, shadow: Shadow, loading: bool) -> None:
        self.name = name
        self.occupants: dict[str, NafClient] = {}
        self.joined: dict[str, int] = {}
        """Client id -> join time in ms: the `occupants` map NAF receives."""
        self.last_joined = 0
        self.shadow = shadow
        self.loading = loading
        """True until the room's stored entities are loaded; joins wait in `waiting` meanwhile."""
        self.waiting: dict[str, NafClient] = {}
        self.stored: set[str] = set()
        """Network ids of this room's entities that are in the store."""

    def headcount(self) -> int:
        """Occupants plus clients waiting for the room to load: what the capacity applies to."""
        return len(self.occupants) + len(self.waiting)

    def others(self, client: NafClient) -> list[NafClient]:
        return [other for other in self.occupants.values() if other is not client]


@dataclass(slots=True)
class Emit:
    """Send the NAF event `event` with `data` to every client in `recipients` (encode it once)."""

    recipients: Sequence[NafClient]
    event: str
    data: Any


@dataclass(slots=True)
class CloseClient:
    """Close one client's connection with a WebSocket close code and a short reason."""

    client: NafClient
    code: int
    reason: str


Action = Emit | CloseClient | LoadRoom | PersistEntity


class NafCore:
    """Every NAF room and client of the server.

    With `store_backed`, a room instance loads its stored entities before its first occupant is admitted
    (`LoadRoom` ... `room_loaded`), changes to persistent entities come out as `PersistEntity`, and empty
    rooms are dropped from memory; without it, a room holding persistent entities stays in memory. Client
    ids are the decimal string of a random 32-bit number unless the adapter names them (socket.io sids).
    """

    def __init__(
        self,
        limits: Limits | None = None,
        room_capacity: int = ROOM_CAPACITY,
        store_backed: bool = False,
        new_id: Callable[[], str] | None = None,
    ) -> None:
        if room_capacity < 1:
            raise ValueError("room_capacity must be at least 1")
        self.limits = limits or Limits()
        self.room_capacity = room_capacity
        self.store_backed = store_backed
        self.rooms: dict[str, NafRoom] = {}
        self.clients: dict[str, NafClient] = {}
        self.stats = DialectStats()
        self._new_id = new_id or (lambda: str(secrets.randbits(32)))
        self._handlers: dict[str, Callable[[NafClient, Any, float], list[Action]]] = {
            "joinRoom": self._on_join,
            "send": self._on_send,
            "broadcast": self._on_broadcast,
        }

    # ---- events from an adapter -------------------------------------------------------------------

    def connect(self, now: float, client_id: str | None = None) -> NafClient:
        """A connection opened. Its id is `client_id` if given (it must be unused), else a fresh one."""
        if client_id is None:
            client_id = self._new_id()
            while client_id in self.clients:
                client_id = self._new_id()
        elif client_id in self.clients:
            raise ValueError(f"client id {client_id!r} is in use")
        client = NafClient(client_id, self.limits, now)
        self.clients[client_id] = client
        self.stats.connections += 1
        return client

    def receive(self, client: NafClient, event: Any, data: Any, now: float) -> list[Action]:
        """One NAF event from `client`. Unknown events are ignored, as NAF's servers do."""
        self.stats.messages_in += 1
        handler = self._handlers.get(event) if isinstance(event, str) else None
        if handler is None:
            self.stats.dropped["unknown_event"] += 1
            return []
        budget = client.join_budget if event == "joinRoom" else client.data_budget
        verdict = budget.take(now)
        if verdict is Verdict.DROP:
            self.stats.dropped["rate"] += 1
            return []
        if verdict is Verdict.CLOSE:
            self.stats.dropped["rate"] += 1
            return [self._close(client, CloseCode.RATE_LIMITED, "rate limit exceeded")]
        return handler(client, data, now)

    def refuse_frame(self, client: NafClient, problem: str, now: float) -> list[Action]:
        """A frame the adapter could not decode (not JSON, not `{event, data}`)."""
        return self._invalid(client, ErrorCode.BAD_JSON, problem, now)

    def slow_consumer(self, client: NafClient) -> CloseClient:
        """The adapter cannot write to `client` without buffering past its limit: close it (4009)."""
        return self._close(client, CloseCode.SLOW_CONSUMER, "slow consumer: send buffer full")

    def disconnect(self, client: NafClient, now: float) -> list[Action]:
        """`client`'s connection is gone: it leaves its room (the others get `occupantsChanged`)."""
        if self.clients.pop(client.id, None) is None:
            return []
        return self._leave(client)

    def room_loaded(self, name: str, stored: Sequence[bytes], now: float) -> list[Action]:
        """The stored entities (JSON of `EntityState`) of room instance `name` are loaded: admit who waits."""
        room = self.rooms.get(name)
        if room is None or not room.loading:
            return []
        states = []
        for data in stored:
            try:
                states.append(msgspec.json.decode(data, type=EntityState))
            except msgspec.DecodeError:
                log.warning("naf_stored_entity_unreadable", room=name)
        room.shadow.restore(states)
        room.stored = {state.networkId for state in states}
        room.loading = False
        actions: list[Action] = []
        for client in list(room.waiting.values()):
            del room.waiting[client.id]
            client.joining = None
            actions += self._admit(client, room, now)
        return actions + self._unload_if_idle(room)

    def room_load_failed(self, name: str, problem: str, now: float) -> list[Action]:
        """Room instance `name` could not be loaded: every waiting join is refused and the room dropped."""
        room = self.rooms.get(name)
        if room is None or not room.loading:
            return []
        del self.rooms[name]
        log.warning("naf_room_load_failed", room=name, problem=problem)
        actions: list[Action] = []
        for client in room.waiting.values():
            client.joining = None
            client.requested = None
            actions.append(self._error(client, ErrorCode.STORAGE_UNAVAILABLE, "the room could not be loaded"))
        return actions

    # ---- queries -------------------------------------------------------------------------------------

    def room_summaries(self) -> list[dict[str, object]]:
        """Every live room instance with its occupant and entity counts, largest first."""
        rooms = sorted(self.rooms.values(), key=lambda room: (-len(room.occupants), room.name))
        return [{"name": r.name, "occupants": len(r.occupants), "entities": len(r.shadow)} for r in rooms]

    # ---- handlers ------------------------------------------------------------------------------------

    def _on_join(self, client: NafClient, data: Any, now: float) -> list[Action]:
        name = data.get("room") if isinstance(data, dict) else None
        limit = self.limits.max_room_chars
        if not isinstance(name, str) or not 0 < len(name) <= limit or not name.isprintable():
            return self._invalid(client, ErrorCode.INVALID_ROOM, f"joinRoom needs {{room}}: 1-{limit} characters", now)
        if name == client.requested and (client.room is not None or client.joining is not None):
            return []  # NAF joins once per socket; a repeat changes nothing (F5)
        actions = self._leave(client)  # a join to another room moves the client (F5)
        instance = self._instance_for(name)
        room = self.rooms.get(instance) if instance is not None else None
        if room is None:
            if instance is None or len(self.rooms) >= self.limits.max_rooms:
                return [*actions, self._error(client, ErrorCode.TOO_MANY_ROOMS, "server room limit reached")]
            shadow = Shadow(self.limits.max_entities_per_room, self.limits.max_props_bytes)
            room = self.rooms[instance] = NafRoom(instance, shadow, loading=self.store_backed)
            if room.loading:
                actions.append(LoadRoom(instance))
        client.requested = name
        if room.loading:
            room.waiting[client.id] = client
            client.joining = room
            return actions
        return actions + self._admit(client, room, now)

    def _instance_for(self, name: str) -> str | None:
        """The instance a join to `name` lands in: `name` while it has room, else the first `name--N`
        (N = 2, 3, ...) that has room or does not exist. Never a live instance that is full (F8)."""
        for number in range(1, self.limits.max_rooms + 2):
            instance = name if number == 1 else f"{name}--{number}"
            room = self.rooms.get(instance)
            if room is None or room.headcount() < self.room_capacity:
                return instance
        return None

    def _admit(self, client: NafClient, room: NafRoom, now: float) -> list[Action]:
        joined = max(int(now * 1000), room.last_joined + 1)  # distinct: NAF's WebRTC adapter breaks ties badly
        room.last_joined = joined
        room.occupants[client.id] = client
        room.joined[client.id] = joined
        client.room = room
        actions: list[Action] = [
            Emit((client,), "connectSuccess", {"joinedTime": joined, "socketId": client.id, "room": room.name}),
            Emit(list(room.occupants.values()), "occupantsChanged", {"occupants": dict(room.joined)}),
        ]
        for state in room.shadow.catch_up():  # the late joiner hears the room's state from the server
            actions.append(Emit((client,), "send", _packet(state.owner, "u", state, to=client.id)))
        return actions

    def _leave(self, client: NafClient) -> list[Action]:
        waiting_for = client.joining
        if waiting_for is not None:
            waiting_for.waiting.pop(client.id, None)
            client.joining = None
        room = client.room
        client.requested = None
        if room is None:
            return []
        del room.occupants[client.id]
        del room.joined[client.id]
        client.room = None
        room.shadow.client_left(client.id)
        actions: list[Action] = []
        if room.occupants:
            actions.append(Emit(list(room.occupants.values()), "occupantsChanged", {"occupants": dict(room.joined)}))
        return actions + self._unload_if_idle(room)

    def _unload_if_idle(self, room: NafRoom) -> list[Action]:
        """Drop an empty room from memory unless it holds persistent entities that only memory keeps."""
        if room.occupants or room.waiting or room.loading:
            return []
        if self.store_backed or not room.shadow.persistent():
            del self.rooms[room.name]
        return []

    def _on_send(self, client: NafClient, data: Any, now: float) -> list[Action]:
        room = client.room
        if room is None:
            self.stats.dropped["not_in_room"] += 1
            return []
        kind, payload, problem = _message_parts(data)
        to = data.get("to") if isinstance(data, dict) else None
        if problem is None and not isinstance(to, str):
            problem = "send needs {to, type, data}"
        if problem is not None:
            return self._invalid(client, ErrorCode.INVALID_MESSAGE, problem, now)
        target = room.occupants.get(to)
        if target is None:  # only ids of the sender's room; never a room or another room's client (F3, F4)
            self.stats.dropped["cross_room_send"] += 1
            return []
        actions: list[Action] = []
        relayed = self._watch(client, room, kind, payload, actions, now)
        if relayed is not _DROP:
            actions.append(Emit((target,), "send", _packet(client.id, kind, relayed, to=to)))
        return actions

    def _on_broadcast(self, client: NafClient, data: Any, now: float) -> list[Action]:
        room = client.room
        if room is None:  # as NAF's servers: ignored before joinRoom
            self.stats.dropped["not_in_room"] += 1
            return []
        kind, payload, problem = _message_parts(data)
        if problem is not None:
            return self._invalid(client, ErrorCode.INVALID_MESSAGE, problem, now)
        actions: list[Action] = []
        relayed = self._watch(client, room, kind, payload, actions, now)
        others = room.others(client)
        if relayed is not _DROP and others:  # no echo to the sender (F10)
            actions.append(Emit(others, "broadcast", _packet(client.id, kind, relayed)))
        return actions

    # ---- shadow state ----------------------------------------------------------------------------------

    def _watch(
        self, client: NafClient, room: NafRoom, kind: str, payload: Any, actions: list[Action], now: float
    ) -> Any:
        """Run a NAF data message through the room's shadow. Returns what to relay, or `_DROP`; appends
        storage actions and errors to `actions`."""
        if kind not in ("u", "um", "r"):
            return payload  # an app's own type (chat, WebRTC signalling, ...): relayed as is
        shadow, present = room.shadow, room.occupants
        try:
            if kind == "u":
                state = shadow.apply_update(client.id, present, payload)
                self._persist(room, state.networkId, actions)
                return state
            if kind == "um":
                applied, refusals = shadow.apply_update_multi(client.id, present, payload)
                for reason in refusals:
                    self._refused(client, reason, actions, now)
                for state in applied:
                    self._persist(room, state.networkId, actions)
                return {"d": applied} if applied else _DROP
            removed = shadow.apply_remove(client.id, present, payload)
            self._persist(room, removed.networkId, actions)
            return payload
        except Refused as refusal:
            self._refused(client, refusal.reason, actions, now)
            return _DROP

    def _refused(self, client: NafClient, reason: Refusal, actions: list[Action], now: float) -> None:
        self.stats.dropped[reason.value] += 1
        if reason is Refusal.MALFORMED:
            actions += self._invalid(client, ErrorCode.INVALID_MESSAGE, "malformed NAF entity data", now)

    def _persist(self, room: NafRoom, network_id: str, actions: list[Action]) -> None:
        """Store a persistent entity's new state; delete it from the store once removed or not persistent."""
        if not self.store_backed:
            return
        state = room.shadow.entities.get(network_id)
        if state is not None and state.persistent:
            room.stored.add(network_id)
            version = room.shadow.versions.get(network_id, 0)
            actions.append(PersistEntity(room.name, network_id, version, room.shadow.encode_state(state)))
        elif network_id in room.stored:
            room.stored.discard(network_id)
            actions.append(PersistEntity(room.name, network_id, 0, None))

    # ---- replies -----------------------------------------------------------------------------------------

    def _error(self, client: NafClient, code: ErrorCode, problem: str) -> Emit:
        """An `error` event for one client (NAF clients ignore events they do not know)."""
        return Emit((client,), "error", {"code": code.value, "message": problem})

    def _invalid(self, client: NafClient, code: ErrorCode, problem: str, now: float) -> list[Action]:
        """Reply with an error; a client that keeps sending invalid messages is closed with 1008."""
        self.stats.dropped["invalid"] += 1
        actions: list[Action] = [self._error(client, code, problem)]
        if not client.invalid_budget.take(now):
            actions.append(self._close(client, CloseCode.POLICY_VIOLATION, "too many invalid messages"))
        return actions

    def _close(self, client: NafClient, code: int, reason: str) -> CloseClient:
        self.stats.closes[code] += 1
        return CloseClient(client, code, reason)


_DROP = object()
"""`_watch`'s answer for a message that must not be relayed."""


def _message_parts(data: Any) -> tuple[str, Any, str | None]:
    """(`type`, `data`, problem) of a `send`/`broadcast` packet; `problem` is None when it is well formed."""
    if not isinstance(data, dict):
        return "", None, "the payload must be an object {type, data}"
    kind = data.get("type")
    if not isinstance(kind, str) or not 0 < len(kind) <= MAX_TYPE_CHARS:
        return "", None, f"type must be a string of 1-{MAX_TYPE_CHARS} characters"
    return kind, data.get("data"), None


def _packet(sender: str, kind: str, data: Any, to: str | None = None) -> dict[str, Any]:
    """A relayed packet, `from` stamped with the real sender (F1)."""
    if to is None:
        return {"from": sender, "type": kind, "data": data}
    return {"from": sender, "to": to, "type": kind, "data": data}
