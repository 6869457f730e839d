"""Accounts end to end against a real server on 127.0.0.1: register, avatars checked by content, two devices
showing the same name and image, guests, refresh and logout, the login rate limit, rooms with moderators.
"""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from shoal.auth.throttle import LoginThrottle, client_address, parse_networks
from support.accounts import PASSWORD, call, image, login, register
from support.clients import json_peer
from support.servers import RunningServer, StartServer

# ---- the "done when" scenario -------------------------------------------------------------------------------


async def test_two_devices_of_one_account_show_the_same_name_and_image_and_a_guest_joins_too(
    server: RunningServer,
) -> None:
    account = await register(server, "Ada", name="Ada Lovelace")
    assert account["user"]["username"] == "ada"  # usernames are lower-cased
    png = image("PNG")
    status, me, _ = await call(server, "PUT", "/api/me/avatar", data=png, token=account["access_token"])
    assert status == 200 and me["avatar"] == f"/api/users/{me['id']}/avatar?v=1"

    _, phone, _ = await login(server, "ada")
    _, laptop, _ = await login(server, "ADA")
    assert phone["refresh_token"] != laptop["refresh_token"]  # one session per device

    async with (
        json_peer(f"{server.ws_url}?token={phone['access_token']}") as first,
        json_peer(server.ws_url) as second,
        json_peer(server.ws_url) as guest,
    ):
        await first.hello("ignored: the account's name wins")
        await second.hello("Mallory", token=laptop["access_token"])
        await guest.hello()  # no account, no token: a guest in the default --auth guest
        for peer in (first, second, guest):
            await peer.join("salon")
        members = (await guest.join("salon"))["members"]
        devices = [member for member in members if member.get("user") == me["id"]]
        assert len(devices) == 2
        assert {(m["name"], m["color"], m["avatar"]) for m in devices} == {("Ada Lovelace", me["color"], me["avatar"])}
        visitor = next(member for member in members if member["id"] == guest.id)
        assert "user" not in visitor and visitor["name"].startswith("Guest ")

    status, served, headers = await call(server, "GET", me["avatar"])
    assert status == 200 and served == png
    assert headers["Content-Type"] == "image/png"
    assert "immutable" in headers["Cache-Control"] and headers["ETag"] == '"v1"'
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, _, _ = await call(server, "GET", me["avatar"], headers={"If-None-Match": '"v1"'})
    assert status == 304
    status, public, _ = await call(server, "GET", f"/api/users/{me['id']}")
    assert public == {"id": me["id"], "name": "Ada Lovelace", "color": me["color"], "avatar": me["avatar"]}


async def test_a_guest_token_has_a_generated_name(server: RunningServer) -> None:
    status, body, _ = await call(server, "POST", "/api/auth/guest")
    assert status == 201 and body["guest"]["name"].startswith("Guest ")
    async with json_peer(f"{server.ws_url}?token={body['access_token']}") as peer:
        await peer.hello("Someone Else")
        me = (await peer.join("salon"))["members"][0]
        assert me["name"] == body["guest"]["name"] and "user" not in me
    status, _, _ = await call(server, "GET", "/api/me", token=body["access_token"])
    assert status == 403  # guests have no profile


# ---- avatars -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("upload", "status"),
    [
        (b"<script>alert(document.cookie)</script>", 415),  # a script named avatar.png
        (b"\x89PNG\r\n\x1a\n<script>alert(1)</script>" + b"\x00" * 64, 415),  # a PNG signature on a script
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", 415),
        ("GIF", 415),  # a real image of another format
        ("PNG-truncated", 415),  # a real PNG cut short: the header is fine, the pixels are not
        ("too-large", 413),
    ],
    ids=["script", "png-signature-script", "svg", "gif", "truncated-png", "over-1-mib"],
)
async def test_bad_avatar_uploads_are_refused(server: RunningServer, upload: bytes | str, status: int) -> None:
    token = (await register(server, "uploader"))["access_token"]
    if upload == "GIF":
        upload = image("GIF")
    elif upload == "PNG-truncated":
        upload = image("PNG", (256, 256))[:-200]
    elif upload == "too-large":
        upload = b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024)
    assert isinstance(upload, bytes)
    answer, body, _ = await call(server, "PUT", "/api/me/avatar", data=upload, token=token,
                                 headers={"Content-Type": "image/png"})  # fmt: skip
    assert answer == status, body
    _, me, _ = await call(server, "GET", "/api/me", token=token)
    assert me["avatar"] is None


