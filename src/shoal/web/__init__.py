"""HTTP: the aiohttp app, its REST API and pages."""

from shoal.web.app import create_app

__all__ = ["create_app"]
