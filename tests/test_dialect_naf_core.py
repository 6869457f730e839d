"""The sans-I/O NAF core: the join flow, relaying, and each flaw of NAF's servers it fixes (F1-F10).

No sockets: events go in with a hand-moved clock, actions come out, and `inbox` reads what one client
would receive.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from typing import Any

import msgspec
import pytest

from shoal.core.actions import LoadRoom, PersistEntity
from shoal.core.limits import Limits
from shoal.dialects.naf.core import Action, CloseClient, Emit, NafClient, NafCore

NOW = 1_795_261_464.0


def wire(data: Any) -> Any:
    """What a client would parse: the data as JSON (msgspec Structs included), read back strictly."""
    return json.loads(msgspec.json.encode(data))


def inbox(actions: Iterable[Action], client: NafClient) -> list[tuple[str, Any]]:
    return [(a.event, wire(a.data)) for a in actions if isinstance(a, Emit) and client in a.recipients]


def events(actions: Iterable[Action], client: NafClient) -> list[str]:
    return [event for event, _ in inbox(actions, client)]


class Naf:
    """A `NafCore` with ids c1, c2, ... and a clock the test moves."""

    def __init__(self, **options: Any) -> None:
        ids = (f"c{n}" for n in itertools.count(1))
        limits = Limits(**options.pop("limits", {}))
        self.core = NafCore(limits, new_id=lambda: next(ids), **options)
        self.now = NOW

    def connect(self) -> NafClient:
        return self.core.connect(self.now)

    def send(self, client: NafClient, event: str, data: Any) -> list[Action]:
        self.now += 0.001
        return self.core.receive(client, event, data, self.now)

    def join(self, client: NafClient, room: str = "basic") -> list[Action]:
        return self.send(client, "joinRoom", {"room": room})

    def in_room(self, count: int, room: str = "basic") -> list[NafClient]:
        clients = [self.connect() for _ in range(count)]
        for client in clients:
            self.join(client, room)
        return clients


def avatar(owner: str, network_id: str = "av1", **fields: Any) -> dict[str, Any]:
    return {
        "networkId": network_id,
        "owner": owner,
        "creator": owner,
        "lastOwnerTime": NOW * 1000,
        "template": "#avatar-template",
        "persistent": False,
        "parent": None,
        "components": {"0": {"x": 0, "y": 1.6, "z": 0}, "1": {"x": 0, "y": 90, "z": 0}},
        "isFirstSync": True,
        **fields,
    }


# ---- the join flow ------------------------------------------------------------------------------------


def test_join_sends_connect_success_first_then_occupants_to_everyone_including_the_joiner() -> None:
    naf = Naf()
    a, b = naf.connect(), naf.connect()
    naf.join(a)
    actions = naf.join(b)
    received = inbox(actions, b)
    assert [event for event, _ in received] == ["connectSuccess", "occupantsChanged"]
    success = received[0][1]
    assert success["socketId"] == "c2" and success["room"] == "basic" and isinstance(success["joinedTime"], int)
    occupants = received[1][1]["occupants"]
    assert set(occupants) == {"c1", "c2"} and occupants["c2"] == success["joinedTime"]
    assert events(actions, a) == ["occupantsChanged"]


def test_join_times_are_distinct_integers_even_within_one_millisecond() -> None:
    naf = Naf()
    a, b = naf.connect(), naf.connect()
    naf.core.receive(a, "joinRoom", {"room": "r"}, NOW)
    actions = naf.core.receive(b, "joinRoom", {"room": "r"}, NOW)
    occupants = inbox(actions, b)[1][1]["occupants"]
    assert occupants["c1"] != occupants["c2"]


def test_leaving_tells_the_others_and_empties_the_room() -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    joined_a = naf.core.rooms["basic"].joined["c1"]
    actions = naf.core.disconnect(b, naf.now)
    assert inbox(actions, a) == [("occupantsChanged", {"occupants": {"c1": joined_a}})]
    naf.core.disconnect(a, naf.now)
    assert naf.core.rooms == {}


# ---- relaying -----------------------------------------------------------------------------------------


def test_broadcast_reaches_the_rest_of_the_room_but_not_the_sender_f10() -> None:
    naf = Naf()
    a, b, c = naf.in_room(3)
    other_room = naf.in_room(1, room="elsewhere")[0]
    actions = naf.send(a, "broadcast", {"from": "c1", "type": "chat", "data": {"text": "hi"}})
    assert (
        inbox(actions, b)
        == inbox(actions, c)
        == [("broadcast", {"from": "c1", "type": "chat", "data": {"text": "hi"}})]
    )
    assert inbox(actions, a) == [] and inbox(actions, other_room) == []


def test_from_is_stamped_with_the_real_sender_f1() -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    actions = naf.send(a, "send", {"from": "c2", "to": "c2", "type": "chat", "data": "spoofed?"})
    assert inbox(actions, b) == [("send", {"from": "c1", "to": "c2", "type": "chat", "data": "spoofed?"})]
    actions = naf.send(a, "broadcast", {"from": "c2", "type": "chat", "data": "again"})
    assert inbox(actions, b)[0][1]["from"] == "c1"


def test_send_reaches_only_its_target() -> None:
    naf = Naf()
    a, b, c = naf.in_room(3)
    actions = naf.send(a, "send", {"from": "c1", "to": "c3", "type": "chat", "data": 1})
    assert events(actions, c) == ["send"] and events(actions, b) == [] and events(actions, a) == []


def test_send_to_another_rooms_client_or_a_room_name_reaches_nobody_f3() -> None:
    naf = Naf()
    a, _ = naf.in_room(2, room="r2")
    victim = naf.in_room(1, room="r1")[0]
    for target in ("c3", "r1", "room:r1"):
        actions = naf.send(a, "send", {"from": "c3", "to": target, "type": "chat", "data": "x"})
        assert actions == []
    assert naf.core.stats.dropped["cross_room_send"] == 3
    assert victim.room is not None and victim.room.name == "r1"


def test_a_room_named_after_a_client_id_is_just_a_room_f4() -> None:
    naf = Naf()
    victim, friend = naf.in_room(2, room="lobby")
    attacker = naf.connect()
    actions = naf.join(attacker, room=victim.id)
    assert events(actions, victim) == [] and events(actions, friend) == []
    actions = naf.send(friend, "send", {"to": victim.id, "type": "chat", "data": "private"})
    assert events(actions, attacker) == [] and events(actions, victim) == ["send"]


def test_a_second_join_to_the_same_room_changes_nothing_f5() -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    assert naf.join(b) == []
    assert list(naf.core.rooms["basic"].joined) == ["c1", "c2"]
    del a


def test_a_join_to_another_room_leaves_the_first_without_a_ghost_f5() -> None:
    naf = Naf()
    a, b = naf.in_room(2, room="first")
    actions = naf.join(b, room="second")
    assert inbox(actions, a) == [("occupantsChanged", {"occupants": {"c1": naf.core.rooms["first"].joined["c1"]}})]
    assert events(actions, b) == ["connectSuccess", "occupantsChanged"]
    naf.core.disconnect(b, naf.now)
    assert list(naf.core.rooms["first"].joined) == ["c1"] and "second" not in naf.core.rooms


@pytest.mark.parametrize("event", ["joinRoom", "send", "broadcast"])
@pytest.mark.parametrize("payload", [None, "x", [], {"room": None, "to": None, "type": None}, {"type": ""}])
def test_missing_or_null_payloads_are_an_error_for_that_client_only_f6(event: str, payload: Any) -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    actions = naf.send(a, event, payload)
    assert events(actions, a) == ["error"] and events(actions, b) == []
    assert not [action for action in actions if isinstance(action, CloseClient)]


def test_repeated_invalid_messages_close_the_client() -> None:
    naf = Naf()
    (a,) = naf.in_room(1)
    actions: list[Action] = []
    for _ in range(Limits().invalid_burst + 1):
        actions += naf.send(a, "broadcast", None)
    assert [(c.client, c.code) for c in actions if isinstance(c, CloseClient)] == [(a, 1008)]


def test_unknown_events_are_ignored() -> None:
    naf = Naf()
    (a,) = naf.in_room(1)
    assert naf.send(a, "hello", {"x": 1}) == [] and naf.send(a, 42, None) == []  # type: ignore[arg-type]


def test_a_flood_is_dropped_then_closed() -> None:
    naf = Naf(limits={"pose_rate": 10, "pose_burst": 10, "abuse_close_seconds": 1.0})
    a, b = naf.in_room(2)
    delivered = 0
    closed = None
    for _ in range(200):
        naf.now += 0.01
        actions = naf.core.receive(a, "broadcast", {"type": "chat", "data": 1}, naf.now)
        delivered += len(inbox(actions, b))
        closed = closed or next((c.code for c in actions if isinstance(c, CloseClient)), None)
    assert delivered < 40 and closed == 4008
    assert naf.core.stats.dropped["rate"] > 100


# ---- overflow instances (F8) ---------------------------------------------------------------------------


def test_a_full_room_overflows_to_numbered_instances_and_tells_the_client() -> None:
    naf = Naf(room_capacity=2)
    naf.in_room(2)
    third = naf.connect()
    success = inbox(naf.join(third), third)[0][1]
    assert success["room"] == "basic--2"
    assert third.room is not None and third.room.name == "basic--2"


def test_overflow_instances_never_collide_with_a_live_one_f8() -> None:
    """NAF's servers: with `--2` emptied and `--3` full, the next overflow recomputed `--3` and overwrote it."""
    naf = Naf(room_capacity=1)
    naf.in_room(1)  # basic
    second = naf.in_room(1)[0]  # basic--2
    naf.in_room(1)  # basic--3
    naf.core.disconnect(second, naf.now)  # basic--2 is gone
    newcomer = naf.connect()
    naf.join(newcomer)
    assert newcomer.room is not None and newcomer.room.name == "basic--2"
    naf.join(extra := naf.connect())
    assert extra.room is not None and extra.room.name == "basic--4"
    assert all(len(room.occupants) == 1 for room in naf.core.rooms.values())


