"""The web app in a real browser, two users per room, against a real Shoal server on 127.0.0.1.

Each user is a separate browser profile. The first to join stands at the first seat facing the tables and
the second across from them, so each sees the other from the start.
"""

from __future__ import annotations

import asyncio
import math
import time
from pathlib import Path

from support.browser import AppPage, OpenApp
from support.servers import RunningServer, serving

ADA = ("Ada", "#3cb44b")
BOB = ("Bob", "#4363d8")
# the cube colours cycle through this palette (static/app/objects.js)
PALETTE = ["#e6194b", "#f58231", "#ffe119", "#3cb44b", "#42d4f4", "#4363d8", "#911eb4", "#f032e6"]


async def two_users(open_app: OpenApp, base_url: str, room: str) -> tuple[AppPage, AppPage]:
    ada = await open_app(base_url, room, "ada")
    await ada.join(*ADA)
    await ada.wait_for("shoalDebug.entities().length === 7")  # the room's default objects, created by Ada
    bob = await open_app(base_url, room, "bob")
    await bob.join(*BOB)
    await ada.wait_for("shoalDebug.avatars().some(a => a.name === 'Bob' && a.visible)")
    await bob.wait_for("shoalDebug.avatars().some(a => a.name === 'Ada' && a.visible)")
    return ada, bob


def distance(a: list[float], b: list[float]) -> float:
    return math.dist(a, b)


