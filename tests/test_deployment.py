"""docs/deployment.md's nginx configuration, run as written in front of a real server.

The test takes the ```nginx block out of the page, swaps its certificate, its port and its upstream for its
own (each swap must find what it replaces, so a change of the page that the test does not follow fails it),
and runs Debian's nginx with it: what a reader copies is what was checked.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest

from shoal import tls
from shoal.client import ShoalClient
from shoal.protocol.messages import Tick
from support.servers import HOST, RunningServer, free_port

DEPLOYMENT = Path(__file__).parents[1] / "docs" / "deployment.md"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")  # sbin: off a user's PATH


def documented_nginx_block() -> str:
    blocks = re.findall(r"```nginx\n(.*?)```", DEPLOYMENT.read_text(), re.DOTALL)
    assert len(blocks) == 1, "docs/deployment.md should show one nginx configuration"
    return blocks[0]


def swapped(text: str, swaps: dict[str, str]) -> str:
    for old, new in swaps.items():
        assert old in text, f"docs/deployment.md's nginx block no longer says {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture
def proxy(tmp_path: Path, server: RunningServer, require: Callable[[bool, str], None]) -> Iterator[tuple[int, Path]]:
    """nginx with the page's configuration on a free port, forwarding to `server`: (its port, its certificate)."""
    require(NGINX is not None, "nginx is not installed (Debian: apt-get install nginx-light)")
    assert NGINX is not None
    cert, key = tls.self_signed_certificate(tmp_path / "tls", tls.certificate_hosts([]))
    port = free_port()
    site = swapped(
        documented_nginx_block(),
        {
            "listen 443 ssl;": f"listen {HOST}:{port} ssl;",
            "/etc/letsencrypt/live/shoal.example.org/fullchain.pem": str(cert),
            "/etc/letsencrypt/live/shoal.example.org/privkey.pem": str(key),
            "proxy_pass http://127.0.0.1:8080;": f"proxy_pass http://{HOST}:{server.port};",
        },
    )
    scratch = tmp_path / "nginx"
    scratch.mkdir()
    config = scratch / "nginx.conf"
    config.write_text(
        f"pid {scratch}/nginx.pid;\nerror_log {scratch}/error.log;\nevents {{}}\nhttp {{\n"
        f"access_log off;\nclient_body_temp_path {scratch}/body;\nproxy_temp_path {scratch}/proxy;\n{site}\n}}\n"
    )
    process = subprocess.Popen([NGINX, "-c", str(config), "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"nginx stopped: {process.stderr.read() if process.stderr else ''}"
            with socket.socket() as probe:
                if probe.connect_ex((HOST, port)) == 0:
                    break
            assert time.monotonic() < deadline, "nginx did not listen within 10 s"
            time.sleep(0.05)
        yield port, cert
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_the_documented_nginx_proxy_carries_the_app_its_origin_check_and_poses(
    proxy: tuple[int, Path],
) -> None:
    port, cert = proxy
    base = f"https://localhost:{port}"
    context = ssl.create_default_context(cafile=str(cert))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as http:
        async with http.get(f"{base}/") as page:
            assert page.status == 200 and page.content_type == "text/html"
        async with http.get(f"{base}/healthz") as health:
            assert health.status == 200 and (await health.json())["status"] == "ok"

        # A page of a site on a non-default port: Shoal compares the browser's Origin with the Host it was sent
        # to, port included, so the proxy must pass the Host on as it came. (localhost would always be allowed.)
        site = f"shoal.test:{port}"
        upgrade = {"url": f"wss://127.0.0.1:{port}/ws", "headers": {"Host": site}, "protocols": ("shoal.v1.json",)}
        async with http.ws_connect(**upgrade, origin=f"https://{site}") as ws:  # type: ignore[arg-type]
            assert ws.protocol == "shoal.v1.json"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(**upgrade, origin="https://elsewhere.example")  # type: ignore[arg-type]
        assert refused.value.status == 403

        ada = await ShoalClient.connect(f"wss://localhost:{port}/ws", name="Ada", binary=True, session=http)
        bo = await ShoalClient.connect(f"wss://localhost:{port}/ws", name="Bo", session=http)
        try:
            assert ada.binary and not bo.binary
            await ada.join("proxied")
            await bo.join("proxied")
            await ada.send_pose(head=((1.0, 1.6, -2.0), (0.0, 0.0, 0.0, 1.0)))
            await bo.send_pose(head=((-1.0, 1.5, 2.0), (0.0, 0.0, 0.0, 1.0)))
            seen_by_bo = await asyncio.wait_for(first_pose(bo, ada.id), timeout=5)
            seen_by_ada = await asyncio.wait_for(first_pose(ada, bo.id), timeout=5)
        finally:
            await ada.close()
            await bo.close()
    assert seen_by_bo == pytest.approx((1.0, 1.6, -2.0), abs=1e-3)
    assert seen_by_ada == pytest.approx((-1.0, 1.5, 2.0), abs=1e-3)


async def first_pose(client: ShoalClient, sender: int) -> tuple[float, float, float]:
    """The head position of `sender` in the first tick `client` receives that carries it."""
    async for event in client:
        if isinstance(event, Tick):
            for pose in event.poses:
                if pose.id == sender:
                    return tuple(pose.head.pos)  # type: ignore[return-value]
    raise AssertionError("the connection closed before the pose arrived")