# ---- the shadow in the room ----------------------------------------------------------------------------


def test_a_late_joiner_gets_every_entity_from_the_server() -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    naf.send(a, "broadcast", {"type": "u", "data": avatar("c1")})
    moved = avatar("c1", isFirstSync=False, components={"0": {"x": 3, "y": 1.6, "z": -1}})
    naf.send(a, "broadcast", {"type": "um", "data": {"d": [moved]}})
    late = naf.connect()
    received = inbox(naf.join(late), late)
    assert [event for event, _ in received] == ["connectSuccess", "occupantsChanged", "send"]
    packet = received[2][1]
    assert packet["from"] == "c1" and packet["to"] == late.id and packet["type"] == "u"
    state = packet["data"]
    assert state["isFirstSync"] is True and state["owner"] == "c1" and state["template"] == "#avatar-template"
    assert state["components"] == {"0": {"x": 3, "y": 1.6, "z": -1}, "1": {"x": 0, "y": 90, "z": 0}}
    del b


def test_forged_entity_updates_reach_nobody_f2() -> None:
    naf = Naf()
    a, b, c = naf.in_room(3)
    naf.send(a, "broadcast", {"type": "u", "data": avatar("c1")})
    forged = avatar("c1", isFirstSync=False, components={"0": {"x": 99, "y": 0, "z": 0}})
    for event, extra in (("broadcast", {}), ("send", {"to": "c3"})):
        assert naf.send(b, event, {"type": "u", "data": forged, **extra}) == []
        assert naf.send(b, event, {"type": "um", "data": {"d": [forged]}, **extra}) == []
        assert naf.send(b, event, {"type": "r", "data": {"networkId": "av1"}, **extra}) == []
    assert naf.core.stats.dropped["not_owner"] == 6
    assert naf.core.rooms["basic"].shadow.entities["av1"].components["0"] == {"x": 0, "y": 1.6, "z": 0}
    del c


