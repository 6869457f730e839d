"""networked-aframe's own example pages, unmodified but for their adapter, in headless Chromium against Shoal.

The real NAF 0.14.3 bundle, A-Frame 1.8.0 and the socket.io 4.8.1 client (vendored from npm tarballs) run
`/examples/naf/basic.html` (adapter `socketio`), `basic-uws.html` (adapter `uws`) and
`basic-persistent.html`. Assertions read NAF's own state in each page (`NAF.entities`, A-Frame attributes).
The `chromium` fixture is this module's own, so the file needs nothing beyond tests/conftest.py and
tests/support/.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from support.ci import require
from support.servers import RunningServer, running_server_process

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")  # Debian's; never a browser Playwright downloads
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking"]
SMALL = {"width": 320, "height": 200}  # software WebGL on two cores: keep the frames cheap


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """Headless Chromium via Playwright: skipped when either is missing, a failure under CI=true."""
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        require(False, "Playwright is not installed (pip install -e '.[test]')")
        raise
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@contextlib.asynccontextmanager
async def naf_page(browser: Browser, url: str) -> AsyncIterator[Page]:
    """A NAF page in a fresh browser profile, once NAF has a client id; uncaught page errors fail the test."""
    context = await browser.new_context(viewport=SMALL)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        await page.goto(url)
        await until(page, "window.NAF && NAF.clientId", timeout=30)
        yield page
    finally:
        await context.close()
    assert not errors, f"uncaught errors in {url}: {errors}"


async def until(page: Page, expression: str, arg: Any = None, timeout: float = 10.0) -> Any:
    """Wait until the JavaScript `expression` (with `arg` bound to `arg`) is truthy; return its value."""
    handle = await page.wait_for_function(f"(arg) => {expression}", arg=arg, timeout=timeout * 1000, polling=50)
    return await handle.json_value()


RIG_ID = "document.querySelector('#rig').components.networked.data.networkId"
NEAR = """(() => { const e = NAF.entities.getEntity(arg.id);
  if (!e) return false;
  const p = e.object3D.position;
  return Math.abs(p.x - arg.x) < 0.01 && Math.abs(p.y - arg.y) < 0.01 && Math.abs(p.z - arg.z) < 0.01; })()"""


@pytest.mark.parametrize("page_name", ["basic.html", "basic-uws.html"])
async def test_two_pages_see_each_other_move_and_a_late_joiner_gets_the_state_from_the_server(
    chromium: Browser, server: RunningServer, page_name: str
) -> None:
    url = f"{server.url}/examples/naf/{page_name}"
    async with naf_page(chromium, url) as a, naf_page(chromium, url) as b:
        a_rig = await a.evaluate(RIG_ID)
        b_rig = await b.evaluate(RIG_ID)
        await until(b, "NAF.entities.hasEntity(arg)", a_rig)
        await until(a, "NAF.entities.hasEntity(arg)", b_rig)

        await a.evaluate("document.querySelector('#rig').setAttribute('position', '5 0 -3')")
        await until(b, NEAR, {"id": a_rig, "x": 5, "y": 0, "z": -3})
        await b.evaluate("document.querySelector('#rig').setAttribute('position', '-2 0 4')")
        await until(a, NEAR, {"id": b_rig, "x": -2, "y": 0, "z": 4})

        # Freeze A's JavaScript: it cannot answer a newcomer, so what C learns of A comes from the server.
        debugger = await a.context.new_cdp_session(a)
        await debugger.send("Debugger.enable")
        await debugger.send("Debugger.pause")
        try:
            async with naf_page(chromium, url) as c:
                await until(c, NEAR, {"id": a_rig, "x": 5, "y": 0, "z": -3}, timeout=15)
                await until(c, NEAR, {"id": b_rig, "x": -2, "y": 0, "z": 4})
        finally:
            await debugger.send("Debugger.resume")


async def test_a_persistent_entity_outlives_its_page_and_a_kill_9(chromium: Browser, tmp_path: Path) -> None:
    """basic-persistent.html: a click recolours the sphere and takes it over. The page leaves, the server
    is killed (SIGKILL) and restarted on the same data; a new page sees the colour."""
    data = str(tmp_path / "data")
    sphere = "document.querySelector('#sphere')"
    with running_server_process("--data", data) as first:
        async with naf_page(chromium, f"{first.url}/examples/naf/basic-persistent.html") as a:
            await until(a, f"{sphere}.components.networked")
            await a.evaluate(f"{sphere}.emit('click')")  # NAF's color-changer: new colour + takeOwnership
            colour = await until(a, f"NAF.utils.isMine({sphere}) && {sphere}.getAttribute('material').color")
        stored = await stored_entities(first.url, "basic-persistent")
        assert stored["sphere"]["components"]["1"] == colour and stored["sphere"]["persistent"] is True
        first.process.kill()  # SIGKILL: no shutdown, no flush
        first.wait_exit(5)

    with running_server_process("--data", data) as second:
        async with naf_page(chromium, f"{second.url}/examples/naf/basic-persistent.html") as b:
            await until(b, f"{sphere}.getAttribute('material').color === arg", colour, timeout=15)


async def stored_entities(base_url: str, room: str, timeout: float = 5.0) -> dict[str, Any]:
    """The room's entities by network id once it is no longer live, i.e. as stored (read after commit)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(f"{base_url}/api/naf/rooms/{room}") as response:
                body = await response.json()
            if response.status == 200 and not body["live"]:
                return {entity["networkId"]: entity for entity in body["entities"]}
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.05)
