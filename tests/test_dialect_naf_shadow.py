"""The NAF shadow state on its own: NAF's ownership rule, `um` merging, and who may update what (F2)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.dialects.naf.shadow import Refusal, Refused, Shadow, wins

T0 = 1_795_261_464_931.4


def entity(network_id: str = "x8k2p0a", owner: str = "A", **fields: Any) -> dict[str, Any]:
    """A `u` payload as NAF 0.14 sends it (first sync unless told otherwise)."""
    return {
        "networkId": network_id,
        "owner": owner,
        "creator": fields.pop("creator", owner),
        "lastOwnerTime": fields.pop("lastOwnerTime", T0),
        "template": "#avatar-template",
        "persistent": False,
        "parent": None,
        "components": {"0": {"x": 0.31, "y": 1.6, "z": -2.1}, "1": {"x": 0, "y": 145.3, "z": 0}, "2": "#e8a33c"},
        "isFirstSync": True,
        **fields,
    }


def refusal(call: Any) -> Refusal:
    with pytest.raises(Refused) as caught:
        call()
    return caught.value.reason


# ---- NAF's rule, exactly as networked.networkUpdate applies it ---------------------------------------


def test_a_later_owner_time_wins() -> None:
    assert wins(T0 + 1, "A", T0, "B")
    assert not wins(T0 - 1, "B", T0, "A")


def test_equal_owner_times_go_to_the_greater_owner_id_by_string_compare() -> None:
    assert wins(T0, "B", T0, "A")
    assert not wins(T0, "A", T0, "B")
    # string order, not numeric: "9" > "10" in JavaScript, as NAF compares ids
    assert wins(T0, "9", T0, "10")
    assert not wins(T0, "10", T0, "9")


def test_the_same_stamp_applies() -> None:
    assert wins(T0, "A", T0, "A")


# ---- u, um, r -----------------------------------------------------------------------------------------


def test_a_first_sync_creates_the_entity() -> None:
    shadow = Shadow()
    relayed = shadow.apply_update("A", {"A"}, entity())
    assert relayed.networkId == "x8k2p0a" and relayed.isFirstSync
    stored = shadow.entities["x8k2p0a"]
    assert stored.owner == stored.creator == "A"
    assert stored.components["2"] == "#e8a33c"


def test_um_entries_merge_into_the_last_full_state() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A"}, entity())
    partial = entity(isFirstSync=False, components={"0": {"x": 1.0, "y": 1.6, "z": -2.0}})
    applied, refusals = shadow.apply_update_multi("A", {"A"}, {"d": [partial]})
    assert [state.networkId for state in applied] == ["x8k2p0a"] and refusals == []
    components = shadow.entities["x8k2p0a"].components
    assert components == {"0": {"x": 1.0, "y": 1.6, "z": -2.0}, "1": {"x": 0, "y": 145.3, "z": 0}, "2": "#e8a33c"}


def test_null_components_never_erase_known_values() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A"}, entity())
    shadow.apply_update("A", {"A"}, entity(isFirstSync=False, components={"0": None, "1": None, "2": "#000000"}))
    assert shadow.entities["x8k2p0a"].components["0"] == {"x": 0.31, "y": 1.6, "z": -2.1}
    assert shadow.entities["x8k2p0a"].components["2"] == "#000000"


def test_a_um_entry_with_is_first_sync_is_dropped() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A"}, entity())
    applied, refusals = shadow.apply_update_multi("A", {"A"}, {"d": [entity(components={"2": "#ffffff"})]})
    assert applied == [] and refusals == [Refusal.FIRST_SYNC_IN_UM]
    assert shadow.entities["x8k2p0a"].components["2"] == "#e8a33c"


def test_um_for_an_unknown_entity_is_dropped_but_the_other_entries_apply() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A"}, entity())
    mine = entity(isFirstSync=False, components={"2": "#123456"})
    unknown = entity("nobody", isFirstSync=False)
    applied, refusals = shadow.apply_update_multi("A", {"A"}, {"d": [unknown, mine]})
    assert [state.networkId for state in applied] == ["x8k2p0a"]
    assert refusals == [Refusal.UNKNOWN]


def test_remove_by_the_owner_forgets_the_entity() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A"}, entity())
    assert shadow.apply_remove("A", {"A"}, {"networkId": "x8k2p0a"}).networkId == "x8k2p0a"
    assert shadow.entities == {}


# ---- who may speak for an entity (F2) ----------------------------------------------------------------


def test_nobody_updates_another_clients_entity() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A", "B"}, entity())
    forged = entity(isFirstSync=False, components={"2": "#ff0000"})  # says owner A, sent by B
    assert refusal(lambda: shadow.apply_update("B", {"A", "B"}, forged)) is Refusal.NOT_OWNER
    applied, refusals = shadow.apply_update_multi("B", {"A", "B"}, {"d": [forged]})
    assert applied == [] and refusals == [Refusal.NOT_OWNER]
    assert refusal(lambda: shadow.apply_remove("B", {"A", "B"}, {"networkId": "x8k2p0a"})) is Refusal.NOT_OWNER
    assert shadow.entities["x8k2p0a"].components["2"] == "#e8a33c"


def test_nobody_creates_an_entity_in_another_clients_name() -> None:
    shadow = Shadow()
    assert refusal(lambda: shadow.apply_update("B", {"A", "B"}, entity(owner="A"))) is Refusal.NOT_OWNER
    assert shadow.entities == {}


def test_a_first_sync_naming_another_creator_is_recorded_as_the_senders() -> None:
    shadow = Shadow()
    relayed = shadow.apply_update("B", {"A", "B"}, entity(owner="B", creator="A"))
    assert relayed.creator == "B" and shadow.entities["x8k2p0a"].creator == "B"


def test_a_claim_with_a_later_owner_time_takes_ownership() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A", "B"}, entity())
    claim = entity(owner="B", creator="A", lastOwnerTime=T0 + 500, isFirstSync=False)
    shadow.apply_update("B", {"A", "B"}, claim)
    assert shadow.entities["x8k2p0a"].owner == "B"
    assert shadow.entities["x8k2p0a"].lastOwnerTime == T0 + 500
    # the former owner's updates are now refused: they name A, who no longer owns it
    late = entity(isFirstSync=False, components={"2": "#000000"})
    assert refusal(lambda: shadow.apply_update("A", {"A", "B"}, late)) is Refusal.STALE


def test_simultaneous_claims_go_to_the_same_winner_as_on_every_client() -> None:
    """Two clients claim at the same owner time: NAF clients keep the greater id; so does the server,
    whatever order the claims arrive in."""
    for order in (("B", "C"), ("C", "B")):
        shadow = Shadow()
        shadow.apply_update("A", {"A", "B", "C"}, entity())
        for claimant in order:
            try:
                shadow.apply_update(claimant, {"A", "B", "C"}, entity(owner=claimant, lastOwnerTime=T0 + 9))
            except Refused as refused:
                assert refused.reason is Refusal.STALE
        assert shadow.entities["x8k2p0a"].owner == "C"


def test_an_earlier_claim_after_a_later_one_is_dropped() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A", "B", "C"}, entity())
    shadow.apply_update("C", {"A", "B", "C"}, entity(owner="C", lastOwnerTime=T0 + 20))
    assert refusal(lambda: shadow.apply_update("B", {"A", "B", "C"}, entity(owner="B", lastOwnerTime=T0 + 10))) is (
        Refusal.STALE
    )
    assert shadow.entities["x8k2p0a"].owner == "C"


def test_the_creator_may_sync_while_the_owner_is_absent() -> None:
    """NAF's canSync: B took A's entity and left; A, the creator, keeps syncing it under B's name."""
    shadow = Shadow()
    shadow.apply_update("A", {"A", "B"}, entity())
    shadow.apply_update("B", {"A", "B"}, entity(owner="B", lastOwnerTime=T0 + 5, isFirstSync=False))
    on_behalf = entity(owner="B", lastOwnerTime=T0 + 5, isFirstSync=False, components={"2": "#abcdef"})
    assert refusal(lambda: shadow.apply_update("A", {"A", "B"}, on_behalf)) is Refusal.NOT_OWNER  # B is here
    shadow.apply_update("A", {"A"}, on_behalf)  # B has left
    assert shadow.entities["x8k2p0a"].components["2"] == "#abcdef"
    assert shadow.entities["x8k2p0a"].owner == "B"