def test_um_relays_only_the_entries_the_sender_may_make() -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    naf.send(a, "broadcast", {"type": "u", "data": avatar("c1")})
    naf.send(b, "broadcast", {"type": "u", "data": avatar("c2", "av2")})
    own = avatar("c2", "av2", isFirstSync=False, components={"0": {"x": 1, "y": 1, "z": 1}})
    forged = avatar("c1", isFirstSync=False, components={"0": {"x": 9, "y": 9, "z": 9}})
    actions = naf.send(b, "broadcast", {"type": "um", "data": {"d": [forged, own]}})
    [(event, packet)] = inbox(actions, a)
    assert event == "broadcast" and [entry["networkId"] for entry in packet["data"]["d"]] == ["av2"]


def test_ownership_transfers_by_nafs_rule() -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    naf.send(a, "broadcast", {"type": "u", "data": avatar("c1", "box")})
    claim = avatar("c2", "box", creator="c1", lastOwnerTime=NOW * 1000 + 100, isFirstSync=False)
    assert events(naf.send(b, "broadcast", {"type": "u", "data": claim}), a) == ["broadcast"]
    assert naf.core.rooms["basic"].shadow.entities["box"].owner == "c2"


def test_a_leavers_entities_are_not_sent_to_later_joiners() -> None:
    naf = Naf()
    a, b = naf.in_room(2)
    naf.send(a, "broadcast", {"type": "u", "data": avatar("c1")})
    naf.core.disconnect(a, naf.now)
    late = naf.connect()
    assert events(naf.join(late), late) == ["connectSuccess", "occupantsChanged"]
    del b


