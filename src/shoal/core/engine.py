"""The room engine: Shoal's sans-I/O core.

The engine takes events (a connection opened, a frame arrived, a connection closed, time passed) and
returns `Send`/`Close` actions. It owns every room and member but no socket, task or clock: the
transport passes `now` (seconds, wall clock) into every call and carries out the actions.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import msgspec
import structlog

from shoal import __version__
from shoal.core.access import (
    AuthMode,
    Ban,
    Identity,
    Role,
    RoomAccess,
    RoomSettings,
    may_assign,
    may_edit_entities,
    may_moderate,
)
from shoal.core.actions import (
    AckWhenDurable,
    Action,
    Close,
    LoadRoom,
    PersistBan,
    PersistEntity,
    PersistPosition,
    PersistRole,
    PersistRoom,
    Send,
    VerifyRoomPassword,
    VerifyToken,
)
from shoal.core.entities import EntityRefused
from shoal.core.interest import Interest
from shoal.core.joints import joints_every, member_joints
from shoal.core.limits import Limits
from shoal.core.member import Member
from shoal.core.pose import InvalidPose, member_pose, unit_quaternion
from shoal.core.ratelimit import TokenBucket
from shoal.core.room import Room, encode_once_per_codec
from shoal.core.stats import Stats
from shoal.protocol.binary import PackedPose
from shoal.protocol.codec import Codec, DecodeFailure
from shoal.protocol.errors import CloseCode, ErrorCode
from shoal.protocol.joints import PackedJoints
from shoal.protocol.messages import (
    PROTOCOL_VERSION,
    Ack,
    AppMessage,
    BanMember,
    ClaimResult,
    ClientMessage,
    Entity,
    EntityClaim,
    EntityCreate,
    EntityDelete,
    EntityRelease,
    EntityUpdate,
    Error,
    Hello,
    Join,
    Joined,
    Joints,
    Kick,
    Kicked,
    Leave,
    Left,
    MemberJoined,
    MemberLeft,
    MemberPose,
    MemberUpdated,
    Mute,
    Ping,
    Pong,
    Pose,
    Relay,
    ServerMessage,
    SetRole,
    Welcome,
)

EntityRequest = EntityCreate | EntityUpdate | EntityDelete | EntityClaim | EntityRelease

ROOM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.~:-]*")
"""Room names: letters, digits and `_ . ~ : -`, starting with a letter or digit (URL-safe as-is)."""

log = structlog.get_logger("shoal.rooms")


@dataclass(frozen=True, slots=True)
class Resumable:
    """What a dropped member's resume token brings back."""

    member_id: int
    name: str
    color: str
    user: str | None
    room: str | None
    expires_at: float


PALETTE = (
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#46f0f0",
    "#f032e6", "#bcf60c", "#fabebe", "#008080", "#e6beff", "#ffe119",
)  # fmt: skip


