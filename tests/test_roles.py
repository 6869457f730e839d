"""Room roles, privacy, mutes and bans in the sans-I/O engine: every rule checked on the server, nothing
refused ever relayed. Identities arrive verified (as the transport hands them over after checking a token).
"""

from __future__ import annotations

from typing import Any

import pytest

from shoal.core.access import AuthMode, Ban, Identity, Role, RoomAccess, RoomSettings, invite_hash
from shoal.core.actions import Action, PersistBan, PersistRole, Send, VerifyRoomPassword, VerifyToken
from shoal.core.engine import Engine
from shoal.core.limits import Limits
from shoal.core.member import Member
from shoal.protocol.codec import JSON
from support.core import START, CoreDriver, closes, error_codes, inbox, types_for


class AccessDriver(CoreDriver):
    """A store-backed engine whose rooms load with the access the test gives them."""

    def __init__(self, auth_mode: AuthMode = AuthMode.GUEST, **limits: Any) -> None:
        super().__init__(**limits)
        ids = iter(range(1, 1_000_000))
        self.engine = Engine(Limits(**limits), new_id=lambda: next(ids), store_backed=True, auth_mode=auth_mode)
        self.access: dict[str, RoomAccess] = {}

    def account(self, user: str, name: str | None = None, address: str = "127.0.0.1") -> Member:
        """A greeted member logged in as account `user`."""
        identity = Identity(user=user, name=name or user.title(), color="#3CB44B", avatar=f"/api/users/{user}/avatar")
        member = self.engine.connect(JSON, self.now, address, identity=identity)
        assert types_for(self.send(member, {"type": "hello", "v": 1, "name": "ignored"}), member) == ["welcome"]
        return member

    def enter(self, member: Member, room: str = "stage", **fields: Any) -> list[Action]:
        """Join `room`; the first join loads it with `self.access[room]`."""
        actions = self.send(member, {"type": "join", "room": room, **fields})
        if self.engine.rooms[room].loading:
            actions += self.engine.room_loaded(room, [], self.now, self.access.get(room, RoomAccess()))
        return actions


def staged(**roles: Role) -> tuple[AccessDriver, dict[str, Member]]:
    """Accounts named after `roles`, each with that role, all in room `stage` (in order)."""
    driver = AccessDriver()
    driver.access["stage"] = RoomAccess(roles={f"u-{name}": role for name, role in roles.items()})
    members = {name: driver.account(f"u-{name}") for name in roles}
    for member in members.values():
        driver.enter(member)
    return driver, members


def sent(actions: list[Action]) -> list[dict[str, Any]]:
    """Every message any member receives from `actions`."""
    from support.clients import strict_json

    return [strict_json(action.frame) for action in actions if isinstance(action, Send)]


# ---- identity ------------------------------------------------------------------------------------------


def test_an_account_appears_under_its_own_name_colour_and_avatar_whatever_hello_says() -> None:
    driver = AccessDriver()
    ada = driver.account("u-ada", "Ada")
    actions = driver.enter(ada)
    (me,) = inbox(actions, ada)[0]["members"]
    assert me == {"id": ada.id, "name": "Ada", "color": "#3cb44b", "user": "u-ada", "avatar": "/api/users/u-ada/avatar"}


def test_a_guest_taking_an_accounts_name_is_still_told_apart_by_its_missing_user() -> None:
    driver = AccessDriver()
    ada = driver.account("u-ada", "Ada")
    driver.enter(ada)
    impostor = driver.greet("Ada")
    actions = driver.enter(impostor)
    assert inbox(actions, ada)[0]["member"] == {"id": impostor.id, "name": "Ada", "color": impostor.color}
    refused = driver.send(driver.connect(), {"type": "hello", "v": 1, "name": "Ada", "user": "u-ada"})
    assert [message["code"] for message in sent(refused)] == ["invalid_message"]  # no field names an account


def test_hello_token_is_verified_before_the_member_is_greeted() -> None:
    driver = AccessDriver()
    member = driver.connect()
    actions = driver.send(member, {"type": "hello", "v": 1, "name": "Mallory", "token": "eyJ..."})
    assert [type(action) for action in actions] == [VerifyToken]
    assert not member.greeted
    identity = Identity(user="u-bob", name="Bob", color="#4363d8")
    assert types_for(driver.engine.token_checked(member, identity, "", driver.now), member) == ["welcome"]
    assert (member.name, member.user, member.guest) == ("Bob", "u-bob", False)


def test_a_refused_hello_token_closes_4001_before_anything_is_joined() -> None:
    driver = AccessDriver()
    member = driver.connect()
    driver.send(member, {"type": "hello", "v": 1, "token": "forged"})
    actions = driver.engine.token_checked(member, None, "token signature is invalid", driver.now)
    assert error_codes(actions, member) == ["auth_failed"]
    assert closes(actions) == {member.id: 4001}
    assert not member.greeted and member.room is None


