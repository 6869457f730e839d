"""Entities and server-granted ownership in the sans-I/O core (no socket, hand-moved clock)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.core.actions import AckWhenDurable, Action, LoadRoom, PersistEntity, PersistPosition, PersistRoom
from shoal.core.engine import Engine
from shoal.core.limits import Limits
from shoal.core.member import Member
from shoal.protocol.codec import JSON
from support.core import START, CoreDriver, error_codes, inbox, types_for


def create(driver: CoreDriver, member: Member, entity_id: str = "cube-1", **fields: Any) -> list[Action]:
    return driver.send(member, {"type": "entity_create", "id": entity_id, "kind": "cube", **fields})


def update(driver: CoreDriver, member: Member, entity_id: str = "cube-1", **fields: Any) -> list[Action]:
    return driver.send(member, {"type": "entity_update", "id": entity_id, **fields})


def tick_entities(actions: list[Action], member: Member) -> dict[str, dict[str, Any]]:
    """Entity id -> entity, from the ticks `member` receives in `actions`."""
    return {e["id"]: e for m in inbox(actions, member) if m["type"] == "tick" for e in m.get("entities", [])}


def tick_removed(actions: list[Action], member: Member) -> list[str]:
    return [i for m in inbox(actions, member) if m["type"] == "tick" for i in m.get("removed", [])]


@pytest.fixture
def driver() -> CoreDriver:
    return CoreDriver()


def test_created_entity_reaches_everyone_in_the_next_tick_with_defaults(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    assert create(driver, ann, props={"color": "#ff0000"}) == []
    entity = tick_entities(driver.tick(), bob)["cube-1"]
    assert entity == {
        "id": "cube-1", "kind": "cube", "persistent": False, "locked": False,
        "pos": [0.0, 0.0, 0.0], "rot": [0.0, 0.0, 0.0, 1.0], "scale": [1.0, 1.0, 1.0],
        "props": {"color": "#ff0000"}, "v": 1, "owner": ann.id, "creator": ann.id,
    }  # fmt: skip


def test_late_joiner_receives_all_entities_in_its_snapshot(driver: CoreDriver) -> None:
    (ann,) = driver.in_room("lobby", "Ann")
    for n in range(3):
        create(driver, ann, f"cube-{n}")
    carol = driver.greet("Carol")
    joined = inbox(driver.join(carol), carol)[-1]
    assert joined["type"] == "joined"
    assert sorted(e["id"] for e in joined["entities"]) == ["cube-0", "cube-1", "cube-2"]


def test_server_assigns_an_id_when_none_is_given(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    driver.send(ann, {"type": "entity_create", "kind": "ball"})
    (entity_id,) = tick_entities(driver.tick(), bob)
    assert entity_id.startswith("e-")


def test_non_owner_update_is_refused_and_never_relayed(driver: CoreDriver) -> None:
    ann, bob, carol = driver.in_room("lobby", "Ann", "Bob", "Carol")
    create(driver, ann)
    driver.tick()
    actions = update(driver, bob, pos=[5, 5, 5], seq=4)
    assert error_codes(actions, bob) == ["not_owner"]
    assert inbox(actions, bob)[0]["seq"] == 4
    assert tick_entities(driver.tick(), carol) == {}


def test_anyone_may_change_an_unowned_entity_and_props_merge(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann, owned=False, props={"color": "#ff0000", "label": "A"})
    driver.tick()
    update(driver, bob, props={"color": "#00ff00", "label": None})
    entity = tick_entities(driver.tick(), ann)["cube-1"]
    assert entity["props"] == {"color": "#00ff00"}
    assert entity["v"] == 2
    assert "owner" not in entity


def test_claim_is_granted_when_unowned_then_takeover_of_unlocked(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann, owned=False)
    result = inbox(driver.send(bob, {"type": "entity_claim", "id": "cube-1"}), bob)
    assert result == [{"type": "claim_result", "id": "cube-1", "granted": True, "owner": bob.id}]
    result = inbox(driver.send(ann, {"type": "entity_claim", "id": "cube-1"}), ann)
    assert result[0]["granted"] is True and result[0]["owner"] == ann.id
    assert tick_entities(driver.tick(), bob)["cube-1"]["owner"] == ann.id


def test_locked_entity_refuses_takeover(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann, locked=True)
    result = inbox(driver.send(bob, {"type": "entity_claim", "id": "cube-1"}), bob)
    assert result == [{"type": "claim_result", "id": "cube-1", "granted": False, "owner": ann.id}]
    assert error_codes(update(driver, bob, pos=[1, 1, 1]), bob) == ["not_owner"]


def test_release_returns_the_entity_to_the_room_and_only_the_owner_may(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann)
    assert error_codes(driver.send(bob, {"type": "entity_release", "id": "cube-1"}), bob) == ["not_owner"]
    driver.send(ann, {"type": "entity_release", "id": "cube-1"})
    assert "owner" not in tick_entities(driver.tick(), bob)["cube-1"]


def test_leaving_removes_session_entities_and_releases_persistent_ones(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann, "session")
    create(driver, ann, "kept", persistent=True)
    driver.tick()
    driver.engine.disconnect(ann, driver.now)
    actions = driver.tick()
    assert tick_removed(actions, bob) == ["session"]
    kept = tick_entities(actions, bob)["kept"]
    assert "owner" not in kept


def test_owner_lease_returns_when_it_leaves_even_for_anothers_entity(driver: CoreDriver) -> None:
    ann, bob, carol = driver.in_room("lobby", "Ann", "Bob", "Carol")
    create(driver, ann, owned=False)
    driver.send(bob, {"type": "entity_claim", "id": "cube-1"})
    driver.tick()
    driver.send(bob, {"type": "leave"})
    entity = tick_entities(driver.tick(), carol)["cube-1"]
    assert "owner" not in entity
    assert error_codes(update(driver, carol, pos=[1, 2, 3]), carol) == []


def test_delete_by_owner_reaches_the_room_as_removed(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann)
    driver.tick()
    assert error_codes(driver.send(bob, {"type": "entity_delete", "id": "cube-1"}), bob) == ["not_owner"]
    driver.send(ann, {"type": "entity_delete", "id": "cube-1"})
    assert tick_removed(driver.tick(), bob) == ["cube-1"]


def test_duplicate_and_unknown_ids_are_refused(driver: CoreDriver) -> None:
    (ann,) = driver.in_room("lobby", "Ann")
    create(driver, ann)
    assert error_codes(create(driver, ann), ann) == ["entity_exists"]
    assert error_codes(update(driver, ann, "nope", pos=[0, 0, 0]), ann) == ["no_such_entity"]


def test_rotation_is_normalised_and_bad_transforms_rejected(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann, rot=[0, 0, 0, 2])
    assert tick_entities(driver.tick(), bob)["cube-1"]["rot"] == [0.0, 0.0, 0.0, 1.0]
    assert error_codes(update(driver, ann, rot=[0, 0, 0, 0]), ann) == ["invalid_message"]
    assert error_codes(update(driver, ann, scale=[0, 1, 1]), ann) == ["invalid_message"]
    assert error_codes(update(driver, ann, pos=[0, 1e5, 0]), ann) == ["invalid_message"]


def test_quotas_refuse_without_half_writing() -> None:
    driver = CoreDriver(max_entities_per_member=2, max_entities_per_room=3, max_props_bytes=64)
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann, "a")
    create(driver, ann, "b")
    assert error_codes(create(driver, ann, "c"), ann) == ["quota_exceeded"]
    create(driver, bob, "c")
    assert error_codes(create(driver, bob, "d"), bob) == ["quota_exceeded"]
    big = {"text": "x" * 100}
    assert error_codes(update(driver, ann, "a", props=big, pos=[9, 9, 9]), ann) == ["quota_exceeded"]
    entity = driver.engine.rooms["lobby"].entities.by_id["a"]
    assert entity.pos == (0.0, 0.0, 0.0) and entity.v == 1  # the refused update changed nothing
    assert sorted(driver.engine.rooms["lobby"].entities.by_id) == ["a", "b", "c"]


def test_reliable_change_is_acked_at_once_without_a_store(driver: CoreDriver) -> None:
    (ann,) = driver.in_room("lobby", "Ann")
    assert inbox(create(driver, ann, seq=1), ann) == [{"type": "ack", "seq": 1}]


def test_entity_updates_share_the_pose_budget_not_the_message_budget() -> None:
    driver = CoreDriver(message_rate=0.01, message_burst=3, pose_burst=50)
    (ann,) = driver.in_room("lobby", "Ann")
    create(driver, ann)  # hello, join and create spent all three message tokens
    for n in range(30):
        assert error_codes(update(driver, ann, pos=[n / 10, 0, 0]), ann) == []


def test_tick_with_only_entity_changes_reaches_everyone_including_the_changer(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann)
    actions = driver.tick()
    assert types_for(actions, ann) == ["tick"] and types_for(actions, bob) == ["tick"]


def test_full_state_tick_for_a_member_that_fell_behind_lists_all_entities(driver: CoreDriver) -> None:
    ann, bob = driver.in_room("lobby", "Ann", "Bob")
    create(driver, ann, "a")
    create(driver, ann, "b")
    driver.tick()
    bob.needs_full_state = True
    (tick,) = inbox(driver.tick(), bob)
    assert tick["full"] is True
    assert sorted(e["id"] for e in tick["entities"]) == ["a", "b"]


def test_room_with_persistent_entities_stays_loaded_without_a_store(driver: CoreDriver) -> None:
    (ann,) = driver.in_room("lobby", "Ann")
    create(driver, ann, persistent=True)
    driver.send(ann, {"type": "leave"})
    assert "lobby" in driver.engine.rooms
    carol = driver.greet("Carol")
    joined = inbox(driver.join(carol), carol)[-1]
    assert [e["id"] for e in joined["entities"]] == ["cube-1"]


# ---- with a store: loading, persisting, durable acks ----------------------------------------------------


def store_backed_engine(**limits: Any) -> Engine:
    ids = iter(range(1, 1000))
    return Engine(Limits(**limits), new_id=lambda: next(ids), store_backed=True)


def greet(engine: Engine, name: str) -> Member:
    member = engine.connect(JSON, START)
    engine.receive(member, b'{"type":"hello","name":"%s"}' % name.encode(), START)
    return member


def test_first_join_loads_the_room_and_joins_wait_until_it_is_loaded() -> None:
    engine = store_backed_engine()
    ann, bob = greet(engine, "Ann"), greet(engine, "Bob")
    actions = engine.receive(ann, b'{"type":"join","room":"lobby"}', START)
    assert [type(a) for a in actions] == [LoadRoom]
    assert engine.receive(bob, b'{"type":"join","room":"lobby"}', START) == []
    stored = (
        b'{"id":"kept","kind":"cube","persistent":true,"locked":false,"pos":[1,2,3],"rot":[0,0,0,1],'
        b'"scale":[1,1,1],"props":{},"v":5,"owner":77}'
    )
    actions = engine.room_loaded("lobby", [stored], START)
    joined = next(m for m in inbox(actions, bob) if m["type"] == "joined")
    assert [e["id"] for e in joined["entities"]] == ["kept"]
    assert "owner" not in joined["entities"][0]  # nobody owns anything after a restart
    assert {m["id"] for m in joined["members"]} == {ann.id, bob.id}


def test_failed_load_refuses_the_waiting_joins() -> None:
    engine = store_backed_engine()
    ann = greet(engine, "Ann")
    engine.receive(ann, b'{"type":"join","room":"lobby"}', START)
    actions = engine.room_load_failed("lobby", "disk on fire", START)
    assert error_codes(actions, ann) == ["storage_unavailable"]
    assert "lobby" not in engine.rooms


def test_persistent_changes_become_persist_actions_and_durable_acks() -> None:
    engine = store_backed_engine()
    ann = greet(engine, "Ann")
    engine.receive(ann, b'{"type":"join","room":"lobby"}', START)
    engine.room_loaded("lobby", [], START)
    actions = engine.receive(ann, b'{"type":"entity_create","id":"k","kind":"cube","persistent":true,"seq":3}', START)
    assert [type(a) for a in actions] == [PersistRoom, PersistEntity, AckWhenDurable]
    assert actions[2].seq == 3  # type: ignore[union-attr]
    actions = engine.receive(ann, b'{"type":"entity_delete","id":"k"}', START)
    assert [(type(a), getattr(a, "data", "x")) for a in actions] == [(PersistEntity, None)]


def test_a_moving_members_position_is_stored_once_per_interval_and_when_it_leaves() -> None:
    engine = store_backed_engine(position_interval=5.0)
    ann = greet(engine, "Ann")
    engine.receive(ann, b'{"type":"join","room":"lobby"}', START)
    engine.room_loaded("lobby", [], START)

    def positions_after_pose(at: float, x: float) -> list[Action]:
        pose = b'{"type":"pose","head":{"pos":[%g,1.6,0],"rot":[0,0,0,1]}}' % x
        return [a for a in engine.receive(ann, pose, at) if type(a) is PersistPosition]

    (first,) = positions_after_pose(START, 1.0)
    assert (first.room, first.user, first.at) == ("lobby", "guest:Ann", START)
    assert b"[1.0,1.6,0.0]" in first.data
    assert [positions_after_pose(START + 0.05 * step, 2.0) for step in range(1, 99)] == [[]] * 98  # within 5 s
    (second,) = positions_after_pose(START + 5.0, 3.0)
    assert b"[3.0,1.6,0.0]" in second.data
    left = [a for a in engine.receive(ann, b'{"type":"leave"}', START + 5.5) if type(a) is PersistPosition]
    assert [action.at for action in left] == [START + 5.5]  # the last pose, whatever the interval


def test_stored_rooms_quota_refuses_a_persistent_entity_in_one_more_room() -> None:
    engine = store_backed_engine(max_stored_rooms=1)
    engine.stored_rooms.add("elsewhere")
    ann = greet(engine, "Ann")
    engine.receive(ann, b'{"type":"join","room":"lobby"}', START)
    engine.room_loaded("lobby", [], START)
    actions = engine.receive(ann, b'{"type":"entity_create","id":"k","kind":"cube","persistent":true}', START)
    assert error_codes(actions, ann) == ["quota_exceeded"]
    actions = engine.receive(ann, b'{"type":"entity_create","id":"s","kind":"cube"}', START)
    assert error_codes(actions, ann) == []