# ---- leaving, catch-up, limits -------------------------------------------------------------------------


def test_a_leaver_takes_its_entities_and_their_children_but_not_persistent_ones() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A"}, entity("rig"))
    shadow.apply_update("A", {"A"}, entity("hand", parent="rig"))
    shadow.apply_update("A", {"A"}, entity("box", persistent=True))
    shadow.apply_update("B", {"A", "B"}, entity("b-avatar", owner="B"))
    gone = {state.networkId for state in shadow.client_left("A")}
    assert gone == {"rig", "hand"}
    assert set(shadow.entities) == {"box", "b-avatar"}


def test_catch_up_sends_parents_before_children_as_first_syncs() -> None:
    shadow = Shadow()
    shadow.apply_update("A", {"A"}, entity("hand", parent="rig"))
    shadow.apply_update("A", {"A"}, entity("rig"))
    states = shadow.catch_up()
    assert [state.networkId for state in states] == ["rig", "hand"]
    assert all(state.isFirstSync for state in states)


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "u",
        {"networkId": "x"},
        entity(lastOwnerTime=float("nan")),
        entity(lastOwnerTime=True),
        entity(components={"not-an-index": 1}),
        entity(networkId=""),
        entity(owner="A" * 65),
    ],
)
def test_malformed_entity_data_is_refused(payload: Any) -> None:
    assert refusal(lambda: Shadow().apply_update("A", {"A"}, payload)) is Refusal.MALFORMED


def test_entity_count_and_size_are_bounded() -> None:
    shadow = Shadow(max_entities=2, max_state_bytes=200)
    shadow.apply_update("A", {"A"}, entity("one"))
    shadow.apply_update("A", {"A"}, entity("two"))
    assert refusal(lambda: shadow.apply_update("A", {"A"}, entity("three"))) is Refusal.QUOTA
    big = entity("one", isFirstSync=False, components={"3": "x" * 300})
    assert refusal(lambda: shadow.apply_update("A", {"A"}, big)) is Refusal.TOO_LARGE
    assert "3" not in shadow.entities["one"].components