def test_required_mode_refuses_a_hello_without_token() -> None:
    driver = AccessDriver(auth_mode=AuthMode.REQUIRED)
    member = driver.connect()
    actions = driver.send(member, {"type": "hello", "v": 1, "name": "Anon"})
    assert closes(actions) == {member.id: 4001}


def test_off_mode_ignores_tokens() -> None:
    driver = AccessDriver(auth_mode=AuthMode.OFF)
    member = driver.connect()
    actions = driver.send(member, {"type": "hello", "v": 1, "name": "Anon", "token": "whatever"})
    assert types_for(actions, member) == ["welcome"] and member.user is None


def test_a_resume_token_never_changes_who_you_are() -> None:
    driver = AccessDriver()
    ada = driver.account("u-ada")
    driver.enter(ada)
    token = ada.resume_token
    driver.engine.disconnect(ada, driver.now)
    bob = driver.engine.connect(JSON, driver.now, identity=Identity(user="u-bob", name="Bob", color="#4363d8"))
    welcome = inbox(driver.send(bob, {"type": "hello", "v": 1, "resume": token}), bob)[0]
    assert welcome["resumed"] is False and bob.name == "Bob" and bob.room is None


# ---- viewers and moderators ----------------------------------------------------------------------------


def test_viewers_cannot_create_change_claim_or_delete_entities_and_nothing_is_relayed() -> None:
    driver, people = staged(owner=Role.OWNER, viewer=Role.VIEWER)
    driver.send(people["owner"], {"type": "entity_create", "id": "cube", "kind": "cube", "owned": False})
    driver.tick()
    viewer = people["viewer"]
    for request in (
        {"type": "entity_create", "kind": "cube", "seq": 1},
        {"type": "entity_update", "id": "cube", "pos": [1.0, 0.0, 0.0], "seq": 2},
        {"type": "entity_claim", "id": "cube"},
        {"type": "entity_release", "id": "cube"},
        {"type": "entity_delete", "id": "cube", "seq": 3},
    ):
        actions = driver.send(viewer, request)
        assert error_codes(actions, viewer) == ["forbidden"], request
        assert types_for(actions, people["owner"]) == []
    assert inbox(driver.send(viewer, {"type": "entity_update", "id": "cube", "seq": 9}), viewer)[0]["seq"] == 9
    assert driver.tick() == []  # nothing changed: no tick goes out
    assert driver.engine.rooms["stage"].entities.by_id["cube"].v == 1


def test_repeated_forbidden_actions_close_4003() -> None:
    driver, people = staged(owner=Role.OWNER, member=Role.MEMBER)
    member, owner = people["member"], people["owner"]
    codes = []
    for _ in range(6):
        actions = driver.send(member, {"type": "kick", "id": owner.id})
        codes.append(closes(actions).get(member.id))
        assert owner.room is not None
    assert codes == [None] * 5 + [4003]


@pytest.mark.parametrize("request_type", ["kick", "ban", "mute"])
def test_members_cannot_moderate_and_moderators_cannot_moderate_their_equals(request_type: str) -> None:
    driver, people = staged(owner=Role.OWNER, mod=Role.MODERATOR, mod2=Role.MODERATOR, member=Role.MEMBER)
    for actor, target in (("member", "mod"), ("member", "owner"), ("mod", "mod2"), ("mod", "owner")):
        actions = driver.send(people[actor], {"type": request_type, "id": people[target].id})
        assert error_codes(actions, people[actor]) == ["forbidden"], (actor, target)
        assert people[target].room is not None and not people[target].muted
        assert all(message["type"] == "error" for message in sent(actions))


def test_a_moderator_kicks_a_member_who_may_come_back() -> None:
    driver, people = staged(mod=Role.MODERATOR, member=Role.MEMBER, other=Role.MEMBER)
    kicked = people["member"]
    actions = driver.send(people["mod"], {"type": "kick", "id": kicked.id, "reason": "cool off"})
    assert inbox(actions, kicked) == [{"type": "kicked", "room": "stage", "by": people["mod"].id, "reason": "cool off"}]
    assert {"type": "member_left", "room": "stage", "id": kicked.id} in inbox(actions, people["other"])
    assert kicked.room is None
    assert types_for(driver.enter(kicked), kicked) == ["joined"]


def test_a_banned_member_cannot_come_back_while_banned() -> None:
    driver, people = staged(mod=Role.MODERATOR, member=Role.MEMBER)
    banned = people["member"]
    actions = driver.send(people["mod"], {"type": "ban", "id": banned.id, "seconds": 60, "reason": "spam"})
    assert PersistBan("stage", "u-member", START + 60, "spam", "u-mod") in actions
    kicked = inbox(actions, banned)[0]
    assert kicked["banned"] is True and kicked["until"] == (START + 60) * 1000
    assert error_codes(driver.enter(banned), banned) == ["banned"]
    again = driver.account("u-member")  # another device of the same account
    assert error_codes(driver.enter(again), again) == ["banned"]
    driver.advance(61)
    assert types_for(driver.enter(banned), banned) == ["joined"]


