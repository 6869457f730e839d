"""Driving the Shoal web app in Debian's Chromium with Playwright: launch flags, one user's tab, screenshots."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.async_api import Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",  # WebGL still works, rendered in software
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"
IWER = Path(__file__).resolve().parents[1] / "browser" / "vendor" / "iwer" / "iwer.min.js"
# An emulated Meta Quest 3, installed over headless Chromium's own (device-less) navigator.xr
INSTALL_HEADSET = "window.xrDevice = new IWER.XRDevice(IWER.metaQuest3); xrDevice.installRuntime({forceInstall: true});"
VIEWPORT = {"width": 800, "height": 500}
LAN_DOMAIN = "shoal.test"
"""Host names under this domain resolve to 127.0.0.1 in the `browser` fixture's Chromium (RFC 6761 `.test`)."""


@dataclasses.dataclass
class AppPage:
    """One browser tab of the Shoal app, as one user. `errors` collects uncaught page errors."""

    page: Page
    label: str
    errors: list[str]

    async def join(self, name: str, color: str) -> None:
        """Fill in the lobby and join; returns once the page is connected."""
        await self.page.fill("#name", name)
        await self.page.fill("#color", color)
        await self.page.click("#join")
        await self.wait_for("shoalDebug.connection().state === 'connected'", timeout=15)

    async def debug(self, call: str, arg: Any = None) -> Any:
        """Evaluate `window.shoalDebug.<call>` in the page, e.g. `await page.debug("avatars()")`."""
        if arg is None:
            return await self.page.evaluate(f"() => window.shoalDebug.{call}")
        return await self.page.evaluate(f"(arg) => window.shoalDebug.{call}", arg)

    async def wait_for(self, expression: str, arg: Any = None, timeout: float = 5.0) -> Any:
        """Wait until the JavaScript `expression` (with `arg` bound to `arg`) is truthy; return its value."""
        handle = await self.page.wait_for_function(
            f"(arg) => window.shoalDebug && ({expression})", arg=arg, timeout=timeout * 1000, polling=20
        )
        return await handle.json_value()

    async def avatar(self, name: str) -> dict[str, Any] | None:
        """The remote avatar named `name` as this page draws it, or None."""
        return next((a for a in await self.debug("avatars()") if a["name"] == name), None)

    async def screenshot(self, test_name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{test_name}-{self.label}.png"
        await self.page.screenshot(path=str(path))
        return path


OpenApp = Callable[..., Awaitable[AppPage]]
"""`await open_app(base_url, room, label, headset=False, accept_certificate=False)` (the `open_app` fixture)."""