# ---- stored rooms -----------------------------------------------------------------------------------------


def test_a_store_backed_room_loads_before_admitting_and_persists_its_persistent_entities() -> None:
    naf = Naf(store_backed=True)
    a = naf.connect()
    actions = naf.join(a, "world")
    assert [type(action) for action in actions] == [LoadRoom] and actions[0].room == "world"
    stored = msgspec.json.encode(avatar("old-id", "box", persistent=True, isFirstSync=False))
    actions = naf.core.room_loaded("world", [stored], naf.now)
    received = inbox(actions, a)
    assert [event for event, _ in received] == ["connectSuccess", "occupantsChanged", "send"]
    assert received[2][1]["data"]["owner"] == "old-id" and received[2][1]["data"]["persistent"] is True

    claim = avatar("c1", "box", persistent=True, lastOwnerTime=NOW * 1000 + 1, isFirstSync=False)
    actions = naf.send(a, "broadcast", {"type": "u", "data": claim})
    [persist] = [action for action in actions if isinstance(action, PersistEntity)]
    assert persist.room == "world" and persist.entity_id == "box" and persist.data is not None
    assert json.loads(persist.data)["owner"] == "c1"

    actions = naf.send(a, "broadcast", {"type": "r", "data": {"networkId": "box"}})
    assert [(p.entity_id, p.data) for p in actions if isinstance(p, PersistEntity)] == [("box", None)]


def test_non_persistent_entities_are_never_stored() -> None:
    naf = Naf(store_backed=True)
    a = naf.connect()
    naf.join(a, "world")
    naf.core.room_loaded("world", [], naf.now)
    actions = naf.send(a, "broadcast", {"type": "u", "data": avatar("c1")})
    assert not [action for action in actions if isinstance(action, PersistEntity)]


def test_a_room_that_fails_to_load_refuses_its_waiting_joins() -> None:
    naf = Naf(store_backed=True)
    a = naf.connect()
    naf.join(a, "world")
    actions = naf.core.room_load_failed("world", "disk on fire", naf.now)
    assert inbox(actions, a) == [("error", {"code": "storage_unavailable", "message": "the room could not be loaded"})]
    assert naf.core.rooms == {} and a.room is None
