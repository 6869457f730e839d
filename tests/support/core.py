"""Driving the sans-I/O engine as the transport would, with a clock the test moves by hand.

No socket and no event loop: messages go in as JSON bytes, actions come out, and `inbox` / `closes`
read what each member would have received.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from shoal.core.actions import Action, Close, Send
from shoal.core.engine import Engine
from shoal.core.limits import Limits
from shoal.core.member import Member
from shoal.protocol.codec import JSON
from support.clients import strict_json

START = 1_795_262_169.0
"""The test clock's start (seconds since the epoch), on a multiple of every tick interval used."""

IDENTITY = [0.0, 0.0, 0.0, 1.0]


def pose_message(x: float = 0.0, y: float = 1.6, z: float = 0.0, **parts: Any) -> dict[str, Any]:
    """A `pose` message with the head at (x, y, z) and the identity rotation, plus `parts`."""
    return {"type": "pose", "head": {"pos": [x, y, z], "rot": IDENTITY}, **parts}


class CoreDriver:
    """An `Engine` with a hand-moved clock (`now`, in seconds) and shortcuts for common events.

    Member ids are 1, 2, 3, ... in order of connection, so failures are easy to read.
    """

    def __init__(self, tick_rate: float = 20.0, **limits: Any) -> None:
        ids = iter(range(1, 1_000_000))
        self.engine = Engine(Limits(**limits), tick_rate=tick_rate, new_id=lambda: next(ids))
        self.now = START

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def connect(self) -> Member:
        return self.engine.connect(JSON, self.now)

    def send(self, member: Member, message: dict[str, Any] | bytes) -> list[Action]:
        """Deliver one text frame from `member` (a dict is encoded as JSON)."""
        frame = message if isinstance(message, bytes) else json.dumps(message).encode()
        return self.engine.receive(member, frame, self.now)

    def greet(self, name: str = "", **fields: Any) -> Member:
        """A connected member that has sent `hello` and got its `welcome`."""
        member = self.connect()
        actions = self.send(member, {"type": "hello", "v": 1, "name": name, **fields})
        assert [m["type"] for m in inbox(actions, member)] == ["welcome"]
        return member

    def join(self, member: Member, room: str = "lobby") -> list[Action]:
        return self.send(member, {"type": "join", "room": room})

    def in_room(self, room: str, *names: str) -> list[Member]:
        """Greeted members, joined to `room` in order."""
        members = [self.greet(name) for name in names]
        for member in members:
            self.join(member, room)
        return members

    def pose(self, member: Member, x: float = 0.0, **parts: Any) -> list[Action]:
        return self.send(member, pose_message(x, **parts))

    def tick(self) -> list[Action]:
        """Move the clock to the earliest room deadline (unless it has passed) and tick; return the actions."""
        deadlines = [room.next_tick_at for room in self.engine.rooms.values()]
        if deadlines:
            self.now = max(self.now, min(deadlines))
        actions, _ = self.engine.tick(self.now)
        return actions


def inbox(actions: Iterable[Action], member: Member) -> list[dict[str, Any]]:
    """The messages `member` receives from `actions`, decoded with a strict JSON parser."""
    return [strict_json(a.frame) for a in actions if isinstance(a, Send) and member in a.recipients]


def types_for(actions: Iterable[Action], member: Member) -> list[str]:
    return [message["type"] for message in inbox(actions, member)]


def closes(actions: Iterable[Action]) -> dict[int, int]:
    """Member id -> close code, for every `Close` in `actions`."""
    return {a.member.id: a.code for a in actions if isinstance(a, Close)}


def error_codes(actions: Iterable[Action], member: Member) -> list[str]:
    return [message["code"] for message in inbox(actions, member) if message["type"] == "error"]
