"""The staff dashboard as a FastAPI router: one HTML page, a few static assets, its config.

No build step: plain HTML, CSS and JavaScript modules drawing inline SVG. The page holds no data;
everything it shows comes from the service APIs, called from the browser on the page's own
origin with the session cookie of the person signed in (``spm.accounts``: the server behind the
page turns the session into a token the services verify). The API base URLs are configurable per
API; empty (the default, and what ``spm dev`` and ``spm serve dashboard`` use) means the page's
own origin.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

STATIC = Path(__file__).parent / "static"
API_NAMES = ("ingest", "indicators", "objectives", "alerts", "demo", "report")
ASSETS: dict[str, str] = {
    "app.js": "text/javascript",
    "api.js": "text/javascript",
    "charts.js": "text/javascript",
    "views.js": "text/javascript",
    "actions.js": "text/javascript",
    "alert.js": "text/javascript",
    "report.js": "text/javascript",
    "format.js": "text/javascript",
    "app.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
"""Every file the router serves besides the page: a whitelist, so no path ever reaches disk."""


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def security_headers(apis: Mapping[str, str]) -> dict[str, str]:
    """A strict CSP: own scripts and styles only; API calls to the page's origin or the
    configured API origins."""
    origins = sorted({o for url in apis.values() if (o := _origin(url))})
    connect = " ".join(["'self'", *origins])
    return {
        "Content-Security-Policy": (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
        ),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def dashboard_router(
    *,
    prefix: str = "/dashboard",
    apis: Mapping[str, str] | None = None,
    title: str = "SPM Monitor",
) -> APIRouter:
    """The dashboard under ``prefix`` (``""`` serves it at ``/``).

    ``apis`` maps an API name (ingest, indicators, objectives, alerts, demo, report) to its base
    URL, e.g. ``{"alerts": "http://alerts.internal:8004"}``; unnamed ones use the page's origin
    (their services must then allow the page's origin through CORS).
    """
    prefix = prefix.rstrip("/")
    unknown = set(apis or {}) - set(API_NAMES)
    if unknown:
        raise ValueError(f"unknown API names {sorted(unknown)}; known: {API_NAMES}")
    bases = {name: (apis or {}).get(name, "").rstrip("/") for name in API_NAMES}
    headers = security_headers(bases)
    router = APIRouter(prefix=prefix, tags=["dashboard"], include_in_schema=False)

    if prefix:

        @router.get("")
        async def to_page() -> Response:
            return RedirectResponse(f"{prefix}/", status_code=308)

    @router.get("/")
    async def page() -> Response:
        return FileResponse(
            STATIC / "index.html",
            media_type="text/html; charset=utf-8",
            headers={**headers, "Cache-Control": "no-store"},
        )

    @router.get("/config.json")
    async def config() -> Response:
        return JSONResponse(
            {"title": title, "apis": bases}, headers={**headers, "Cache-Control": "no-store"}
        )

    @router.get("/assets/{name}")
    async def asset(name: str) -> Response:
        media = ASSETS.get(name)
        if media is None:
            raise HTTPException(status_code=404, detail="no such asset")
        return FileResponse(
            STATIC / name, media_type=media, headers={**headers, "Cache-Control": "no-cache"}
        )

    return router
