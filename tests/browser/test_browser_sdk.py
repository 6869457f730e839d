"""A page author's own page, served from another origin, imports /sdk/shoal.js straight from the Shoal
server (a cross-origin module script, so CORS applies) and meets a user of the bundled app in the same room.

Both origins are on 127.0.0.1 (different ports): Chromium's Private Network Access rules would block an
insecure public page from loading anything from a loopback server, which no real deployment does either.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from support.browser import OpenApp
from support.servers import HOST, RunningServer

AUTHOR_PAGE = """<!doctype html>
<title>My own page</title>
<script type="module">
  import { ShoalClient } from '{base}/sdk/shoal.js';
  const client = new ShoalClient({ url: '{ws}', name: 'Author', color: '#911eb4' });
  window.seen = [];
  client.on('member_joined', ({ member }) => window.seen.push(member.name));
  await client.connect();
  await client.join('{room}');
  client.setPose({ head: { pos: [0.3, 1.5, -1.0], rot: [0, 0, 0, 1] } });
  window.client = client;
</script>
"""


@pytest.fixture
async def author_site(server: RunningServer, room: str) -> AsyncIterator[str]:
    """The author's page on its own little web server; yields its URL."""
    html = AUTHOR_PAGE.replace("{base}", server.url).replace("{ws}", server.ws_url).replace("{room}", room)

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, HOST, 0).start()
    yield f"http://{HOST}:{runner.addresses[0][1]}/"
    await runner.cleanup()


async def test_a_page_on_another_origin_uses_the_sdk_from_the_server(
    open_app: OpenApp, server: RunningServer, room: str, author_site: str
) -> None:
    ada = await open_app(server.url, room, "sdk-ada")
    await ada.join("Ada", "#3cb44b")

    author = await ada.page.context.browser.new_page()
    errors: list[str] = []
    author.on("pageerror", lambda error: errors.append(str(error)))
    await author.goto(author_site)
    await author.wait_for_function("window.client && window.client.room !== null", timeout=10_000)
    assert await author.evaluate("() => window.seen") == ["Ada"]

    seen = await ada.wait_for(
        "shoalDebug.avatars().find(a => a.name === 'Author' && a.visible && Math.abs(a.head[1] - 1.5) < 0.01)"
    )
    assert seen["head"] == [0.3, 1.5, -1.0]
    # and the author's page gets Ada's pose, interpolated, from the same SDK
    await author.wait_for_function(
        "(() => { const ada = [...window.client.members.values()].find(m => m.name === 'Ada');"
        " return ada && window.client.remotePose(ada.id) !== null; })()",
        timeout=5_000,
    )
    assert not errors, errors
    await author.close()
