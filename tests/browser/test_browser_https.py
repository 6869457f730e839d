"""Secure contexts: WebXR needs one. Over plain HTTP from another device the app explains how to get HTTPS
(and desktop still works); with `shoal serve --https` a headset on the LAN enters VR in the same room as a
desktop user. "Another device" is a `*.shoal.test` host name that Chromium resolves to 127.0.0.1."""

from __future__ import annotations

from support.browser import LAN_DOMAIN, OpenApp
from support.servers import RunningServer, running_server_process


async def test_plain_http_from_another_device_explains_how_to_get_https(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    phone = await open_app(f"http://desk.{LAN_DOMAIN}:{server.port}", room, "lan-http")
    note = phone.page.locator("#insecure")
    assert await note.is_visible()
    text = await note.inner_text()
    assert "shoal serve --https --host 0.0.0.0" in text and "certificate" in text
    assert await phone.page.evaluate("() => window.isSecureContext") is False
    await phone.screenshot("plain-http-lobby")

    await phone.join("Desk", "#46f0f0")  # the desktop view works without HTTPS
    assert await phone.page.locator("#xr-buttons button").count() == 0, "no VR/AR buttons without WebXR"


async def test_over_https_a_headset_on_the_lan_enters_vr_with_a_desktop_user(open_app: OpenApp, room: str) -> None:
    with running_server_process("--https") as server:
        desk = await open_app(f"https://127.0.0.1:{server.port}", room, "https-desk", accept_certificate=True)
        assert not await desk.page.locator("#insecure").is_visible()
        await desk.join("Desk", "#46f0f0")

        headset_url = f"https://quest.{LAN_DOMAIN}:{server.port}"
        quest = await open_app(headset_url, room, "https-quest", headset=True, accept_certificate=True)
        assert await quest.page.evaluate("() => window.isSecureContext") is True
        await quest.join("Quest", "#f032e6")
        await quest.page.locator("#enter-vr").click()
        await quest.wait_for("shoalDebug.presenting()", timeout=10)
        await desk.wait_for(
            "shoalDebug.avatars().some(a => a.name === 'Quest' && a.visible && a.left && a.right)", timeout=10
        )
        assert "url=https://" in server.log()