@pytest.mark.parametrize("kind", ["JPEG", "WEBP"])
async def test_jpeg_and_webp_avatars_are_served_with_their_type(server: RunningServer, kind: str) -> None:
    token = (await register(server, f"pic-{kind.lower()}"))["access_token"]
    status, me, _ = await call(server, "PUT", "/api/me/avatar", data=image(kind), token=token)
    assert status == 200
    _, _, headers = await call(server, "GET", me["avatar"])
    assert headers["Content-Type"] == f"image/{kind.lower()}"


async def test_avatar_upload_needs_an_account(server: RunningServer) -> None:
    status, body, headers = await call(server, "PUT", "/api/me/avatar", data=image("PNG"))
    assert status == 401 and body["error"]["status"] == 401 and "Bearer" in headers["WWW-Authenticate"]


# ---- sessions --------------------------------------------------------------------------------------------------


async def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(server: RunningServer) -> None:
    first = await register(server, "rotor")
    status, second, _ = await call(server, "POST", "/api/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert status == 200
    status, _, _ = await call(server, "POST", "/api/auth/refresh", {"refresh_token": first["refresh_token"]})
    assert status == 401  # replayed: someone copied it, so the session ends...
    status, _, _ = await call(server, "POST", "/api/auth/refresh", {"refresh_token": second["refresh_token"]})
    assert status == 401  # ...for the rightful holder too
    status, _, _ = await call(server, "GET", "/api/me", token=second["access_token"])
    assert status == 401


async def test_logout_revokes_the_access_token_on_rest_and_websocket(server: RunningServer) -> None:
    session = await register(server, "leaver")
    status, _, _ = await call(server, "POST", "/api/auth/logout", {"refresh_token": session["refresh_token"]})
    assert status == 204
    status, body, _ = await call(server, "GET", "/api/me", token=session["access_token"])
    assert status == 401 and "revoked" in body["error"]["message"]
    with pytest.raises(InvalidStatus) as refused:
        async with json_peer(f"{server.ws_url}?token={session['access_token']}"):
            pass
    assert refused.value.response.status_code == 401


async def test_profile_changes_show_from_the_next_connection(server: RunningServer) -> None:
    token = (await register(server, "chameleon"))["access_token"]
    status, me, _ = await call(server, "PATCH", "/api/me", {"name": "  Cha   Meleon ", "color": "#00FF00"}, token)
    assert status == 200 and (me["name"], me["color"]) == ("Cha Meleon", "#00ff00")
    for bad in ({"color": "green"}, {"name": ""}, {"name": "x" * 33}, {"nickname": "x"}):
        status, _, _ = await call(server, "PATCH", "/api/me", bad, token)
        assert status == 400, bad
    async with json_peer(f"{server.ws_url}?token={token}") as peer:
        await peer.hello()
        assert (await peer.join("salon"))["members"][0]["name"] == "Cha Meleon"


async def test_registration_refuses_bad_usernames_passwords_and_taken_names(server: RunningServer) -> None:
    await register(server, "taken")
    for body, status in (
        ({"username": "Taken", "password": PASSWORD}, 409),
        ({"username": "a", "password": PASSWORD}, 400),
        ({"username": "has space", "password": PASSWORD}, 400),
        ({"username": "shorty", "password": "short"}, 400),
        ({"username": "extra", "password": PASSWORD, "admin": True}, 400),
    ):
        answer, reply, _ = await call(server, "POST", "/api/auth/register", body)
        assert answer == status, (body, reply)


# ---- login rate limit ------------------------------------------------------------------------------------------


async def test_login_attempts_are_limited_per_account_whatever_x_forwarded_for_says(server: RunningServer) -> None:
    await register(server, "target")
    answers = []
    for attempt in range(6):  # each from a "different" address, as a client would claim without a trusted proxy
        status, _, headers = await call(server, "POST", "/api/auth/login", {"username": "target", "password": "wrong"},
                                        headers={"X-Forwarded-For": f"198.51.100.{attempt}"})  # fmt: skip
        answers.append(status)
    assert answers == [401] * 5 + [429]
    assert int(headers["Retry-After"]) > 0
    status, _, _ = await login(server, "target")
    assert status == 429  # even the right password waits: the limit is on attempts


def test_login_throttle_limits_each_address_across_accounts_and_stays_bounded() -> None:
    throttle = LoginThrottle(max_keys=100)
    allowed = [throttle.allow(f"user{n}", "203.0.113.9", now=1000.0) is None for n in range(21)]
    assert allowed == [True] * 20 + [False]
    for n in range(1000):
        throttle.allow(f"made-up-{n}", f"10.0.{n // 250}.{n % 250}", now=2000.0 + n * 5)
    assert len(throttle.accounts) <= 100 and len(throttle.addresses) <= 100


def test_x_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = parse_networks(["10.0.0.0/8"])
    assert client_address("203.0.113.5", "1.2.3.4", proxies) == "203.0.113.5"
    assert client_address("10.0.0.2", "6.6.6.6, 198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.0.0.2", "198.51.100.7, 10.0.0.3", proxies) == "198.51.100.7"
    assert client_address("10.0.0.2", "not-an-ip", proxies) == "10.0.0.2"


# ---- rooms with owners and moderators over REST and the protocol ----------------------------------------------


async def test_a_moderator_bans_a_member_who_cannot_come_back_while_banned(start_server: StartServer) -> None:
    server = await start_server()
    owner, mod, member = [await register(server, name) for name in ("owner", "mod", "member")]
    status, room, _ = await call(server, "POST", "/api/rooms", {"name": "club", "private": False},
                                 owner["access_token"])  # fmt: skip
    assert status == 201 and room["roles"] == {owner["user"]["id"]: "owner"}
    status, _, _ = await call(server, "PUT", f"/api/rooms/club/roles/{mod['user']['id']}", {"role": "moderator"},
                              owner["access_token"])  # fmt: skip
    assert status == 204
    status, _, _ = await call(server, "PUT", f"/api/rooms/club/roles/{member['user']['id']}", {"role": "moderator"},
                              mod["access_token"])  # fmt: skip
    assert status == 403  # only the owner makes moderators

    async with (
        json_peer(f"{server.ws_url}?token={mod['access_token']}") as moderator,
        json_peer(f"{server.ws_url}?token={member['access_token']}") as banned,
    ):
        await moderator.hello()
        await banned.hello()
        await moderator.join("club")
        await banned.join("club")
        await banned.send({"type": "kick", "id": moderator.id})
        assert (await banned.expect("error"))["code"] == "forbidden"
        await moderator.send({"type": "ban", "id": banned.id, "reason": "spam"})
        kicked = await banned.expect("kicked")
        assert kicked["banned"] is True and kicked["by"] == moderator.id
        await moderator.expect("member_left", id=banned.id)
        await banned.send({"type": "join", "room": "club"})
        assert (await banned.expect("error"))["code"] == "banned"

    status, access, _ = await call(server, "GET", "/api/rooms/club/access", token=owner["access_token"])
    assert status == 200 and member["user"]["id"] in access["bans"]
    status, _, _ = await call(server, "GET", "/api/rooms/club/access", token=member["access_token"])
    assert status == 403


async def test_a_ban_is_stored_and_holds_on_another_server_of_the_same_store(start_server: StartServer) -> None:
    server = await start_server()
    owner, eve = await register(server, "keeper"), await register(server, "eve")
    await call(server, "POST", "/api/rooms", {"name": "vault"}, owner["access_token"])
    status, _, _ = await call(server, "PUT", f"/api/rooms/vault/bans/{eve['user']['id']}", {"reason": "no"},
                              owner["access_token"])  # fmt: skip
    assert status == 204
    restarted = await start_server()  # a second server on the same data directory and signing secret
    _, again, _ = await login(restarted, "eve")
    async with json_peer(f"{restarted.ws_url}?token={again['access_token']}") as peer:
        await peer.hello()
        await peer.send({"type": "join", "room": "vault"})
        assert (await peer.expect("error"))["code"] == "banned"


async def test_private_room_with_invite_and_password(server: RunningServer) -> None:
    owner = await register(server, "host")
    settings = {"name": "den", "private": True, "invite": True, "password": "open sesame"}
    status, room, _ = await call(server, "POST", "/api/rooms", settings, owner["access_token"])
    assert status == 201 and room["has_password"] and "invite" in room
    friend, pal = await register(server, "friend"), await register(server, "pal")
    async with (
        json_peer(server.ws_url) as guest,
        json_peer(f"{server.ws_url}?token={friend['access_token']}") as invited,
        json_peer(f"{server.ws_url}?token={pal['access_token']}") as knows_password,
    ):
        for peer in (guest, invited, knows_password):
            await peer.hello()
        await guest.send({"type": "join", "room": "den"})
        assert (await guest.expect("error"))["code"] == "access_denied"
        await guest.send({"type": "join", "room": "den", "password": "wrong"})
        assert (await guest.expect("error", timeout=5))["code"] == "access_denied"
        await invited.send({"type": "join", "room": "den", "invite": room["invite"]})
        await invited.expect("joined", room="den")
        await knows_password.send({"type": "join", "room": "den", "password": "open sesame"})
        await knows_password.expect("joined", room="den", timeout=5)
