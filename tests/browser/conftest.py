"""Browser fixtures: Debian's Chromium (`/usr/bin/chromium`, never a downloaded one) driven by Playwright,
pages of the Shoal app joined to a real server, and screenshots saved under `test-artifacts/browser/`.

Without Chromium or Playwright the browser tests skip with the reason; under CI=true they fail instead.
Tests assert on `window.shoalDebug` (what each page draws), not on pixels.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import pytest

from support.browser import CHROMIUM, CHROMIUM_ARGS, INSTALL_HEADSET, IWER, LAN_DOMAIN, VIEWPORT, AppPage, OpenApp

try:
    from playwright.async_api import async_playwright
except ImportError:  # reported by the `browser` fixture: skipped locally, a failure under CI
    async_playwright = None

if TYPE_CHECKING:
    from playwright.async_api import Browser


@pytest.fixture
async def launch(require: Callable[[bool, str], None]) -> AsyncIterator[Callable[..., Awaitable[Browser]]]:
    """`await launch(*extra_args)`: a headless Chromium with the standard flags; all closed after the test."""
    require(CHROMIUM.exists(), f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    require(async_playwright is not None, "Playwright is not installed (pip install -e '.[test]')")
    async with async_playwright() as playwright:
        browsers: list[Browser] = []

        async def start(*extra_args: str) -> Browser:
            browser = await playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *extra_args]
            )
            browsers.append(browser)
            return browser

        yield start
        for browser in browsers:
            await browser.close()


@pytest.fixture
async def browser(launch: Callable[..., Awaitable[Browser]]) -> Browser:
    """Chromium in which every `*.shoal.test` host name is this machine: a page opened by such a name plays
    a device on the LAN (not `localhost`, so plain HTTP there is not a secure context)."""
    return await launch(f"--host-resolver-rules=MAP *.{LAN_DOMAIN} 127.0.0.1")


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    """A room name of this test's own (rooms and their objects are stored, so tests must not share)."""
    return f"{re.sub(r'[^A-Za-z0-9]+', '-', request.node.name)[:40].strip('-')}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def open_app(browser: Browser) -> AsyncIterator[OpenApp]:
    """`await open_app(base_url, room, label, headset=False, accept_certificate=False)`: the app's lobby in
    a fresh browser profile.

    With `headset`, an emulated Quest 3 (iwer, vendored for tests only) replaces WebXR before the app loads.
    After the test, uncaught page errors fail it.
    """
    pages: list[AppPage] = []

    async def open_page(
        base_url: str, room: str, label: str, headset: bool = False, accept_certificate: bool = False
    ) -> AppPage:
        # accept_certificate: as a user does once for `shoal serve --https`'s self-signed certificate
        context = await browser.new_context(viewport=VIEWPORT, ignore_https_errors=accept_certificate)
        if headset:
            await context.add_init_script(path=str(IWER))
            await context.add_init_script(script=INSTALL_HEADSET)
        page = await context.new_page()
        app = AppPage(page, label, [])
        page.on("pageerror", lambda error: app.errors.append(str(error)))
        await page.goto(f"{base_url}/?room={room}")
        pages.append(app)
        return app

    yield open_page
    errors = {app.label: app.errors for app in pages if app.errors}
    for app in pages:
        await app.page.context.close()
    assert not errors, f"uncaught errors in the pages: {errors}"
