"""HTTPS for headsets: the self-signed certificate kept under --data, the TLS context, the URLs and QR code
printed on start, and `shoal serve --https` end to end (HTTPS and wss:// verified against its certificate)."""

from __future__ import annotations

import datetime
import json
import os
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
import websockets
from cryptography import x509

from shoal import tls
from support.servers import ServerProcess, shoal_command

NOW = datetime.datetime(2026, 11, 21, 12, 0, tzinfo=datetime.UTC)


def names_in(cert_path: Path) -> set[str]:
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} | set(names.get_values_for_type(x509.DNSName))


def test_the_certificate_names_localhost_and_the_lan_and_its_key_is_private(tmp_path: Path) -> None:
    cert_path, key_path = tls.self_signed_certificate(tmp_path, tls.certificate_hosts(["192.168.1.23"]), NOW)
    assert names_in(cert_path) == {"localhost", "127.0.0.1", "::1", "192.168.1.23"}
    assert key_path.stat().st_mode & 0o777 == 0o600
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert certificate.not_valid_after_utc == NOW + tls.VALIDITY
    assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_certificate_is_kept_until_an_address_is_missing_or_it_nears_expiry(tmp_path: Path) -> None:
    hosts = tls.certificate_hosts(["10.0.0.5"])
    first = tls.self_signed_certificate(tmp_path, hosts, NOW)[0].read_bytes()
    assert tls.self_signed_certificate(tmp_path, hosts, NOW + datetime.timedelta(days=100))[0].read_bytes() == first
    assert tls.self_signed_certificate(tmp_path, tls.certificate_hosts([]), NOW)[0].read_bytes() == first

    moved = tls.self_signed_certificate(tmp_path, tls.certificate_hosts(["10.0.0.9"]), NOW)[0]
    assert "10.0.0.9" in names_in(moved), "a new LAN address gets a new certificate"
    renewed = tls.self_signed_certificate(tmp_path, tls.certificate_hosts(["10.0.0.9"]), NOW + datetime.timedelta(340))
    certificate = x509.load_pem_x509_certificate(renewed[0].read_bytes())
    assert certificate.not_valid_after_utc > NOW + datetime.timedelta(days=600), "renewed 30 days before expiry"


def test_a_damaged_certificate_is_replaced(tmp_path: Path) -> None:
    cert_path, _ = tls.self_signed_certificate(tmp_path, ["localhost"], NOW)
    cert_path.write_text("not a certificate")
    cert_path, key_path = tls.self_signed_certificate(tmp_path, ["localhost"], NOW)
    tls.server_context(cert_path, key_path)  # loads: the pair matches again


def test_the_server_context_refuses_tls_older_than_1_2(tmp_path: Path) -> None:
    context = tls.server_context(*tls.self_signed_certificate(tmp_path, ["localhost"], NOW))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_key_that_does_not_match_is_an_error(tmp_path: Path) -> None:
    cert_a, _ = tls.self_signed_certificate(tmp_path / "a", ["localhost"], NOW)
    _, key_b = tls.self_signed_certificate(tmp_path / "b", ["localhost"], NOW)
    with pytest.raises(ssl.SSLError):
        tls.server_context(cert_a, key_b)


def test_urls_list_every_lan_address_when_listening_everywhere() -> None:
    lan = ["192.168.1.23", "10.0.0.5"]
    assert tls.page_urls("https", "0.0.0.0", 8443, lan) == ["https://192.168.1.23:8443/", "https://10.0.0.5:8443/"]
    assert tls.page_urls("https", "192.168.1.23", 8443, lan) == ["https://192.168.1.23:8443/"]
    assert tls.page_urls("http", "::", 80, ["fd00::5"]) == ["http://[fd00::5]:80/"]


def test_lan_addresses_are_reachable_ones() -> None:
    for address in tls.lan_addresses():
        assert not address.startswith(("127.", "169.254.", "0.")), address


def test_the_startup_notice_shows_headset_urls_and_a_qr_code() -> None:
    notice = tls.startup_notice(True, "0.0.0.0", 8443, ["192.168.1.23"])
    assert "https://192.168.1.23:8443/" in notice and "accept the self-signed certificate" in notice
    assert notice.count("\n") > 15 and "█" in notice, "a QR code follows"
    plain = tls.startup_notice(False, "0.0.0.0", 8080, ["192.168.1.23"])
    assert "http://192.168.1.23:8080/" in plain and "--https" in plain
    local = tls.startup_notice(True, "127.0.0.1", 8443, ["192.168.1.23"])
    assert "https://127.0.0.1:8443/" in local and "--host 0.0.0.0" in local and "█" not in local


def test_the_qr_code_is_drawn_as_a_square() -> None:
    drawing = tls.qr_code("https://192.168.1.23:8443/")
    rows = drawing.splitlines()
    assert len(rows) >= 12 and len({len(row) for row in rows}) == 1, "a square of equal rows"


@pytest.fixture
def https_server(tmp_path: Path):
    """`shoal serve --https --port 0` as a real process; yields it with its stdout and data directory."""
    data = tmp_path / "data"
    process = subprocess.Popen(
        shoal_command("serve", "--https", "--port", "0", "--data", str(data)),
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = ServerProcess(process)
    try:
        server.wait_listening(15)
        yield server, data
    finally:
        server.terminate()


async def test_serve_https_serves_the_app_and_websockets_under_its_certificate(https_server) -> None:
    server, data = https_server
    notice = process_line(server, "Open https://127.0.0.1:")
    assert notice.startswith(f"Open https://127.0.0.1:{server.port}/ in a browser on this machine")
    assert "accept the self-signed certificate" in notice
    trusted = ssl.create_default_context(cafile=str(data / "tls" / tls.CERT_FILE))  # verifies name and chain
    base = f"https://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/", ssl=trusted) as response:
            assert response.status == 200 and "<!doctype html>" in (await response.text()).lower()
        async with session.get(f"https://localhost:{server.port}/sdk/shoal.js", ssl=trusted) as response:
            assert response.status == 200
    async with websockets.connect(f"wss://127.0.0.1:{server.port}/ws", ssl=trusted) as ws:
        await ws.send(json.dumps({"type": "hello", "name": "Headset"}))
        assert json.loads(await ws.recv())["type"] == "welcome"
    assert "url=https://" in server.log()


def process_line(server: ServerProcess, prefix: str) -> str:
    """The first stdout line of `server` starting with `prefix` (it is printed right after listening)."""
    assert server.process.stdout is not None
    for _ in range(20):
        line = server.process.stdout.readline().rstrip("\n")
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no stdout line starting with {prefix!r}")


def test_cert_without_key_is_a_usage_error(tmp_path: Path) -> None:
    cert_path, _ = tls.self_signed_certificate(tmp_path, ["localhost"], NOW)
    result = subprocess.run(
        shoal_command("serve", "--port", "0", "--cert", str(cert_path)), capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and "--cert and --key go together" in result.stderr


def test_a_mismatched_key_is_refused_clearly(tmp_path: Path) -> None:
    cert_a, _ = tls.self_signed_certificate(tmp_path / "a", ["localhost"], NOW)
    _, key_b = tls.self_signed_certificate(tmp_path / "b", ["localhost"], NOW)
    result = subprocess.run(
        shoal_command("serve", "--port", "0", "--cert", str(cert_a), "--key", str(key_b)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "cannot use the certificate" in result.stderr
