"""Accounts in the web app, in a real browser against a real server: registering and logging in from the lobby,
the profile panel (name, colour, an avatar picture checked by the server), profile pictures on avatars, guests,
refused tokens (a clear message, never a reconnect loop), two devices of one user, token refresh and logout.

Each user is a separate browser profile. What a page draws is read from `window.shoalDebug`; screenshots of the
lobby, the profile panel and the rooms are saved under `test-artifacts/browser/`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from PIL import Image, ImageDraw

from shoal.auth import AuthSettings
from shoal.auth.tokens import SECRET_FILE
from shoal.web.images import MAX_IMAGE_BYTES, MAX_SIDE_PIXELS
from support.accounts import PASSWORD, call, register
from support.browser import AppPage, OpenApp
from support.servers import RunningServer, StartServer


def portrait(background: tuple[int, int, int]) -> bytes:
    """A small PNG that reads as a picture in screenshots: a face on a coloured background."""
    picture = Image.new("RGB", (96, 96), background)
    draw = ImageDraw.Draw(picture)
    draw.ellipse((18, 14, 78, 74), fill=(255, 224, 189))
    draw.ellipse((33, 34, 41, 42), fill=(30, 30, 30))
    draw.ellipse((55, 34, 63, 42), fill=(30, 30, 30))
    draw.arc((34, 44, 62, 64), 20, 160, fill=(150, 40, 40), width=3)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


async def fill_account_form(page: AppPage, username: str, password: str) -> None:
    """Open "Log in / Register" in the lobby and fill it in."""
    await page.page.click("#account summary")
    await page.page.fill("#username", username)
    await page.page.fill("#password", password)


async def submit_account_form(page: AppPage, username: str, password: str, button: str) -> None:
    """Fill in "Log in / Register" and press `button` (`#login` or `#register`)."""
    await fill_account_form(page, username, password)
    await page.page.click(button)


async def log_in(page: AppPage, username: str, password: str = PASSWORD) -> None:
    await submit_account_form(page, username, password, "#login")
    await page.page.wait_for_selector("#signed-in", state="visible", timeout=10_000)


async def join_logged_in(page: AppPage) -> None:
    await page.page.click("#join")
    await page.wait_for("shoalDebug.connection().state === 'connected'", timeout=15)


async def avatar_of(page: AppPage, name: str, *, loaded: bool = True) -> dict[str, Any]:
    """Wait until `page` draws the avatar named `name` (with its picture's texture loaded when `loaded`)."""
    condition = "a.imageLoaded" if loaded else "true"
    return await page.wait_for(
        f"shoalDebug.avatars().find(a => a.name === arg && a.visible && {condition})", name, timeout=10
    )


async def profile_with_picture(
    server: RunningServer, username: str, name: str, background: tuple[int, int, int]
) -> dict[str, Any]:
    """An account registered over REST, with a display name and a picture; returns its profile."""
    session = await register(server, username, name)
    token = session["access_token"]
    status, profile, _ = await call(server, "PUT", "/api/me/avatar", token=token, data=portrait(background))
    assert status == 200, profile
    return profile


async def test_a_user_registers_in_the_lobby_uploads_a_picture_and_another_user_sees_it(
    open_app: OpenApp, server: RunningServer, room: str, tmp_path: Path
) -> None:
    ada = await open_app(server.url, room, "ada")
    await fill_account_form(ada, "ada", PASSWORD)
    await ada.screenshot("lobby-register")
    await ada.page.click("#register")
    await ada.page.wait_for_selector("#signed-in", state="visible", timeout=10_000)
    assert await ada.page.inner_text("#me-username") == "@ada"
    assert await ada.page.is_hidden("#guest-fields"), "an account's name and colour are its own"

    await ada.page.click("#edit-profile")
    await ada.page.wait_for_selector("#profile", state="visible")
    limits = await ada.page.inner_text("#avatar-limits")
    side = f"{MAX_SIDE_PIXELS} \N{MULTIPLICATION SIGN} {MAX_SIDE_PIXELS}"
    assert f"{MAX_IMAGE_BYTES // 2**20} MiB" in limits and side in limits, f"not the server's limits: {limits}"

    disguised = tmp_path / "avatar.png"
    disguised.write_bytes(b"<script>alert('hi')</script>")
    await ada.page.set_input_files("#avatar-file", disguised)
    refused = await ada.page.wait_for_selector("#profile-status[data-tone='bad']", timeout=10_000)
    assert "The image was refused: an avatar image must be PNG, JPEG or WebP" in await refused.inner_text()
    await ada.screenshot("profile-refused")

    picture = tmp_path / "ada.png"
    picture.write_bytes(portrait((66, 133, 244)))
    await ada.page.set_input_files("#avatar-file", picture)
    await ada.page.wait_for_selector("#profile-status[data-tone='ok']", timeout=10_000)
    await ada.page.fill("#profile-name", "Ada Lovelace")
    await ada.page.fill("#profile-color", "#f58231")
    await ada.page.click("#profile-save")
    await ada.page.wait_for_function("document.querySelector('#profile-status').textContent === 'Saved.'")
    account = (await ada.debug("account()"))["user"]
    assert account["name"] == "Ada Lovelace" and account["color"] == "#f58231"
    assert account["avatar"].startswith(f"/api/users/{account['id']}/avatar?v=")
    await ada.screenshot("profile-saved")
    await ada.page.click("#profile-close")
    assert await ada.page.inner_text("#join") == "Join as Ada Lovelace"
    assert await ada.page.get_attribute("#me-picture img", "src") == account["avatar"]
    await ada.screenshot("lobby-signed-in")
    await join_logged_in(ada)

    await register(server, "bob", "Bob")
    bob = await open_app(server.url, room, "bob")
    await log_in(bob, "bob")
    await join_logged_in(bob)

    seen = await avatar_of(bob, "Ada Lovelace")
    assert seen["user"] == account["id"]
    assert seen["image"] == server.url + account["avatar"], "the picture comes from the server that served the page"
    listed = bob.page.locator("#hud-people li", has_text="Ada Lovelace")
    assert await listed.locator("img").get_attribute("src", timeout=5000) == account["avatar"]
    seen_by_ada = await avatar_of(ada, "Bob", loaded=False)
    assert seen_by_ada["image"] is None and not seen_by_ada["imageLoaded"], "Bob has no picture: his colour shows"
    assert await ada.page.inner_text("#hud-user") == "@ada"
    await bob.wait_for("shoalDebug.frames() > 0")
    await bob.screenshot("sees-a-picture")
    await ada.screenshot("in-the-room")


async def test_a_guest_joins_without_an_account_next_to_a_logged_in_user(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    await profile_with_picture(server, "cyd", "Cy", (52, 168, 83))
    cy = await open_app(server.url, room, "cy")
    await log_in(cy, "cyd")
    await join_logged_in(cy)

    guest = await open_app(server.url, room, "guest")
    await guest.join("Visitor", "#911eb4")
    seen = await avatar_of(cy, "Visitor", loaded=False)
    assert seen["user"] is None and seen["image"] is None
    assert (await guest.debug("account()"))["user"] is None
    members = {member.name: member for member in server.engine.members.values()}
    assert members["Visitor"].user is None, "a guest has no account on the server either"
    assert members["Cy"].user is not None
    assert (await avatar_of(guest, "Cy"))["imageLoaded"]


async def test_a_picture_that_cannot_be_loaded_leaves_the_avatar_in_its_colour(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    profile = await profile_with_picture(server, "fay", "Fay", (251, 188, 5))
    fay = await open_app(server.url, room, "fay")
    await log_in(fay, "fay")
    await join_logged_in(fay)

    offline = await open_app(server.url, room, "offline")
    await offline.page.route("**/api/users/*/avatar*", lambda route: route.abort("connectionfailed"))
    await offline.join("Gus", "#42d4f4")
    seen = await offline.wait_for("shoalDebug.avatars().find(a => a.name === 'Fay' && a.imageState === 'failed')")
    assert seen["visible"] and not seen["imageLoaded"]
    assert seen["image"] == server.url + profile["avatar"], "the URL was right; the network failed"
    fallback = offline.page.locator("#hud-people li", has_text="Fay").locator(".picture")
    await fallback.locator("img").wait_for(state="detached", timeout=5000)  # the HUD shows the colour instead
    await offline.screenshot("picture-failed")


BAD_SESSIONS = ["forged", "expired", "expired-and-revoked"]


async def bad_session(kind: str, server: RunningServer, secret: bytes) -> tuple[dict[str, Any], str]:
    """A session as the app stores it, holding a bad token; and the server's reason for refusing it."""
    session = await register(server, f"ada-{kind}", "Ada")
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    in_an_hour = (time.time() + 3600) * 1000
    saved = {"access_token": "", "refresh_token": None, "expires_in": 900, "expires_at": in_an_hour,
             "user": session["user"], "guest": None}  # fmt: skip
    if kind == "forged":  # another key signed it: the token's claims say Ada, the signature does not
        saved["access_token"] = jwt.encode(claims, b"not the server's secret, not at all", "HS256")
        return saved, "the token's signature is invalid"
    expired = {**claims, "iat": int(time.time()) - 3600, "exp": int(time.time()) - 1800}
    saved["access_token"] = jwt.encode(expired, secret, "HS256")
    if kind == "expired":  # this machine's clock believes it is still valid, so the app sends it
        return saved, "the token has expired"
    # expired here too: the app must refresh first, and the session was logged out meanwhile
    await call(server, "POST", "/api/auth/logout", {"refresh_token": session["refresh_token"]})
    saved.update(refresh_token=session["refresh_token"], expires_at=(time.time() - 60) * 1000)
    return saved, "the session has ended"


@pytest.mark.parametrize("kind", BAD_SESSIONS)
async def test_a_bad_token_is_refused_with_a_clear_message_and_no_reconnect_loop(
    open_app: OpenApp, start_server: StartServer, tmp_path: Path, room: str, kind: str
) -> None:
    server = await start_server()
    saved, reason = await bad_session(kind, server, (tmp_path / "data" / SECRET_FILE).read_bytes())
    page = await open_app(server.url, room, f"refused-{kind}")
    sockets: list[str] = []
    page.page.on("websocket", lambda socket: sockets.append(socket.url))
    await page.page.evaluate("(saved) => sessionStorage.setItem('shoal.session', saved)", json.dumps(saved))
    await page.page.reload()  # as after logging in yesterday: the tab restores its session
    if kind == "expired-and-revoked":  # the tab refreshes its expired token at once, and the server refuses
        message = await page.page.wait_for_selector("#lobby-error:not([hidden])", timeout=10_000)
        text = await message.inner_text()
        assert text.startswith("You were logged out:") and text.endswith("log in again."), text
    else:
        await page.page.wait_for_selector("#signed-in", state="visible")
        await page.page.click("#join")
        message = await page.page.wait_for_selector("#lobby-error:not([hidden])", timeout=10_000)
        text = await message.inner_text()
        assert text.startswith("Your login was refused:") and text.endswith("Log in again."), text
        closed = (await page.debug("connection()"))["close"]
        assert closed["code"] == 4001 and closed["error"] == "auth_failed", closed
    assert reason in text

    await asyncio.sleep(2.5)  # the first reconnect would come within a second
    expected_sockets = 0 if kind == "expired-and-revoked" else 1  # a refused refresh never opens one
    assert len(sockets) == expected_sockets, sockets
    assert (await server.stats())["closes"].get("4001", 0) == expected_sockets
    assert (await page.debug("connection()"))["state"] in ("closed", "idle")
    assert not server.engine.members, "nobody joined"
    assert await page.page.is_visible("#guest-fields"), "the tab is a guest again: the lobby offers to log in"
    assert await page.page.evaluate("sessionStorage.getItem('shoal.session')") is None
    await page.screenshot("refused")


async def test_two_pages_of_one_user_show_the_same_name_and_picture_to_a_third(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    profile = await profile_with_picture(server, "dee", "Dee", (234, 67, 53))
    devices = []
    for label in ("dee-laptop", "dee-phone"):
        device = await open_app(server.url, room, label)
        await log_in(device, "dee")
        await join_logged_in(device)
        devices.append(device)
    witness = await open_app(server.url, room, "witness")
    await witness.join("Witness", "#4363d8")

    seen = await witness.wait_for(
        "(() => { const dees = shoalDebug.avatars().filter(a => a.name === 'Dee' && a.visible && a.imageLoaded);"
        " return dees.length === 2 ? dees : null; })()",
        timeout=10,
    )
    assert {a["user"] for a in seen} == {profile["id"]}
    assert {a["image"] for a in seen} == {server.url + profile["avatar"]}
    assert len({a["id"] for a in seen}) == 2, "two devices, two avatars"
    for device in devices:  # and each device sees the other one as Dee, with the picture
        assert (await avatar_of(device, "Dee"))["image"] == server.url + profile["avatar"]
    await witness.screenshot("one-user-two-devices")


async def test_the_token_is_refreshed_before_it_expires_a_reconnect_uses_it_and_logout_ends_the_session(
    open_app: OpenApp, start_server: StartServer, room: str
) -> None:
    server = await start_server(auth=AuthSettings(access_ttl=4.0))  # refreshed 0.8 s before it expires
    await register(server, "eve", "Eve")
    eve = await open_app(server.url, room, "eve")
    await log_in(eve, "eve")
    first = await eve.debug("account()")
    await join_logged_in(eve)

    refreshed = await eve.wait_for("shoalDebug.account().refreshes >= 2 && shoalDebug.account()", timeout=10)
    assert refreshed["expiresAt"] > first["expiresAt"] + 5000
    assert time.time() * 1000 > first["expiresAt"] + 1000, "the first token has expired by now"
    old_id = (await eve.debug("connection()"))["id"]
    (member,) = server.engine.members.values()
    member.link.close(1012, "server restarting")  # the page must reconnect, with a valid token
    await eve.wait_for("shoalDebug.connection().state === 'reconnecting'")
    await eve.wait_for("shoalDebug.connection().state === 'connected'", timeout=10)
    assert (await eve.debug("connection()"))["id"] == old_id, "the session was resumed"
    (member,) = server.engine.members.values()
    assert member.name == "Eve" and member.user is not None

    token = json.loads(await eve.page.evaluate("sessionStorage.getItem('shoal.session')"))["access_token"]
    assert (await call(server, "GET", "/api/me", token=token))[0] == 200
    async with eve.page.expect_navigation():
        await eve.page.click("#hud-logout")  # the page starts again from the lobby, as a guest
    await eve.wait_for("shoalDebug.account().user === null && shoalDebug.connection().state === 'idle'", timeout=10)
    assert await eve.page.is_visible("#guest-fields")
    assert (await call(server, "GET", "/api/me", token=token))[0] == 401, "logout revoked the session's tokens"