class Engine:
    """Rooms, members and their messages, as plain objects.

    `tick_rate` is the default room tick rate in Hz. With `store_backed`, rooms load their stored state
    before the first member joins (`LoadRoom` ... `room_loaded`), persistent changes come out as
    `Persist*` actions, and empty rooms are unloaded; without it, rooms holding persistent entities stay in
    memory. `interest` turns on interest management in every room (`shoal.core.interest`). `new_id` and
    `new_token` may be replaced in tests; by default member ids are random non-zero
    32-bit integers and resume tokens are 192-bit URL-safe secrets. `auth_mode` says whether a `hello` token is
    verified (`VerifyToken` ... `token_checked`) and whether members need an account (see `shoal.core.access`).
    Rooms relay hand joints with every `max(1, round(tick_rate / limits.joints_relay_rate))`-th tick.
    """

    def __init__(
        self,
        limits: Limits | None = None,
        tick_rate: float = 20.0,
        server_name: str = "shoal",
        new_id: Callable[[], int] | None = None,
        new_token: Callable[[], str] | None = None,
        store_backed: bool = False,
        interest: Interest | None = None,
        auth_mode: AuthMode = AuthMode.OFF,
    ) -> None:
        if not 0.5 <= tick_rate <= 240:
            raise ValueError("tick_rate must be between 0.5 and 240 Hz")
        self.limits = limits or Limits()
        self.joints_every = joints_every(tick_rate, self.limits.joints_relay_rate)
        """Rooms relay hand joints with every `joints_every`-th tick (see `shoal.core.joints`)."""
        self.tick_rate = tick_rate
        self.server_name = server_name
        self.rooms: dict[str, Room] = {}
        self.members: dict[int, Member] = {}
        self.stats = Stats()
        self.store_backed = store_backed
        self.auth_mode = auth_mode
        self.interest = interest
        """The interest settings of new rooms (None: every member gets every pose every tick)."""
        self.stored_rooms: set[str] = set()
        """Rooms known to have stored state (filled from the store at start-up), for the stored-rooms quota."""
        self._encode = msgspec.json.Encoder().encode
        self._new_id = new_id or (lambda: secrets.randbits(32))
        self._new_token = new_token or (lambda: secrets.token_urlsafe(24))
        self._new_entity_id = lambda: "e-" + secrets.token_hex(6)
        self._awaiting_hello: dict[int, Member] = {}
        self._resumable: dict[str, Resumable] = {}
        """Dropped sessions by resume token, until their `resume_window` ends."""
        self._limits_advertised = {
            name: getattr(self.limits, name)
            for name in (
                "max_message_bytes", "max_members_per_room", "pose_rate", "pose_burst",
                "message_rate", "message_burst", "hello_timeout", "ping_interval", "joints_rate",
                "joints_relay_rate",
            )
        }  # fmt: skip
        self._handlers: dict[type[ClientMessage], Callable[[Member, ClientMessage, float], list[Action]]] = {
            Hello: self._on_hello,  # type: ignore[dict-item]
            Join: self._on_join,  # type: ignore[dict-item]
            Leave: self._on_leave,  # type: ignore[dict-item]
            Ping: self._on_ping,  # type: ignore[dict-item]
            AppMessage: self._on_send,  # type: ignore[dict-item]
            EntityCreate: self._on_entity_request,  # type: ignore[dict-item]
            EntityUpdate: self._on_entity_request,  # type: ignore[dict-item]
            EntityDelete: self._on_entity_request,  # type: ignore[dict-item]
            EntityClaim: self._on_entity_request,  # type: ignore[dict-item]
            EntityRelease: self._on_entity_request,  # type: ignore[dict-item]
            Kick: self._on_kick,  # type: ignore[dict-item]
            BanMember: self._on_ban,  # type: ignore[dict-item]
            Mute: self._on_mute,  # type: ignore[dict-item]
            SetRole: self._on_set_role,  # type: ignore[dict-item]
        }

    # ---- events from the transport ---------------------------------------------------------------

    def connect(self, codec: Codec, now: float, address: str = "", identity: Identity | None = None) -> Member:
        """A WebSocket connection was accepted. Returns its member, which must `hello` within
        `limits.hello_timeout` seconds. With `identity` (verified from a token by the transport) the member's
        name, colour and avatar are its account's, whatever its `hello` says."""
        member_id = self._new_id()
        while member_id == 0 or member_id in self.members:
            member_id = self._new_id()
        member = Member(member_id, codec, self.limits, now, self._new_token(), address)
        if identity is not None:
            _assume(member, identity)
        self.members[member_id] = member
        self._awaiting_hello[member_id] = member
        self.stats.connections += 1
        return member

    def receive(self, member: Member, frame: bytes, now: float, binary: bool = False) -> list[Action]:
        """One complete WebSocket message arrived from `member`."""
        self.stats.frames_in += 1
        if binary != member.codec.binary:
            problem = f"{'binary' if binary else 'text'} frame on a {member.codec.subprotocol} connection"
            return self._invalid(member, ErrorCode.UNSUPPORTED_FRAME, problem, None, now)
        try:
            message = member.codec.decode(frame)
        except DecodeFailure as failure:
            return self._invalid(member, failure.code, failure.message, None, now)

        if type(message) is PackedPose or type(message) is Pose:  # the hot path: no dict dispatch
            return self._on_pose(member, message, now)
        if type(message) is PackedJoints or type(message) is Joints:  # their own budget, like poses
            return self._on_joints(member, message, now)
        if type(message) is EntityUpdate:  # moving a held object streams updates at pose rates
            if not member.pose_budget.take(now):
                return self._rate_limited(member, "update_rate", now)
        elif not member.message_budget.take(now):
            return self._rate_limited(member, "message_rate", now)
        if not member.greeted and type(message) is not Hello:
            return self._invalid(member, ErrorCode.HELLO_REQUIRED, "send hello first", message, now)
        return self._handlers[type(message)](member, message, now)

    def disconnect(self, member: Member, now: float) -> list[Action]:
        """`member`'s connection is gone (closed, timed out or reset). Returns the presence updates.

        The member leaves its room at once (no ghost avatars); for `resume_window` seconds its resume
        token can bring the same identity back into the same room.
        """
        if self.members.pop(member.id, None) is None:
            return []
        self._awaiting_hello.pop(member.id, None)
        if member.greeted:
            room = member.room or member.joining
            self._resumable[member.resume_token] = Resumable(
                member.id, member.name, member.color, member.user, room.name if room else None,
                now + self.limits.resume_window,
            )  # fmt: skip
        self._stop_waiting(member)
        return self._leave_room(member, now)

    def tick(self, now: float) -> tuple[list[Action], float]:
        """Tick every room that is due. Returns the actions and the time of the next deadline."""
        actions: list[Action] = []
        if self._awaiting_hello:
            actions += self._expire_handshakes(now)
        if self._resumable:
            self._forget_expired_sessions(now)
        # Wake at least once per default tick interval: a room created while the transport sleeps
        # must get its first tick on time, not after an idle second.
        next_deadline = (math.floor(now * self.tick_rate) + 1) / self.tick_rate
        for room in self.rooms.values():
            if room.next_tick_at > now + 2 * room.tick_interval:  # the wall clock went backwards
                room.next_tick_at = now
            if room.next_tick_at <= now:
                actions += room.tick(now)
            next_deadline = min(next_deadline, room.next_tick_at)
        return actions, next_deadline

    # ---- queries -----------------------------------------------------------------------------------

    def room_summaries(self) -> list[dict[str, object]]:
        """Every live room with its member count, largest first."""
        rooms = sorted(self.rooms.values(), key=lambda room: (-len(room), room.name))
        return [{"name": room.name, "members": len(room), "tick_rate": 1.0 / room.tick_interval} for room in rooms]

    # ---- message handlers ------------------------------------------------------------------------

    def _stream_refused(
        self,
        member: Member,
        message: Pose | PackedPose | Joints | PackedJoints,
        budget: TokenBucket,
        limit: str,
        now: float,
    ) -> list[Action] | None:
        """The answer to a streamed message (a pose, joints) that `member`'s room or `budget` did not take (the
        caller tried the budget only if there is a room): over `budget` it is dropped and counted under `limit`,
        before `hello` is refused; None when a greeted member is in no room (it is ignored)."""
        if member.room is not None or not budget.take(now):
            return self._rate_limited(member, limit, now)
        if not member.greeted:
            return self._invalid(member, ErrorCode.HELLO_REQUIRED, "send hello first", message, now)
        return None

    def _on_pose(self, member: Member, message: Pose | PackedPose, now: float) -> list[Action]:
        self.stats.poses_in += 1
        room = member.room
        if room is None or not member.pose_budget.take(now):
            refused = self._stream_refused(member, message, member.pose_budget, "pose_rate", now)
            if refused is None:
                self.stats.poses_ignored += 1
            return refused or []
        if type(message) is PackedPose:  # binary: unit rotations and bounded positions by construction
            room.set_pose(member, None, message)
        else:
            try:
                pose = member_pose(member.id, message)  # type: ignore[arg-type]
            except InvalidPose as exc:
                return self._invalid(member, ErrorCode.INVALID_MESSAGE, str(exc), message, now)
            room.set_pose(member, pose)
        if self.store_backed and now - member.position_saved_at >= self.limits.position_interval:
            return [self._position(room, member, member.pose, now)]  # type: ignore[arg-type]  # just set
        return []

    def _on_joints(self, member: Member, message: Joints | PackedJoints, now: float) -> list[Action]:
        """Keep the sender's latest hand joints for the room's next joints tick (the same rules as a pose)."""
        self.stats.joints_in += 1
        room = member.room
        if room is None or not member.joints_budget.take(now):
            refused = self._stream_refused(member, message, member.joints_budget, "joints_rate", now)
            if refused is None:
                self.stats.joints_ignored += 1
            return refused or []
        if type(message) is PackedJoints:  # binary: unit rotations and bounded positions by construction
            room.set_joints(member, message)
            return []
        try:
            joints = member_joints(member.id, message)  # type: ignore[arg-type]
        except InvalidPose as exc:
            return self._invalid(member, ErrorCode.INVALID_MESSAGE, str(exc), message, now)
        room.set_joints(member, joints)
        return []

    def _on_hello(self, member: Member, message: Hello, now: float) -> list[Action]:
        if member.greeted:
            return self._invalid(member, ErrorCode.ALREADY_GREETED, "hello was already accepted", message, now)
        if message.v != PROTOCOL_VERSION:
            reason = f"protocol version {message.v} is not supported; this server speaks {PROTOCOL_VERSION}"
            return [
                self._reply(member, Error(code=ErrorCode.UNSUPPORTED_VERSION, message=reason, ref="hello")),
                self._close(member, CloseCode.UNSUPPORTED_VERSION, "unsupported protocol version"),
            ]
        identified = member.user is not None
        if message.token is not None and not identified and self.auth_mode is not AuthMode.OFF:
            member.pending_hello = message
            return [VerifyToken(member, message.token)]
        if self.auth_mode is AuthMode.REQUIRED and not identified:
            return self._refuse_identity(member, "this server requires an account: connect with a token")
        return self._greet(member, message, now)

    def token_checked(self, member: Member, identity: Identity | None, problem: str, now: float) -> list[Action]:
        """The `hello` token of `member` was verified: greet it as `identity`, or refuse it (4001) for `problem`."""
        hello, member.pending_hello = member.pending_hello, None
        if hello is None or self.members.get(member.id) is not member:
            return []
        if identity is None:
            return self._refuse_identity(member, problem)
        _assume(member, identity)
        return self._greet(member, hello, now)

    def _refuse_identity(self, member: Member, problem: str) -> list[Action]:
        return [
            self._reply(member, Error(code=ErrorCode.AUTH_FAILED, message=problem, ref="hello")),
            self._close(member, CloseCode.AUTH_FAILED, "authentication failed"),
        ]

    def _greet(self, member: Member, message: Hello, now: float) -> list[Action]:
        identified = member.user is not None
        name = " ".join(message.name.split())
        if not identified and (len(name) > self.limits.max_name_chars or not name.isprintable()):
            problem = f"name must be at most {self.limits.max_name_chars} printable characters"
            return self._invalid(member, ErrorCode.INVALID_MESSAGE, problem, message, now)
        self._awaiting_hello.pop(member.id, None)
        previous = self._take_resumable(message.resume, now) if message.resume else None
        if previous is not None and previous.user != member.user:
            previous = None  # a resume token brings back a session, never another identity
        if previous is not None:
            self._rekey(member, previous.member_id)
        if not identified:  # an account's name and colour are its own, not what hello says
            member.name = name or (previous.name if previous else f"Guest {member.id % 10000:04d}")
            color = message.color or (previous.color if previous else PALETTE[member.id % len(PALETTE)])
            member.color = color.lower()
        member.greeted = True
        welcome = Welcome(
            id=member.id,
            resume_token=member.resume_token,
            server_time=now * 1000.0,
            tick_rate=self.tick_rate,
            v=PROTOCOL_VERSION,
            resumed=previous is not None,
            server={"name": self.server_name, "version": __version__},
            limits=self._limits_advertised,
        )
        actions: list[Action] = [self._reply(member, welcome)]
        if previous is not None and previous.room is not None:
            actions += self._on_join(member, Join(room=previous.room), now)
        return actions

    def _take_resumable(self, token: str, now: float) -> Resumable | None:
        """The dropped session `token` belongs to, if it is still resumable; a token works once."""
        self._forget_expired_sessions(now)
        previous = self._resumable.pop(token, None)
        if previous is None or previous.member_id in self.members:
            return None
        return previous

    def _forget_expired_sessions(self, now: float) -> None:
        # Entries are inserted in expiry order (now + a constant window), so the expired ones come first.
        resumable = self._resumable
        while resumable:
            token = next(iter(resumable))
            if resumable[token].expires_at > now:
                break
            del resumable[token]

    def _rekey(self, member: Member, member_id: int) -> None:
        del self.members[member.id]
        member.id = member_id
        self.members[member_id] = member

    def _on_join(self, member: Member, message: Join, now: float) -> list[Action]:
        name = message.room
        if len(name) > self.limits.max_room_chars or not ROOM_NAME.fullmatch(name):
            problem = (
                f"room names are 1-{self.limits.max_room_chars} letters, digits or _.~:- "
                "starting with a letter or digit"
            )
            return self._invalid(member, ErrorCode.INVALID_ROOM, problem, message, now)
        room = self.rooms.get(name)
        if room is not None and member.room is room:  # joining the same room again: resend the snapshot
            return [self._reply(member, self._joined(member, room))]
        if room is not None and member.joining is room:
            return []
        if room is None and len(self.rooms) >= self.limits.max_rooms:
            return [self._error(member, ErrorCode.TOO_MANY_ROOMS, "server room limit reached", "join")]
        if room is not None and len(room) >= self.limits.max_members_per_room:
            return [self._error(member, ErrorCode.ROOM_FULL, f"room {name!r} is full", "join")]

        actions = self._leave_room(member, now)
        self._stop_waiting(member)
        member.join_request = message
        if room is None:
            room = self.rooms[name] = Room(
                name, 1.0 / self.tick_rate, now, self.limits, loading=self.store_backed, interest=self.interest,
                joints_every=self.joints_every,
            )  # fmt: skip
            log.info("room_opened", room=name)
            if room.loading:
                actions.append(LoadRoom(name))
        if room.loading:
            room.waiting[member.id] = member
            member.joining = room
            return actions
        return actions + self._enter(member, room, now)

    def _enter(self, member: Member, room: Room, now: float) -> list[Action]:
        """Admit `member` into the loaded `room` if its bans, privacy and cap allow; else refuse the join.

        A password for a private room is checked outside the core: the member then waits in the room's
        `waiting` until `room_password_checked`.
        """
        request, member.join_request = member.join_request, None
        access = room.access
        key = member.access_key
        ban = access.ban_of(key, now)
        if ban is not None:
            until = "" if ban.until is None else f" for {math.ceil(ban.until - now)} s"
            return self._refuse_join(member, room, ErrorCode.BANNED, f"you are banned from room {room.name!r}{until}")
        if not access.may_enter_freely(key):
            if request is not None and access.invited(request.invite):
                access.admitted.add(key)
            elif request is not None and request.password and access.settings.password_hash:
                room.waiting[member.id] = member
                member.joining = room
                return [VerifyRoomPassword(member, room.name, request.password, access.settings.password_hash)]
            else:
                problem = f"room {room.name!r} is private: join with its password or invite"
                return self._refuse_join(member, room, ErrorCode.ACCESS_DENIED, problem)
        cap = min(self.limits.max_members_per_room, access.settings.max_members or self.limits.max_members_per_room)
        if len(room) >= cap:
            return self._refuse_join(member, room, ErrorCode.ROOM_FULL, f"room {room.name!r} is full")
        member.role = access.role_of(key)
        member.muted = key in access.muted
        return self._admit(member, room)

    def _refuse_join(self, member: Member, room: Room, code: ErrorCode, problem: str) -> list[Action]:
        return [self._error(member, code, problem, "join")]

    def room_password_checked(self, member: Member, name: str, correct: bool, now: float) -> list[Action]:
        """The password `member` gave to join private room `name` was checked: admit it or refuse the join."""
        room = self.rooms.get(name)
        if room is None or member.joining is not room or self.members.get(member.id) is not member:
            return []  # it left, disconnected or joined elsewhere meanwhile
        room.waiting.pop(member.id, None)
        member.joining = None
        if correct:
            room.access.admitted.add(member.access_key)
            actions = self._enter(member, room, now)
        else:
            actions = self._refuse_join(member, room, ErrorCode.ACCESS_DENIED, f"wrong password for room {name!r}")
        return actions + self._unload_if_idle(room)

    def _admit(self, member: Member, room: Room) -> list[Action]:
        actions = encode_once_per_codec(MemberJoined(room=room.name, member=member.info()), room.members.values())
        room.add(member)
        actions.append(self._reply(member, self._joined(member, room)))
        return actions

    def room_loaded(
        self, name: str, entities: list[bytes], now: float, access: RoomAccess | None = None
    ) -> list[Action]:
        """The stored state of room `name` (its persistent entities as JSON, its settings, roles and bans) is
        loaded: admit who waits, as far as the room's access rules allow."""
        room = self.rooms.get(name)
        if room is None or not room.loading:
            return []
        room.access = access or RoomAccess()
        room.entities.restore(msgspec.json.decode(data, type=Entity) for data in entities)
        if entities:
            self.stored_rooms.add(name)
        room.loading = False
        waiting = list(room.waiting.values())
        room.waiting.clear()
        actions: list[Action] = []
        for member in waiting:
            member.joining = None
            actions += self._enter(member, room, now)
        if room.is_idle():
            actions += self._unload_if_idle(room)
        return actions

    def room_load_failed(self, name: str, problem: str, now: float) -> list[Action]:
        """Room `name` could not be loaded: every waiting join is refused and the room is dropped."""
        room = self.rooms.get(name)
        if room is None or not room.loading:
            return []
        del self.rooms[name]
        log.warning("room_load_failed", room=name, problem=problem)
        actions: list[Action] = []
        for member in room.waiting.values():
            member.joining = None
            actions.append(self._error(member, ErrorCode.STORAGE_UNAVAILABLE, "the room could not be loaded", "join"))
        return actions

    def _on_leave(self, member: Member, message: Leave, now: float) -> list[Action]:
        room = member.room
        if room is None:
            return self._invalid(member, ErrorCode.NOT_IN_ROOM, "not in a room", message, now)
        return [*self._leave_room(member, now), self._reply(member, Left(room=room.name))]

    def _on_ping(self, member: Member, message: Ping, now: float) -> list[Action]:
        return [self._reply(member, Pong(t=message.t, server_time=now * 1000.0))]

    def _on_send(self, member: Member, message: AppMessage, now: float) -> list[Action]:
        room = member.room
        if room is None:
            return self._invalid(member, ErrorCode.NOT_IN_ROOM, "join a room before sending messages", message, now)
        if member.muted:
            return [self._error(member, ErrorCode.MUTED, "a moderator muted you: your message was dropped", "msg")]
        relay = Relay(topic=message.topic, sender=member.id, data=message.data, to=message.to)
        if message.to is None:
            return encode_once_per_codec(relay, room.others(member))
        target = room.members.get(message.to)
        if target is None:
            return self._invalid(member, ErrorCode.NO_SUCH_MEMBER, f"no member {message.to} in this room", message, now)
        return [self._reply(target, relay)]

    # ---- helpers ------------------------------------------------------------------------------------

    def _joined(self, member: Member, room: Room) -> Joined:
        return Joined(
            room=room.name,
            id=member.id,
            tick_rate=1.0 / room.tick_interval,
            seq=room.seq,
            members=room.snapshot(),
            entities=room.all_entities(),
        )

    def _leave_room(self, member: Member, now: float) -> list[Action]:
        room = member.room
        if room is None:
            return []
        actions: list[Action] = []
        if self.store_backed and member.pose is not None:
            actions.append(self._position(room, member, member.pose, now))
        room.remove(member)
        member.role, member.muted = Role.MEMBER, False
        departure = room.entities.member_left(member.id)
        actions += [self._persist(room, entity) for entity in departure.removed + departure.released]
        actions += encode_once_per_codec(MemberLeft(room=room.name, id=member.id), room.members.values())
        return actions + self._unload_if_idle(room)

    def _stop_waiting(self, member: Member) -> None:
        room = member.joining
        if room is not None:
            room.waiting.pop(member.id, None)
            member.joining = None
            self._unload_if_idle(room)

    def _unload_if_idle(self, room: Room) -> list[Action]:
        """Drop an empty room from memory. Its persistent entities live on in the store (or, without a
        store, the room stays loaded while it holds any)."""
        if not room.is_idle() or room.loading:
            return []
        if not self.store_backed and any(entity.persistent for entity in room.entities.by_id.values()):
            return []
        del self.rooms[room.name]
        log.info("room_closed", room=room.name)
        return []

    # ---- moderation: roles, kicks, mutes, bans ----------------------------------------------------------

    def _on_kick(self, member: Member, message: Kick, now: float) -> list[Action]:
        found = self._moderated(member, message.id, message, now)
        if isinstance(found, list):
            return found
        room, target = found
        return self._remove(room, target, message.reason, now, by=member.id)

    def _on_ban(self, member: Member, message: BanMember, now: float) -> list[Action]:
        found = self._moderated(member, message.id, message, now)
        if isinstance(found, list):
            return found
        room, target = found
        ban = Ban(None if message.seconds is None else now + message.seconds, message.reason, member.user or "")
        return self._ban(room, target.access_key, ban, now, by=member.id)

    def _on_mute(self, member: Member, message: Mute, now: float) -> list[Action]:
        found = self._moderated(member, message.id, message, now)
        if isinstance(found, list):
            return found
        room, target = found
        target.muted = message.muted
        if target.user is not None:  # remembered while the room is live (not for address-keyed guests)
            if message.muted:
                room.access.muted.add(target.user)
            else:
                room.access.muted.discard(target.user)
        return encode_once_per_codec(MemberUpdated(room=room.name, member=target.info()), room.members.values())

    def _on_set_role(self, member: Member, message: SetRole, now: float) -> list[Action]:
        found = self._peer(member, message.id, message, now)
        if isinstance(found, list):
            return found
        room, target = found
        role = Role(message.role)
        if not may_assign(member.role, target.role, role):
            return self._forbidden(member, f"a {member.role} cannot make a {target.role} a {role}", message, now)
        actions: list[Action] = []
        if target.user is not None:
            room.access.roles[target.user] = role
            if self.store_backed and not target.guest:
                actions.append(PersistRole(room.name, target.user, role.value))
        return actions + self._set_role(room, target, role)

    def _peer(
        self, member: Member, target_id: int, message: ClientMessage, now: float
    ) -> tuple[Room, Member] | list[Action]:
        """The room of `member` and its member `target_id`, or the refusal when either is missing."""
        room = member.room
        if room is None:
            return self._invalid(member, ErrorCode.NOT_IN_ROOM, "not in a room", message, now)
        target = room.members.get(target_id)
        if target is None:
            return self._invalid(member, ErrorCode.NO_SUCH_MEMBER, f"no member {target_id} in this room", message, now)
        return room, target

    def _moderated(
        self, member: Member, target_id: int, message: ClientMessage, now: float
    ) -> tuple[Room, Member] | list[Action]:
        """The room and the member `member` wants to kick, mute or ban, if its role allows; else the refusal."""
        found = self._peer(member, target_id, message, now)
        if isinstance(found, tuple) and not may_moderate(member.role, found[1].role):
            return self._forbidden(member, f"a {member.role} cannot {_tag(message)} a {found[1].role}", message, now)
        return found

    def _remove(
        self, room: Room, target: Member, reason: str, now: float, by: int | None, ban: Ban | None = None
    ) -> list[Action]:
        """Take `target` out of `room` (the others see `member_left`) and tell it why with `kicked`."""
        until = None if ban is None or ban.until is None else ban.until * 1000.0
        kicked = Kicked(room=room.name, by=by, reason=reason, banned=ban is not None, until=until)
        return [*self._leave_room(target, now), self._reply(target, kicked)]

    def _ban(self, room: Room, key: str, ban: Ban, now: float, by: int | None, persist: bool = True) -> list[Action]:
        room.access.bans[key] = ban
        actions: list[Action] = []
        if persist and self.store_backed:
            actions.append(PersistBan(room.name, key, ban.until, ban.reason, ban.by))
        for target in [member for member in room.members.values() if member.access_key == key]:
            actions += self._remove(room, target, ban.reason, now, by, ban)
        return actions

    def _set_role(self, room: Room, target: Member, role: Role) -> list[Action]:
        target.role = role
        return encode_once_per_codec(MemberUpdated(room=room.name, member=target.info()), room.members.values())

    def _forbidden(self, member: Member, problem: str, message: ClientMessage, now: float) -> list[Action]:
        """Refuse an action the member's role does not allow; one too many closes the connection with 4003."""
        seq = getattr(message, "seq", None)
        actions: list[Action] = [self._error(member, ErrorCode.FORBIDDEN, problem, _tag(message), seq)]
        if not member.invalid_budget.take(now):
            actions.append(self._close(member, CloseCode.FORBIDDEN, "too many forbidden actions"))
        return actions

    # ---- room access changed over REST (the caller checked the permission and stored the change) ----------

    def apply_settings(self, name: str, settings: RoomSettings) -> None:
        """Room `name` has new settings; members already inside stay."""
        room = self.rooms.get(name)
        if room is not None:
            room.access.settings = settings

    def apply_role(self, name: str, user: str, role: Role | None, now: float) -> list[Action]:
        """`user` has `role` in room `name` now (None: the room's default role)."""
        room = self.rooms.get(name)
        if room is None:
            return []
        if role is None:
            room.access.roles.pop(user, None)
        else:
            room.access.roles[user] = role
        actions: list[Action] = []
        for target in [member for member in room.members.values() if member.access_key == user]:
            actions += self._set_role(room, target, room.access.role_of(user))
        return actions

    def apply_ban(self, name: str, key: str, ban: Ban | None, now: float) -> list[Action]:
        """Ban `key` from room `name`, removing it if it is inside, or lift its ban (None)."""
        room = self.rooms.get(name)
        if room is None:
            return []
        if ban is None:
            room.access.bans.pop(key, None)
            return []
        return self._ban(room, key, ban, now, by=None, persist=False)

    # ---- entities ------------------------------------------------------------------------------------

    def _on_entity_request(self, member: Member, message: EntityRequest, now: float) -> list[Action]:
        """Create, update, delete, claim or release an entity; a refused request changes nothing."""
        if not may_edit_entities(member.role):
            return self._forbidden(member, "viewers cannot change entities", message, now)
        room = member.room
        seq = None if type(message) is EntityClaim else message.seq  # type: ignore[union-attr]
        actions: list[Action] = []
        try:
            if room is None:
                raise EntityRefused(ErrorCode.NOT_IN_ROOM, "join a room before using entities")
            entities = room.entities
            if type(message) is EntityCreate:
                if message.rot is not None:
                    message.rot = unit_quaternion(message.rot)
                new_stored_room = message.persistent and room.name not in self.stored_rooms
                if new_stored_room and len(self.stored_rooms) >= self.limits.max_stored_rooms:
                    raise EntityRefused(ErrorCode.QUOTA_EXCEEDED, "the server stores no more rooms")
                entity = entities.create(member.id, message, message.id or self._new_entity_id())
                if new_stored_room:
                    actions += self._remember_room(room, now)
            elif type(message) is EntityUpdate:
                rot = None if message.rot is None else unit_quaternion(message.rot)
                entity = entities.update(member.id, message, rot)
            elif type(message) is EntityDelete:
                entity = entities.delete(member.id, message.id)
            elif type(message) is EntityRelease:
                entity = entities.release(member.id, message.id)
            else:
                granted, entity = entities.claim(member.id, message.id)
                result = self._reply(member, ClaimResult(id=entity.id, granted=granted, owner=entity.owner))
                return [*self._changed(member, room, entity, None), result] if granted else [result]
        except (EntityRefused, InvalidPose) as refusal:
            return self._refuse(member, refusal, message, seq, now)
        return actions + self._changed(member, room, entity, seq, deleted=type(message) is EntityDelete)

    def _changed(
        self, member: Member, room: Room, entity: Entity, seq: int | None, deleted: bool = False
    ) -> list[Action]:
        """The actions after an entity changed: persist it if it is persistent, and acknowledge `seq`.

        The change itself reaches the room in the next tick. A reliable change to a persistent entity is
        acknowledged only once committed; any other is acknowledged at once.
        """
        actions: list[Action] = []
        if entity.persistent:
            actions.append(self._persist(room, entity, deleted))
        if seq is not None:
            if entity.persistent and self.store_backed:
                actions.append(AckWhenDurable(member, seq))
            else:
                actions.append(self._reply(member, Ack(seq=seq)))
        return actions

    def _persist(self, room: Room, entity: Entity, deleted: bool = False) -> Action:
        if deleted or entity.id not in room.entities.by_id:
            return PersistEntity(room.name, entity.id, entity.v, None)
        return PersistEntity(room.name, entity.id, entity.v, self._encode(entity))

    def _remember_room(self, room: Room, now: float) -> list[Action]:
        self.stored_rooms.add(room.name)
        return [PersistRoom(room.name, self._encode({"name": room.name, "created": now * 1000.0}))]

    def _position(self, room: Room, member: Member, pose: MemberPose, now: float) -> PersistPosition:
        member.position_saved_at = now
        return PersistPosition(room.name, member.user_key, self._encode(pose), now)

    def _refuse(
        self, member: Member, refusal: EntityRefused | InvalidPose, message: ClientMessage, seq: int | None, now: float
    ) -> list[Action]:
        """A refused entity request: rule and quota refusals are errors; malformed ones count as invalid."""
        if isinstance(refusal, InvalidPose):
            return self._invalid(member, ErrorCode.INVALID_MESSAGE, str(refusal), message, now, seq)
        return [self._error(member, refusal.code, refusal.message, _tag(message), seq)]

    def _reply(self, member: Member, message: ServerMessage) -> Send:
        return Send((member,), member.codec.encode(message), member.codec.binary)

    def _close(self, member: Member, code: int, reason: str) -> Close:
        self.stats.closes[code] += 1
        return Close(member, code, reason)

    def _error(self, member: Member, code: ErrorCode, problem: str, ref: str | None, seq: int | None = None) -> Send:
        return self._reply(member, Error(code=code, message=problem, ref=ref, seq=seq))

    def _invalid(
        self,
        member: Member,
        code: ErrorCode,
        problem: str,
        message: ClientMessage | PackedPose | PackedJoints | None,
        now: float,
        seq: int | None = None,
    ) -> list[Action]:
        """Reply with an error; a member that keeps sending invalid messages is closed with 1008."""
        self.stats.invalid_messages += 1
        ref = None if message is None else _tag(message)
        actions: list[Action] = [self._error(member, code, problem, ref, seq)]
        if not member.invalid_budget.take(now):
            actions.append(self._close(member, CloseCode.POLICY_VIOLATION, "too many invalid messages"))
        return actions

    def _rate_limited(self, member: Member, reason: str, now: float) -> list[Action]:
        """Drop one over-limit message. A member over its limit for `abuse_close_seconds` is closed 4008."""
        self.stats.dropped[reason] += 1
        if member.abuse_since is None or now - member.last_rate_drop_at > 1.0:
            member.abuse_since = now
        member.last_rate_drop_at = now
        if now - member.abuse_since >= self.limits.abuse_close_seconds:
            return [self._close(member, CloseCode.RATE_LIMITED, "rate limit exceeded")]
        if reason in _SILENT_DROPS or now - member.last_rate_error_at < 1.0:
            return []  # poses and joints are dropped silently; other drops are reported at most once a second
        member.last_rate_error_at = now
        return [self._reply(member, Error(code=ErrorCode.RATE_LIMITED, message="message dropped: rate limit"))]

    def _expire_handshakes(self, now: float) -> Iterable[Action]:
        deadline = now - self.limits.hello_timeout
        expired = [member for member in self._awaiting_hello.values() if member.connected_at <= deadline]
        for member in expired:
            del self._awaiting_hello[member.id]
        return [self._close(member, CloseCode.HELLO_TIMEOUT, "no hello received") for member in expired]


_SILENT_DROPS = frozenset(("pose_rate", "joints_rate"))
"""Streams whose excess is dropped without an error: the next message replaces the dropped one anyway."""


def _tag(message: ClientMessage | PackedPose | PackedJoints) -> str:
    """The `type` a client message was sent with."""
    if type(message) is PackedPose:
        return "pose"
    if type(message) is PackedJoints:
        return "joints"
    return type(message).__struct_config__.tag  # type: ignore[union-attr,return-value]


def _assume(member: Member, identity: Identity) -> None:
    """Give `member` a verified identity: its name, colour and avatar are the account's."""
    member.user = identity.user
    member.guest = identity.guest
    member.name = identity.name
    member.color = identity.color.lower()
    member.avatar = identity.avatar
