"""The web client's files over HTTP: the app at /, the SDK at /sdk/, three.js at /vendor/, the status page at
/status, and static hosting that never serves a file outside its directory (reliability.md R20)."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from shoal.web import client_app
from support.servers import RunningServer

HOST = "127.0.0.1"


async def fetch(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, CIMultiDict[str], bytes]:
    """Status, headers (case-insensitive) and body of one request."""
    async with aiohttp.ClientSession() as session, session.request(method, url, headers=headers) as response:
        return response.status, response.headers.copy(), await response.read()


async def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """Send `GET target` exactly as written (no client-side normalisation of `..` or `%2e`)."""
    async with aiohttp.ClientSession() as session:
        url = aiohttp.client.URL.build(scheme="http", host=HOST, port=port, path=target, encoded=True)
        async with session.get(url) as response:
            return response.status, await response.read()


async def test_the_app_page_maps_three_and_the_sdk_and_loads_its_module(server: RunningServer) -> None:
    status, headers, body = await fetch(server.url + "/")
    page = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert '"three": "/vendor/three/three.module.js"' in page
    assert '"shoal": "/sdk/shoal.js"' in page
    assert '<script type="module" src="/app/main.js">' in page
    for module in re.findall(r'src="(/app/[^"]+)"', page):
        assert (await fetch(server.url + module))[0] == 200


async def test_every_module_the_app_imports_is_served_as_javascript(server: RunningServer) -> None:
    app_dir = client_app.STATIC_ROOT / "app"
    for path in sorted(app_dir.glob("*.js")):
        status, headers, body = await fetch(f"{server.url}/app/{path.name}")
        assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8", path.name
        for relative in re.findall(r"from '\./([\w-]+\.js)'", body.decode()):
            assert (app_dir / relative).is_file(), f"{path.name} imports missing ./{relative}"
    status, headers, _ = await fetch(server.url + "/vendor/three/addons/webxr/VRButton.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")


async def test_the_sdk_and_its_types_are_served_to_any_origin(server: RunningServer) -> None:
    status, headers, body = await fetch(server.url + "/sdk/shoal.js", {"Origin": "https://author.example"})
    assert status == 200 and headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert b"export class ShoalClient" in body
    status, headers, body = await fetch(server.url + "/sdk/shoal.d.ts")
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"export declare class ShoalClient" in body
    _, app_headers, _ = await fetch(server.url + "/app/main.js")
    assert "Access-Control-Allow-Origin" not in app_headers


async def test_vendored_licences_are_readable(server: RunningServer) -> None:
    status, headers, body = await fetch(server.url + "/vendor/three/LICENSE")
    assert status == 200 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert b"MIT" in body


async def test_files_are_revalidated_with_etags(server: RunningServer) -> None:
    status, headers, _ = await fetch(server.url + "/sdk/shoal.js")
    assert status == 200 and headers["Cache-Control"] == "no-cache" and headers["X-Content-Type-Options"] == "nosniff"
    status, _, body = await fetch(server.url + "/sdk/shoal.js", {"If-None-Match": headers["ETag"]})
    assert (status, body) == (304, b"")
    status, headers, body = await fetch(server.url + "/sdk/shoal.js", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000


async def test_the_status_page_moved_to_status(server: RunningServer) -> None:
    status, page = await server.get("/status")
    assert status == 200
    assert "No one is here yet." in page


TRAVERSALS = [
    "/app/../pyproject.toml",
    "/app/../../../../etc/passwd",
    "/app/%2e%2e/%2e%2e/client_app.py",
    "/app/%2E%2E/client_app.py",
    "/app/..%2f..%2fclient_app.py",
    "/app/..%2F..%2Fclient_app.py",
    "/app/%252e%252e/%252e%252e/client_app.py",
    "/app/..%5c..%5cclient_app.py",
    "/app//etc/passwd",
    "/app/%2fetc%2fpasswd",
    "/sdk/shoal.js%00.html",
    "/vendor/three/../../client_app.py",
    "/vendor/",
    "/vendor/three",
    "/vendor/three/",
    "/app/.hidden.js",
    "/sdk/../index.html",
    "/index.html",
    "/static/index.html",
    "/vendor/three/VERSION/../LICENSE",
]


@pytest.mark.parametrize("target", TRAVERSALS)
async def test_nothing_outside_a_mount_is_served(server: RunningServer, target: str) -> None:
    status, body = await raw_get(server.port, target)
    assert status in (400, 403, 404), f"{target} answered {status}"
    assert b"def add_routes" not in body and b"root:" not in body and b"[project]" not in body


@pytest.fixture
async def planted_root(tmp_path: Path) -> tuple[str, Path]:
    """A static root with traps: a symlink out of the root, a file beside the root whose name extends
    the root's, a `.gz` sibling that is a symlink out, a directory, and an unknown file type."""
    root = tmp_path / "static"
    (root / "app" / "folder").mkdir(parents=True)
    (root / "app" / "ok.js").write_text("export const ok = 1;\n")
    secret = tmp_path / "secret.js"
    secret.write_text("SECRET\n")
    (tmp_path / "static1.js").write_text("SECRET\n")
    (root / "app" / "escape.js").symlink_to(secret)
    (root / "app" / "ok.js.gz").symlink_to(secret)
    (root / "app" / "inside.js").symlink_to(root / "app" / "ok.js")
    (root / "app" / "notes.txt").write_text("not a served type\n")
    (root / "index.html").write_text("<!doctype html>\n")

    app = web.Application()
    client_app.add_routes(app, root)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    yield f"http://{HOST}:{runner.addresses[0][1]}", root
    await runner.cleanup()


async def test_symlinks_leading_out_of_the_root_are_not_followed(planted_root: tuple[str, Path]) -> None:
    base, _ = planted_root
    assert (await fetch(base + "/app/ok.js"))[0] == 200
    assert (await fetch(base + "/app/inside.js"))[0] == 200  # a symlink that stays inside is fine
    status, _, body = await fetch(base + "/app/escape.js")
    assert status == 404 and b"SECRET" not in body
    status, _, body = await fetch(base + "/app/ok.js", {"Accept-Encoding": "gzip"})  # the .gz symlink is ignored
    assert status == 200 and body == b"export const ok = 1;\n"


async def test_no_listings_no_neighbours_no_unknown_types(planted_root: tuple[str, Path]) -> None:
    base, _ = planted_root
    for target in ("/app/folder", "/app/folder/", "/app/notes.txt", "/app/../static1.js"):
        status, body = await raw_get(int(base.rsplit(":", 1)[1]), target)
        assert status == 404 and b"SECRET" not in body, target
