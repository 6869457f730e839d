"""HTTPS for headsets. WebXR only runs in a secure context: `http://localhost` is one, but a headset opening
`http://192.168.1.23:8080/` is not, so it needs HTTPS.

`shoal serve --https` creates a self-signed certificate once and keeps it under the data directory
(`tls/cert.pem`, `tls/key.pem`), valid for localhost and this machine's LAN addresses; it is made again when
an address is missing from it or it expires within 30 days. `--cert`/`--key` use a certificate of your own
instead. On start the CLI prints the URLs to open on a headset and a QR code of the first one.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"
VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=30)
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})
"""`--host` values that listen on every interface: the URLs to print are this machine's LAN addresses."""


def lan_addresses() -> list[str]:
    """This machine's IPv4 addresses that others on the LAN can reach, the default route's first.

    Loopback and link-local addresses are left out. No packet is sent: connecting a UDP socket only asks
    the kernel which source address it would use.
    """
    found: list[str] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, nothing is sent
            found.append(probe.getsockname()[0])
        except OSError:
            pass  # no route at all: only the names below
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        found += [str(info[4][0]) for info in infos]
    except OSError:
        pass
    usable = []
    for address in dict.fromkeys(found):  # de-duplicated, order kept
        ip = ipaddress.ip_address(address)
        if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
            usable.append(address)
    return usable


def certificate_hosts(lan: Iterable[str]) -> list[str]:
    """What a self-signed certificate must name: localhost, its loopback addresses and the LAN addresses."""
    return list(dict.fromkeys(["localhost", "127.0.0.1", "::1", *lan]))


def self_signed_certificate(
    directory: Path, hosts: Iterable[str], now: datetime.datetime | None = None
) -> tuple[Path, Path]:
    """The certificate and key files under `directory`, made first if missing, expiring within
    `RENEW_BEFORE`, or not naming every one of `hosts` (host names and IP addresses). The key is
    readable by its owner only."""
    now = now or datetime.datetime.now(datetime.UTC)
    hosts = list(hosts)
    cert_path, key_path = directory / CERT_FILE, directory / KEY_FILE
    if cert_path.exists() and key_path.exists() and _still_good(cert_path, hosts, now):
        return cert_path, key_path

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shoal self-signed certificate")])
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate a headset's clock running behind
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    key_path.touch(mode=0o600)
    key_path.chmod(0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def _still_good(cert_path: Path, hosts: list[str], now: datetime.datetime) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
        named = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    covered = {str(ip) for ip in named.get_values_for_type(x509.IPAddress)}
    covered |= set(named.get_values_for_type(x509.DNSName))
    wanted = {str(ipaddress.ip_address(h)) if _is_ip(h) else h for h in hosts}
    return wanted <= covered and certificate.not_valid_after_utc - RENEW_BEFORE > now


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A server TLS context for the certificate chain in `cert_path` and its key: TLS 1.2 or newer only.

    Raises `ssl.SSLError` or `OSError` when the files are unreadable or do not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    return context


def page_urls(scheme: str, host: str, port: int, lan: Iterable[str]) -> list[str]:
    """The app's URLs: one per LAN address when listening on every interface, else the listening address."""
    hosts = list(lan) if host in WILDCARD_HOSTS else [host]
    return [f"{scheme}://{f'[{h}]' if ':' in h else h}:{port}/" for h in hosts]


def qr_code(text: str) -> str:
    """`text` as a QR code drawn with block characters, light modules on a dark terminal."""
    import qrcode  # imported here: only `serve` on the LAN prints one

    code = qrcode.QRCode(border=2)
    code.add_data(text)
    drawing = io.StringIO()
    code.print_ascii(out=drawing, invert=True)
    return drawing.getvalue()


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    return _is_ip(host) and ipaddress.ip_address(host).is_loopback


def startup_notice(https: bool, host: str, port: int, lan: Iterable[str]) -> str:
    """What `shoal serve` prints once listening: where to open the app, from this machine or a headset,
    with a QR code of the first LAN URL."""
    scheme = "https" if https else "http"
    if is_loopback(host):
        accept = " (accept the self-signed certificate once)" if https else ""
        return (
            f"Open {scheme}://{host}:{port}/ in a browser on this machine{accept}.\n"
            "A headset cannot reach this address: listen on the LAN with --host 0.0.0.0"
            f"{'' if https else ' and use --https (WebXR needs HTTPS)'}.\n"
        )
    urls = page_urls(scheme, host, port, lan)
    if not urls:
        return f"Listening on port {port}, but this machine has no LAN address to print.\n"
    if https:
        lines = ["Open this on a headset on the same network; accept the self-signed certificate once:"]
    else:
        lines = ["Open this on another device on the same network (VR and AR need --https):"]
    lines += [f"  {url}" for url in urls]
    return "\n".join(lines) + "\n" + qr_code(urls[0])
