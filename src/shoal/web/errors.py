"""Every HTTP error as JSON: `{"error": {"status": 404, "message": "..."}}`."""

from __future__ import annotations

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

log = structlog.get_logger("shoal.web")


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status, headers=headers)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn HTTP exceptions and unexpected failures into JSON bodies; never leak a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        # aiohttp's 413 explains the limit in its text ("Maximum request body size ... exceeded"), not its reason
        message = exc.text if isinstance(exc, web.HTTPRequestEntityTooLarge) and exc.text else exc.reason
        return error_response(exc.status, message, headers)
    except Exception:
        log.exception("request_failed", path=request.path)
        return error_response(500, "internal server error")
