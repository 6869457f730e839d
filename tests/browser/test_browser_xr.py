"""VR in a real browser: an emulated Meta Quest 3 (iwer, vendored for tests only) enters an immersive-vr
session in headless Chromium through the app's Enter VR button, and a desktop user in the same room sees the
headset user's controllers move as hands."""

from __future__ import annotations

import math

from support.browser import OpenApp
from support.servers import RunningServer

RAISE = 0.4  # metres the emulated right controller is lifted


async def test_a_headset_user_enters_vr_and_the_other_page_sees_the_hands_move(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    vera = await open_app(server.url, room, "vera", headset=True)
    await vera.join("Vera", "#f58231")
    bob = await open_app(server.url, room, "bob")
    await bob.join("Bob", "#4363d8")

    enter_vr = vera.page.locator("#enter-vr")
    await enter_vr.wait_for(timeout=5000)
    assert await enter_vr.inner_text() == "ENTER VR"
    assert await vera.page.locator("#enter-ar").count() == 1, "a Quest 3 also does passthrough AR"
    await enter_vr.click()
    await vera.wait_for("shoalDebug.presenting()", timeout=10)
    frame = await vera.debug("frames()")
    await vera.wait_for("shoalDebug.frames() >= arg + 2", frame)  # the pose now comes from the controllers

    # the controllers are the hands: both tracked, both sent, both drawn on Bob's page where Vera holds them
    sent = await vera.wait_for("shoalDebug.self().left && shoalDebug.self().right && shoalDebug.self()", timeout=10)
    assert math.dist(sent["left"], sent["right"]) > 0.1, "two separate hands"
    seen = await bob.wait_for(
        "(() => { const v = shoalDebug.avatars().find(a => a.name === 'Vera');"
        " const near = (a, b) => a && Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]) < 0.03;"
        " return v && v.visible && near(v.left, arg.left) && near(v.right, arg.right) ? v : null; })()",
        sent,
        timeout=10,
    )

    await vera.page.evaluate(f"() => {{ xrDevice.controllers.right.position.y += {RAISE}; }}")
    raised = await bob.wait_for(
        "(() => { const v = shoalDebug.avatars().find(a => a.name === 'Vera');"
        " return v.right[1] > arg.right[1] + 0.35 ? v : null; })()",
        seen,
        timeout=10,
    )
    assert raised["right"][1] - seen["right"][1] < RAISE + 0.05
    assert math.dist(raised["left"], seen["left"]) < 0.02, "only the right hand moved"
    await vera.screenshot("vr")
    await bob.screenshot("vr")

    # leaving VR (from the headset's own menu) goes back to the desktop view; Vera stays in the room
    await vera.page.evaluate("() => xrDevice.activeSession.end()")
    await vera.wait_for("!shoalDebug.presenting()", timeout=10)
    assert await vera.page.locator("#enter-vr").inner_text() == "ENTER VR"
    assert (await vera.debug("connection()"))["state"] == "connected"
    assert [a["name"] for a in await bob.debug("avatars()")] == ["Vera"]