async def test_two_pages_see_each_others_avatar_with_name_and_hands(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    ada, bob = await two_users(open_app, server.url, room)

    (seen_by_ada,) = await ada.debug("avatars()")
    (seen_by_bob,) = await bob.debug("avatars()")
    assert seen_by_ada["name"] == "Bob" and seen_by_bob["name"] == "Ada"
    for seen, page in ((seen_by_ada, bob), (seen_by_bob, ada)):
        actual = (await page.debug("self()"))["head"]
        assert distance(seen["head"], actual) < 0.05, (seen, actual)  # drawn where the other really stands
        assert seen["left"] and seen["right"], "desktop users show two hands"
    for page in (ada, bob):
        assert await page.page.text_content("#hud-count") == "2 people"
        assert await page.page.inner_text("#hud-state") == "Connected"
        assert (await page.debug("connection()"))["rtt"] is not None
    speaking = {member.codec.subprotocol for member in server.engine.members.values()}
    assert speaking == {"shoal.v1.bin"}, "the app speaks the binary protocol by default"
    await ada.screenshot("two-users")
    await bob.screenshot("two-users")


async def test_walking_with_the_keyboard_shows_on_the_other_page_within_500_ms(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    ada, bob = await two_users(open_app, server.url, room)
    start = (await ada.debug("self()"))["head"]
    seen_start = (await bob.avatar("Ada"))["head"]

    await ada.page.keyboard.down("KeyW")
    try:
        moved_locally = await wait_until_moved(ada, "self().head", start, 0.05, timeout=3)
        moved_remotely = await wait_until_moved(bob, "avatars().find(a => a.name === 'Ada').head", seen_start, 0.05, 3)
    finally:
        await ada.page.keyboard.up("KeyW")
    latency = moved_remotely - moved_locally
    print(f"keyboard move seen on the other page after {latency * 1000:.0f} ms")
    assert latency < 0.5

    # once Ada stops, Bob draws her where she stopped
    end = (await ada.debug("self()"))["head"]
    assert distance(end, start) > 0.3, "holding W for a while walks some distance"
    await bob.wait_for(
        "(() => { const a = shoalDebug.avatars().find(a => a.name === 'Ada');"
        " return Math.hypot(a.head[0] - arg[0], a.head[2] - arg[2]) < 0.03; })()",
        end,
    )
    await bob.screenshot("keyboard-move")


async def wait_until_moved(page: AppPage, position: str, start: list[float], metres: float, timeout: float) -> float:
    """Poll `shoalDebug.<position>` until it is `metres` away from `start`; return the monotonic time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if distance(await page.debug(position), start) >= metres:
            return time.monotonic()
        await asyncio.sleep(0.005)
    raise AssertionError(f"{page.label}: {position} did not move {metres} m within {timeout} s")


async def test_clicking_a_cube_changes_its_colour_on_the_other_page(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    ada, bob = await two_users(open_app, server.url, room)
    before = await cube_colour(bob, "cube-2")
    expected = PALETTE[(PALETTE.index(before) + 1) % len(PALETTE)]

    where = await ada.debug("screenPosition(arg)", "cube-2")
    assert where, "Ada faces the table with the cubes"
    await ada.page.mouse.click(where["x"], where["y"])

    await bob.wait_for("shoalDebug.entities().find(e => e.id === 'cube-2').color === arg", expected, timeout=3)
    assert await cube_colour(ada, "cube-2") == expected
    assert await cube_colour(bob, "cube-1") == await cube_colour(ada, "cube-1"), "only the clicked cube changed"
    await ada.screenshot("cube-click")
    await bob.screenshot("cube-click")


async def cube_colour(page: AppPage, entity_id: str) -> str:
    return next(e["color"] for e in await page.debug("entities()") if e["id"] == entity_id)


async def test_a_carried_ball_moves_on_the_other_page_and_is_released_when_dropped(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    ada, bob = await two_users(open_app, server.url, room)
    await ada.page.keyboard.down("KeyE")  # turn right, towards the small table with the balls
    try:
        where = await ada.wait_for("shoalDebug.screenPosition('ball-2')", timeout=5)
    finally:
        await ada.page.keyboard.up("KeyE")
    await asyncio.sleep(0.2)
    where = await ada.debug("screenPosition(arg)", "ball-2")
    start = await entity(bob, "ball-2")

    await ada.page.mouse.move(where["x"], where["y"])
    await ada.page.mouse.down()
    await ada.wait_for("shoalDebug.entities().find(e => e.id === 'ball-2').owner === shoalDebug.connection().id")
    await ada.page.mouse.move(where["x"], where["y"] - 150, steps=10)  # lift it
    lifted = await bob.wait_for(
        "(() => { const b = shoalDebug.entities().find(e => e.id === 'ball-2');"
        " return b.pos[1] > arg + 0.25 && b.owner !== null ? b : null; })()",
        start["pos"][1],
    )
    assert lifted["owner"] == (await ada.debug("connection()"))["id"], "Bob sees who holds it"
    await ada.screenshot("carry")
    await bob.screenshot("carry")

    await ada.page.mouse.up()  # it falls back onto the table and is released
    dropped = await bob.wait_for(
        "(() => { const b = shoalDebug.entities().find(e => e.id === 'ball-2');"
        " return b.owner === null && Math.abs(b.pos[1] - arg) < 0.01 ? b : null; })()",
        start["pos"][1],
    )
    assert distance(dropped["pos"], (await entity(ada, "ball-2"))["pos"]) < 0.01


async def entity(page: AppPage, entity_id: str) -> dict:
    return next(e for e in await page.debug("entities()") if e["id"] == entity_id)


async def test_closing_a_page_removes_its_avatar_from_the_other(
    open_app: OpenApp, server: RunningServer, room: str
) -> None:
    ada, bob = await two_users(open_app, server.url, room)
    await ada.page.context.close()
    await bob.wait_for("shoalDebug.avatars().length === 0", timeout=3)
    assert await bob.page.text_content("#hud-count") == "1 person"


async def test_a_reload_leaves_no_ghost(open_app: OpenApp, server: RunningServer, room: str) -> None:
    ada, bob = await two_users(open_app, server.url, room)
    first_id = (await ada.debug("connection()"))["id"]

    await ada.page.reload()
    await ada.page.click("#join")  # the lobby remembers the room (from the URL), name and colour
    await ada.wait_for("shoalDebug.connection().state === 'connected'", timeout=15)
    second_id = (await ada.debug("connection()"))["id"]
    assert second_id != first_id

    await bob.wait_for(
        "shoalDebug.avatars().length === 1 && shoalDebug.avatars()[0].id === arg && shoalDebug.avatars()[0].visible",
        second_id,
    )
    await asyncio.sleep(0.3)  # a ghost would have been drawn by now
    assert [a["name"] for a in await bob.debug("avatars()")] == ["Ada"]
    assert len(server.engine.rooms[room].members) == 2


async def test_the_page_reconnects_and_rejoins_after_the_server_restarts(
    open_app: OpenApp, tmp_path: Path, room: str
) -> None:
    async with serving(tmp_path / "data") as first:
        port = first.port
        ada, bob = await two_users(open_app, first.url, room)
    # the server is gone: both pages say so and count down to the next attempt
    await ada.wait_for("shoalDebug.connection().state === 'reconnecting'")
    banner = await ada.page.inner_text("#banner")
    assert banner.startswith("Connection lost. Reconnecting"), banner
    await ada.screenshot("server-gone")

    async with serving(tmp_path / "data", port=port) as second:
        for page in (ada, bob):
            await page.wait_for("shoalDebug.connection().state === 'connected'", timeout=20)
        deadline = asyncio.get_running_loop().time() + 10
        while len(getattr(second.engine.rooms.get(room), "members", ())) < 2:  # both have joined it again
            assert asyncio.get_running_loop().time() < deadline, "the pages did not rejoin the room"
            await asyncio.sleep(0.05)
        ids = {member.name: member_id for member_id, member in second.engine.rooms[room].members.items()}
        for page, other in ((ada, "Bob"), (bob, "Ada")):
            # the other's avatar as the new server knows it: until its `joined`, a page still shows the old one
            only_the_other = "(() => { const a = shoalDebug.avatars(); return a.length === 1 && a[0].id === arg; })()"
            await page.wait_for(only_the_other, ids[other], timeout=5)
            await page.wait_for("shoalDebug.avatars()[0].visible", timeout=5)
        assert await ada.page.inner_text("#hud-state") == "Connected"
        assert len(await ada.debug("entities()")) == 7, "the room's stored objects are back"
