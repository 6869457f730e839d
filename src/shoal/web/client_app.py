"""The web client as static files: the app at `/`, its modules at `/app/`, the JavaScript SDK at `/sdk/`
and the vendored libraries (three.js) at `/vendor/`.

Files are served read-only from `static/` inside the package, and only files: no directory listings, no
hidden files, nothing outside the directory (path traversal in any encoding, absolute paths, NUL bytes and
symlinks that lead out are all a 404), and only the file types the app uses. Responses carry an ETag and
`Cache-Control: no-cache`, so browsers revalidate (a 304 when unchanged) and an upgrade is seen at once.
The SDK may be imported from pages on other origins (`Access-Control-Allow-Origin: *`): it is public code.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

STATIC_ROOT = Path(__file__).parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".ts": "text/plain; charset=utf-8",  # shoal.d.ts: declarations to read or download, never executed
}
TEXT_FILES = frozenset({"LICENSE", "VERSION", "SHA256SUMS"})
"""Extensionless files served as text: the licence and checksums of vendored code."""

MOUNTS = ("app", "sdk", "vendor")
"""Subdirectories of the static root, each served under its own URL prefix."""

HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
SHARED_ACROSS_ORIGINS = {"sdk"}
"""Mounts any page may import from (a module script from another origin is fetched with CORS)."""


def content_type(path: Path) -> str | None:
    """The Content-Type to serve `path` with, or None if files of its kind are not served."""
    if path.name in TEXT_FILES:
        return "text/plain; charset=utf-8"
    return CONTENT_TYPES.get(path.suffix)


class StaticDirectory:
    """Serves the regular files under `root`, and nothing else."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve(strict=True)

    def find(self, relative: str) -> Path | None:
        """The file that the URL path `relative` (already percent-decoded) names under the root, or None.

        Refused: empty, `.` and `..` segments, hidden names, empty segments (so no absolute paths), NUL and
        backslashes, anything that resolves (through symlinks too) outside the root, and non-files.
        """
        if not relative or "\x00" in relative or "\\" in relative:
            return None
        if any(not part or part.startswith(".") for part in relative.split("/")):
            return None
        try:
            path = (self.root / relative).resolve(strict=True)
        except (OSError, RuntimeError):  # missing, unreadable or a symlink loop
            return None
        if not path.is_relative_to(self.root) or not path.is_file() or content_type(path) is None:
            return None
        return path

    def response(self, relative: str, headers: dict[str, str] | None = None) -> web.FileResponse:
        """The file as a response with `HEADERS` (plus `headers`); 404 when `find` refuses it."""
        path = self.find(relative)
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={**HEADERS, **(headers or {}), "Content-Type": content_type(path) or ""})


def add_routes(app: web.Application, root: Path = STATIC_ROOT) -> None:
    """`GET /` (the app's page) and `GET /{app,sdk,vendor}/{path}` from `root`."""
    files = StaticDirectory(root)

    async def index(request: web.Request) -> web.FileResponse:
        return files.response("index.html")

    app.router.add_get("/", index)
    for mount in MOUNTS:
        app.router.add_get(f"/{mount}/{{path:.+}}", _serve_mount(files, mount))


def _serve_mount(files: StaticDirectory, mount: str) -> Handler:
    headers = {"Access-Control-Allow-Origin": "*"} if mount in SHARED_ACROSS_ORIGINS else {}

    async def serve(request: web.Request) -> web.FileResponse:
        return files.response(f"{mount}/{request.match_info['path']}", headers)

    return serve