def test_a_ban_survives_the_room_being_unloaded_through_the_store() -> None:
    driver = AccessDriver()
    driver.access["stage"] = RoomAccess(bans={"u-eve": Ban(None, "spam", "u-ada")})
    eve = driver.account("u-eve")
    assert error_codes(driver.enter(eve), eve) == ["banned"]
    assert "stage" not in driver.engine.rooms  # the refused join left no empty room behind


def test_mute_drops_app_messages_until_unmuted() -> None:
    driver, people = staged(mod=Role.MODERATOR, member=Role.MEMBER, other=Role.MEMBER)
    muted, other = people["member"], people["other"]
    actions = driver.send(people["mod"], {"type": "mute", "id": muted.id})
    assert inbox(actions, other)[0]["member"]["muted"] is True
    actions = driver.send(muted, {"type": "msg", "topic": "voice-offer", "data": {"sdp": "..."}})
    assert error_codes(actions, muted) == ["muted"] and types_for(actions, other) == []
    driver.send(people["mod"], {"type": "mute", "id": muted.id, "muted": False})
    assert types_for(driver.send(muted, {"type": "msg", "topic": "chat", "data": "hi"}), other) == ["msg"]


def test_roles_owner_makes_moderators_and_moderators_make_viewers() -> None:
    driver, people = staged(owner=Role.OWNER, mod=Role.MODERATOR, member=Role.MEMBER, other=Role.MEMBER)
    actions = driver.send(people["owner"], {"type": "set_role", "id": people["member"].id, "role": "moderator"})
    assert PersistRole("stage", "u-member", "moderator") in actions
    assert inbox(actions, people["other"])[0]["member"]["role"] == "moderator"
    refused = driver.send(people["mod"], {"type": "set_role", "id": people["other"].id, "role": "moderator"})
    assert error_codes(refused, people["mod"]) == ["forbidden"]
    actions = driver.send(people["mod"], {"type": "set_role", "id": people["other"].id, "role": "viewer"})
    assert people["other"].role is Role.VIEWER
    assert error_codes(driver.send(people["mod"], {"type": "set_role", "id": people["owner"].id, "role": "viewer"}),
                       people["mod"]) == ["forbidden"]  # fmt: skip


# ---- private rooms and caps ----------------------------------------------------------------------------


def test_private_room_needs_a_role_an_invite_or_the_password() -> None:
    driver = AccessDriver()
    settings = RoomSettings(private=True, password_hash="$argon2id$...", invite_hash=invite_hash("inv-123"))
    driver.access["stage"] = RoomAccess(settings=settings, roles={"u-ada": Role.OWNER})
    ada, bob, cy, dee = (driver.account(user) for user in ("u-ada", "u-bob", "u-cy", "u-dee"))
    assert types_for(driver.enter(ada), ada) == ["joined"]
    assert error_codes(driver.enter(bob), bob) == ["access_denied"]
    assert error_codes(driver.enter(bob, invite="wrong"), bob) == ["access_denied"]
    assert "joined" in types_for(driver.enter(bob, invite="inv-123"), bob)

    (check,) = driver.enter(cy, password="let me in")
    assert isinstance(check, VerifyRoomPassword) and check.password_hash == "$argon2id$..."
    actions = driver.engine.room_password_checked(cy, "stage", False, driver.now)
    assert error_codes(actions, cy) == ["access_denied"] and cy.room is None
    driver.enter(dee, password="right")
    assert "joined" in types_for(driver.engine.room_password_checked(dee, "stage", True, driver.now), dee)


def test_room_cap_from_its_settings() -> None:
    driver = AccessDriver()
    driver.access["stage"] = RoomAccess(settings=RoomSettings(max_members=2))
    first, second, third = (driver.account(f"u-{n}") for n in range(3))
    driver.enter(first)
    driver.enter(second)
    assert error_codes(driver.enter(third), third) == ["room_full"]


def test_default_role_viewer_makes_a_room_of_spectators() -> None:
    driver = AccessDriver()
    driver.access["stage"] = RoomAccess(settings=RoomSettings(default_role=Role.VIEWER), roles={"u-ada": Role.OWNER})
    ada, bob = driver.account("u-ada"), driver.account("u-bob")
    driver.enter(ada)
    actions = driver.enter(bob)
    assert inbox(actions, ada)[0]["member"]["role"] == "viewer"
    assert error_codes(driver.send(bob, {"type": "entity_create", "kind": "cube"}), bob) == ["forbidden"]
